"""Does UIR-LoRA's per-image composition beat one multi-task model? Small-scale controls, same data and budget.

On the default suite built from ../shared/data/CBSD68 (train split for training, a subset of the test
split for scoring), this trains with the project's own code:

* UIR-LoRA tiny (``uirbench train --model uir-lora --preset tiny``: backbone, one adapter per family, router);
* a multi-task LoRA: one adapter on every train pair (single and mixed), on the same frozen backbone, with
  as many steps as all family adapters together (same adapter budget);
* the multi-task baselines nafnet/restormer/promptir/airnet (tiny presets) for the same number of 64 px
  training patches as all adapters together (``--baseline-eval NAME=DIR`` reads a finished
  ``uirbench evaluate`` output instead, matched pair by pair);

then scores, pair by pair on the same test subset (RGB PSNR/SSIM, mean of per-image values): identity,
the baselines, the multi-task LoRA, UIR-LoRA with the learned router at K = 1, 2, 3 and the oracle router,
separately on single and mixed degradations. It also times K = 3 against K = 1 composition and counts
parameters (tiny, and SD-turbo-sized on the meta device). Prints Markdown; writes ``WORK/results.json``.

    python benchmarks/uir_lora.py                       # ~1 h on 2 CPU cores (training dominates)
    python benchmarks/uir_lora.py --quick               # ~15 min: 10 steps per stage, 1 test image

Runs are resumable: re-running with the same --work skips finished training.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from uirbench.restorer import Restorer, restore

BASELINES = ("nafnet", "restormer", "promptir", "airnet")


class SingleAdapter(Restorer):
    """The backbone with one adapter at weight 1 for every image (the multi-task LoRA control)."""

    name = "multitask-lora"

    def __init__(self, backbone: torch.nn.Module, adapter: str) -> None:
        super().__init__()
        self.backbone, self.adapter, self.size_multiple = backbone, adapter, backbone.size_multiple

    def forward(self, x: torch.Tensor, degradation_hint: list[str] | None = None) -> torch.Tensor:
        from uirbench.uir_lora.lora import mixture

        with mixture(self.backbone, [self.adapter], x.new_ones(x.shape[0], 1)):
            return self.backbone(x)


def dataset(args: argparse.Namespace) -> Path:
    """--data if given (a complete generated dataset); else generate the default suite from --source into WORK (resumable)."""
    from uirbench.generate import GenerateConfig, generate

    if args.data:
        data = Path(args.data)
        if not all((data / f).exists() for f in ("fingerprint.json", "train/metadata.jsonl", "test/metadata.jsonl")):
            raise SystemExit(f"--data {args.data}: not a complete uirbench dataset (fingerprint.json, train/ and test/ manifests)")
        return data
    out = Path(args.work) / "cbsd68-uir"
    generate(GenerateConfig(source=args.source, out=str(out), workers=args.workers))
    return out


def test_rows(data: Path, images: int) -> list[dict[str, Any]]:
    """Single (severities 2, 4) and mixed pairs of the first ``images`` test images (sorted ids)."""
    from uirbench.manifest import load_manifest

    rows = load_manifest(data, "test")
    keep = sorted({r["image_id"] for r in rows})[:images]
    return [r for r in rows if r["image_id"] in keep and (r["track"] == "mixed" or (r["track"] == "single" and r["severity"] in (2, 4)))]


def train_all(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """UIR-LoRA, the multi-task LoRA and the baselines; returns train seconds and checkpoint folders."""
    from uirbench.train import TrainConfig, train
    from uirbench.uir_lora.train import PRESETS, single_families, train_adapter, train_uir_lora

    work, steps = Path(args.work), args.steps
    uir = TrainConfig(model="uir-lora", preset="tiny", data=str(data), out=str(work / "uir-lora"), steps=steps, resume=True)
    result = {"uir-lora": train_uir_lora(uir)}
    lora_steps = steps or PRESETS["tiny"].recipes["lora"].steps
    total = lora_steps * len(single_families(uir))
    multitask = replace(uir, steps=total)
    result["multitask-lora"] = train_adapter(multitask, PRESETS["tiny"], work / "uir-lora" / "backbone", work / "multitask",
                                             "multitask", None)
    lora_batch, lora_patch = PRESETS["tiny"].recipes["lora"].batch_size, PRESETS["tiny"].recipes["lora"].patch
    for name in args.baselines:
        out = work / name
        config = TrainConfig(model=name, preset="tiny", data=str(data), out=str(out), steps=total, batch_size=lora_batch,
                             patch=lora_patch, resume=(out / "state").exists())
        result[name] = train(config)
    return result


def train_seconds(work: Path, trained: dict[str, Any]) -> dict[str, float]:
    """Training wall time per model from the runs' logs (so a re-run that skipped finished training still reports it)."""
    from uirbench.runs import read_log

    stages = json.loads((work / "uir-lora" / "model.json").read_text())["stages"]
    seconds = {"uir-lora": sum(s["seconds"] for s in stages.values())}
    runs = {"multitask-lora": work / "multitask", **{n: work / n for n in trained if n not in ("uir-lora", "multitask-lora")}}
    for name, run_dir in runs.items():
        rows = [r for r in read_log(run_dir) if r.get("seconds")]
        seconds[name] = float(rows[-1]["seconds"])
    return seconds


def score(name: str, model: Restorer, rows: list[dict[str, Any]], data: Path) -> dict[str, Any]:
    """Mean PSNR/SSIM per track of ``model`` on ``rows`` (uirbench's scoring path), and per-pair PSNR."""
    from uirbench.evaluate import EvaluateConfig, load_metrics, score_restored

    config = EvaluateConfig(model=name, data=str(data), metrics=("psnr", "ssim"))

    def run(batch: list[dict[str, Any]], inputs: torch.Tensor) -> tuple[torch.Tensor, list[dict[str, Any]]]:
        hint = [r["degradation"] for r in batch] if model.uses_hint else None
        return restore(model, inputs, hint), [{} for _ in batch]

    records, summary, seconds = score_restored(config, rows, load_metrics(config)[:2], run, {"name": name}, desc=name)
    tracks = summary["per_track"]
    return {**{f"{m}_{t}": tracks[t][m]["mean"] for t in tracks for m in ("psnr", "ssim")}, "ms": 1e3 * seconds / len(rows),
            "pairs": {r["input_file_name"]: r["psnr"] for r in records}}


def read_eval(path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means per track of a finished ``uirbench evaluate`` output, restricted to ``rows`` (matched by pair)."""
    import pandas as pd

    df = pd.read_parquet(path / "per_image.parquet").set_index("input_file_name").loc[[r["input_file_name"] for r in rows]]
    out = {f"{m}_{t}": float(g[m].mean()) for t, g in df.groupby("track") for m in ("psnr", "ssim")}
    return {**out, "ms": float(df["runtime_ms"].mean()), "pairs": df["psnr"].to_dict()}


def composition_cost(checkpoint: Path, size: tuple[int, int], repeats: int) -> dict[str, float]:
    """Median forward ms of the trained backbone with K = 1 and K = 3 adapters (batch 1), and the router's ms."""
    from uirbench.models import load_checkpoint
    from uirbench.uir_lora.lora import mixture

    model = load_checkpoint(checkpoint)
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    times: dict[str, float] = {}

    def timed(fn) -> float:
        fn()
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        return 1e3 * statistics.median(samples)

    with torch.no_grad():
        times["base"] = timed(lambda: model.backbone(x))
        for k in (1, 3):
            with mixture(model.backbone, model.adapters[:k], torch.full((1, k), 1.0 / k)):
                times[f"K={k}"] = timed(lambda: model.backbone(x))
        times["router"] = timed(lambda: model.router.similarity(x))
    times["ratio"] = times["K=3"] / times["K=1"]
    return times


def parameter_counts(checkpoint: Path) -> dict[str, dict[str, float]]:
    """Millions of parameters: base, one adapter (+ % of base), router; tiny (trained) and SD-turbo-sized (meta)."""
    from uirbench.models import load_checkpoint
    from uirbench.uir_lora import lora
    from uirbench.uir_lora.backbone import build_backbone, sd_turbo_backbone_config

    counts = load_checkpoint(checkpoint).parameter_counts()
    adapter = next(v for k, v in counts.items() if k.startswith("adapter:"))
    full = build_backbone(sd_turbo_backbone_config(), torch.Generator(), device="meta")
    lora.add_adapter(full, "one", torch.Generator())
    full_base, full_adapter = lora.base_parameter_count(full), lora.adapter_parameter_count(full, "one")
    return {"tiny": {"base": counts["base"] / 1e6, "adapter": adapter / 1e6, "pct": 100 * adapter / counts["base"],
                     "router": counts["router"] / 1e6},
            "sd-turbo": {"base": full_base / 1e6, "adapter": full_adapter / 1e6, "pct": 100 * full_adapter / full_base}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a generated dataset (default: generate the default suite from --source into WORK)")
    parser.add_argument("--source", default="../shared/data/CBSD68", help="clean images to generate from (default ../shared/data/CBSD68)")
    parser.add_argument("--work", default="bench-uir-lora", help="runs, checkpoints and results (default ./bench-uir-lora)")
    parser.add_argument("--workers", type=int, default=2, help="generate workers (default 2)")
    parser.add_argument("--steps", type=int, help="steps of every UIR-LoRA stage (default: the tiny preset's)")
    parser.add_argument("--eval-images", type=int, default=4, help="test images scored (x 30 pairs each; default 4)")
    parser.add_argument("--baselines", default=",".join(BASELINES), help="baselines to train (comma-separated; '' for none)")
    parser.add_argument("--baseline-eval", action="append", default=[], metavar="NAME=DIR",
                        help="read a finished `uirbench evaluate` output instead of training NAME (repeatable)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 steps per stage, 1 test image")
    args = parser.parse_args()
    given = dict(item.split("=", 1) for item in args.baseline_eval)
    args.baselines = [b for b in args.baselines.split(",") if b and b not in given]
    if args.quick:
        args.steps, args.eval_images = 10, 1

    from uirbench.models import create_model, load_checkpoint
    from uirbench.uir_lora.backbone import load_backbone
    from uirbench.uir_lora.lora import load_adapter

    data = dataset(args)
    trained = train_all(args, data)
    work = Path(args.work)
    rows = test_rows(data, args.eval_images)
    ckpt = work / "uir-lora"
    multitask = load_backbone(str(ckpt / "backbone"))
    load_adapter(multitask, work / "multitask" / "adapter.safetensors")
    models: dict[str, Restorer] = {"identity": create_model("identity")}
    models.update({name: load_checkpoint(work / name) for name in args.baselines})
    models["multi-task LoRA"] = SingleAdapter(multitask, "multitask").eval()
    for k in (1, 2, 3):
        models[f"UIR-LoRA learned K={k}"] = load_checkpoint(ckpt, top_k=k)
    models["UIR-LoRA oracle K=3"] = load_checkpoint(ckpt, top_k=3, router="oracle")
    results = {name: score(name, model, rows, data) for name, model in models.items()}
    results.update({name: read_eval(Path(path), rows) for name, path in given.items()})

    seconds = train_seconds(work, trained)
    print(f"## UIR-LoRA controls on {data} (test subset: {len(rows)} pairs from {args.eval_images} images; "
          "RGB PSNR/SSIM, mean of per-image values)\n")
    print("| model | PSNR single | PSNR mixed | SSIM single | SSIM mixed | ms/image | train s |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        key = "uir-lora" if name.startswith("UIR") else "multitask-lora" if name == "multi-task LoRA" else name
        train_s = f"{seconds[key]:.0f}" if key in seconds else ""
        print(f"| {name} | {r['psnr_single']:.2f} | {r['psnr_mixed']:.2f} | {r['ssim_single']:.4f} | {r['ssim_mixed']:.4f} | "
              f"{r['ms']:.0f} | {train_s} |")
    learned, multi = results["UIR-LoRA learned K=2"]["pairs"], results["multi-task LoRA"]["pairs"]
    mixed = [r["input_file_name"] for r in rows if r["track"] == "mixed"]
    wins = sum(learned[p] > multi[p] for p in mixed)
    print(f"\nUIR-LoRA (learned, K=2) beats the multi-task LoRA on {wins}/{len(mixed)} mixed pairs.")
    cost = {f"{h}x{w}": composition_cost(ckpt, (h, w), 5) for h, w in ((256, 256), (320, 480))}
    for size, c in cost.items():
        print(f"Composition cost at {size}: base {c['base']:.0f} ms, K=1 {c['K=1']:.0f} ms, K=3 {c['K=3']:.0f} ms "
              f"(K=3 / K=1 = {c['ratio']:.3f}; target <= 1.15), router {c['router']:.1f} ms")
    counts = parameter_counts(ckpt)
    for kind, c in counts.items():
        router = f", router {c['router']:.3f}M" if "router" in c else ""
        print(f"Parameters ({kind}): base {c['base']:.2f}M, one adapter {c['adapter']:.3f}M ({c['pct']:.2f}% of base){router}")
    for r in results.values():
        r.pop("pairs")
    (work / "results.json").write_text(json.dumps({"data": str(data), "pairs": len(rows), "results": results, "train_seconds": seconds,
                                                   "composition_ms": cost, "parameters_M": counts}, indent=2))


if __name__ == "__main__":
    main()
