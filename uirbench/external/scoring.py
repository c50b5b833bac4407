"""Scoring a model on a protocol dataset under a named convention, into ``evaluate``'s outputs and a leaderboard entry.

``uirbench``: ``uirbench evaluate`` itself (whole images, restored images rounded to 8 bits, 11x11
Gaussian SSIM), so the entry lands on the same board as any other evaluation of that dataset.
``promptir``: the papers' convention (``conventions.py``): each pair's input and target centre-cropped
to a multiple of 16 px, the model run on the crop (one image per batch, like their test loaders),
the output clipped and scored unquantised with PSNR and the 7x7 uniform SSIM. Its metric spec
differs, so its entries form their own board and are never ranked with uirbench-convention ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uirbench.errors import UserError
from uirbench.external.conventions import CONVENTIONS, PROMPTIR, UIRBENCH, crop_to_multiple, promptir_spec, ssim_uniform


@dataclass(frozen=True)
class ScoreConfig:
    """A model, a protocol dataset and a convention (``conventions.CONVENTIONS``); outputs go to ``out``."""

    model: str
    data: str
    out: str
    convention: str = UIRBENCH
    checkpoint: str | None = None
    device: str = "cpu"
    model_args: tuple[tuple[str, str], ...] = ()
    command: str = ""


def score(config: ScoreConfig) -> dict[str, Any]:
    """Score ``config.model`` on the test split of ``config.data``; returns the summary (also in ``out/summary.json``)."""
    if config.convention not in CONVENTIONS:
        raise UserError(f"--convention {config.convention!r}: valid conventions are {', '.join(CONVENTIONS)}")
    if config.convention == UIRBENCH:
        from uirbench.evaluate import EvaluateConfig, evaluate

        return evaluate(EvaluateConfig(model=config.model, checkpoint=config.checkpoint, data=config.data, out=config.out,
                                       device=config.device, model_args=config.model_args, command=config.command))["summary"]
    return _score_promptir(config)


def _score_promptir(config: ScoreConfig) -> dict[str, Any]:
    import torch

    from uirbench import __version__
    from uirbench.evaluate import device_name, load_split, provenance_commands, read_pair, summarise, write_outputs
    from uirbench.io import to_tensor
    from uirbench.manifest import read_fingerprint, suite_identity
    from uirbench.metrics import create_metric
    from uirbench.models import checkpoint_sha256, create_model, resolved_checkpoint
    from uirbench.options import typed_options
    from uirbench.progress import Progress
    from uirbench.registry import MODELS
    from uirbench.restorer import restore

    if config.device not in ("cpu", "cuda") or (config.device == "cuda" and not torch.cuda.is_available()):
        raise UserError(f"--device {config.device!r}: valid devices are cpu and cuda (when a CUDA device is available)")
    options = typed_options(MODELS.spec(config.model).options, dict(config.model_args), f"model {config.model!r}")
    data = Path(config.data)
    rows = load_split(data, "test")
    model = create_model(config.model, config.checkpoint, config.device, **options)
    psnr, records = create_metric("psnr"), []
    start = time.perf_counter()
    with torch.inference_mode(), Progress(len(rows), "img", f"score {config.model} ({PROMPTIR} convention)") as bar:
        for row in rows:
            degraded, clean = (to_tensor(crop_to_multiple(a)).to(config.device) for a in read_pair(data / "test", row))
            t0 = time.perf_counter()
            restored = restore(model, degraded, [row["degradation"]] if model.uses_hint else None).float()
            if config.device == "cuda":
                torch.cuda.synchronize()
            record = {key: row[key] for key in ("input_file_name", "image_id", "degradation", "severity", "range", "track")}
            record.update(psnr=float(psnr(restored, clean)[0]), ssim=float(ssim_uniform(restored, clean)[0]),
                          runtime_ms=(time.perf_counter() - t0) * 1e3)
            records.append(record)
            bar.update(1)
    elapsed = time.perf_counter() - start
    checkpoint = resolved_checkpoint(config.model, config.checkpoint)
    summary = summarise(records, ["psnr", "ssim"])
    summary.update({
        "set_metrics": {},
        "model": {"name": config.model, "options": options, "checkpoint": checkpoint, "checkpoint_sha256": checkpoint_sha256(checkpoint),
                  "parameters": int(sum(p.numel() for p in model.parameters()))},
        "dataset": {"dir": str(data), "suite": suite_identity(data)[0], "split": "test",
                    "fingerprint": read_fingerprint(data)["fingerprint"], "pairs": len(rows)},
        "metric_spec": promptir_spec(),
        "runtime": {"device": device_name(config.device), "seconds": round(elapsed, 3), "images_per_second": round(len(rows) / elapsed, 3),
                    "mean_ms_per_image": sum(r["runtime_ms"] for r in records) / len(records)},
        "versions": {"uirbench": __version__, "torch": torch.__version__},
        "command": config.command,
        "commands": provenance_commands(data, config.checkpoint, config.command),
    })
    write_outputs(Path(config.out), records, summary)
    return summary
