"""``uirbench evaluate``: model x generated dataset -> per-image rows -> summary + leaderboard entry.

Every score is computed per image (never pooled over a batch) under the stated conventions, and
every mean carries a percentile-bootstrap 95% CI over images. Outputs in ``--out``:

* ``per_image.parquet``: one row per pair, keyed by the manifest's ``input_file_name``: image id,
  degradation, severity, track, every per-image metric, runtime, and the model's routing (UIR-LoRA);
* ``summary.json``: means per degradation, severity, degradation x severity, track and overall,
  the metric spec, dataset fingerprint, model name/checkpoint hash/parameter count, versions,
  device and images/s; set-level metrics (FID/KID) per degradation and overall, with N;
* ``entry.json``: the leaderboard entry (``uirbench.leaderboard.entry``).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from uirbench.card import severity_label
from uirbench.errors import UserError
from uirbench.io import ImageError, read_image, to_numpy, to_tensor, write_bytes, write_image, write_json
from uirbench.manifest import ManifestError, pixel_sha256, read_fingerprint, source_identity, suite_identity
from uirbench.progress import Progress
from uirbench.stats import summarize

QUANTISATION = "restored images rounded to 8-bit RGB before scoring, like submitted PNGs"


@dataclass(frozen=True)
class EvaluateConfig:
    """Arguments of ``uirbench evaluate`` (see ``--help``)."""

    model: str
    checkpoint: str | None = None
    data: str = "uirbench-data"
    split: str = "test"
    metrics: tuple[str, ...] = ("psnr", "ssim")
    color_space: str = "rgb"
    crop_border: int = 0
    out: str | None = None
    save_images: bool = False
    device: str = "cpu"
    batch_size: int | None = None
    tile: int | None = None
    weights_dir: str | None = None
    model_args: tuple[tuple[str, str], ...] = ()
    command: str = ""


def load_split(data: Path, split: str) -> list[dict[str, Any]]:
    if not (data / "suite.json").exists():
        raise UserError(f"--data {data}: not a uirbench dataset (no suite.json); create one with `uirbench generate --out {data}`")
    if not (data / split / "metadata.jsonl").exists():
        available = sorted(p.parent.name for p in data.glob("*/metadata.jsonl"))
        raise UserError(f"--split {split}: {data} has no finished split {split!r} (no {split}/metadata.jsonl); "
                         f"available: {', '.join(available) or 'none'}")
    from uirbench.verify import checked_manifests

    return checked_manifests(data)[split]  # checked before scoring: an unreadable, outdated or edited dataset is refused


def batch_size(config: EvaluateConfig) -> int:
    """Images per forward pass: ``--batch-size``, else 1 on CPU and 4 on CUDA. On CPU one image at a time is
    fastest: a batch's activations outgrow glibc's largest mmap threshold (32 MB) and every layer then pays
    fresh page faults (measured: UIR-LoRA tiny at 400x600, 1.26 s per image in batches of 4, 0.53 s one by one)."""
    if config.batch_size is not None:
        return config.batch_size
    return 4 if config.device == "cuda" else 1


def _batches(rows: list[dict[str, Any]], batch_size: int) -> list[list[dict[str, Any]]]:
    """Rows grouped by image size (a batch needs one size), in manifest order within a size."""
    by_size: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_size[(row["height"], row["width"])].append(row)
    return [group[i:i + batch_size] for group in by_size.values() for i in range(0, len(group), batch_size)]


def read_pair(split_dir: Path, row: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The (degraded, clean) images of a row, checked against the manifest's pixel hashes."""
    pair = []
    for key in ("input", "target"):
        path = split_dir / row[f"{key}_file_name"]
        try:
            image = read_image(path)
        except ImageError as exc:
            raise ImageError(f"pair {row['input_file_name']}: {exc}") from exc
        if pixel_sha256(image) != row[f"{key}_pixels"]:
            raise ManifestError(f"{path}: pixels differ from the manifest ({key}_pixels): the file was changed after "
                                "generation; `uirbench verify` lists every such file, regenerate the dataset to repair it")
        pair.append(image)
    return pair[0], pair[1]


def _check_output(restored: Any, inputs: Any, batch: list[dict[str, Any]], model_name: str) -> None:
    import torch

    if restored.shape != inputs.shape:
        raise UserError(f"{model_name} returned shape {tuple(restored.shape)} for pair {batch[0]['input_file_name']} "
                         f"of shape {tuple(inputs.shape)}")
    bad = ~torch.isfinite(restored).flatten(1).all(dim=1)
    if bad.any():
        raise UserError(f"{model_name} returned NaN/inf for pair {batch[int(bad.nonzero()[0])]['input_file_name']}")


def load_metrics(config: EvaluateConfig) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Instantiate the requested metrics up front, so missing weights fail before any model runs: (per-image
    metrics, set-level metrics, notes). A run-wide convention reaches every metric that takes it; where a
    requested metric cannot take a non-default one (LPIPS scores RGB also under --color-space y), a note says so."""
    import torch

    from uirbench.metrics.base import DEFAULT_CONVENTIONS, conventions_of, create_metric
    from uirbench.registry import METRICS

    if not config.metrics:
        raise UserError(f"--metrics: no metric selected; give a comma-separated list of {', '.join(METRICS.names())}")
    options = {"color_space": config.color_space, "crop_border": config.crop_border, "weights_dir": config.weights_dir}
    flags = {"color_space": "--color-space", "crop_border": "--crop-border"}
    per_image, set_level, notes = {}, {}, []
    for name in config.metrics:
        taken = conventions_of(name)
        metric = create_metric(name, **{k: v for k, v in options.items() if k in taken})
        ignored = [f"{flags[k]} {v}" for k, v in options.items() if k in flags and v != DEFAULT_CONVENTIONS[k] and k not in taken]
        if ignored:
            notes.append(f"{name} does not take {', '.join(ignored)}: it scores {metric.spec().get('color_space', 'RGB')} "
                         "images as its spec in summary.json states")
        if METRICS.spec(name).per_image:
            per_image[name] = metric
            if METRICS.spec(name).needs_weights:
                metric.load(config.device)
        else:
            set_level[name] = metric
            metric.features(torch.zeros(1, 3, 32, 32))  # loads and checks the weights now
    return per_image, set_level, notes


Restore = Callable[[list[dict[str, Any]], Any], tuple[Any, list[dict[str, Any]]]]
"""``restore(rows, inputs) -> (restored, extras)``: the restored batch (NCHW float RGB in [0, 1], same shape
as ``inputs``, the degraded batch) and, per row, extra per-image record fields (runtime, routing)."""


def evaluate(config: EvaluateConfig) -> dict[str, Any]:
    import torch

    from uirbench import __version__
    from uirbench.models import checkpoint_sha256, create_model, resolved_checkpoint
    from uirbench.options import typed_options
    from uirbench.registry import MODELS
    from uirbench.restorer import restore

    if config.batch_size is not None and config.batch_size < 1:
        raise UserError(f"--batch-size {config.batch_size}: must be >= 1")
    if config.device not in ("cpu", "cuda"):
        raise UserError(f"--device {config.device!r}: valid devices are cpu, cuda")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here; use --device cpu")
    options = typed_options(MODELS.spec(config.model).options, dict(config.model_args), f"model {config.model!r}")
    per_image, set_level, notes = load_metrics(config)  # before the data: missing weights fail at once
    data = Path(config.data)
    rows = load_split(data, config.split)
    model = create_model(config.model, config.checkpoint, config.device, **options)
    if config.device == "cpu":  # oneDNN convolutions run 1.2-1.7x faster on NHWC memory (NAFNet, UIR-LoRA), none slower
        model = model.to(memory_format=torch.channels_last)
    out = Path(config.out or f"eval/{config.model}-{config.split}")
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if config.device == "cuda" else torch.autocast("cpu", enabled=False)

    def run_model(batch: list[dict[str, Any]], inputs: Any) -> tuple[Any, list[dict[str, Any]]]:
        hint = [row["degradation"] for row in batch] if model.uses_hint else None
        t0 = time.perf_counter()
        try:
            with amp:
                if config.device == "cpu":
                    inputs = inputs.contiguous(memory_format=torch.channels_last)
                restored = restore(model, inputs, hint, tile=config.tile).float()
        except RuntimeError as exc:
            raise UserError(f"{config.model} failed on pairs {', '.join(r['input_file_name'] for r in batch)}: {exc}") from exc
        if config.device == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - t0) / len(batch)
        _check_output(restored, inputs, batch, config.model)
        routing = model.last_routing
        extras = []
        for i, row in enumerate(batch):
            extra: dict[str, Any] = {"runtime_ms": seconds * 1e3}
            if routing is not None:
                extra["routing"] = json.dumps(routing[i], sort_keys=True)
            extras.append(extra)
            if config.save_images:
                write_image(out / "images" / config.split / row["input_file_name"], to_numpy(restored[i:i + 1])[0])
        return restored, extras

    checkpoint = resolved_checkpoint(config.model, config.checkpoint)
    model_info = {"name": config.model, "options": options, "checkpoint": checkpoint,
                  "checkpoint_sha256": checkpoint_sha256(checkpoint), "parameters": int(sum(p.numel() for p in model.parameters()))}
    records, summary, elapsed = score_restored(config, rows, (per_image, set_level), run_model, model_info, desc=f"evaluate {config.model}")
    summary.update({
        "runtime": {"device": device_name(config.device), "seconds": round(elapsed, 3),
                    "images_per_second": round(len(rows) / elapsed, 3),
                    "mean_ms_per_image": float(np.mean([r["runtime_ms"] for r in records]))},
        "versions": {"uirbench": __version__, "torch": torch.__version__},
        "command": config.command,
        "commands": provenance_commands(data, config.checkpoint, config.command),
    })
    write_outputs(out, records, summary)
    return {"out": str(out), "summary": summary, "notes": notes}


def provenance_commands(data: Path, checkpoint: str | None, command: str) -> list[str]:
    """The commands that made a score, oldest first: the dataset's ``generate`` (suite.json), the
    checkpoint's ``train`` (model.json), then ``command`` (this evaluate/submit); those not recorded are left out.

    ``checkpoint`` is the folder the user passed: a model's shipped default checkpoint is part of the
    package (identified by its hash; its model card records how it was trained), not a step to rerun.
    """
    found = []
    for path in (data / "suite.json", Path(checkpoint) / "model.json" if checkpoint else None):
        if path is not None and path.is_file():
            found.append(str(json.loads(path.read_text()).get("command") or ""))
    return [c for c in (*found, command) if c.strip()]


def score_restored(config: EvaluateConfig, rows: list[dict[str, Any]], metrics: tuple[dict[str, Any], dict[str, Any]],
                   restore: Restore, model_info: dict[str, Any], desc: str) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
    """Score restored images of ``rows`` (a split's manifest) against their clean targets: records, summary, seconds.

    The one scoring path of ``evaluate`` (a model run) and ``submit`` (submitted PNGs). Batches of
    ``config.batch_size`` same-size pairs are read from ``config.data``/``config.split``; ``restore``
    gives the restored batch, which is rounded to 8-bit RGB (see ``QUANTISATION``) and scored per image
    by ``metrics`` (per-image, set-level; from ``load_metrics``). Returns one record per pair
    (manifest keys, metric values, ``restore``'s extras) and the summary's results, set-level metrics,
    ``model_info``, dataset (suite, split, recorded fingerprint, pairs) and metric spec; and the wall time
    of the read-restore-score loop in seconds.
    """
    from uirbench.metrics import metric_spec

    per_image_metrics, set_metrics = metrics
    per_image_names = list(per_image_metrics)
    data = Path(config.data)
    split_dir = data / config.split
    records, features = [], defaultdict(lambda: defaultdict(list))
    start = time.perf_counter()
    with Progress(len(rows), "img", desc) as bar:
        for batch in _batches(rows, batch_size(config)):
            pairs = [read_pair(split_dir, row) for row in batch]
            inputs = to_tensor([p[0] for p in pairs]).to(config.device)
            targets = to_tensor([p[1] for p in pairs]).to(config.device)
            restored, extras = restore(batch, inputs)
            restored = to_tensor(to_numpy(restored)).to(config.device)  # scored as the 8-bit PNG users would submit
            scores = {name: metric(restored, targets) for name, metric in per_image_metrics.items()}
            for i, row in enumerate(batch):
                record = {key: row[key] for key in ("input_file_name", "image_id", "degradation", "severity", "range", "track")}
                record.update({name: float(scores[name][i]) for name in per_image_names})
                record.update(extras[i])
                records.append(record)
            for name, metric in set_metrics.items():
                for i, row in enumerate(batch):
                    features[name][(row["degradation"], "restored")].append(metric.features(restored[i:i + 1]))
                    features[name][(row["degradation"], "clean")].append(metric.features(targets[i:i + 1]))
            bar.update(len(batch))
    elapsed = time.perf_counter() - start
    summary = summarise(records, per_image_names)
    summary["set_metrics"] = _set_level(set_metrics, features)
    fingerprint = read_fingerprint(data)["fingerprint"]
    suite = suite_identity(data)[0]
    summary["model"] = model_info
    summary["dataset"] = {"dir": str(data), "suite": suite, "split": config.split, "fingerprint": fingerprint, "pairs": len(rows),
                          **source_identity(data)}
    summary["metric_spec"] = {**metric_spec(per_image_names, color_space=config.color_space, crop_border=config.crop_border),
                              "quantisation": QUANTISATION}
    return records, summary, elapsed


def device_name(device: str) -> str:
    import platform

    import torch

    return torch.cuda.get_device_name(0) if device == "cuda" else f"cpu ({platform.processor() or platform.machine()})"


def summarise(records: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Means + bootstrap CIs of each metric: overall, per track, degradation, severity, degradation x severity."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {key: defaultdict(list) for key in
                                                         ("track", "degradation", "severity", "degradation_severity")}
    for r in records:
        level = severity_label(r)
        groups["track"][r["track"]].append(r)
        groups["degradation"][r["degradation"]].append(r)
        groups["severity"][level].append(r)
        groups["degradation_severity"][f"{r['degradation']}@{level}"].append(r)

    def stats(members: list[dict[str, Any]]) -> dict[str, Any]:
        return {name: summarize([m[name] for m in members]) for name in names}

    result: dict[str, Any] = {"overall": stats(records)}
    for key, by in groups.items():
        result[f"per_{key}"] = {k: stats(v) for k, v in sorted(by.items())}
    return result


def _set_level(metrics: dict[str, Any], features: dict[str, dict[tuple[str, str], list[Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, metric in metrics.items():
        feats = features[name]
        degradations = sorted({d for d, _ in feats})
        entry = {}
        for d in degradations:
            a, b = np.concatenate(feats[(d, "restored")]), np.concatenate(feats[(d, "clean")])
            entry[d] = {"value": float(metric.from_features(a, b)), "n": len(a)}
        all_a = np.concatenate([np.concatenate(feats[(d, "restored")]) for d in degradations])
        all_b = np.concatenate([np.concatenate(feats[(d, "clean")]) for d in degradations])
        out[name] = {"overall": {"value": float(metric.from_features(all_a, all_b)), "n": len(all_a)}, "per_degradation": entry}
    return out


def write_outputs(out: Path, records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    import io

    import pandas as pd

    from uirbench.leaderboard.entry import entry_from_summary

    buf = io.BytesIO()
    pd.DataFrame.from_records(records).to_parquet(buf, index=False)
    write_bytes(out / "per_image.parquet", buf.getvalue())
    write_json(out / "summary.json", summary)
    write_json(out / "entry.json", entry_from_summary(summary))


def format_table(summary: dict[str, Any]) -> str:
    """A compact text table: one row per degradation (+ tracks and overall), the conventions above it."""
    spec = summary["metric_spec"]
    names = [k for k in summary["overall"]]
    conv = []
    for name in names:
        s = spec[name]
        conv.append(f"{name}: {', '.join(f'{k}={v}' for k, v in s.items() if k in ('color_space', 'crop_border', 'data_range'))}")
    lines = [f"model {summary['model']['name']} on {summary['dataset']['suite']}/{summary['dataset']['split']} "
             f"({summary['dataset']['pairs']} pairs); {spec['averaging']}, 95% bootstrap CI", "; ".join(conv)]
    header = f"{'':<22}" + "".join(f"{n:>24}" for n in names)
    lines += [header, "-" * len(header)]

    def row(label: str, stats: dict[str, Any]) -> str:
        cells = "".join(f"{stats[n]['mean']:>10.4f} [{stats[n]['ci95'][0]:.3f},{stats[n]['ci95'][1]:.3f}]"[-24:].rjust(24)
                        for n in names)
        return f"{label:<22}{cells}"

    for deg, stats in summary["per_degradation"].items():
        lines.append(row(deg, stats))
    lines.append("-" * len(header))
    for track, stats in summary["per_track"].items():
        lines.append(row(f"[{track}]", stats))
    lines.append(row("overall", summary["overall"]))
    return "\n".join(lines)
