"""Writing existing pairs as a uirbench dataset: the folder, manifest, pixel hashes, fingerprint and card of ``generate``.

The layout of ``OUT`` is ``generate``'s (``uirbench/generate.py``): ``<split>/input/<pair id>.png``,
``<split>/target/<image id>.png`` (each clean image once), ``<split>/metadata.jsonl``, ``suite.json``,
``fingerprint.json``, the card (``README.md``, ``samples.png``) and ``skipped.jsonl`` (pairs left out
with ``--skip-bad``, with the reason). Files are decoded (JPEG and 16-bit sources too) and stored as
lossless PNG, so the pixel hashes and the fingerprint identify the decoded pixels, whatever the
source's encoding. A pair's input is either a file (imports) or drawn from its clean image by a
degradation whose generator depends only on (suite, seed, image id, pair id), as in ``generate``
(the synthetic noise of the protocols).

Rows are journaled (``.rows/``) after their files exist and ``generate.finalize`` writes the manifest,
fingerprint and card once every planned pair is there: an interrupted run resumes when re-run.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uirbench.errors import UserError
from uirbench.external.layouts import labels_of
from uirbench.io import ImageError, encode_png, read_image, write_bytes, write_json
from uirbench.journal import ROWS_DIR, Journal, read_journals
from uirbench.manifest import pixel_sha256, read_json
from uirbench.progress import Progress

EXTERNAL = "external"
"""Manifest ``range`` of an imported pair: its parameters are the set's, not drawn from a uirbench range."""
CONTINUOUS = -1
"""Manifest ``severity`` of a pair without a uirbench severity level (``generate.CONTINUOUS``)."""


@dataclass(frozen=True)
class PlannedPair:
    """One pair to write. ``input`` None: drawn from the target by ``degradation`` at ``severity`` (1-5)."""

    pair_id: str
    image_id: str
    target: Path
    input: Path | None
    degradation: str
    track: str
    severity: int = CONTINUOUS
    range: str = EXTERNAL
    copy: int = 0
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    source: str = ""
    license: str = ""


@dataclass(frozen=True)
class DatasetInfo:
    """What ``suite.json`` records: the suite (a layout or protocol name), seed, split, source and command."""

    suite: str
    description: str
    split: str
    source: str
    seed: int = 0
    command: str = ""


def pair_id(image_id: str, track: str, degradation: str, level: str, copy: int) -> str:
    """``<image id>__<track>__<degradation>__<level>__<copy>``, the scheme of generated pairs (``ext``: an imported pair)."""
    return f"{image_id}__{track}__{degradation}__{level}__{copy}"


def plan_digest(pairs: list[PlannedPair]) -> str:
    """sha256 of the planned pairs (ids, sources, file sizes): a resumed run must plan the same pairs."""
    lines = [[p.pair_id, p.source, p.target.stat().st_size, p.input.stat().st_size if p.input else p.severity] for p in pairs]
    return hashlib.sha256(json.dumps(sorted(lines)).encode()).hexdigest()


def _start(out: Path, info: DatasetInfo, pairs: list[PlannedPair]) -> None:
    """Write ``suite.json``, or check that ``out`` holds this very dataset (then the run resumes)."""
    import cv2
    import numpy as np
    import PIL

    from uirbench import __version__

    identity = {"suite": {"name": info.suite, "description": info.description, "splits": {info.split: 1.0}},
                "seed": info.seed, "source": info.source, "limit": None, "splits": [info.split], "plan": plan_digest(pairs)}
    meta = out / "suite.json"
    if meta.exists():
        old = read_json(meta)
        changed = [key for key in identity if not isinstance(old, dict) or old.get(key) != identity[key]]
        if changed:
            raise UserError(f"--out {out}: holds another dataset (its {', '.join(changed)} differ); refusing to mix them. "
                            "Choose another --out or delete that folder")
        return
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--out {out}: folder exists, is not empty and holds no uirbench suite.json; choose another --out")
    versions = {"uirbench": __version__, "numpy": np.__version__, "opencv": cv2.__version__, "pillow": PIL.__version__,
                "python": sys.version.split()[0]}
    write_json(meta, {**identity, "versions": versions, "command": info.command})


def _input(pair: PlannedPair, clean: Any, info: DatasetInfo) -> tuple[Any, dict[str, Any]]:
    """The degraded image of a pair and its params: the file (checked to match the target's size), or a seeded draw."""
    if pair.input is None:
        from uirbench.degradations import create
        from uirbench.generate import pair_rng

        degradation = create(pair.degradation, severity=pair.severity)
        params = degradation.sample(pair_rng(info.suite, info.seed, pair.image_id, pair.pair_id), clean, None)
        return type(degradation).replay(clean, params, None), params
    degraded = read_image(pair.input)
    if degraded.shape != clean.shape:
        raise ImageError(f"{pair.source}: {degraded.shape[1]}x{degraded.shape[0]} px, but its target {pair.target.name} is "
                         f"{clean.shape[1]}x{clean.shape[0]} px")
    return degraded, dict(pair.params)


def _image_rows(out: Path, info: DatasetInfo, image_id: str, todo: list[PlannedPair], skip_bad: bool,
                refused: dict[str, str]) -> list[dict[str, Any]]:
    """Write one clean image and the inputs of its pairs ``todo``; returns their manifest rows (refusals go to ``refused``)."""
    from uirbench.generate import InputQuality

    try:
        clean = read_image(todo[0].target)
    except ImageError as exc:
        refused.update(_refuse(exc, skip_bad, [p.pair_id for p in todo]))
        return []
    target_name, target_png = f"target/{image_id}.png", encode_png(clean)
    write_bytes(out / info.split / target_name, target_png)
    quality, rows = InputQuality(clean), []
    for pair in todo:
        try:
            degraded, params = _input(pair, clean, info)
        except ImageError as exc:
            refused.update(_refuse(exc, skip_bad, [pair.pair_id]))
            continue
        data = encode_png(degraded)
        write_bytes(out / info.split / "input" / f"{pair.pair_id}.png", data)
        rows.append({
            "input_file_name": f"input/{pair.pair_id}.png", "target_file_name": target_name, "image_id": image_id,
            "degradation": pair.degradation, "labels": labels_of(pair.degradation), "severity": pair.severity,
            "range": pair.range, "track": pair.track, "copy": pair.copy, "params": json.dumps(params, sort_keys=True),
            "depth_map": "", "input_sha256": hashlib.sha256(data).hexdigest(),
            "target_sha256": hashlib.sha256(target_png).hexdigest(), "input_pixels": pixel_sha256(degraded),
            "target_pixels": pixel_sha256(clean), "height": int(clean.shape[0]), "width": int(clean.shape[1]),
            "source": pair.source, "license": pair.license, "split": info.split, **quality(degraded)})
    return rows


def write_dataset(out: Path, info: DatasetInfo, pairs: list[PlannedPair], skipped: list[str], skip_bad: bool) -> dict[str, Any]:
    """Write (or resume) the dataset of ``pairs`` in ``out``; ``skipped``: problems already left out (with --skip-bad).

    A file that cannot be decoded or whose size differs from its target's stops the run naming it, or
    with ``skip_bad`` is left out and listed in ``skipped.jsonl``. Returns the summary the CLI prints.
    """
    from uirbench.generate import finalize

    if not pairs:
        raise UserError(f"{info.source}: no pairs to import" + (f" ({len(skipped)} left out: {skipped[0]} ...)" if skipped else ""))
    _start(out, info, pairs)
    done = {key.split("/", 1)[1] for key in read_journals(out)}
    groups: dict[str, list[PlannedPair]] = defaultdict(list)
    for pair in pairs:
        if f"input/{pair.pair_id}.png" not in done:
            groups[pair.image_id].append(pair)
    refused: dict[str, str] = {}
    written, journal = 0, Journal(out / ROWS_DIR / "shard-0-of-1.jsonl")
    try:
        with Progress(sum(map(len, groups.values())), "pair", f"write {info.suite}") as bar:
            for image_id, todo in sorted(groups.items()):
                rows = _image_rows(out, info, image_id, todo, skip_bad, refused)
                journal.append(rows)  # after the files exist: a killed run resumes from here
                written += len(rows)
                bar.update(len(todo))
    finally:
        journal.close()
    left_out = [*skipped, *(f"{pid}: {reason}" for pid, reason in sorted(refused.items()))]
    if left_out:
        write_bytes(out / "skipped.jsonl", "".join(json.dumps({"error": e}) + "\n" for e in left_out).encode())
    planned = [f"input/{p.pair_id}.png" for p in pairs if p.pair_id not in refused]
    if not planned:
        raise UserError(f"{info.source}: every pair was left out; see {out / 'skipped.jsonl'}")
    identity = finalize(out, {info.split: planned}, info.suite, info.seed)
    if identity is None:
        raise RuntimeError(f"{out}: a planned pair has no journaled row after the run")
    return {"out": str(out), "suite": info.suite, "pairs": len(planned), "pairs_written": written,
            "pairs_already_present": len(done & set(planned)), "skipped": left_out, "fingerprint": identity["fingerprint"]}


def _refuse(exc: ImageError, skip_bad: bool, pair_ids: list[str]) -> dict[str, str]:
    """Stop on an unreadable or mismatched file, or (``skip_bad``) return the reason of each affected pair."""
    if not skip_bad:
        raise ImageError(f"{exc} (use --skip-bad to leave such pairs out and list them in skipped.jsonl)")
    return dict.fromkeys(pair_ids, str(exc))
