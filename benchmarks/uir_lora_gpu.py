"""UIR-LoRA at full size on one GPU: SD-turbo-shaped backbone (random weights), rank-8 LoRAs.

Measures (1) one adapter's train step at 512x512, batch 4 (UNet gradient checkpointing, bf16 autocast on
a bf16 frozen backbone, float32 LoRA weights, AdamW): seconds per step and peak GPU memory; (2) inference
ms per 512x512 image with K = 1, 2, 3 composed adapters (and the bare backbone), batch 1 and 4; (3) a short
`uirbench train --model uir-lora --preset tiny --device cuda --amp bf16` run on generated data, then
`uirbench evaluate` of its checkpoint. Prints a compact Markdown report; the whole script is sized to
finish in < 8 minutes on one H100.

    python benchmarks/uir_lora_gpu.py                  # on the GPU machine
    python benchmarks/uir_lora_gpu.py --dry-run        # CPU smoke test: tiny backbone, 64 px, 2 steps

Weights are random: timings and memory depend on shapes only, quality numbers come from part (3).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from uirbench.uir_lora import lora
from uirbench.uir_lora.backbone import build_backbone, sd_turbo_backbone_config, tiny_backbone_config

FAMILIES = ("noise", "blur", "haze")


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device: str, repeats: int, warmup: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def build(args: argparse.Namespace) -> tuple[torch.nn.Module, dict[str, float]]:
    """Backbone in the low-precision dtype with three float32 adapters (non-zero B, so every branch computes)."""
    config = tiny_backbone_config() if args.dry_run else sd_turbo_backbone_config()
    g = torch.Generator(args.device).manual_seed(0)
    t0 = time.perf_counter()
    model = build_backbone(config, g, device=args.device, dtype=args.dtype)
    for name in FAMILIES:
        lora.add_adapter(model, name, g, lora.AdapterConfig(unet_rank=8, vae_rank=4))
        with torch.no_grad():
            for p in lora.adapter_state(model, name).values():
                p.normal_(0, 1e-3, generator=g)
    base = lora.base_parameter_count(model)
    counts = {"build_s": time.perf_counter() - t0, "base_M": base / 1e6,
              "unet_M": sum(p.numel() for n, p in model.unet.named_parameters() if "lora_" not in n and "delta_" not in n) / 1e6,
              "adapter_M": lora.adapter_parameter_count(model, FAMILIES[0]) / 1e6}
    counts["adapter_pct"] = 100 * counts["adapter_M"] / counts["base_M"]
    return model, counts


def train_step(model: torch.nn.Module, args: argparse.Namespace) -> dict[str, float]:
    from uirbench.uir_lora.train import adapter_loss

    params = lora.mark_trainable(model, FAMILIES[0])
    model.unet.enable_gradient_checkpointing()
    model.train()
    opt = torch.optim.AdamW(params, lr=5e-6)
    g = torch.Generator(args.device).manual_seed(1)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=g, device=args.device)
    y = torch.rand(args.batch, 3, args.size, args.size, generator=g, device=args.device)

    def step() -> None:
        with torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.device == "cuda"):
            loss = adapter_loss(model, x, y, FAMILIES[0])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = _timed(step, args.device, args.repeats, 2)
    peak = torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else float("nan")
    model.unet.disable_gradient_checkpointing()
    lora.clear_mixture(model)  # adapter_loss leaves its mixture set for the recomputation in backward
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    return {"step_s": seconds, "peak_gib": peak, "trainable_M": sum(p.numel() for p in params) / 1e6}


@torch.no_grad()
def inference(model: torch.nn.Module, args: argparse.Namespace, batch: int) -> dict[str, float]:
    g = torch.Generator(args.device).manual_seed(2)
    x = torch.rand(batch, 3, args.size, args.size, generator=g, device=args.device)
    result = {}
    with torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.device == "cuda"):
        result["base"] = _timed(lambda: model(x), args.device, args.repeats, 2) * 1e3 / batch
        for k in (1, 2, 3):
            w = torch.full((batch, k), 1.0 / k, device=args.device)
            with lora.mixture(model, FAMILIES[:k], w):
                result[f"K={k}"] = _timed(lambda: model(x), args.device, args.repeats, 2) * 1e3 / batch
    return result


def _cli(*argv: str, env: dict[str, str]) -> str:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "uirbench.cli", *argv], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"uirbench {' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
    return f"{time.perf_counter() - t0:.1f} s"


def end_to_end(args: argparse.Namespace, work: Path) -> dict[str, object]:
    """Generate data, train every tiny stage on the device, evaluate the checkpoint; returns times and scores."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    data, out = work / "data", work / "run"
    times = {}
    if args.dry_run:  # six 64x80 crops of a built-in photograph instead of the full built-in set
        import numpy as np
        import skimage.data
        from PIL import Image

        photos = work / "photos"
        photos.mkdir(parents=True, exist_ok=True)
        image = skimage.data.astronaut()
        for i in range(6):
            Image.fromarray(np.ascontiguousarray(image[60 * i:60 * i + 64, 50 + 40 * i:130 + 40 * i])).save(photos / f"crop{i}.png")
        times["generate"] = _cli("generate", "--source", str(photos), "--out", str(data), env=env)
    else:
        times["generate"] = _cli("generate", "--out", str(data), "--workers", str(min(8, os.cpu_count() or 1)), env=env)
    device = ["--device", args.device] + (["--amp", "bf16"] if args.device == "cuda" else [])
    times["train"] = _cli("train", "--model", "uir-lora", "--preset", "tiny", "--data", str(data), "--out", str(out),
                          "--steps", str(args.train_steps), *device, env=env)
    times["evaluate"] = _cli("evaluate", "--model", "uir-lora", "--checkpoint", str(out), "--data", str(data),
                             "--out", str(work / "eval"), "--device", args.device, env=env)
    summary = json.loads((work / "eval" / "summary.json").read_text())
    stages = json.loads((out / "model.json").read_text())["stages"]
    return {"times": times, "stage_seconds": {k: v["seconds"] for k, v in stages.items()},
            "psnr": {t: round(v["psnr"]["mean"], 2) for t, v in summary["per_track"].items()},
            "ms_per_image": round(summary["runtime"]["mean_ms_per_image"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny backbone, 64 px, 2 steps: checks the script runs")
    parser.add_argument("--train-steps", type=int, default=300, help="steps of every stage in the end-to-end run (default 300)")
    args = parser.parse_args()
    args.device = "cpu" if args.dry_run else "cuda"
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or use --dry-run")
    args.dtype = torch.float32 if args.dry_run else torch.bfloat16
    args.size, args.batch, args.repeats = (64, 2, 2) if args.dry_run else (512, 4, 10)
    if args.dry_run:
        args.train_steps = 2
    torch.backends.cuda.matmul.allow_tf32 = True

    model, counts = build(args)
    train = train_step(model, args)
    infer = {b: inference(model, args, b) for b in (1, args.batch)}
    del model
    if args.device == "cuda":
        torch.cuda.empty_cache()
    with tempfile.TemporaryDirectory() as tmp:
        e2e = end_to_end(args, Path(tmp))

    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU (dry run)"
    print(f"## UIR-LoRA on {name}: {'tiny' if args.dry_run else 'SD-turbo'}-shaped backbone, random weights\n")
    print(f"- backbone {counts['base_M']:.1f}M params (UNet {counts['unet_M']:.1f}M); one adapter (UNet rank 8, VAE rank 4, "
          f"conv_in/skip deltas) {counts['adapter_M']:.2f}M = {counts['adapter_pct']:.2f}% of the backbone; "
          f"built in {counts['build_s']:.1f} s")
    peak = "n/a on CPU" if math.isnan(train["peak_gib"]) else f"{train['peak_gib']:.1f} GiB"
    print(f"- train step, {args.size}x{args.size} batch {args.batch}, UNet grad checkpointing, bf16 autocast, fp32 LoRA, AdamW: "
          f"{train['step_s'] * 1e3:.0f} ms/step, peak GPU memory {peak}, {train['trainable_M']:.2f}M trainable\n")
    print(f"| inference ms/image ({args.size}x{args.size}, bf16) | base | K=1 | K=2 | K=3 | K=3 / K=1 |")
    print("|---|---|---|---|---|---|")
    for batch, r in infer.items():
        print(f"| batch {batch} | {r['base']:.1f} | {r['K=1']:.1f} | {r['K=2']:.1f} | {r['K=3']:.1f} | {r['K=3'] / r['K=1']:.3f} |")
    print(f"\n- end-to-end tiny preset on {args.device}, {args.train_steps} steps per stage: {e2e['times']}")
    print(f"  stage seconds {e2e['stage_seconds']}")
    print(f"  test PSNR per track {e2e['psnr']}, {e2e['ms_per_image']} ms/image in evaluate")


if __name__ == "__main__":
    main()
