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
  out-of-focus thin lens; each weight is the exact area of its pixel that the disk covers.
* ``gaussian-blur``: an anisotropic Gaussian with standard deviations ``sigma_major`` >=
  ``sigma_minor`` px along axes rotated by ``angle_deg`` (lens aberrations, atmospheric
  turbulence; the kernel family of BSRGAN/Real-ESRGAN degradations), integrated exactly over
  each pixel.

Both area-integrated PSFs treat the image as constant over each pixel square (box
reconstruction), so a weight is the continuous PSF convolved with the pixel square, sampled at the
pixel centre; sub-pixel disks and Gaussians then spread the fraction of their mass that falls on
the neighbours instead of collapsing to a delta, as point sampling does.

Every parameter has a valid range, stated in each class docstring and checked by ``apply`` before
any array is allocated (:class:`~uirbench.errors.ParameterError` names the parameter, its value and
the range). Spatial sizes are bounded by the image's shorter side ``S``: every PSF reaches at most
``S / 2`` px from its centre (``MAX_REACH``), so it is at most ``S + 3`` px on a side and the FFT
grid of :func:`convolve_linear` about ``(H + S) x (W + S)`` values, at most 4x the image. Sampled
parameters reach at most 0.12 S (motion-blur, out of distribution); replays may use larger ones,
such as 512-px values on a crop.

Reproducibility across CPUs: the uint8 output does not depend on SIMD dispatch. Small kernels are
applied by ``cv2.filter2D`` in float64 and rounded to float32 (its float32 SSE and FMA loops
differ by up to 10 ulp, which moves a rounded pixel now and then; last-bit differences in float64
almost never survive the rounding to float32), large ones by scipy's FFT (bit-stable) with the
spectrum product written as separately rounded real multiplies and adds, which cannot be fused
into FMAs (numpy's complex64 multiply is, on some CPUs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.fft
from scipy.special import ndtr, owens_t

from uirbench.degradations.base import (
    _ENCODE_BINS,
    Degradation,
    Range,
    check_range,
    check_seed,
    draw_seed,
    field_rng,
    srgb8_from_bins,
    to_linear,
    to_srgb8,
)
from uirbench.errors import ParameterError, UserError
from uirbench.registry import DEGRADATIONS

DIRECT_MAX_TAPS = 49
"""Kernels with at most this many taps go through ``cv2.filter2D`` in float64 (direct: about 5 ms
for a 3x3 and 10 ms for a 7x7 kernel on a 512x512 RGB image, one thread); larger ones through a
float32 real FFT (about 16 ms whatever the kernel size). From 50 taps filter2D switches to
OpenCV's own DFT, whose result depends on OpenCV's optimisation settings."""
_LINEAR64 = to_linear(np.arange(256, dtype=np.uint8)[None, :]).astype(np.float64)
"""``to_linear``'s sRGB decode table in float64, for the float64 direct path."""
MAX_REACH = 0.5
"""A PSF may reach at most this fraction of the image's shorter side from its centre (see the module docstring)."""

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
GAUSSIAN_TRUNCATION = 4.0
"""Gaussian kernels span the bounding box of the ellipse at this many standard deviations."""
MIN_SIGMA = 1e-6
"""Smallest non-zero Gaussian sigma (px): far below the pixel (the PSF is then a delta along that
axis) and far above the float64 underflow that tinier ones hit in :func:`gaussian_kernel`."""
MIN_AXIS_RATIO = 0.4
"""Drawn ``sigma_minor / sigma_major`` ratios are uniform in [MIN_AXIS_RATIO, 1)."""


def _normalised(kernel: np.ndarray) -> np.ndarray:
    return (kernel / kernel.sum()).astype(np.float32)


def _require_positive(name: str, key: str, value: float, interval: str) -> None:
    """``check_range`` covers closed bounds; this rejects the excluded zero of an interval like (0, 1]."""
    if value == 0:
        raise ParameterError(f"{name}: parameter {key}={value!r} is outside the valid range {interval}")


# -- PSFs --------------------------------------------------------------------------------------
def gaussian_kernel(sigma_major: float, sigma_minor: float, angle_deg: float) -> np.ndarray:
    """Anisotropic Gaussian PSF integrated over each pixel, shape (2*ry+1, 2*rx+1), float32, sum 1.

    Covariance ``R diag(sigma_major^2, sigma_minor^2) R^T`` (px^2), the major axis at ``angle_deg``
    from the +x axis (columns) towards +y (rows, pointing down). A weight is the Gaussian's mass on
    its pixel square, exactly: the bivariate normal CDF at the square's four corners, by Owen's T
    function (Owen 1956, "Tables for computing bivariate normal probabilities", Ann. Math. Stat. 27),

        Phi2(h, k; rho) = (Phi(h) + Phi(k)) / 2 - T(h, (k - rho h) / (h r)) - T(k, (h - rho k) / (k r)) - [hk < 0] / 2,

    with h, k the corner's coordinates over the per-axis standard deviations, rho the correlation
    and ``r = sqrt(1 - rho^2)`` (corners lie at half-integers, so h, k != 0). The kernel is the
    bounding box of the 4-sigma ellipse (``rx = ceil(4 sqrt(cov_xx))``), renormalised.

    Along each axis the discrete variance is ``E[round(X)^2]``, X ~ N(0, sigma^2) with sigma the
    standard deviation along that axis: within 0.3% of ``sigma^2 + 1/12`` (the Gaussian convolved
    with the pixel square; Sheppard's correction) for sigma >= 0.6 px, -2.4% at 0.5 px. Below, the
    mass reaching the neighbours fades with sigma: 0.096 px^2 at sigma 0.3 px (about sigma^2; point
    sampling at pixel centres, as in BSRGAN/Real-ESRGAN kernels, gives 0.007), 0.012 at 0.2 px.
    Needs ``sigma_major >= sigma_minor >= MIN_SIGMA``.
    """
    theta = math.radians(angle_deg)
    c, s = math.cos(theta), math.sin(theta)
    sx = math.hypot(sigma_major * c, sigma_minor * s)
    sy = math.hypot(sigma_major * s, sigma_minor * c)
    rho = (sigma_major**2 - sigma_minor**2) * c * s / (sx * sy)
    r = sigma_major * sigma_minor / (sx * sy)  # sqrt(1 - rho^2) = sqrt(det) / (sx sy), without cancellation
    rx = math.ceil(GAUSSIAN_TRUNCATION * sx)
    ry = math.ceil(GAUSSIAN_TRUNCATION * sy)
    h = (np.arange(-rx, rx + 2) - 0.5)[None, :] / sx  # column edges
    k = (np.arange(-ry, ry + 2) - 0.5)[:, None] / sy  # row edges
    cdf = (0.5 * (ndtr(h) + ndtr(k)) - owens_t(h, (k - rho * h) / (h * r)) - owens_t(k, (h - rho * k) / (k * r))
           - 0.5 * ((h < 0) != (k < 0)))
    mass = np.diff(np.diff(cdf, axis=0), axis=1)
    return _normalised(np.maximum(mass, 0.0))  # round-off leaves far-tail masses at +-1e-17


def disk_kernel(radius: float) -> np.ndarray:
    """Pillbox PSF of ``radius`` px (> 0) weighted by exact pixel coverage, shape (2n+1, 2n+1), float32, sum 1.

    Each weight is the area of its pixel square inside the disk (the disk convolved with the pixel
    square, sampled at the pixel centre), in closed form. With ``P(v) = (v sqrt(r^2 - v^2) +
    r^2 asin(v / r)) / 2`` the area under the circle over [0, v], the disk's area in the strip
    [x0, x1] x [0, y] of the first quadrant is ``y (u1 - u0) + P(x1) - P(x0) - (P(u1) - P(u0))``,
    x clipped to r and ``u = min(x, sqrt(r^2 - y^2))`` (left of u the circle lies above y); a
    pixel's area is the difference between its two horizontal edges. Pixels wholly inside come out
    as exactly 1, pixels wholly outside as exactly 0. One quadrant is computed, symmetrised under
    transposition and mirrored, so the kernel is exactly symmetric under flips and transposition;
    ``n`` is the outermost pixel the disk reaches (a disk of radius <= 1/2 is a delta).

    Along each axis the discrete variance tends to ``r^2 / 4 + 1/12`` (the continuous disk
    convolved with the pixel square) as the radius grows: within 3% for r >= 2.5 px and 0.5% for
    r >= 5 px. Below it departs both ways: 0.044 px^2 at r = 0.5625 (formula 0.162), 0.36 at 0.94
    (0.30), 0.58 at 1.5 (0.65).
    """
    n = math.ceil(radius + 0.5) - 1  # pixel n spans [n - 1/2, n + 1/2]
    if n == 0:
        return np.ones((1, 1), np.float32)  # the disk lies inside the centre pixel (and r^2 may underflow)
    r2 = radius * radius
    edges = np.concatenate([[0.0], np.arange(n + 1) + 0.5])  # the centre pixel's half, then whole pixels
    x = np.minimum(edges, radius)

    def area_under_circle(v: np.ndarray) -> np.ndarray:
        return 0.5 * (v * np.sqrt(r2 - v * v) + r2 * np.arcsin(v / radius))

    u = np.minimum(x[None, :], np.sqrt(np.maximum(r2 - edges**2, 0.0))[:, None])  # [row edge y, column edge x]
    strips = edges[:, None] * np.diff(u, axis=1) + np.diff(area_under_circle(x)) - np.diff(area_under_circle(u), axis=1)
    cells = np.diff(strips, axis=0)
    cells[0] *= 2  # the axes halve the centre row and column: double their half-pixel cells
    cells[:, 0] *= 2
    quadrant = 0.5 * (cells + cells.T)
    rows = np.concatenate([quadrant[:0:-1], quadrant])
    return _normalised(np.concatenate([rows[:, :0:-1], rows], axis=1))


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
    for g, j in zip(gaussian.tolist(), impulse.tolist(), strict=True):
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
        raise UserError(f"splat_bilinear: points must lie inside [0, {cols - 1}] x [0, {rows - 1}]")
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
    Kernels up to ``DIRECT_MAX_TAPS`` taps are applied directly in float64, larger ones by FFT
    (:func:`_fft_convolver`); either way the result does not depend on the CPU's SIMD dispatch.
    """
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise UserError(f"convolve_linear: kernel must be 2-D with odd sides, got shape {kernel.shape}")
    if kernel.size <= DIRECT_MAX_TAPS:
        # filter2D correlates; mirroring makes it convolve
        flipped = np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float64)
        # One float64 and one float32 plane, reused for every channel and filtered in place: each
        # fresh 512x512 float64 array costs ~1.7 ms of page faults here.
        linear = np.empty(image.shape[:2], np.float64)
        result = np.empty(image.shape[:2], np.float32)

        def blur_channel(channel: np.ndarray) -> np.ndarray:
            cv2.LUT(channel, _LINEAR64, dst=linear)
            cv2.filter2D(linear, -1, flipped, dst=linear, borderType=cv2.BORDER_REFLECT_101)
            np.copyto(result, linear, casting="same_kind")
            return to_srgb8(result)
    else:
        blur_channel = _fft_convolver(kernel, image.shape[:2])
    # One channel at a time, rounded as it comes: a third of the working set and of the page faults
    # of fresh float temporaries (512x512, 35-px shake: 10.1 ms against 13.4 ms for whole-image arrays).
    # cv2.split/merge move the channels in one pass each (numpy's stride-3 copies take ~2.5x as long).
    return cv2.merge([blur_channel(channel) for channel in cv2.split(image)])


def _fft_convolver(kernel: np.ndarray, shape: tuple[int, int]) -> Callable[[np.ndarray], np.ndarray]:
    """A function: (H, W) uint8 sRGB channel -> (H, W) uint8 sRGB, convolved with ``kernel`` in linear light.

    The channel is reflect-101 padded before linearisation (the two commute; padding 8-bit data
    is cheaper) by the kernel radius, which gives the sides ``h + kh - 1`` that keep circular
    wrap-around out of the valid region, and on to the FFT size (also by reflection: what lies
    there never reaches the valid region, and it saves a zero-padded copy). The kernel is
    transformed once per image. The spectra are multiplied as ``re = ar br - ai bi``,
    ``im = ar bi + ai br`` in separate numpy operations, each rounded on its own: numpy's complex64
    multiply uses fused multiply-adds on some CPUs and not on others, which changes the last bit.
    The kernel's spectrum carries the factor ``2^16`` of :func:`~uirbench.degradations.base.to_srgb8`'s
    bins: a power of two scales every rounded step of the transforms exactly, so the result is
    ``2^16`` times the convolution bit for bit and goes straight to the bin look-up.
    """
    h, w = shape
    kh, kw = kernel.shape
    size = (scipy.fft.next_fast_len(h + kh - 1, real=True), scipy.fft.next_fast_len(w + kw - 1, real=True))
    # rfft2 of the kernel, skipping the first-axis transforms of its all-zero padding rows.
    kernel_spectrum = scipy.fft.fft(scipy.fft.rfft(kernel, n=size[1], axis=1), n=size[0], axis=0)
    kernel_re = np.multiply(kernel_spectrum.real, _ENCODE_BINS, dtype=np.float32)
    kernel_im = np.multiply(kernel_spectrum.imag, _ENCODE_BINS, dtype=np.float32)
    re, im, product = (np.empty_like(kernel_re) for _ in range(3))
    extra = (size[0] - (h + kh - 1), size[1] - (w + kw - 1))

    def blur_channel(channel: np.ndarray) -> np.ndarray:
        padded = to_linear(cv2.copyMakeBorder(channel, kh // 2, kh // 2 + extra[0], kw // 2, kw // 2 + extra[1],
                                              cv2.BORDER_REFLECT_101))
        spectrum = scipy.fft.rfft2(padded)
        np.subtract(np.multiply(spectrum.real, kernel_re, out=re), np.multiply(spectrum.imag, kernel_im, out=product), out=re)
        np.add(np.multiply(spectrum.real, kernel_im, out=im), np.multiply(spectrum.imag, kernel_re, out=product), out=im)
        spectrum.real, spectrum.imag = re, im
        return srgb8_from_bins(scipy.fft.irfft2(spectrum, s=size, overwrite_x=True)[kh - 1:kh - 1 + h, kw - 1:kw - 1 + w])

    return blur_channel


# -- degradations ------------------------------------------------------------------------------
@DEGRADATIONS.register("motion-blur", family="blur")
@dataclass(frozen=True)
class MotionBlur(Degradation):
    """Camera-shake blur: a random Boracchi-Foi trajectory of ``length`` px as PSF, in linear light.

    ``anxiety`` in [0, 1] (drawn uniformly), ``exposure`` in (0, 1] the fraction of the path the
    shutter sees (drawn from U[0.5, 1)), ``seed`` the trajectory's random numbers.

    Valid ranges: ``length`` in [0, S/2] px (S the image's shorter side; the exposed path stays
    within ``length`` of its centroid), ``anxiety`` in [0, 1], ``exposure`` in (0, 1], ``seed`` an
    integer in [0, 2**63).
    """

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
        check_range("motion-blur", "length", length, 0.0, MAX_REACH * min(image.shape[:2]))
        check_range("motion-blur", "anxiety", anxiety, 0.0, 1.0)
        check_range("motion-blur", "exposure", exposure, 0.0, 1.0)
        _require_positive("motion-blur", "exposure", exposure, "(0, 1]")
        check_seed("motion-blur", seed)
        if length == 0:
            return image.copy()
        return convolve_linear(image, motion_kernel(length, anxiety, exposure, seed))


@DEGRADATIONS.register("defocus-blur", family="blur")
@dataclass(frozen=True)
class DefocusBlur(Degradation):
    """Out-of-focus blur: a disk PSF of ``radius`` px, weighted by exact pixel coverage, in linear light.

    Valid range: ``radius`` in [0, S/2] px, S the image's shorter side.
    """

    stage = "optics"
    LEVELS = {"radius": (1.5, 2.5, 3.5, 5.0, 7.0)}
    NEUTRAL = {"radius": 0.0}
    TRAIN = {"radius": Range(1.0, 7.0)}
    OOD = {"radius": Range(7.0, 12.0)}
    SPATIAL = ("radius",)

    @staticmethod
    def apply(image: np.ndarray, *, radius: float) -> np.ndarray:
        check_range("defocus-blur", "radius", radius, 0.0, MAX_REACH * min(image.shape[:2]))
        if radius == 0:
            return image.copy()
        return convolve_linear(image, disk_kernel(radius))


@DEGRADATIONS.register("gaussian-blur", family="blur")
@dataclass(frozen=True)
class GaussianBlur(Degradation):
    """Anisotropic Gaussian blur in linear light (isotropic when ``sigma_minor == sigma_major``).

    Severity sets ``sigma_major``; ``sigma_minor / sigma_major`` is drawn from U[0.4, 1) and
    ``angle_deg`` (major axis from +x towards +y, image rows pointing down) from U[0, 180).

    Valid ranges: ``sigma_major`` 0 (no blur, with ``sigma_minor`` 0) or in [MIN_SIGMA, S/8] px
    (S the image's shorter side: the 4-sigma kernel reaches S/2), ``sigma_minor`` in
    [MIN_SIGMA, sigma_major] px, ``angle_deg`` in [-180, 180] degrees.
    """

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
        largest = MAX_REACH * min(image.shape[:2]) / GAUSSIAN_TRUNCATION
        check_range("gaussian-blur", "sigma_major", sigma_major, 0.0, largest)
        check_range("gaussian-blur", "angle_deg", angle_deg, -180.0, 180.0)
        if sigma_major == 0:
            check_range("gaussian-blur", "sigma_minor", sigma_minor, 0.0, 0.0)
            return image.copy()
        check_range("gaussian-blur", "sigma_major", sigma_major, MIN_SIGMA, largest)
        check_range("gaussian-blur", "sigma_minor", sigma_minor, MIN_SIGMA, sigma_major)
        return convolve_linear(image, gaussian_kernel(sigma_major, sigma_minor, angle_deg))


DEGRADATIONS.add("blur", MotionBlur, family="blur", alias_of="motion-blur")
