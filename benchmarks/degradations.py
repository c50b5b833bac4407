"""Degradation speed: uirbench vs the closest albumentations op (and imagecorruptions), same run.

Median milliseconds per 512x512 RGB image on one thread (OMP/cv2/torch threads = 1), over
``--repeats`` runs after one warm-up, each run with a fresh seed. Prints a Markdown table with the
ratio anchor/uirbench (> 1 means uirbench is faster) and the issue's target per row.

    python benchmarks/degradations.py [--repeats 30] [--image PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np

cv2.setNumThreads(1)

# row name -> (uirbench degradation, severity, target ms or None, albumentations factory or None, imagecorruptions name)
ROWS = [
    ("AWGN sigma 25", "awgn", 3, 7.0, lambda A: A.GaussNoise(std_range=(25 / 255, 25 / 255), p=1.0), "gaussian_noise"),
    ("Poisson-Gaussian", "poisson-gaussian", 3, None, None, "shot_noise"),
    ("camera noise (Brooks)", "camera-noise", 3, None, lambda A: A.ISONoise(p=1.0), None),
    ("Gaussian blur", "gaussian-blur", 3, None, lambda A: A.GaussianBlur(sigma_limit=(2.2, 2.2), p=1.0), "gaussian_blur"),
    ("motion blur (trajectory PSF)", "motion-blur", 3, 15.0, lambda A: A.MotionBlur(blur_limit=(19, 19), p=1.0), "motion_blur"),
    ("defocus blur", "defocus-blur", 3, None, lambda A: A.Defocus(radius=(3, 4), p=1.0), "defocus_blur"),
    ("haze with depth", "haze", 3, 3.0, lambda A: A.RandomFog(p=1.0), "fog"),
    ("rain (layers + veil)", "rain", 3, 30.0, lambda A: A.RandomRain(p=1.0), None),
    ("low light (Poisson + read)", "lowlight", 3, None, None, None),
    ("low light compat (Lv et al.)", "lowlight-compat", 3, None, lambda A: A.RandomGamma(gamma_limit=(300, 300), p=1.0), None),
    ("JPEG q50", "jpeg", 3, 1.5, lambda A: A.ImageCompression(quality_range=(50, 50), p=1.0), "jpeg_compression"),
    ("mixed blur -> Poisson-Gaussian -> JPEG", "blur+noise+jpeg", 3, 40.0,
     lambda A: A.Compose([A.MotionBlur(blur_limit=(19, 19), p=1.0), A.GaussNoise(p=1.0), A.ImageCompression(p=1.0)]), None),
]


def median_ms(fn, repeats: int) -> float:
    fn(0)
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i + 1)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--image", help="512x512 crop of this image instead of scikit-image's astronaut")
    args = parser.parse_args()
    import skimage.data

    from uirbench.degradations import create
    from uirbench.io import read_image
    from uirbench.runtime import keep_freed_memory

    keep_freed_memory()  # the process setting of the `uirbench` command line and of generate's workers

    image = read_image(args.image)[:512, :512] if args.image else skimage.data.astronaut()
    image = np.ascontiguousarray(image)
    depth = np.tile(np.linspace(1.0, 0.0, image.shape[0], dtype=np.float32)[:, None], (1, image.shape[1]))
    try:
        import albumentations as A
    except ImportError:
        A = None
    try:
        import imagecorruptions
    except Exception as exc:  # the PyPI release fails on current setuptools (no pkg_resources)
        imagecorruptions, ic_error = None, f"{type(exc).__name__}: {exc}"
    print(f"512x512 RGB, one thread, median of {args.repeats}; ratio = anchor ms / uirbench ms (>1: uirbench faster); "
          f"numpy {np.__version__}, opencv {cv2.__version__}, albumentations {A.__version__ if A else 'n/a'}; "
          f"1-min load {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (shared: rerun if it exceeds the CPU count); "
          "glibc malloc keeps freed memory, as in the uirbench command line\n")
    print("| degradation | uirbench ms | target ms | albumentations ms | ratio | imagecorruptions ms | ratio |")
    print("|---|---|---|---|---|---|---|")
    for label, name, severity, target, album, ic_name in ROWS:
        deg = create(name, severity=severity)
        uses_depth = getattr(deg, "uses_depth", False)
        dmap = depth if uses_depth else None
        ours = median_ms(lambda s, d=deg, m=dmap: d(image, np.random.default_rng(s), m), args.repeats)
        a_ms = ic_ms = None
        if A is not None and album is not None:
            pipe = A.Compose([album(A)], seed=0)
            a_ms = median_ms(lambda s, p=pipe: p(image=image), args.repeats)
        if imagecorruptions is not None and ic_name:
            ic_ms = median_ms(lambda s, n=ic_name: imagecorruptions.corrupt(image, corruption_name=n, severity=3),
                              max(5, args.repeats // 3))
        verdict = "" if target is None else (" ok" if ours <= target else " MISSED")
        cells = [label, f"{ours:.2f}", f"{target}{verdict}" if target else "",
                 f"{a_ms:.2f}" if a_ms else "n/a", f"{a_ms / ours:.2f}x" if a_ms else "",
                 f"{ic_ms:.2f}" if ic_ms else "n/a", f"{ic_ms / ours:.2f}x" if ic_ms else ""]
        print("| " + " | ".join(cells) + " |")
    if imagecorruptions is None:
        print(f"\nimagecorruptions did not import here ({ic_error}); its columns are n/a.")
    print("\nNotes: albumentations RandomFog/RandomRain/ISONoise/RandomGamma are the closest ops, not physical equivalents "
          "(no depth, sRGB blending); uirbench haze/rain get a depth map (vertical ramp) as input.")


if __name__ == "__main__":
    main()
