"""The dataset engine: clean images x suite -> lossless (degraded, clean) PNG pairs + manifest.

Layout of ``OUT``::

    suite.json                  suite definition, seed, source, command, library versions
    <split>/input/<pair_id>.png degraded inputs (JPEG-degraded ones decoded, stored losslessly)
    <split>/target/<id>.png     clean targets, stored once per image and referenced by every pair
    <split>/depth/<id>.png      16-bit depth maps used by haze/rain (when the source has depth)
    <split>/metadata.jsonl      one row per pair, sorted by pair id (Hugging Face imagefolder)
    fingerprint.json            the dataset's identity: pixel hashes + semantic fields (``manifest.py``)
    README.md, samples.png      dataset card (see ``card.py``)
    skipped.jsonl               images refused with --skip-bad, with the reason
    .rows/shard-I-of-N.jsonl    append-only journals; a row is written only after its files exist

Determinism: a pair's bytes depend only on (suite, seed, image id, pair key). Workers, order and
shards change nothing. Resume: rows already in any journal are skipped; files are written to a
temporary name and renamed, so a kill at any moment leaves no half-written file under a final
name, and the manifest is rebuilt from the journals once every planned pair is present.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from uirbench import __version__
from uirbench.errors import UserError
from uirbench.io import ImageError, encode_depth_png, encode_png, read_depth, sha256_file, write_bytes, write_json
from uirbench.journal import ROWS_DIR, Journal, append_skipped, read_journals, read_skipped
from uirbench.manifest import FINGERPRINT_RECIPE, MANIFEST, ManifestError, fingerprint, pixel_sha256, read_json, source_fingerprint
from uirbench.progress import Progress
from uirbench.rng import child_rng, key64
from uirbench.sources import SourceItem, read_item, resolve
from uirbench.suites import DEFAULT_SUITE, Suite, get_suite

CONTINUOUS = -1
"""Manifest ``severity`` of a continuous draw (see the row's ``range``); every column keeps one
type in every split so that Hugging Face ``datasets`` loads all splits together."""


@dataclass(frozen=True)
class GenerateConfig:
    """Arguments of ``uirbench generate`` (see ``--help``)."""

    source: str = "builtin"
    suite: str = DEFAULT_SUITE
    out: str = "uirbench-data"
    seed: int = 0
    workers: int = 1
    shard: tuple[int, int] = (0, 1)
    limit: int | None = None
    splits: tuple[str, ...] | None = None
    skip_bad: bool = False
    depth_dir: str | None = None
    format: str = "png"
    command: str = ""


@dataclass(frozen=True)
class PairSpec:
    pair_id: str
    track: str
    degradation: str
    severity: int | None
    range: str
    copy: int
    overrides: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class ImageTask:
    item: SourceItem
    split: str
    pairs: tuple[PairSpec, ...]


def pair_rng(suite: str, seed: int, image_id: str, pair_key: str) -> np.random.Generator:
    """The generator of one pair: depends only on (suite, seed, image id, pair key)."""
    return child_rng(seed, key64(suite), key64(image_id), key64(pair_key))


def plan_pairs(suite: Suite, split: str, image_id: str) -> tuple[PairSpec, ...]:
    pairs = []
    for track in suite.tracks.get(split, ()):
        for name in track.degradations:
            for severity in track.severities:
                for copy in range(track.copies):
                    level = f"s{severity}" if severity is not None else track.range
                    pair_id = f"{image_id}__{track.name}__{name}__{level}__{copy}"
                    pairs.append(PairSpec(pair_id, track.name, name, severity, track.range, copy, track.overrides))
    return tuple(pairs)


def choose_images(suite: Suite, items: list[SourceItem], splits: tuple[str, ...] | None, limit: int | None) -> list[SourceItem]:
    """The images a run covers, sorted by id: those of ``splits`` (all when None), at most ``limit``.

    With a limit, the first image (by id) of every split that has one is taken first, in the suite's
    split order, then the following images by id; so ``--limit N`` with N >= the number of splits
    gives every split at least one image whenever the source holds one for it.
    """
    valid = [name for name, _ in suite.splits]
    for split in splits or ():
        if split not in valid:
            raise UserError(f"--splits: suite {suite.name} has no split {split!r}; valid: {', '.join(valid)}")
    ordered = sorted(items, key=lambda it: it.image_id)
    if splits:
        ordered = [it for it in ordered if suite.split_of(it.image_id) in splits]
    if limit is None:
        return ordered
    firsts: dict[str, SourceItem] = {}
    for item in ordered:
        firsts.setdefault(suite.split_of(item.image_id), item)
    chosen = [firsts[name] for name, _ in suite.splits if name in firsts][:limit]
    taken = {it.image_id for it in chosen}
    chosen += [it for it in ordered if it.image_id not in taken][:limit - len(chosen)]
    return sorted(chosen, key=lambda it: it.image_id)


def plan(suite: Suite, chosen: list[SourceItem], shard: tuple[int, int]) -> list[ImageTask]:
    """Image tasks of one shard of the ``chosen`` images (see :func:`choose_images`; shard I of N takes every N-th)."""
    tasks = []
    for index, item in enumerate(chosen):
        if index % shard[1] == shard[0]:
            split = suite.split_of(item.image_id)
            tasks.append(ImageTask(item, split, plan_pairs(suite, split, item.image_id)))
    return tasks


TASKS_PER_WORKER = 4
"""A pool's tasks are cut to cost at most 1/(TASKS_PER_WORKER x workers) of the run (see :func:`pool_tasks`)."""


def pool_tasks(tasks: list[ImageTask], pixels: dict[str, int], workers: int) -> list[ImageTask]:
    """``tasks`` cut and ordered for a pool of ``workers`` processes, most expensive first.

    A task's cost is estimated as pairs x pixels of its image. An image whose pairs cost more than
    1/(TASKS_PER_WORKER x workers) of the run is split into tasks of at most that cost (one pair, if
    a pair costs more), taking its pairs in turn so that each task holds a mix of cheap and costly
    degradations. Every task of an image reads it and makes sure its target (and depth map) is
    written: milliseconds, against the seconds of its pairs. Largest first: the tasks still running
    when the queue empties are short, so no worker idles long at the end.
    """
    def size(task: ImageTask) -> int:
        return max(pixels.get(task.item.image_id, 0), 1)

    share = sum(len(t.pairs) * size(t) for t in tasks) / (TASKS_PER_WORKER * workers)
    cut = []
    for task in tasks:
        parts = math.ceil(len(task.pairs) / max(1, int(share // size(task))))
        cut += [replace(task, pairs=task.pairs[i::parts]) for i in range(parts)]
    return sorted(cut, key=lambda t: len(t.pairs) * size(t), reverse=True)


# -- worker side ------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(out: str, suite_name: str, seed: int) -> None:
    import cv2
    import torch

    from uirbench.runtime import keep_freed_memory

    cv2.setNumThreads(1)
    torch.set_num_threads(1)  # one core per worker: otherwise torch's own threads oversubscribe (5.7x slower at 2 workers)
    keep_freed_memory()
    _WORKER.update(out=Path(out), suite=get_suite(suite_name), seed=seed)


def _write_once(path: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if not (path.exists() and sha256_file(path) == digest):
        write_bytes(path, data)
    return digest


def process_image(task: ImageTask) -> dict[str, Any]:
    """Generate the pairs of one task (a clean image, all or some of its pairs); returns manifest rows, or
    the reason the image was refused."""
    from uirbench.degradations import create, families

    out, suite, seed = _WORKER["out"], _WORKER["suite"], _WORKER["seed"]
    item = task.item
    # read and check the clean image; a bad one is reported back (the main side skips or stops), not raised in a worker
    try:
        image, depth = read_item(item)
        if min(image.shape[:2]) < suite.min_side:
            raise ImageError(f"{item.origin if item.path else item.image_id}: {image.shape[1]}x{image.shape[0]} px is smaller than suite "
                             f"{suite.name}'s minimum side of {suite.min_side} px")
    except (ImageError, OSError) as exc:
        return {"image_id": item.image_id, "error": str(exc), "source": item.origin}
    # the clean target, written once per image (and not rewritten on resume if its bytes are already there)
    split_dir = out / task.split
    target_name = f"target/{item.image_id}.png"
    target_sha = _write_once(split_dir / target_name, encode_png(image))
    target_pixels = pixel_sha256(image)
    # the depth map is stored as 16-bit PNG, then read back: sample from exactly what is stored, so replay matches
    depth_name = None
    if depth is not None:
        depth_name = f"depth/{item.image_id}.png"
        _write_once(split_dir / depth_name, encode_depth_png(depth))
        depth = read_depth(split_dir / depth_name)
    # per pair: params from the pair's own generator (independent of order and workers), the track's overrides pinned
    # on top, rendered through replay (the path users re-run from the manifest), so the stored bytes replay exactly
    quality = InputQuality(image)
    rows = []
    for spec in task.pairs:
        input_name = f"input/{spec.pair_id}.png"
        degradation = create(spec.degradation, severity=spec.severity, track=spec.range)
        params = degradation.sample(pair_rng(suite.name, seed, item.image_id, spec.pair_id), image, depth)
        for key, value in spec.overrides:
            params[key] = value
        degraded = type(degradation).replay(image, params, depth)
        data = encode_png(degraded)
        write_bytes(split_dir / input_name, data)
        # the manifest row: everything needed to replay, verify and describe the pair (written by the main side)
        rows.append({
            "input_file_name": input_name, "target_file_name": target_name, "image_id": item.image_id,
            "degradation": spec.degradation, "labels": families(spec.degradation),
            "severity": CONTINUOUS if spec.severity is None else spec.severity,
            "range": spec.range, "track": spec.track, "copy": spec.copy, "params": json.dumps(params, sort_keys=True),
            "depth_map": depth_name or "", "input_sha256": hashlib.sha256(data).hexdigest(), "target_sha256": target_sha,
            "input_pixels": pixel_sha256(degraded), "target_pixels": target_pixels,
            "height": int(image.shape[0]), "width": int(image.shape[1]), "source": item.origin, "license": item.license,
            **quality(degraded),
        })
    return {"image_id": item.image_id, "split": task.split, "rows": rows}


class InputQuality:
    """PSNR and SSIM of degraded inputs against one clean target, the card's difficulty numbers.

    Conventions: RGB, no crop, data range 1 (``uirbench.card.CONVENTION``). The target's tensors and its
    filtered SSIM moments (``ssim_reference``: 2 of SSIM's 5 filtered maps) are made once per image. The
    numbers are those of ``compute_per_image(("psnr", "ssim"), to_tensor(degraded), to_tensor(clean))`` to
    the last bit: PSNR scores the same NCHW tensors, SSIM channels-last ones (the same values, in the layout
    ``ssim_per_image`` filters in, so its reordering copy is skipped); ``tests/test_generate_speed_paths.py``
    checks this.
    """

    def __init__(self, clean: np.ndarray) -> None:
        import torch

        from uirbench.io import to_tensor
        from uirbench.metrics.base import create_metric
        from uirbench.metrics.fidelity import ssim_reference

        self._psnr, self._ssim = create_metric("psnr"), create_metric("ssim")
        clean_tensor = to_tensor(clean, channels_last=True)
        self._clean_nchw = clean_tensor.contiguous()
        with torch.inference_mode():
            self._reference = ssim_reference(clean_tensor, self._ssim.data_range)

    def __call__(self, degraded: np.ndarray) -> dict[str, float]:
        import torch

        from uirbench.io import to_tensor
        from uirbench.metrics.base import check_pair
        from uirbench.metrics.fidelity import ssim_against

        with torch.inference_mode():
            x = to_tensor(degraded, channels_last=True)
            check_pair(x, self._clean_nchw)
            psnr, ssim = self._psnr(x.contiguous(), self._clean_nchw), ssim_against(x, self._reference)
        return {"input_psnr": float(psnr[0]), "input_ssim": float(ssim[0])}


def input_quality(clean: np.ndarray, degraded: np.ndarray) -> dict[str, float]:
    """PSNR and SSIM of one degraded input against its clean target (see :class:`InputQuality`)."""
    return InputQuality(clean)(degraded)


# -- main side --------------------------------------------------------------------------------
def source_images(items: list[SourceItem]) -> tuple[dict[str, str | None], dict[str, int]]:
    """Image id -> pixel hash of each chosen source image (None if it cannot be read: the run reports it),
    and image id -> its number of pixels (0 if unreadable; :func:`pool_tasks` balances workers with it)."""
    hashes: dict[str, str | None] = {}
    sizes: dict[str, int] = {}
    for item in items:
        try:
            image = read_item(item)[0]
        except (ImageError, OSError):
            hashes[item.image_id], sizes[item.image_id] = None, 0
            continue
        hashes[item.image_id], sizes[item.image_id] = pixel_sha256(image), image.shape[0] * image.shape[1]
    return hashes, sizes


def _identity(config: GenerateConfig, suite: Suite, images: dict[str, str | None]) -> dict[str, Any]:
    import cv2
    import PIL

    return {
        "suite": suite.to_json(), "seed": config.seed, "source": config.source, "limit": config.limit,
        "splits": list(config.splits) if config.splits else None, "images": images,
        "versions": {"uirbench": __version__, "numpy": np.__version__, "opencv": cv2.__version__, "pillow": PIL.__version__,
                     "python": sys.version.split()[0]},
    }


def _check_out_dir(out: Path, identity: dict[str, Any], command: str) -> None:
    meta = out / "suite.json"
    if meta.exists():
        old = read_json(meta)
        if not isinstance(old, dict) or not isinstance(old.get("suite"), dict):
            raise ManifestError(f"{meta}: not a uirbench suite.json; choose another --out or delete that folder")
        for key in ("suite", "seed", "source", "limit", "splits"):
            if old.get(key) != identity[key]:
                shown = old.get(key) if key != "suite" else old["suite"]["name"]
                raise UserError(f"--out {out}: holds a dataset made with a different {key} ({shown!r}); "
                                 "refusing to mix them. Choose another --out or delete that folder")
        if old.get("images") != identity["images"]:
            raise UserError(f"--out {out}: the source's images changed since this dataset was started "
                             f"({_image_changes(old.get('images') or {}, identity['images'])}); refusing to mix two datasets. "
                             "Restore the source, or choose another --out (or delete that folder) to start over")
        return
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--out {out}: folder exists, is not empty and holds no uirbench suite.json; choose another --out")
    write_json(meta, {**identity, "command": command})


def _image_changes(old: dict[str, Any], new: dict[str, Any], shown: int = 5) -> str:
    parts = []
    for label, names in (("added", sorted(set(new) - set(old))), ("removed", sorted(set(old) - set(new))),
                         ("pixels changed", sorted(k for k in set(old) & set(new) if old[k] != new[k]))):
        if names:
            parts.append(f"{label}: {', '.join(names[:shown])}{', ...' if len(names) > shown else ''} ({len(names)})")
    return "; ".join(parts)


def finalize(out: Path, planned: dict[str, list[str]], suite: str, seed: int) -> dict[str, Any] | None:
    """Write sorted manifests (planned rows only), fingerprint and card once every planned pair has a row; else None."""
    rows = read_journals(out)
    missing = sum(1 for split, names in planned.items() for n in names if f"{split}/{n}" not in rows)
    if missing:
        return None
    manifests = {split: [{k: v for k, v in rows[f"{split}/{n}"].items() if k != "split"} for n in sorted(names)]
                 for split, names in planned.items() if names}
    for split, split_rows in sorted(manifests.items()):
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in split_rows)
        write_bytes(out / split / MANIFEST, text.encode())
    identity = {"fingerprint": fingerprint(suite, seed, manifests), "recipe": FINGERPRINT_RECIPE,
                "pairs": {split: len(r) for split, r in sorted(manifests.items())}}
    write_json(out / "fingerprint.json", identity)
    from uirbench.card import write_card

    write_card(out)
    return identity


def generate(config: GenerateConfig) -> dict[str, Any]:
    """Run (or resume) a generation; returns the summary printed by the CLI."""
    start = time.perf_counter()
    suite = get_suite(config.suite)
    index, count = config.shard
    # refuse bad arguments before anything is read or written
    if not 0 <= index < count:
        raise UserError(f"--shard {index}/{count}: expected I/N with 0 <= I < N")
    if config.format not in ("png", "parquet"):
        raise UserError(f"--format {config.format!r}: valid formats are png, parquet")
    if config.workers < 1:
        raise UserError(f"--workers {config.workers}: must be >= 1")
    if config.limit is not None and config.limit < 1:
        raise UserError(f"--limit {config.limit}: must be >= 1 (or left out to use every source image)")
    # the dataset's identity (suite, seed, source, image pixels): --out holds this dataset or nothing, so no mixing
    out = Path(config.out)
    items = resolve(config.source, config.depth_dir)
    chosen = choose_images(suite, items, config.splits, config.limit)
    hashes, sizes = source_images(chosen)
    identity = _identity(config, suite, hashes)
    _check_out_dir(out, identity, config.command)
    # plan every shard's pairs, not just ours: the manifest is written only once all of them exist
    all_tasks = plan(suite, chosen, (0, 1))
    planned = {}
    for task in all_tasks:
        planned.setdefault(task.split, []).extend(f"input/{p.pair_id}.png" for p in task.pairs)
    # resume: this shard's pairs minus those already journaled and the images skipped before
    tasks = [t for i, t in enumerate(all_tasks) if i % count == index]
    skipped_before = read_skipped(out)
    done_rows = read_journals(out)
    done = {key.split("/", 1)[1] for key in done_rows}
    todo = [replace(t, pairs=tuple(p for p in t.pairs if f"input/{p.pair_id}.png" not in done)) for t in tasks
            if t.item.image_id not in skipped_before]
    todo = [t for t in todo if t.pairs]
    total = sum(len(t.pairs) for t in todo)
    # workers write the files, then their rows are journaled here: a kill loses only unjournaled pairs, redone on resume
    journal = Journal(out / ROWS_DIR / f"shard-{index}-of-{count}.jsonl")
    written, skipped = 0, []
    if config.workers > 1:
        todo = pool_tasks(todo, sizes, config.workers)
    with Progress(total, "pair", f"generate {suite.name}") as bar:
        try:
            for task, result in _run_tasks(todo, config, out, suite):
                if "error" in result:  # a refused image stops the run, or with --skip-bad is listed so resumes skip it
                    if not config.skip_bad:
                        raise ImageError(result["error"] + " (use --skip-bad to skip such images and list them in skipped.jsonl)")
                    if all(s["image_id"] != result["image_id"] for s in skipped):  # an image cut into several tasks fails in each
                        skipped.append(result)
                        append_skipped(out, result)
                    bar.update(len(task.pairs))
                    continue
                journal.append([{**row, "split": result["split"]} for row in result["rows"]])
                written += len(result["rows"])
                bar.update(len(result["rows"]))
        finally:
            journal.close()
    # whichever shard finishes last writes manifests, fingerprint and card (finalize waits for every planned pair)
    skipped_ids = skipped_before | {s["image_id"] for s in skipped}
    planned = {split: [n for n in names if n.split("/", 1)[1].split("__", 1)[0] not in skipped_ids]
               for split, names in planned.items()}
    fingerprint = finalize(out, planned, suite.name, config.seed)
    images_per_split = {name: [t.item.image_id for t in all_tasks if t.split == name and t.item.image_id not in skipped_ids]
                        for name, _ in suite.splits}
    # parquet is an export of the finished PNG dataset, so it needs the fingerprint (a complete dataset)
    if fingerprint is not None and config.format == "parquet":
        from uirbench.export import write_parquet

        write_parquet(out, sorted(fingerprint["pairs"]))
    return {
        "out": str(out), "suite": suite.name, "pairs_written": written, "pairs_already_present": len(done),
        "images_skipped": sorted(skipped_ids), "images_per_split": images_per_split, "seconds": round(time.perf_counter() - start, 2),
        "fingerprint": fingerprint["fingerprint"] if fingerprint else None, "source_fingerprint": source_fingerprint(hashes),
        "pairs_per_split": fingerprint["pairs"] if fingerprint else None,
        "complete": fingerprint is not None,
    }


def _run_tasks(tasks: list[ImageTask], config: GenerateConfig, out: Path,
               suite: Suite) -> Iterator[tuple[ImageTask, dict[str, Any]]]:
    """(task, result) in completion order: in-process for one worker, else a spawn-context process pool."""
    if config.workers == 1:
        _init_worker(str(out), suite.name, config.seed)
        for task in tasks:
            yield task, process_image(task)
        return
    pool = ProcessPoolExecutor(config.workers, mp_context=get_context("spawn"), initializer=_init_worker,
                               initargs=(str(out), suite.name, config.seed))
    try:
        futures = {pool.submit(process_image, task): task for task in tasks}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
