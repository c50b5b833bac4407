"""Speed and agreement of our PSNR/SSIM against pyiqa, torchmetrics and scikit-image, same run.

One 512x512 RGB pair (skimage astronaut + AWGN sigma 25, uint8, seed 0), one thread, median
milliseconds per image over repeats. ``speedup`` = anchor ms / our ms for the same metric and
convention; ``value`` shows what each produced on the same pair, so agreement is visible.

    OMP_NUM_THREADS=1 python benchmarks/metrics.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import math
import time
from collections.abc import Callable

import numpy as np
import skimage.data
import skimage.metrics as skm
import torch

from uirbench.io import to_tensor
from uirbench.metrics import PSNR, SSIM

SPEED_TARGETS_MS = {"psnr": 2.0, "ssim": 100.0}
MIN_SSIM_SPEEDUP_VS_PYIQA = 10.0


def median_ms(fn: Callable[[], float], repeats: int) -> tuple[float, float]:
    value = fn()  # warm-up (and the value shown)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times)), value


def bt601_y(image: np.ndarray) -> np.ndarray:
    rgb = image.astype(np.float64) / 255
    return (16 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255


def main() -> None:
    torch.set_num_threads(1)
    import pyiqa
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    clean = skimage.data.astronaut()
    noisy = np.clip(np.rint(clean + np.random.default_rng(0).normal(0, 25, clean.shape)), 0, 255).astype(np.uint8)
    x, y = to_tensor(noisy), to_tensor(clean)
    a, b = noisy / 255.0, clean / 255.0
    ya, yb = bt601_y(noisy), bt601_y(clean)
    iqa = {name: pyiqa.create_metric(name, device="cpu", **kw) for name, kw in
           (("psnr", {}), ("psnry", {}), ("ssimc", {}), ("ssim", {}))}
    iqa["psnr-ycbcr"] = pyiqa.create_metric("psnr", device="cpu", test_y_channel=True, color_space="ycbcr")
    sk_ssim = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)

    # (metric, convention, implementation, fn, repeats); the first row of each (metric, convention) is ours
    rows = [
        ("psnr", "RGB", "uirbench", lambda: PSNR()(x, y).item(), 51),
        ("psnr", "RGB", "pyiqa psnr", lambda: iqa["psnr"](x, y).item(), 11),
        ("psnr", "RGB", "torchmetrics", lambda: peak_signal_noise_ratio(x, y, data_range=1.0).item(), 21),
        ("psnr", "RGB", "skimage", lambda: skm.peak_signal_noise_ratio(b, a, data_range=1.0), 21),
        ("psnr", "Y BT.601", "uirbench", lambda: PSNR("y")(x, y).item(), 51),
        ("psnr", "Y BT.601", "pyiqa psnr ycbcr", lambda: iqa["psnr-ycbcr"](x, y).item(), 11),
        ("psnr", "Y BT.601", "pyiqa psnry (YIQ!)", lambda: iqa["psnry"](x, y).item(), 11),
        ("ssim", "RGB", "uirbench", lambda: SSIM()(x, y).item(), 21),
        ("ssim", "RGB", "pyiqa ssimc", lambda: iqa["ssimc"](x, y).item(), 3),
        ("ssim", "RGB", "torchmetrics (pad)", lambda: structural_similarity_index_measure(x, y, data_range=1.0).item(), 5),
        ("ssim", "RGB", "skimage", lambda: skm.structural_similarity(a, b, channel_axis=2, **sk_ssim), 5),
        ("ssim", "Y BT.601", "uirbench", lambda: SSIM("y")(x, y).item(), 21),
        ("ssim", "Y BT.601", "pyiqa ssim (YIQ!)", lambda: iqa["ssim"](x, y).item(), 3),
        ("ssim", "Y BT.601", "skimage", lambda: skm.structural_similarity(ya, yb, **sk_ssim), 5),
    ]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, pyiqa {pyiqa.__version__}; "
          "astronaut 512x512 + AWGN sigma 25 (seed 0)")
    print(f"{'metric':6} {'convention':10} {'implementation':20} {'ms/image':>9} {'speedup':>8} {'value':>10} {'minus ours':>11}")
    ours: dict[tuple[str, str], tuple[float, float]] = {}
    for metric, convention, impl, fn, repeats in rows:
        ms, value = median_ms(fn, repeats)
        mine = ours.setdefault((metric, convention), (ms, value))
        speedup = "" if impl == "uirbench" else f"{ms / mine[0]:7.1f}x"
        delta = "" if impl == "uirbench" else f"{value - mine[1]:+11.2e}"
        print(f"{metric:6} {convention:10} {impl:20} {ms:9.2f} {speedup:>8} {value:10.5f} {delta:>11}")
    print(f"(YIQ luma reads 20*log10(255/219) = {20 * math.log10(255 / 219):.4f} dB below BT.601 Y; "
          "torchmetrics SSIM pads by reflection instead of scoring the valid region)")

    checks = [(f"our {m} {c} <= {SPEED_TARGETS_MS[m]:g} ms", ours[(m, c)][0] <= SPEED_TARGETS_MS[m])
              for m, c in ours]
    pyiqa_ssim_ms, _ = median_ms(lambda: iqa["ssimc"](x, y).item(), 3)
    speedup = pyiqa_ssim_ms / ours[("ssim", "RGB")][0]
    checks.append((f"our ssim >= {MIN_SSIM_SPEEDUP_VS_PYIQA:g}x faster than pyiqa ssimc ({speedup:.0f}x)",
                   speedup >= MIN_SSIM_SPEEDUP_VS_PYIQA))
    for label, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")


if __name__ == "__main__":
    main()
