"""Training benchmark: step rates of the baselines and a CPU quality check of tiny NAFNet.

1. Step rate: every baseline at its ``tiny`` preset, ``--rate-steps`` steps through the real engine
   (``uirbench.engine.run``), steps/s after the first step; with a GPU, also at ``paper`` size.
2. Parameter counts at ``paper`` size against the published figures (REFERENCE.md section 5).
3. Quality: tiny NAFNet trained for ``--budget`` steps only on one family's train pairs (noise,
   then JPEG) of a generated dataset (default: the default suite built from ../shared/data/CBSD68,
   generated on the fly into a temporary folder when absent), scored on that family's test pairs:
   mean PSNR gain over ``identity`` (the degraded input) with a bootstrap 95% CI.

    OMP_NUM_THREADS=1 python benchmarks/train.py [--data DIR] [--budget 600] [--rate-steps 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

torch.set_num_threads(1)

PUBLISHED = {"nafnet": 17.11e6, "restormer": 26.13e6, "promptir": 35.59e6, "airnet": 8.93e6}
BASELINES = ("nafnet", "restormer", "promptir", "airnet")


def ensure_data(data: str | None, tmp: Path) -> Path:
    from uirbench.generate import GenerateConfig, generate

    if data:
        return Path(data)
    cbsd = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "CBSD68"
    source = str(cbsd) if cbsd.is_dir() else "builtin"
    out = tmp / "data"
    print(f"generating the default suite from {source} into {out} ...")
    generate(GenerateConfig(source=source, out=str(out), workers=2))
    return out


def step_rate(name: str, data: Path, tmp: Path, steps: int, preset: str, device: str) -> float:
    from uirbench.train import TrainConfig, train

    out = tmp / f"rate-{name}-{preset}"
    t0 = time.perf_counter()
    train(TrainConfig(model=name, preset=preset, data=str(data), out=str(out), steps=1, save_every=10**9, val_every=10**9, device=device))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    out2 = tmp / f"rate2-{name}-{preset}"
    train(TrainConfig(model=name, preset=preset, data=str(data), out=str(out2), steps=steps + 1, save_every=10**9, val_every=10**9,
                      device=device))
    return steps / (time.perf_counter() - t0 - first)


def quality(family: str, data: Path, tmp: Path, budget: int) -> dict:
    import numpy as np

    from uirbench.io import read_image, to_numpy, to_tensor
    from uirbench.manifest import load_manifest
    from uirbench.metrics import PSNR
    from uirbench.models import load_checkpoint
    from uirbench.restorer import restore
    from uirbench.stats import summarize
    from uirbench.train import TrainConfig, train

    out = tmp / f"quality-{family}"
    t0 = time.perf_counter()
    train(TrainConfig(model="nafnet", data=str(data), out=str(out), steps=budget, mix=f"{family}=1", val_every=10**9))
    seconds = time.perf_counter() - t0
    model = load_checkpoint(out)
    gains, before, after = [], [], []
    for row in (r for r in load_manifest(data, "test") if r["degradation"] == family):
        x = to_tensor(read_image(data / "test" / row["input_file_name"]))
        y = to_tensor(read_image(data / "test" / row["target_file_name"]))
        with torch.no_grad():
            restored = to_tensor(to_numpy(restore(model, x)))  # scored as 8-bit output, like evaluate
        b, a = float(PSNR()(x, y)[0]), float(PSNR()(restored, y)[0])
        before.append(b)
        after.append(a)
        gains.append(a - b)
    return {"family": family, "budget": budget, "train_seconds": seconds, "pairs": len(gains), "identity": float(np.mean(before)),
            "nafnet": float(np.mean(after)), "gain": summarize(gains)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="generated dataset (default: default suite from ../shared/data/CBSD68, made on the fly)")
    parser.add_argument("--budget", type=int, default=600, help="training steps of the quality check (default 600)")
    parser.add_argument("--rate-steps", type=int, default=20, help="steps timed per baseline (default 20)")
    args = parser.parse_args()
    from uirbench.models import preset_config
    from uirbench.registry import MODELS

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = ensure_data(args.data, tmp)
        print("\n| model | tiny params | tiny steps/s (CPU, 1 thread) | paper params | published | ratio |")
        print("|---|---|---|---|---|---|")
        for name in BASELINES:
            cls = MODELS.get(name)
            tiny = cls(preset_config(name, "tiny")).num_parameters()
            with torch.device("meta"):
                paper = cls(preset_config(name, "paper")).num_parameters(trainable_only=True)
            rate = step_rate(name, data, tmp, args.rate_steps, "tiny", "cpu")
            print(f"| {name} | {tiny:,} | {rate:.2f} | {paper / 1e6:.2f}M | {PUBLISHED[name] / 1e6:.2f}M | {paper / PUBLISHED[name]:.3f} |")
        if torch.cuda.is_available():
            print("\n| model | paper steps/s (GPU) |\n|---|---|")
            for name in BASELINES:
                print(f"| {name} | {step_rate(name, data, tmp, 10, 'paper', 'cuda'):.2f} |")
        print(f"\nQuality: tiny NAFNet, {args.budget} steps on one family's train pairs, scored on its test pairs "
              "(PSNR RGB, 8-bit outputs, mean of per-image gains, bootstrap 95% CI)\n")
        print("| family | pairs | train s | identity dB | NAFNet-tiny dB | gain dB [95% CI] |\n|---|---|---|---|---|---|")
        for family in ("noise", "jpeg"):
            q = quality(family, data, tmp, args.budget)
            g = q["gain"]
            print(f"| {family} | {q['pairs']} | {q['train_seconds']:.0f} | {q['identity']:.2f} | {q['nafnet']:.2f} | "
                  f"{g['mean']:+.2f} [{g['ci95'][0]:+.2f}, {g['ci95'][1]:+.2f}] |")


if __name__ == "__main__":
    main()
