"""Sensor noise: AWGN in sRGB, Poisson-Gaussian in linear light, and a camera-pipeline model.

* ``awgn`` (family default of ``noise``): additive white Gaussian noise of ``sigma`` DN on the
  8-bit sRGB values, the comparability convention of BSD68/PromptIR (sigma 15/25/50 =
  severities 2/3/5).
* ``poisson-gaussian``: signal-dependent noise in linear light with variance
  ``shot * x + read_var`` (Foi et al. 2008, "Practical Poissonian-Gaussian noise modeling"; the
  heteroscedastic Gaussian approximation of Poisson shot noise plus Gaussian read noise).
* ``camera-noise``: the noise of Brooks et al. 2019, "Unprocessing images for learned raw
  denoising": sRGB -> inverse tone curve -> inverse gamma 2.2 -> inverse colour correction ->
  inverse white balance -> RGGB Bayer mosaic -> shot/read noise -> bilinear demosaic -> white
  balance -> colour correction -> gamma -> tone curve. Only the noise is added to the input (see
  :class:`CameraNoise`). Shot noise ``log U[1e-4, 0.012]``; read noise
  ``log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26)``; red gain U[1.9, 2.4], blue gain U[1.5, 1.9],
  brightness gain 1/N(0.8, 0.1); colour matrix a random convex combination of the paper's four
  camera XYZ->camera matrices.

Every parameter has a valid range, stated in each class docstring and checked by ``apply`` before
any array is allocated (:class:`~uirbench.errors.ParameterError` names the parameter, its value and
the range). Seeds are integers in [0, 2**63).

Reproducibility across CPUs: the float paths avoid SIMD-dispatched transcendentals and BLAS (see
``base``): the camera pipeline's tone and gamma curves are float64 look-up tables, its 3x3 colour
matrices are applied with elementwise multiply-adds in a fixed order, and scalar ``exp``/``log``
(read noise from shot noise) are Python ``math`` rounded to 12 significant digits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from uirbench.degradations.base import (
    Degradation,
    Range,
    add_round_uint8,
    check_range,
    check_seed,
    draw_seed,
    field_rng,
    round_sig12,
    short_repr,
    to_linear,
    to_srgb8,
)
from uirbench.errors import ParameterError
from uirbench.registry import DEGRADATIONS

# Brooks et al. 2019 shot/read noise levels for severities 1-5 (read from the mean log relation).
SHOT_LEVELS = (0.0005, 0.0015, 0.004, 0.008, 0.012)
# read_from_shot(s) for SHOT_LEVELS, written out (17 digits) so that the severity table does not
# depend on the CPU's exp/log (numpy's AVX-512 and AVX2 loops differ by 1 ulp on the third value).
READ_LEVELS = (2.113041310658199e-07, 2.3175671319974426e-06, 1.966274555942088e-05, 8.910243033975756e-05,
               0.00021565945068602438)


def read_from_shot(shot: float, jitter: float = 0.0) -> float:
    """Read-noise variance tied to shot noise: ``log(read) = 2.18 log(shot) + 1.20 + jitter`` (Brooks et al.),
    in scalar libm, rounded to 12 significant digits so that it replays on every CPU."""
    return round_sig12(math.exp(2.18 * math.log(shot) + 1.20 + jitter))


def _with_read(deg: Degradation, values: dict, rng: np.random.Generator) -> dict:
    """Continuous draws: read noise follows shot noise with log-normal jitter (Brooks et al.)."""
    if deg.severity is None:
        values["read_var"] = read_from_shot(values["shot"], float(rng.normal(0.0, 0.26)))
    return values


@DEGRADATIONS.register("awgn", family="noise")
@dataclass(frozen=True)
class AWGN(Degradation):
    """Additive white Gaussian noise, ``sigma`` in DN of the 8-bit sRGB image (0-255 scale).

    Valid ranges: ``sigma`` in [0, 255] DN (beyond that the output is saturated noise), ``seed``
    an integer in [0, 2**63).
    """

    stage = "sensor"
    LEVELS = {"sigma": (5.0, 15.0, 25.0, 35.0, 50.0)}
    NEUTRAL = {"sigma": 0.0}
    TRAIN = {"sigma": Range(5.0, 50.0)}
    OOD = {"sigma": Range(50.0, 75.0)}

    def extra(self, rng, image, depth):
        return {"seed": draw_seed(rng)}

    def neutral_extra(self, image, depth):
        return {"seed": 0}

    @staticmethod
    def apply(image: np.ndarray, *, sigma: float, seed: int) -> np.ndarray:
        check_range("awgn", "sigma", sigma, 0.0, 255.0)
        check_seed("awgn", seed)
        if sigma == 0:
            return image.copy()
        noise = field_rng(seed).standard_normal(image.shape, dtype=np.float32)
        noise *= np.float32(sigma)
        return add_round_uint8(noise, image)


@DEGRADATIONS.register("poisson-gaussian", family="noise")
@dataclass(frozen=True)
class PoissonGaussian(Degradation):
    """Signal-dependent noise in linear light: ``y = x + sqrt(shot * x + read_var) * n``, n ~ N(0, 1).

    ``shot`` and ``read_var`` (a variance) are in units of the linear signal with white = 1, so
    ``E[y] = x`` and ``Var[y] = shot * x + read_var`` before ``y`` is clipped to [0, 1] for 8-bit
    output; in dark tones the clip raises the mean and lowers the variance. Severities follow
    Brooks et al.'s shot range with the mean read-shot relation.

    Valid ranges: ``shot`` and ``read_var`` in [0, 1] (1: a standard deviation of white at white),
    ``seed`` an integer in [0, 2**63).
    """

    stage = "sensor"
    LEVELS = {"shot": SHOT_LEVELS, "read_var": READ_LEVELS}
    NEUTRAL = {"shot": 0.0, "read_var": 0.0}
    TRAIN = {"shot": Range(1e-4, 0.012, log=True)}
    OOD = {"shot": Range(0.012, 0.03, log=True)}

    def severity_values(self, rng, image):
        return _with_read(self, super().severity_values(rng, image), rng)

    def extra(self, rng, image, depth):
        return {"seed": draw_seed(rng)}

    def neutral_extra(self, image, depth):
        return {"seed": 0}

    @staticmethod
    def apply(image: np.ndarray, *, shot: float, read_var: float, seed: int) -> np.ndarray:
        check_range("poisson-gaussian", "shot", shot, 0.0, 1.0)
        check_range("poisson-gaussian", "read_var", read_var, 0.0, 1.0)
        check_seed("poisson-gaussian", seed)
        if shot == 0 and read_var == 0:
            return image.copy()
        linear = to_linear(image)
        std = linear * np.float32(shot)
        std += np.float32(read_var)
        np.sqrt(std, out=std)
        std *= field_rng(seed).standard_normal(image.shape, dtype=np.float32)
        std += linear
        return to_srgb8(std)


# Brooks et al. 2019: XYZ -> camera matrices of four cameras, and linear sRGB -> XYZ (D65).
_XYZ2CAMS = (
    ((1.0234, -0.2969, -0.2266), (-0.5625, 1.6328, -0.0469), (-0.0703, 0.2188, 0.6406)),
    ((0.4913, -0.0541, -0.0202), (-0.613, 1.3513, 0.2906), (-0.1564, 0.2151, 0.7183)),
    ((0.838, -0.263, -0.0639), (-0.2887, 1.0725, 0.2496), (-0.0627, 0.1427, 0.5438)),
    ((0.6596, -0.2079, -0.0562), (-0.4782, 1.3016, 0.1933), (-0.097, 0.1581, 0.5181)),
)
_RGB2XYZ = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750), (0.0193339, 0.1191920, 0.9503041))

Matrix = list[list[float]]


def _matmul3(a, b) -> Matrix:
    """3x3 product in Python floats (scalar IEEE double, fixed order: the same bits on every CPU)."""
    return [[a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j] for j in range(3)] for i in range(3)]


def _det3(m) -> float:
    return (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))


def _inverse3(m) -> Matrix:
    """3x3 inverse by the adjugate, in Python floats (LAPACK's result depends on the BLAS kernel)."""
    det = _det3(m)
    cof = [[m[(j + 1) % 3][(i + 1) % 3] * m[(j + 2) % 3][(i + 2) % 3] - m[(j + 1) % 3][(i + 2) % 3] * m[(j + 2) % 3][(i + 1) % 3]
            for j in range(3)] for i in range(3)]
    return [[cof[i][j] / det for j in range(3)] for i in range(3)]


def _mix(out: np.ndarray, tmp: np.ndarray, x: list[np.ndarray] | np.ndarray, row: list[float], scale: float = 1.0) -> np.ndarray:
    """One output channel of a 3x3 colour matrix into ``out``: ``x0*r0 + x1*r1 + x2*r2`` over three float32
    planes, in this order (``r = float32(row * scale)``; ``tmp`` is scratch of ``out``'s shape).

    Elementwise float32 multiplies and adds round identically under every SIMD width; a float32
    matmul would go to OpenBLAS sgemm, whose summation order depends on the CPU kernel. A
    power-of-two ``scale`` scales every rounded product and sum exactly (values here are far from
    float32's overflow and subnormal ranges), so it folds a later multiplication into the matrix.
    """
    np.multiply(x[0], np.float32(row[0] * scale), out=out)
    out += np.multiply(x[1], np.float32(row[1] * scale), out=tmp)
    out += np.multiply(x[2], np.float32(row[2] * scale), out=tmp)
    return out


def _unprocess_table() -> np.ndarray:
    """uint8 sRGB -> camera linear RGB: inverse tone curve ``3x^2 - 2x^3`` (Brooks et al. Eq. 1), then x^2.2.

    Depends on the 8-bit value only, so it is tabulated once, in float64, and cast to float32.
    """
    y = np.arange(256, dtype=np.float64) / 255.0
    x = 0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)
    return (np.maximum(x, 0.0) ** 2.2).astype(np.float32)


_PROCESS_BINS = 1 << 16


def _process_table() -> np.ndarray:
    """Camera linear RGB in [0, 1] -> sRGB DN (0-255): gamma 1/2.2, then tone curve ``3x^2 - 2x^3``.

    2^16 bins over [0, 1], each evaluated at its centre in float64 and stored as float32 DN: a value
    is within 0.017 DN of the exact curve (0.01 DN above 1e-3; the largest slopes are near black).
    """
    x = ((np.arange(_PROCESS_BINS) + 0.5) / _PROCESS_BINS) ** (1 / 2.2)
    return (255.0 * (3.0 * x * x - 2.0 * x * x * x)).astype(np.float32)


_UNPROCESS = _unprocess_table()
_PROCESS_DN = _process_table()
_RGGB = ((0, 0, 0), (1, 0, 1), (1, 1, 0), (2, 1, 1))  # (colour, row, column) of each site in the 2x2 cell

# The mosaic is held as four contiguous quarter-size planes, one per site of the 2x2 cell: the
# same arithmetic as on the interleaved mosaic, without its stride-2 access (~2x slower per op).


def _sites(array: np.ndarray) -> np.ndarray:
    """View of an (H, W, ...) array with even sides as (H/2, 2, W/2, 2, ...): [i, dy, j, dx] is pixel (2i+dy, 2j+dx)."""
    return array.reshape(array.shape[0] // 2, 2, array.shape[1] // 2, 2, *array.shape[2:])


def _split_sites(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) with even sides -> contiguous (2, 2, 3, H/2, W/2): [dy, dx, k] is channel k at sites (dy::2, dx::2)."""
    return np.ascontiguousarray(_sites(image).transpose(1, 3, 4, 0, 2))


def _merge_sites(planes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_split_sites` for uint8 planes."""
    _, _, channels, h2, w2 = planes.shape
    merged = [np.empty((2 * h2, 2 * w2), planes.dtype) for _ in range(channels)]
    for k, plane in enumerate(merged):
        cells = _sites(plane)
        for dy in range(2):
            for dx in range(2):
                cells[:, dy, :, dx] = planes[dy, dx, k]
    return cv2.merge(merged)


def _demosaic_bilinear(mosaic: np.ndarray) -> Iterator[tuple[tuple[int, int], list[np.ndarray]]]:
    """Bilinear demosaic of RGGB mosaics held by site ((n, 2, 2, H/2, W/2) float32, see :func:`_split_sites`)
    -> for each site (dy, dx), its (R, G, B) planes, each (n, H/2, W/2).

    Measured samples are kept. A missing red or blue value is the mean of the two nearest samples of
    that colour in the same row or column, or of the four diagonal ones; a missing green value is the
    mean of the four 4-neighbours. Borders mirror (reflect-101) on the full mosaic, which keeps the
    RGGB phase on even sides and is edge replication within each site plane. Fixed-order float32
    adds: the same bits on every CPU.
    """
    n, _, _, h2, w2 = mosaic.shape
    padded = np.empty((n, 2, 2, h2 + 2, w2 + 2), np.float32)
    padded[..., 1:-1, 1:-1] = mosaic
    padded[..., 0, 1:-1] = mosaic[..., 0, :]
    padded[..., -1, 1:-1] = mosaic[..., -1, :]
    padded[..., 0] = padded[..., 1]
    padded[..., -1] = padded[..., -2]

    def at(dy: int, dx: int, oy: int, ox: int) -> np.ndarray:  # samples at offset (oy, ox) from sites (dy, dx)
        y, x = dy + oy, dx + ox
        return padded[:, y % 2, x % 2, 1 + y // 2:1 + y // 2 + h2, 1 + x // 2:1 + x // 2 + w2]

    def horiz(dy, dx):
        return (at(dy, dx, 0, -1) + at(dy, dx, 0, 1)) * np.float32(0.5)

    def vert(dy, dx):
        return (at(dy, dx, -1, 0) + at(dy, dx, 1, 0)) * np.float32(0.5)

    def cross(dy, dx):
        return (horiz(dy, dx) + vert(dy, dx)) * np.float32(0.5)

    def diag(dy, dx):
        return ((at(dy, dx, -1, -1) + at(dy, dx, -1, 1)) + (at(dy, dx, 1, -1) + at(dy, dx, 1, 1))) * np.float32(0.25)

    plan = {(0, 0): (None, cross, diag), (0, 1): (horiz, None, vert), (1, 0): (vert, None, horiz), (1, 1): (diag, cross, None)}
    for (dy, dx), fns in plan.items():  # one site at a time: its planes are used while in cache
        yield (dy, dx), [mosaic[:, dy, dx] if f is None else f(dy, dx) for f in fns]


def _reprocessed_noise(mosaics: np.ndarray, to_rgb: Matrix, planes: np.ndarray) -> np.ndarray:
    """``round(x + P(noisy) - P(clean))`` by site: ``mosaics`` (2, 2, 2, H/2, W/2) holds the noisy and the clean
    raw RGGB mosaic by site, ``planes`` (2, 2, 3, H/2, W/2) the uint8 input x; returns uint8 planes like ``planes``.

    P: demosaic, gains and colour matrix (``to_rgb``), clip to [0, 1], table (sRGB DN). The table's
    bin scale 2^16 is folded into the matrix (exact, see :func:`_mix`), so clipping the scaled value
    to [0, 2^16 - 1] and truncating picks the bin of the value clipped to [0, 1]. Both mosaics go
    through each step together; each site and channel is finished while it is in cache.
    """
    _, _, _, h2, w2 = mosaics.shape
    out = np.empty(planes.shape, np.uint8)
    v, tmp = np.empty((2, h2, w2), np.float32), np.empty((2, h2, w2), np.float32)
    for (dy, dx), rgb in _demosaic_bilinear(mosaics):
        for c in range(3):
            _mix(v, tmp, rgb, to_rgb[c], float(_PROCESS_BINS))
            np.clip(v, 0.0, _PROCESS_BINS - 1, out=v)
            dn = np.take(_PROCESS_DN, v.astype(np.uint16), out=tmp, mode="wrap")  # in range; 'raise' would buffer out
            noise = np.subtract(dn[0], dn[1], out=v[0])
            noise += planes[dy, dx, c]
            np.rint(noise, out=noise)
            np.clip(noise, 0, 255, out=noise)
            out[dy, dx, c] = noise
    return out


def _check_matrix(value) -> Matrix:
    """``rgb2cam`` as floats if it is a 3x3 nested list of numbers in [-10, 10] with |det| >= 1e-6, else raise."""
    if not (isinstance(value, (list, tuple)) and len(value) == 3
            and all(isinstance(row, (list, tuple)) and len(row) == 3 for row in value)):
        raise ParameterError(f"camera-noise: parameter rgb2cam={short_repr(value)} must be a 3x3 nested list of numbers")
    for i, row in enumerate(value):
        for j, v in enumerate(row):
            check_range("camera-noise", f"rgb2cam[{i}][{j}]", v, -10.0, 10.0)
    m = [[float(v) for v in row] for row in value]
    if not abs(_det3(m)) >= 1e-6:
        raise ParameterError(f"camera-noise: parameter rgb2cam={short_repr(value)} must be invertible (|det| >= 1e-6)")
    return m


@DEGRADATIONS.register("camera-noise", family="noise")
@dataclass(frozen=True)
class CameraNoise(Degradation):
    """Raw-domain shot/read noise through Brooks et al.'s unprocess -> mosaic -> demosaic -> reprocess pipeline.

    The degradation is the noise alone. The image is unprocessed to a raw RGGB mosaic ``r``, and
    ``r + sqrt(shot * r + read_var) * n`` and ``r`` are both reprocessed (bilinear demosaic, white
    balance, colour correction, clip to [0, 1], gamma, tone curve) to sRGB values in DN before
    rounding. Their difference is added to the input, which is rounded once:
    ``y = round(x + P(r + noise) - P(r))``. Zero noise returns the input exactly (the pipeline's own
    demosaicking and clipping errors cancel), while the noise keeps Brooks et al.'s signal
    dependence (shot noise in raw, amplified by the gains and matrices), its spatial correlation
    from demosaicking and its colour structure.

    Valid ranges: ``shot`` and ``read_var`` in [0, 1] (linear raw units, white = 1); ``rgb2cam`` a
    3x3 nested list of numbers in [-10, 10] with |det| >= 1e-6 (linear sRGB -> camera RGB, rows
    normalised to sum 1 when sampled); ``red_gain``, ``blue_gain`` and ``rgb_gain`` in [0.1, 10];
    ``seed`` an integer in [0, 2**63).
    """

    stage = "sensor"
    LEVELS = PoissonGaussian.LEVELS
    NEUTRAL = PoissonGaussian.NEUTRAL
    TRAIN = PoissonGaussian.TRAIN
    OOD = PoissonGaussian.OOD

    def severity_values(self, rng, image):
        return _with_read(self, super().severity_values(rng, image), rng)

    def extra(self, rng, image, depth):
        weights = [float(v) for v in rng.uniform(1e-8, 1.0, size=4)]
        total = ((weights[0] + weights[1]) + weights[2]) + weights[3]
        xyz2cam = [[0.0] * 3 for _ in range(3)]
        for weight, cam in zip(weights, _XYZ2CAMS, strict=True):
            for i in range(3):
                for j in range(3):
                    xyz2cam[i][j] += weight / total * cam[i][j]
        rgb2cam = [[v / (row[0] + row[1] + row[2]) for v in row] for row in _matmul3(xyz2cam, _RGB2XYZ)]
        return {
            "rgb2cam": [[round(v, 6) for v in row] for row in rgb2cam],
            "red_gain": float(rng.uniform(1.9, 2.4)),
            "blue_gain": float(rng.uniform(1.5, 1.9)),
            "rgb_gain": float(1.0 / rng.normal(0.8, 0.1)),
            "seed": draw_seed(rng),
        }

    def neutral_extra(self, image, depth):
        return {"rgb2cam": np.eye(3).tolist(), "red_gain": 1.0, "blue_gain": 1.0, "rgb_gain": 1.0, "seed": 0}

    @staticmethod
    def apply(image: np.ndarray, *, shot: float, read_var: float, rgb2cam: list[list[float]], red_gain: float,
              blue_gain: float, rgb_gain: float, seed: int) -> np.ndarray:
        check_range("camera-noise", "shot", shot, 0.0, 1.0)
        check_range("camera-noise", "read_var", read_var, 0.0, 1.0)
        ccm = _check_matrix(rgb2cam)
        for key, value in (("red_gain", red_gain), ("blue_gain", blue_gain), ("rgb_gain", rgb_gain)):
            check_range("camera-noise", key, value, 0.1, 10.0)
        check_seed("camera-noise", seed)
        if shot == 0 and read_var == 0:
            return image.copy()
        h, w = image.shape[:2]
        gains = [float(red_gain) * float(rgb_gain), float(rgb_gain), float(blue_gain) * float(rgb_gain)]
        # Unprocess (Brooks et al. Sec. 3): tone curve^-1, gamma^-1 (table), then CCM and gains^-1 as one
        # matrix, clip, and keep each site's colour of the RGGB mosaic (odd sides mirrored to even).
        to_cam = [[ccm[i][j] / gains[i] for j in range(3)] for i in range(3)]
        padded = image if h % 2 == 0 and w % 2 == 0 else np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="reflect")
        planes = _split_sites(padded)
        linear = cv2.LUT(planes.reshape(-1, planes.shape[-1]), _UNPROCESS).reshape(planes.shape)
        mosaics = np.empty((2, *planes.shape[:2], *planes.shape[3:]), np.float32)  # [noisy, clean]
        noisy, raw = mosaics
        scratch = np.empty(planes.shape[3:], np.float32)
        for c, dy, dx in _RGGB:
            _mix(raw[dy, dx], scratch, linear[dy, dx], to_cam[c])
        np.clip(raw, 0.0, 1.0, out=raw)
        # Sensor: heteroscedastic Gaussian shot + read noise on the raw signal (drawn in raster order).
        normal = field_rng(seed).standard_normal(padded.shape[:2], dtype=np.float32)
        np.multiply(raw, np.float32(shot), out=noisy)
        noisy += np.float32(read_var)
        np.sqrt(noisy, out=noisy)
        noisy *= _sites(normal).transpose(1, 3, 0, 2)
        noisy += raw
        # Reprocess both (gains, then CCM^-1, as one matrix) and add the noise difference to the input.
        inv = _inverse3(ccm)
        to_rgb = [[inv[i][j] * gains[j] for j in range(3)] for i in range(3)]
        out = _merge_sites(_reprocessed_noise(mosaics, to_rgb, planes))
        return out if out.shape == image.shape else np.ascontiguousarray(out[:h, :w])


DEGRADATIONS.add("noise", AWGN, family="noise", alias_of="awgn")
