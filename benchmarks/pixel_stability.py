"""Pixel stability: do the degradations' uint8 outputs depend on CPU dispatch, threads or libraries?

For every registered degradation variant (aliases skipped) and every mixed recipe, at a fixed seed
and severity 3 on a fixed crop of a built-in image, a child process computes the degraded uint8
image under each *setting* below; dispatch is chosen at import, so every setting gets a fresh
interpreter (``sys.executable``). The first table gives, per degradation and setting, the number of
pixels (any channel) that differ from the ``default`` run and the largest difference in DN
(``0``: identical; ``P`` marks rows whose sampled parameters differ too). Rows marked ``map`` use
the image's stored depth map (as ``uirbench generate`` does: 16-bit PNG round trip), the others the
ground-plane prior; rows marked ``@512`` override spatial parameters with their 512-px values, so
that the crop also exercises the FFT convolution path (kernels over ``DIRECT_MAX_TAPS`` taps).

A second table runs the float primitives the degradations use (OpenCV filters, numpy
transcendentals, libm scalars, numpy's samplers, BLAS matmul, reductions, scipy.fft, JPEG/PNG
codecs, torch PSNR/SSIM) on fixed random inputs and counts elements whose bits differ from the
default run (``n/u``: n elements, at most u units in the last place; bytes: ``n`` differing bytes or
``len`` if the lengths differ), which is what bisecting a differing degradation comes down to.

Settings (each verified in the child and printed):

* ``default``; ``cv2-thr1`` / ``cv2-thr8``: ``cv2.setNumThreads(1 | 8)`` (default: one per CPU);
* ``cv2-noopt``: ``cv2.setUseOptimized(False)`` (OpenCV's dispatched SIMD and IPP off);
* ``torch-thr2``: ``torch.set_num_threads(2)`` for the torch PSNR/SSIM probe (the others use 1, as generate's workers);
* ``cv2-noavx512`` / ``cv2-nosimd``: ``OPENCV_CPU_DISABLE=AVX512-SKX`` / ``<every dispatched feature>,FMA3``
  (OpenCV's names, as in ``cv2.getCPUFeaturesLine()``: ``AVX512-SKX``, ``SSE4.2``, ...; ``AVX512_SKX`` is
  rejected as unknown, baseline features cannot be disabled);
* ``ipp-off`` / ``ipp-sse42`` / ``ipp-avx2``: ``OPENCV_IPP=disabled | sse42 | avx2`` (Intel IPP code path);
* ``npy-noavx512`` / ``npy-base``: ``NPY_DISABLE_CPU_FEATURES`` naming numpy's AVX-512 / all dispatch
  targets found (``X86_V3,X86_V4,AVX512_ICL`` on numpy 2.4, whose targets are feature groups: it ignores
  ``AVX2,FMA3,AVX512F,AVX512_SKX`` with a warning, and a baseline name such as ``X86_V2`` fails the import);
* ``blas-hsw`` / ``blas-nhm``: ``OPENBLAS_CORETYPE=Haswell | Nehalem`` (numpy's bundled OpenBLAS kernels);
* ``glibc-nofma``: ``GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX2,-FMA,-AVX`` (libm's ifunc variants);
* ``jpeg-nosimd``: ``JSIMD_FORCENONE=1`` (libjpeg-turbo's SIMD; Pillow's shared libjpeg-turbo honours it,
  visible as a slower ``pil jpeg ms``; OpenCV's static copy is built without getenv and ignores it);
* ``aten-def`` / ``aten-avx2``: ``ATEN_CPU_CAPABILITY=default | avx2`` (torch kernels);
* ``avx2-cpu``: an AVX2 machine without AVX-512 (cv2-noavx512, ipp-avx2, npy-noavx512, blas-hsw, glibc
  without AVX512F, aten-avx2 together);
* ``old-cpu``: an SSE4.2-only machine: cv2-nosimd, ipp-sse42, npy-base, blas-nhm, glibc-nofma,
  ``JSIMD_FORCESSE2=1`` and aten-def together.

Run (about a minute on two cores for the default crop; ``--crop 0,0,500,740`` takes the whole motorcycle
image, where rare flips show up more often):

    OMP_NUM_THREADS=1 python benchmarks/pixel_stability.py [--image motorcycle] [--crop 100,200,128,192]
        [--seed 0] [--settings default,cv2-nosimd,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEVERITY = 3
OVERRIDES_512 = {  # 512-px values of the severity-3 spatial parameters: kernels large enough for the FFT path
    "motion-blur": {"length": 35.0},
    "defocus-blur": {"radius": 7.0},
    "gaussian-blur": {"sigma_major": 4.0, "sigma_minor": 3.0},
}
DISPATCH_ENV = ("OPENCV_CPU_DISABLE", "OPENCV_IPP", "NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES",
                "OPENBLAS_CORETYPE", "GLIBC_TUNABLES", "JSIMD_FORCENONE", "JSIMD_FORCESSE2", "JSIMD_FORCEAVX2",
                "ATEN_CPU_CAPABILITY", "OPENCV_FOR_THREADS_NUM")
CPU_FLAGS = ("sse4_2", "avx", "fma", "avx2", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16")


# -- settings (parent side) --------------------------------------------------------------------
def opencv_dispatched() -> list[str]:
    """OpenCV's dispatched (``*``-marked) CPU features, by the names ``OPENCV_CPU_DISABLE`` accepts."""
    import cv2

    return [f.strip("*?") for f in cv2.getCPUFeaturesLine().split() if f.startswith("*")]


def numpy_dispatch_targets() -> list[str]:
    """numpy's runtime dispatch targets that this CPU supports (what ``NPY_DISABLE_CPU_FEATURES`` can turn off)."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # numpy < 2
        from numpy.core import _multiarray_umath as umath
    return [t for t in umath.__cpu_dispatch__ if umath.__cpu_features__.get(t)]


def build_settings() -> dict[str, dict]:
    """Setting name -> {"env": extra environment, "cv2_threads": int | None, "cv2_optimized": bool, "torch_threads": int}."""
    cv_all = opencv_dispatched()
    cv_off = ",".join([*cv_all, "FMA3"])
    cv_512 = ",".join(f for f in cv_all if "512" in f)
    npy_all = numpy_dispatch_targets()
    npy_512 = [t for t in npy_all if "512" in t or t in ("X86_V4",)]
    glibc = "glibc.cpu.hwcaps=-AVX512F,-AVX2,-FMA,-AVX"
    plain = {"cv2_threads": None, "cv2_optimized": True, "torch_threads": 1}
    return {
        "default": {"env": {}, **plain},
        "cv2-thr1": {"env": {}, **plain, "cv2_threads": 1},
        "cv2-thr8": {"env": {}, **plain, "cv2_threads": 8},
        "cv2-noopt": {"env": {}, **plain, "cv2_optimized": False},
        "torch-thr2": {"env": {}, **plain, "torch_threads": 2},
        "cv2-noavx512": {"env": {"OPENCV_CPU_DISABLE": cv_512}, **plain},
        "cv2-nosimd": {"env": {"OPENCV_CPU_DISABLE": cv_off}, **plain},
        "ipp-off": {"env": {"OPENCV_IPP": "disabled"}, **plain},
        "ipp-sse42": {"env": {"OPENCV_IPP": "sse42"}, **plain},
        "ipp-avx2": {"env": {"OPENCV_IPP": "avx2"}, **plain},
        "npy-noavx512": {"env": {"NPY_DISABLE_CPU_FEATURES": ",".join(npy_512)}, **plain},
        "npy-base": {"env": {"NPY_DISABLE_CPU_FEATURES": ",".join(npy_all)}, **plain},
        "blas-hsw": {"env": {"OPENBLAS_CORETYPE": "Haswell"}, **plain},
        "blas-nhm": {"env": {"OPENBLAS_CORETYPE": "Nehalem"}, **plain},
        "glibc-nofma": {"env": {"GLIBC_TUNABLES": glibc}, **plain},
        "jpeg-nosimd": {"env": {"JSIMD_FORCENONE": "1"}, **plain},
        "aten-def": {"env": {"ATEN_CPU_CAPABILITY": "default"}, **plain},
        "aten-avx2": {"env": {"ATEN_CPU_CAPABILITY": "avx2"}, **plain},
        "avx2-cpu": {"env": {"OPENCV_CPU_DISABLE": cv_512, "OPENCV_IPP": "avx2", "NPY_DISABLE_CPU_FEATURES": ",".join(npy_512),
                             "OPENBLAS_CORETYPE": "Haswell", "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F",
                             "ATEN_CPU_CAPABILITY": "avx2"}, **plain},
        "old-cpu": {"env": {"OPENCV_CPU_DISABLE": cv_off, "OPENCV_IPP": "sse42", "NPY_DISABLE_CPU_FEATURES": ",".join(npy_all),
                            "OPENBLAS_CORETYPE": "Nehalem", "GLIBC_TUNABLES": glibc, "JSIMD_FORCESSE2": "1",
                            "ATEN_CPU_CAPABILITY": "default"}, **plain},
    }


def cpu_summary() -> str:
    """Model name and the SIMD flags of this machine, from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.processor() or platform.machine()} (no /proc/cpuinfo)"
    model = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    flags = set(re.search(r"^flags\s*:\s*(.*)$", text, re.M).group(1).split())
    marks = " ".join(f"{f}{'+' if f in flags else '-'}" for f in CPU_FLAGS)
    return f"{model.group(1) if model else 'unknown CPU'}, {os.cpu_count()} CPUs; {marks}"


def glibc_fma_active(env: dict[str, str]) -> str:
    """Whether glibc's ifunc selection sees FMA/AVX2 under ``env`` (``ld.so --list-diagnostics``, glibc >= 2.33)."""
    loader = "/lib64/ld-linux-x86-64.so.2"
    try:
        out = subprocess.run([loader, "--list-diagnostics"], env=env, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "n/a"
    leaf1 = re.search(r"features\[0x0\]\.active\[0x2\]=(0x[0-9a-f]+)", out)  # CPUID 1 ECX: bit 12 FMA
    leaf7 = re.search(r"features\[0x1\]\.active\[0x1\]=(0x[0-9a-f]+)", out)  # CPUID 7 EBX: bit 5 AVX2, bit 16 AVX512F
    if not (leaf1 and leaf7):
        return "n/a"
    ecx, ebx = int(leaf1.group(1), 16), int(leaf7.group(1), 16)
    return f"fma={'y' if ecx >> 12 & 1 else 'n'} avx2={'y' if ebx >> 5 & 1 else 'n'} avx512f={'y' if ebx >> 16 & 1 else 'n'}"


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The parent's environment without any dispatch variable, plus one thread for OpenMP/BLAS and ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in DISPATCH_ENV}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    env.update(extra)
    return env


# -- inputs ------------------------------------------------------------------------------------
def load_crop(image_id: str, crop: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    """(top, left, height, width) crop of a built-in image and of its depth map as ``generate`` stores it.

    The depth map goes through ``generate``'s 16-bit PNG encoding and ``load_depth``'s decoding, so
    the haze/rain ``map`` rows see exactly what a generated dataset replays from.
    """
    import cv2

    from uirbench.io import encode_depth_png
    from uirbench.sources import builtin_items, read_item

    item = next(i for i in builtin_items() if i.image_id == image_id)
    image, depth = read_item(item)
    top, left, h, w = crop
    image = np.ascontiguousarray(image[top:top + h, left:left + w])
    if depth is not None:
        stored = cv2.imdecode(np.frombuffer(encode_depth_png(depth), np.uint8), cv2.IMREAD_UNCHANGED)
        depth = np.ascontiguousarray(stored.astype(np.float32)[top:top + h, left:left + w])
    return image, depth


def degradation_rows(has_depth: bool) -> list[tuple[str, str, bool, dict]]:
    """(row label, degradation or recipe, use the depth map, parameter overrides) for every row of the table."""
    from uirbench.degradations import RECIPES, create
    from uirbench.registry import DEGRADATIONS

    names = [n for n in DEGRADATIONS.names() if DEGRADATIONS.spec(n).alias_of is None] + list(RECIPES)
    rows = [(name, name, False, {}) for name in names]
    if has_depth:
        rows += [(f"{name} map", name, True, {}) for name in names if _needs_depth(create(name))]
    rows += [(f"{name} @512", name, False, values) for name, values in OVERRIDES_512.items()]
    return rows


def _needs_depth(deg) -> bool:
    """Whether a degradation (or any stage of a chain) reads scene depth."""
    from uirbench.registry import DEGRADATIONS

    stages = getattr(deg, "stages", None)
    if stages is None:
        return type(deg).uses_depth
    return any(DEGRADATIONS.get(s).uses_depth for s in stages)


# -- child side --------------------------------------------------------------------------------
def run_degradations(image: np.ndarray, depth: np.ndarray | None, seed: int) -> dict[str, tuple[np.ndarray, str]]:
    """Row label -> (uint8 output, params as sorted JSON) at ``seed`` and severity 3."""
    from uirbench.degradations import create

    results = {}
    for label, name, use_map, overrides in degradation_rows(depth is not None):
        deg = create(name, severity=SEVERITY)
        dmap = depth if use_map else None
        params = deg.sample(np.random.default_rng(seed), image, dmap)
        params.update(overrides)
        out = type(deg).replay(image, params, dmap)
        results[label] = (out, json.dumps(params, sort_keys=True))
    return results


def sample_continuous(image: np.ndarray, seeds: int = 5) -> dict[str, str]:
    """Name -> JSON list of the params that ``sample`` draws at severity None (train and ood tracks, ``seeds`` seeds)."""
    from uirbench.degradations import RECIPES, create
    from uirbench.registry import DEGRADATIONS

    names = [n for n in DEGRADATIONS.names() if DEGRADATIONS.spec(n).alias_of is None] + list(RECIPES)
    out = {}
    for name in names:
        draws = [create(name, severity=None, track=track).sample(np.random.default_rng(seed), image)
                 for track in ("train", "ood") for seed in range(seeds)]
        out[name] = json.dumps(draws, sort_keys=True)
    return out


def flat_leaves(value, prefix: str = "") -> dict[str, object]:
    """Nested params (dicts, lists) -> {dotted path without list indices: leaf} for naming differing keys."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((f"{i}", v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    leaves = {}
    for key, v in items:
        leaves.update(flat_leaves(v, f"{prefix}.{key}" if prefix else str(key)))
    return leaves


def param_differences(ref: str, other: str) -> str:
    """``n:keys``: how many of the draws differ and which leaf keys (list indices dropped); ``0`` if identical."""
    a, b = json.loads(ref), json.loads(other)
    if a == b:
        return "0"
    keys, n = set(), 0
    for da, db in zip(a, b, strict=True):
        fa, fb = flat_leaves(da), flat_leaves(db)
        diff = {k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k)}
        n += bool(diff)
        keys |= diff
    names = sorted({re.sub(r"\.\d+", "", k) for k in keys})
    return f"{n}/{len(a)}: " + " ".join(names)


def run_primitives(image: np.ndarray, depth: np.ndarray | None, seed: int, torch_threads: int = 1) -> dict[str, np.ndarray]:
    """Float primitives of the degradations on fixed inputs: probe name -> result array (or bytes as uint8)."""
    import math

    import cv2
    import scipy.fft
    from PIL import Image

    import uirbench.degradations.base as base
    from uirbench.degradations.jpeg import jpeg_round_trip
    from uirbench.io import encode_png

    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    x32 = rng.random((h, w, 3), dtype=np.float32)
    plane = rng.random((h, w), dtype=np.float32)
    x64 = rng.random(20000)
    k3 = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]], np.float32)
    k9 = rng.random((9, 9), dtype=np.float32)
    k9 /= k9.sum()
    k15 = rng.random((15, 15), dtype=np.float32)
    k15 /= k15.sum()
    sparse = np.where(rng.random((h, w)) < 0.004, rng.random((h, w)), 0.0).astype(np.float32)
    streak = np.exp(-np.square(np.arange(-10, 11, dtype=np.float32))[:, None] / 50.0 - np.zeros((1, 7), np.float32))
    out: dict[str, np.ndarray] = {}
    bord = cv2.BORDER_REFLECT_101
    out["cv2.filter2D f32 3x3"] = cv2.filter2D(x32, -1, k3, borderType=bord)
    out["cv2.filter2D f32 9x9 (81 taps)"] = cv2.filter2D(x32[:, :, 0], -1, k9, borderType=bord)
    out["cv2.filter2D f32 15x15 (225 taps)"] = cv2.filter2D(x32[:, :, 0], -1, k15, borderType=bord)
    out["cv2.filter2D f32 21x7 sparse (rain)"] = cv2.filter2D(sparse, -1, streak, borderType=cv2.BORDER_CONSTANT)
    out["cv2.GaussianBlur f32 s=0.375"] = cv2.GaussianBlur(plane, (0, 0), 0.375, borderType=bord)
    out["cv2.GaussianBlur f32 s=1.5"] = cv2.GaussianBlur(plane, (0, 0), 1.5, borderType=bord)
    out["cv2.LUT u8->f32"] = cv2.LUT(image, base._TO_LINEAR)
    out["cv2.merge f32"] = cv2.merge([plane] * 3)
    out["np.exp f32"] = np.exp(-3.0 * x32)
    out["np.exp f64"] = np.exp(-8.0 * x64)
    out["np.log f64"] = np.log(x64 + 1e-3)
    out["np.power f32 x^2.2"] = np.power(x32, np.float32(2.2), dtype=np.float32)
    out["np.power f32 x^(1/2.2)"] = np.power(x32, np.float32(1 / 2.2), dtype=np.float32)
    out["np.power f64 x^2.4"] = np.power(x64, 2.4)
    out["np.arcsin f32"] = np.arcsin(1.0 - 2.0 * x32)
    out["np.sin f32"] = np.sin(x32)
    out["np.sin f64"] = np.sin(x64 * 6.3)
    out["np.cos f64"] = np.cos(x64 * 6.3)
    out["np.sqrt f32"] = np.sqrt(x32)
    scalars = x64[:2000].tolist()
    out["libm scalar pow/exp/sin/cos"] = np.array([[v ** 2.4, math.exp(-8 * v), math.sin(6.3 * v), math.cos(6.3 * v)]
                                                   for v in scalars])
    out["libm complex exp (np.exp c128)"] = np.exp(1j * x64 * 6.3)
    out["sRGB table _TO_LINEAR"] = base._TO_LINEAR
    out["sRGB table _TO_SRGB8"] = base._TO_SRGB8
    out["to_srgb8(f32)"] = base.to_srgb8(x32)
    gen = base.field_rng(12345)
    out["SFC64 standard_normal f32"] = gen.standard_normal(200000, dtype=np.float32)
    out["SFC64 standard_normal f64"] = gen.standard_normal(200000)
    out["SFC64 poisson"] = gen.poisson(x64 * 300.0)
    ccm = np.array([[0.9, 0.2, -0.1], [-0.2, 1.1, 0.1], [0.05, -0.3, 1.25]])
    out["matmul f32 (H,W,3)@(3,3)"] = x32 @ ccm.T.astype(np.float32)
    out["matmul f64 (3,3)@(3,3)"] = ccm @ ccm.T
    out["np.linalg.inv f64 3x3"] = np.linalg.inv(ccm)
    out["sum f64 (pairwise)"] = np.array([x64.sum(), k15.astype(np.float64).sum(), x64[:77].sum()])
    out["sum f32"] = np.array([x32.sum(), x32[:, :, 0].sum(axis=0).sum(), k15.sum()], np.float32)
    spectrum = scipy.fft.rfft2(plane, s=(h + 20, w + 20))
    out["scipy.fft rfft2/irfft2 f32"] = scipy.fft.irfft2(spectrum * spectrum, s=(h + 20, w + 20))
    params = [cv2.IMWRITE_JPEG_QUALITY, 50, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]
    out["cv2 JPEG encode bytes"] = np.frombuffer(cv2.imencode(".jpg", image[:, :, ::-1].copy(), params)[1].tobytes(), np.uint8)
    out["cv2 JPEG round trip"] = jpeg_round_trip(image, 50)
    out["PIL JPEG round trip"] = _pil_jpeg(image, 50, Image)
    out["PNG bytes (encode_png)"] = np.frombuffer(encode_png(image), np.uint8)
    if depth is not None:
        from uirbench.degradations.depth import normalise_depth, smooth_depth

        out["depth normalise+smooth (map)"] = smooth_depth(normalise_depth(depth))
        from uirbench.sources import motorcycle_depth

        out["motorcycle_depth (distanceTransform)"] = motorcycle_depth()
    out["torch PSNR/SSIM (input_quality)"] = _torch_quality(seed, torch_threads)
    return out


def _pil_jpeg(image: np.ndarray, quality: int, Image) -> np.ndarray:
    """Pillow's 4:2:0 JPEG round trip (the reference ``jpeg.py`` claims to match byte for byte)."""
    import io

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality, subsampling=2)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _torch_quality(seed: int, threads: int) -> np.ndarray:
    """``generate.input_quality`` (torch PSNR and SSIM) of the 512x512 astronaut against an exactly built noisy copy.

    A full 512x512 image rather than the crop: torch splits its float32 reductions across threads
    only above a grain size, which the crop may not reach.
    """
    import skimage.data
    import torch

    from uirbench.generate import input_quality

    torch.set_num_threads(threads)  # generate's workers use 1
    image = np.ascontiguousarray(skimage.data.astronaut())
    noise = np.random.default_rng(seed + 1).integers(-20, 21, size=image.shape)
    noisy = np.clip(image.astype(np.int64) + noise, 0, 255).astype(np.uint8)
    q = input_quality(image, noisy)
    return np.array([q["input_psnr"], q["input_ssim"]])


def child_info(setting: dict) -> dict:
    """What this process actually dispatches to: OpenCV, IPP, numpy, OpenBLAS, torch, JPEG speed."""
    import ctypes
    import glob

    import cv2
    from PIL import Image

    info = {"cv2 features": cv2.getCPUFeaturesLine(), "cv2 optimized": cv2.useOptimized(),
            "cv2 threads": cv2.getNumThreads(), "ipp": (cv2.ipp.getIppVersion().split(" (")[0].replace("ippIP ", "")
                                                         if cv2.ipp.useIPP() else "off"),
            "numpy targets": ",".join(numpy_dispatch_targets()) or "baseline"}
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "libscipy_openblas*.so"))
    info["openblas core"] = "n/a"
    for lib in libs:
        dll = ctypes.CDLL(lib)
        for sym in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
            if hasattr(dll, sym):
                fn = getattr(dll, sym)
                fn.restype = ctypes.c_char_p
                info["openblas core"] = fn().decode()
                break
    try:
        import torch

        info["torch capability"] = torch.backends.cpu.get_cpu_capability()
    except Exception as exc:  # torch missing or too old
        info["torch capability"] = f"n/a ({type(exc).__name__})"
    big = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    params = [cv2.IMWRITE_JPEG_QUALITY, 50]
    start = time.perf_counter()
    for _ in range(10):
        cv2.imdecode(cv2.imencode(".jpg", big, params)[1], cv2.IMREAD_COLOR)
    info["cv2 jpeg ms"] = round((time.perf_counter() - start) * 100, 2)
    start = time.perf_counter()
    for _ in range(10):
        _pil_jpeg(big, 50, Image)
    info["pil jpeg ms"] = round((time.perf_counter() - start) * 100, 2)
    return info


def child_main(args: argparse.Namespace) -> None:
    """Compute every degradation row and primitive under this process's dispatch; write an npz."""
    import cv2

    setting = json.loads(args.child_setting)
    if setting["cv2_threads"] is not None:
        cv2.setNumThreads(setting["cv2_threads"])
    if not setting["cv2_optimized"]:
        cv2.setUseOptimized(False)
    image, depth = load_crop(args.image, args.crop)
    arrays = {}
    for label, (out, params) in run_degradations(image, depth, args.seed).items():
        arrays[f"deg:{label}"] = out
        arrays[f"par:{label}"] = np.frombuffer(params.encode(), np.uint8)
    for label, value in sample_continuous(image).items():
        arrays[f"cont:{label}"] = np.frombuffer(value.encode(), np.uint8)
    for label, value in run_primitives(image, depth, args.seed, setting["torch_threads"]).items():
        arrays[f"op:{label}"] = np.asarray(value)
    info = child_info(setting)
    arrays["info"] = np.frombuffer(json.dumps(info).encode(), np.uint8)
    np.savez(args.child, **arrays)


# -- comparison (parent side) ------------------------------------------------------------------
def _ordered(a: np.ndarray) -> np.ndarray:
    """Float bits as integers whose order and differences count units in the last place."""
    ints = a.view(np.int32 if a.dtype == np.float32 else np.int64).astype(np.int64)
    return np.where(ints < 0, np.iinfo(ints.dtype).min - ints if a.dtype == np.float64 else -(2**31) - ints, ints)


def compare_pixels(ref: np.ndarray, other: np.ndarray) -> str:
    """``n/d``: n pixels (any channel) differing, by at most d DN; ``0`` if identical."""
    diff = np.abs(ref.astype(np.int16) - other.astype(np.int16))
    if not diff.any():
        return "0"
    return f"{int(diff.reshape(diff.shape[0], diff.shape[1], -1).max(axis=2).astype(bool).sum())}/{int(diff.max())}"


def compare_values(ref: np.ndarray, other: np.ndarray) -> str:
    """Elements whose bits differ (floats: ``n/ulps``, complex per part), ``len`` on a shape change, ``0`` if identical.

    Float differences of 1000 ulps or more (values near zero) are given as the largest absolute difference instead.
    """
    if ref.shape != other.shape:
        return "len"
    if np.iscomplexobj(ref):
        ref, other = np.stack([ref.real, ref.imag]), np.stack([other.real, other.imag])
    if ref.dtype.kind == "f":
        a, b = _ordered(np.ascontiguousarray(ref)), _ordered(np.ascontiguousarray(other))
        n = int((a != b).sum())
        if n == 0:
            return "0"
        ulps = int(np.abs(a - b).max())
        # across zero (round-off noise of an FFT) ulps are meaningless: give the absolute difference
        return f"{n}/{ulps}u" if ulps < 1000 else f"{n}/abs {float(np.abs(ref.astype(np.float64) - other).max()):.0e}"
    n = int((ref != other).sum())
    return "0" if n == 0 else f"{n}/{int(np.abs(ref.astype(np.int64) - other.astype(np.int64)).max())}"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def in_process(spec: dict) -> str:
    """The in-process part of a setting, for the settings table."""
    parts = []
    if spec["cv2_threads"] is not None:
        parts.append(f"cv2.setNumThreads({spec['cv2_threads']})")
    if not spec["cv2_optimized"]:
        parts.append("cv2.setUseOptimized(False)")
    if spec["torch_threads"] != 1:
        parts.append(f"torch.set_num_threads({spec['torch_threads']})")
    return " ".join(parts) or "-"


def parent_main(args: argparse.Namespace) -> None:
    """Run one child per setting, then print the settings check and the two difference tables."""
    import cv2
    import PIL
    import scipy

    settings = build_settings()
    names = list(settings) if not args.settings else ["default", *[s for s in args.settings.split(",") if s != "default"]]
    unknown = [n for n in names if n not in settings]
    if unknown:
        raise SystemExit(f"unknown settings {unknown}; valid: {', '.join(settings)}")
    build = cv2.getBuildInformation()
    jpeg_ver = re.search(r"JPEG:\s*(.*)", build)
    from PIL import features

    print(f"CPU: {cpu_summary()}")
    print(f"python {platform.python_version()}, glibc {platform.libc_ver()[1]}, numpy {np.__version__}, opencv {cv2.__version__} "
          f"(IPP {cv2.ipp.getIppVersion()}; JPEG {jpeg_ver.group(1).strip() if jpeg_ver else '?'}), scipy {scipy.__version__}, "
          f"Pillow {PIL.__version__} (libjpeg-turbo {features.version('libjpeg_turbo')}, zlib {features.version('zlib')})")
    top, left, h, w = args.crop
    print(f"input: builtin '{args.image}' crop rows {top}:{top + h}, cols {left}:{left + w}; seed {args.seed}; severity {SEVERITY}\n")
    results, infos, errors = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="pixel_stability_") as tmp:
        for name in names:
            spec = settings[name]
            path = Path(tmp) / f"{name}.npz"
            cmd = [sys.executable, os.path.abspath(__file__), "--child", str(path), "--child-setting", json.dumps(spec),
                   "--image", args.image, "--crop", ",".join(map(str, args.crop)), "--seed", str(args.seed)]
            start = time.perf_counter()
            proc = subprocess.run(cmd, env=child_env(spec["env"]), capture_output=True, text=True)
            if proc.returncode != 0:
                errors[name] = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
                print(f"  {name}: FAILED ({errors[name]})", file=sys.stderr)
                continue
            with np.load(path) as data:
                results[name] = {k: data[k] for k in data.files}
            infos[name] = json.loads(results[name].pop("info").tobytes())
            warn = sorted({line.strip() for line in proc.stderr.splitlines() if line.strip()})
            infos[name]["stderr"] = "; ".join(warn)[:160]
            infos[name]["glibc"] = glibc_fma_active(child_env(spec["env"]))
            print(f"  {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    if "default" not in results:
        raise SystemExit(f"the default run failed: {errors.get('default')}")
    done = [n for n in names if n in results]
    print("## Settings as the children saw them\n")
    keys = ["cv2 features", "cv2 optimized", "cv2 threads", "ipp", "numpy targets", "openblas core", "glibc",
            "torch capability", "cv2 jpeg ms", "pil jpeg ms"]
    print(markdown(["setting", "env / in-process", *keys],
                   [[n, " ".join(f"{k}={v}" for k, v in settings[n]["env"].items()) or
                     in_process(settings[n]),
                     *[str(infos[n].get(k, "")) for k in keys]] for n in done]))
    warnings = {n: infos[n]["stderr"] for n in done if infos[n]["stderr"]}
    for n, text in warnings.items():
        print(f"\nstderr of {n}: {text}")
    ref = results["default"]
    others = [n for n in done if n != "default"]
    print("\n## Degraded uint8 outputs: differing pixels / max |DN| versus default (P: sampled params differ)\n")
    rows = []
    for key in [k for k in ref if k.startswith("deg:")]:
        label = key[4:]
        cells = []
        for n in others:
            cell = compare_pixels(ref[key], results[n][key])
            if not np.array_equal(ref[f"par:{label}"], results[n][f"par:{label}"]):
                cell += " P"
            cells.append(cell)
        rows.append([label, *cells])
    print(markdown(["degradation", *others], rows))
    print("\n## Sampled params at severity None (train + ood, 5 seeds each): draws that differ / differing keys\n")
    rows = []
    for key in [k for k in ref if k.startswith("cont:")]:
        cells = [param_differences(ref[key].tobytes().decode(), results[n][key].tobytes().decode()) for n in others]
        if any(c != "0" for c in cells):
            rows.append([key[5:], *cells])
    print(markdown(["degradation", *others], rows) if rows else "(identical in every setting)")
    print("\n## Float primitives: differing elements / max ulps (bytes and ints: count / max difference)\n")
    rows = [[key[3:], *[compare_values(ref[key], results[n][key]) for n in others]] for key in ref if key.startswith("op:")]
    print(markdown(["primitive", *others], rows))
    pil, cv = ref.get("op:PIL JPEG round trip"), ref.get("op:cv2 JPEG round trip")
    if pil is not None and cv is not None:
        print(f"\nCross-library (default run): cv2 vs Pillow JPEG q50 round trip: {compare_pixels(pil, cv)} pixels/max DN differ.")
    if errors:
        print(f"\nFailed settings: {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="motorcycle", help="built-in image id (motorcycle carries a depth map)")
    parser.add_argument("--crop", default="100,200,128,192", type=lambda s: tuple(int(v) for v in s.split(",")),
                        help="top,left,height,width of the crop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", help="comma-separated subset of settings (default is always run)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-setting", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
    else:
        parent_main(args)


if __name__ == "__main__":
    main()
