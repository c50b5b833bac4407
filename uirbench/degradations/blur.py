"""Optical blur: camera shake, defocus and Gaussian blur, convolved with the image in linear light.

Every variant builds a point-spread function (PSF: a float32 kernel with odd sides, the centre
pixel at the origin, non-negative, summing to 1) and convolves it with the linear-light image
(:func:`convolve_linear`); the image is rounded to uint8 once, at the end. Spatial parameters are
in pixels at a 512-px short side and scale with the image (``SPATIAL``).

* ``motion-blur`` (family default of ``blur``): camera shake after Boracchi & Foi 2012, "Modeling
  the performance of image restoration from motion blur" (IEEE TIP 21(8)). A particle moves at
  constant speed; at each step its velocity receives an inertial pull towards the starting point,
  a Gaussian perturbation and, rarely, an impulsive perturbation that nearly reverses it (an
  abrupt jerk, e.g. pressing the shutter button); ``anxiety`` in [0, 1] scales all three (0 gives
  uniform linear motion). The path is scaled to ``length`` px; the PSF is the first ``exposure``
  fraction of it, rasterised with bilinear sub-pixel splatting (equal time per unit path length)
  and centred on its centroid, so the blur does not shift the image.
* ``defocus-blur``: a uniform disk (pillbox) of ``radius`` px, the geometric-optics PSF of an
  out-of-focus thin lens, anti-aliased by its coverage of each pixel.
* ``gaussian-blur``: an anisotropic Gaussian with standard deviations ``sigma_major`` >=
  ``sigma_minor`` px along axes rotated by ``angle_deg`` (lens aberrations, atmospheric
  turbulence; the kernel family of BSRGAN/Real-ESRGAN degradations).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.fft

from uirbench.degradations.base import Degradation, Range, check_range, draw_seed, field_rng, to_linear, to_srgb8
from uirbench.registry import DEGRADATIONS

DIRECT_MAX_TAPS = 121
"""Kernels with at most this many taps go through ``cv2.filter2D`` (direct: ~0.025 ms per tap for a
512x512 RGB image, one thread); larger ones through a float32 real FFT (~5.5 ms whatever the kernel
size; OpenCV's own DFT path, which filter2D takes above ~125 taps, costs ~11 ms)."""

TRAJECTORY_STEPS = 128
"""Velocity updates along a camera-shake path; the PSF samples the polyline between them."""
HEADING_DIFFUSION = 2.0
"""Standard deviation (rad) of the heading change from Gaussian perturbations over a whole path at anxiety 1."""
INERTIAL_PULL = 10.0
"""Strength of the pull towards the start: velocity change per unit path length per path length of offset."""
IMPULSE_RATE = 2.0
"""Expected number of impulsive (abrupt) perturbations over a whole path at anxiety 1."""
SPLAT_SPACING = 0.25
"""Distance (px) between consecutive PSF samples along the path; finer than bilinear splatting resolves."""
DISK_SUPERSAMPLING = 9
"""Samples per pixel side for disk coverage; odd, so the pixel centre is a sample and any radius > 0 covers one."""
GAUSSIAN_TRUNCATION = 4.0
"""Gaussian kernels span the bounding box of the ellipse at this many standard deviations."""
MIN_AXIS_RATIO = 0.4
"""Drawn ``sigma_minor / sigma_major`` ratios are uniform in [MIN_AXIS_RATIO, 1)."""


def _normalised(kernel: np.ndarray) -> np.ndarray:
    return (kernel / kernel.sum()).astype(np.float32)


def _require_positive(name: str, key: str, value: float, interval: str) -> None:
    """``check_range`` covers closed bounds; this rejects the excluded zero of an interval like (0, 1]."""
    if value == 0:
        raise ValueError(f"{name}: parameter {key}={value!r} is outside the valid range {interval}")


# -- PSFs --------------------------------------------------------------------------------------
def gaussian_kernel(sigma_major: float, sigma_minor: float, angle_deg: float) -> np.ndarray:
    """Anisotropic Gaussian PSF sampled at pixel centres, shape (2*ry+1, 2*rx+1), float32, sum 1.

    Covariance ``R diag(sigma_major^2, sigma_minor^2) R^T`` (px^2), the major axis at ``angle_deg``
    from the +x axis (columns) towards +y (rows, pointing down). The kernel is the bounding box of
    the 4-sigma ellipse (``rx = ceil(4 sqrt(cov_xx))``). Point sampling (as in BSRGAN/Real-ESRGAN
    kernels) keeps the discrete variances within 0.1% of sigma^2 for sigmas >= 0.8 px; smaller
    sigmas alias (-2% at 0.6 px, -14% at 0.5 px) and the kernel tends to a delta along that axis.
    Needs ``sigma_major >= sigma_minor > 0``.
    """
    theta = math.radians(angle_deg)
    c, s = math.cos(theta), math.sin(theta)
    var_x = (sigma_major * c) ** 2 + (sigma_minor * s) ** 2
    var_y = (sigma_major * s) ** 2 + (sigma_minor * c) ** 2
    rx = math.ceil(GAUSSIAN_TRUNCATION * math.sqrt(var_x))
    ry = math.ceil(GAUSSIAN_TRUNCATION * math.sqrt(var_y))
    y, x = np.mgrid[-ry:ry + 1, -rx:rx + 1].astype(np.float64)
    along = (x * c + y * s) / sigma_major
    across = (y * c - x * s) / sigma_minor
    return _normalised(np.exp(-0.5 * (along**2 + across**2)))


def disk_kernel(radius: float) -> np.ndarray:
    """Anti-aliased pillbox PSF of ``radius`` px (> 0), shape (2n+1, 2n+1), float32, sum 1.

    Each weight is the fraction of its pixel covered by the disk, by the midpoint rule on a
    ``DISK_SUPERSAMPLING``^2 grid (coverage of a disk convolved with the pixel square; per-axis
    variance ``radius^2 / 4 + 1/12``). The kernel is exactly symmetric under flips and transposition,
    and ``n`` is the outermost pixel that any sample of the disk reaches.
    """
    half = DISK_SUPERSAMPLING // 2
    n = math.floor(radius + half / DISK_SUPERSAMPLING)
    offsets = (np.arange(DISK_SUPERSAMPLING) - half) / DISK_SUPERSAMPLING
    coords = (np.arange(-n, n + 1)[:, None] + offsets[None, :]).ravel()
    inside = (coords[:, None] ** 2 + coords[None, :] ** 2) <= radius**2
    side = 2 * n + 1
    coverage = inside.reshape(side, DISK_SUPERSAMPLING, side, DISK_SUPERSAMPLING).mean(axis=(1, 3))
    return _normalised(coverage)


def shake_trajectory(seed: int, anxiety: float) -> np.ndarray:
    """A camera-shake path (Boracchi & Foi 2012): complex positions ``x + iy``, shape (STEPS+1,).

    Starts at 0 with a uniformly random heading and moves at constant speed, so the path length
    is exactly 1 (scale it to pixels). Velocity update per step of ``ds = 1/STEPS``:
    ``v <- v + a (g sqrt(ds) n - k x ds) + J v``, then ``|v| = 1``, where ``n`` is a standard complex
    Gaussian (heading diffusion ``a g`` rad over the path), ``-k x`` the inertial pull towards the
    start, and ``J = 2 exp(i (pi + U[-0.5, 0.5]))`` with probability ``a * IMPULSE_RATE * ds`` (an
    abrupt, nearly reversing jerk), else 0. ``a`` is ``anxiety``. Random numbers come from
    ``field_rng(seed)`` in one vectorised draw each; the recurrence itself is sequential (the pull
    depends on the position), so it runs over the 128 steps on Python complex scalars (~0.1 ms).
    """
    rng = field_rng(seed)
    ds = 1.0 / TRAJECTORY_STEPS
    velocity = complex(np.exp(1j * rng.uniform(0.0, 2.0 * np.pi)))
    noise = rng.standard_normal((TRAJECTORY_STEPS, 2))
    gaussian = (anxiety * HEADING_DIFFUSION * math.sqrt(ds)) * (noise[:, 0] + 1j * noise[:, 1])
    jerks = rng.random(TRAJECTORY_STEPS) < anxiety * IMPULSE_RATE * ds
    twists = rng.uniform(-0.5, 0.5, TRAJECTORY_STEPS)
    impulse = np.where(jerks, 2.0 * np.exp(1j * (np.pi + twists)), 0.0)
    pull = anxiety * INERTIAL_PULL * ds
    position = 0j
    path = [position]
    for g, j in zip(gaussian.tolist(), impulse.tolist()):
        velocity += velocity * j + g - pull * position
        velocity /= abs(velocity)
        position += velocity * ds
        path.append(position)
    return np.array(path)


def splat_bilinear(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise equal-weight points into a kernel of ``shape`` (rows, cols) >= (2, 2), float32, sum 1.

    ``points`` is (N, 2) of (x, y) in pixel units, (0, 0) the centre of the top-left pixel, all
    inside ``[0, cols-1] x [0, rows-1]``; each point's weight goes to its four neighbouring pixels
    in proportion to the overlap of a pixel-sized square (bilinear weights). This preserves the
    points' centroid exactly.
    """
    rows, cols = shape
    x, y = points[:, 0], points[:, 1]
    if x.min() < 0 or y.min() < 0 or x.max() > cols - 1 or y.max() > rows - 1:
        raise ValueError(f"splat_bilinear: points must lie inside [0, {cols - 1}] x [0, {rows - 1}]")
    # Clipping the base index keeps the far neighbour in bounds at the last row/column (weight 1 there).
    x0 = np.minimum(np.floor(x).astype(np.intp), cols - 2)
    y0 = np.minimum(np.floor(y).astype(np.intp), rows - 2)
    fx, fy = x - x0, y - y0
    base = y0 * cols + x0
    index = np.concatenate([base, base + 1, base + cols, base + cols + 1])
    weight = np.concatenate([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy])
    return _normalised(np.bincount(index, weight, minlength=rows * cols).reshape(rows, cols))


def motion_kernel(length: float, anxiety: float, exposure: float, seed: int) -> np.ndarray:
    """Camera-shake PSF: the first ``exposure`` of a ``length``-px :func:`shake_trajectory`.

    The exposed part is sampled every <= ``SPLAT_SPACING`` px (midpoints, so equal time per unit
    path length), centred on its centroid and splatted bilinearly; the kernel is the smallest odd
    rectangle holding the splat. Returns float32, sum 1.
    """
    path = shake_trajectory(seed, anxiety) * length
    count = max(1, math.ceil(exposure * length / SPLAT_SPACING))
    # Steps have equal length, so arc length maps linearly onto the vertex index.
    at = (np.arange(count) + 0.5) * (exposure * TRAJECTORY_STEPS / count)
    i = np.minimum(at.astype(np.intp), TRAJECTORY_STEPS - 1)
    samples = path[i] + (path[i + 1] - path[i]) * (at - i)
    samples -= samples.mean()
    rx = math.floor(np.abs(samples.real).max()) + 1
    ry = math.floor(np.abs(samples.imag).max()) + 1
    points = np.stack([samples.real + rx, samples.imag + ry], axis=1)
    return splat_bilinear(points, (2 * ry + 1, 2 * rx + 1))


# -- convolution -------------------------------------------------------------------------------
def convolve_linear(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Blur an HxWx3 uint8 sRGB image by a PSF in linear light; returns HxWx3 uint8 sRGB.

    ``to_srgb8(conv(to_linear(image), kernel))``, a true convolution (a single bright pixel spreads
    into a copy of ``kernel``, not of its mirror image), ``kernel`` 2-D with odd sides and its
    centre pixel at the origin, borders by reflection about the edge pixels (BORDER_REFLECT_101).
    """
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"convolve_linear: kernel must be 2-D with odd sides, got shape {kernel.shape}")
    if kernel.size <= DIRECT_MAX_TAPS:
        flipped = np.ascontiguousarray(kernel[::-1, ::-1])  # filter2D correlates; mirroring makes it convolve

        def blur_channel(channel: np.ndarray) -> np.ndarray:
            return cv2.filter2D(to_linear(channel), -1, flipped, borderType=cv2.BORDER_REFLECT_101)
    else:
        blur_channel = _fft_convolver(kernel, image.shape[:2])
    out = np.empty_like(image)
    # One channel at a time, rounded as it comes: a third of the working set and of the page faults
    # of fresh float temporaries (512x512, 35-px shake: 10.1 ms against 13.4 ms for whole-image arrays).
    for c in range(image.shape[2]):
        out[:, :, c] = to_srgb8(blur_channel(image[:, :, c]))
    return out


def _fft_convolver(kernel: np.ndarray, shape: tuple[int, int]) -> Callable[[np.ndarray], np.ndarray]:
    """A function: (H, W) uint8 sRGB channel -> (H, W) float32 linear light convolved with ``kernel``.

    The channel is reflect-101 padded before linearisation (the two commute; padding 8-bit data
    is cheaper) and transformed by a float32 real FFT at sides >= the padded sides, which keeps
    circular wrap-around out of the valid region. The kernel is transformed once per image.
    """
    h, w = shape
    kh, kw = kernel.shape
    size = (scipy.fft.next_fast_len(h + kh - 1, real=True), scipy.fft.next_fast_len(w + kw - 1, real=True))
    # rfft2 of the kernel, skipping the first-axis transforms of its all-zero padding rows.
    kernel_spectrum = scipy.fft.fft(scipy.fft.rfft(kernel, n=size[1], axis=1), n=size[0], axis=0)

    def blur_channel(channel: np.ndarray) -> np.ndarray:
        padded = to_linear(cv2.copyMakeBorder(channel, kh // 2, kh // 2, kw // 2, kw // 2, cv2.BORDER_REFLECT_101))
        spectrum = scipy.fft.rfft2(padded, s=size)
        spectrum *= kernel_spectrum
        return scipy.fft.irfft2(spectrum, s=size, overwrite_x=True)[kh - 1:kh - 1 + h, kw - 1:kw - 1 + w]

    return blur_channel


# -- degradations ------------------------------------------------------------------------------
@DEGRADATIONS.register("motion-blur", family="blur")
@dataclass(frozen=True)
class MotionBlur(Degradation):
    """Camera-shake blur: a random Boracchi-Foi trajectory of ``length`` px as PSF, in linear light.

    ``anxiety`` in [0, 1] (drawn uniformly), ``exposure`` in (0, 1] the fraction of the path the
    shutter sees (drawn from U[0.5, 1)), ``seed`` the trajectory's random numbers.
    """

    name = "motion-blur"
    stage = "optics"
    LEVELS = {"length": (6.0, 12.0, 18.0, 25.0, 35.0)}
    NEUTRAL = {"length": 0.0}
    TRAIN = {"length": Range(4.0, 35.0)}
    OOD = {"length": Range(35.0, 60.0)}
    SPATIAL = ("length",)

    def extra(self, rng, image, depth):
        return {"anxiety": float(rng.uniform(0.0, 1.0)), "exposure": float(rng.uniform(0.5, 1.0)), "seed": draw_seed(rng)}

    def neutral_extra(self, image, depth):
        return {"anxiety": 0.0, "exposure": 1.0, "seed": 0}

    @staticmethod
    def apply(image: np.ndarray, *, length: float, anxiety: float, exposure: float, seed: int) -> np.ndarray:
        check_range("motion-blur", "length", length, 0.0)
        check_range("motion-blur", "anxiety", anxiety, 0.0, 1.0)
        check_range("motion-blur", "exposure", exposure, 0.0, 1.0)
        _require_positive("motion-blur", "exposure", exposure, "(0, 1]")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"motion-blur: parameter seed={seed!r} must be a non-negative integer")
        if length == 0:
            return image.copy()
        return convolve_linear(image, motion_kernel(length, anxiety, exposure, seed))


@DEGRADATIONS.register("defocus-blur", family="blur")
@dataclass(frozen=True)
class DefocusBlur(Degradation):
    """Out-of-focus blur: an anti-aliased disk PSF of ``radius`` px, in linear light."""

    name = "defocus-blur"
    stage = "optics"
    LEVELS = {"radius": (1.5, 2.5, 3.5, 5.0, 7.0)}
    NEUTRAL = {"radius": 0.0}
    TRAIN = {"radius": Range(1.0, 7.0)}
    OOD = {"radius": Range(7.0, 12.0)}
    SPATIAL = ("radius",)

    @staticmethod
    def apply(image: np.ndarray, *, radius: float) -> np.ndarray:
        check_range("defocus-blur", "radius", radius, 0.0)
        if radius == 0:
            return image.copy()
        return convolve_linear(image, disk_kernel(radius))


@DEGRADATIONS.register("gaussian-blur", family="blur")
@dataclass(frozen=True)
class GaussianBlur(Degradation):
    """Anisotropic Gaussian blur in linear light (isotropic when ``sigma_minor == sigma_major``).

    Severity sets ``sigma_major``; ``sigma_minor / sigma_major`` is drawn from U[0.4, 1) and
    ``angle_deg`` (major axis from +x towards +y, image rows pointing down) from U[0, 180).
    """

    name = "gaussian-blur"
    stage = "optics"
    LEVELS = {"sigma_major": (0.8, 1.5, 2.2, 3.0, 4.0)}
    NEUTRAL = {"sigma_major": 0.0, "sigma_minor": 0.0}
    TRAIN = {"sigma_major": Range(0.5, 4.0)}
    OOD = {"sigma_major": Range(4.0, 6.0)}
    SPATIAL = ("sigma_major",)

    def severity_values(self, rng, image):
        values = super().severity_values(rng, image)
        if self.severity != 0:
            values["sigma_minor"] = values["sigma_major"] * float(rng.uniform(MIN_AXIS_RATIO, 1.0))
        return values

    def extra(self, rng, image, depth):
        return {"angle_deg": float(rng.uniform(0.0, 180.0))}

    def neutral_extra(self, image, depth):
        return {"angle_deg": 0.0}

    @staticmethod
    def apply(image: np.ndarray, *, sigma_major: float, sigma_minor: float, angle_deg: float) -> np.ndarray:
        check_range("gaussian-blur", "sigma_major", sigma_major, 0.0)
        check_range("gaussian-blur", "sigma_minor", sigma_minor, 0.0, sigma_major)
        check_range("gaussian-blur", "angle_deg", angle_deg)
        if sigma_major == 0:
            return image.copy()
        _require_positive("gaussian-blur", "sigma_minor", sigma_minor, f"(0, sigma_major={sigma_major}]")
        return convolve_linear(image, gaussian_kernel(sigma_major, sigma_minor, angle_deg))


DEGRADATIONS.add("blur", MotionBlur, family="blur", alias_of="motion-blur")
