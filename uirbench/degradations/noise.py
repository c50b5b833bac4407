"""Sensor noise: AWGN in sRGB, Poisson-Gaussian in linear light, and a camera-pipeline model.

* ``awgn`` (family default of ``noise``): additive white Gaussian noise of ``sigma`` DN on the
  8-bit sRGB values, the comparability convention of BSD68/PromptIR (sigma 15/25/50 =
  severities 2/3/5).
* ``poisson-gaussian``: signal-dependent noise in linear light with variance
  ``shot * x + read_var`` (Foi et al. 2008, "Practical Poissonian-Gaussian noise modeling"; the
  heteroscedastic Gaussian approximation of Poisson shot noise plus Gaussian read noise).
* ``camera-noise``: Brooks et al. 2019, "Unprocessing images for learned raw denoising": sRGB ->
  inverse tone curve -> linear -> inverse colour correction -> inverse white balance -> RGGB Bayer
  mosaic -> shot/read noise -> bilinear demosaic -> white balance -> colour correction -> sRGB
  gamma -> tone curve. Shot noise ``log U[1e-4, 0.012]``; read noise
  ``log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26)``; red gain U[1.9, 2.4], blue gain U[1.5, 1.9],
  brightness gain 1/N(0.8, 0.1); colour matrix a random convex combination of the paper's four
  camera XYZ->camera matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from uirbench.degradations.base import (
    Degradation,
    Range,
    check_range,
    draw_seed,
    field_rng,
    round_to_uint8,
    to_linear,
    to_srgb8,
)
from uirbench.registry import DEGRADATIONS

# Brooks et al. 2019 shot/read noise levels for severities 1-5 (read from the mean log relation).
SHOT_LEVELS = (0.0005, 0.0015, 0.004, 0.008, 0.012)


def read_from_shot(shot: float, jitter: float = 0.0) -> float:
    """Read-noise variance tied to shot noise: ``log(read) = 2.18 log(shot) + 1.20 + jitter``."""
    return float(np.exp(2.18 * np.log(shot) + 1.20 + jitter))


def _with_read(deg: Degradation, values: dict, rng: np.random.Generator) -> dict:
    """Continuous draws: read noise follows shot noise with log-normal jitter (Brooks et al.)."""
    if deg.severity is None:
        values["read_var"] = read_from_shot(values["shot"], float(rng.normal(0.0, 0.26)))
    return values


@DEGRADATIONS.register("awgn", family="noise")
@dataclass(frozen=True)
class AWGN(Degradation):
    """Additive white Gaussian noise, ``sigma`` in DN of the 8-bit sRGB image (0-255 scale)."""

    name = "awgn"
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
        check_range("awgn", "sigma", sigma, 0.0)
        if sigma == 0:
            return image.copy()
        noisy = field_rng(seed).standard_normal(image.shape, dtype=np.float32)
        noisy *= np.float32(sigma)
        noisy += image
        return round_to_uint8(noisy)


@DEGRADATIONS.register("poisson-gaussian", family="noise")
@dataclass(frozen=True)
class PoissonGaussian(Degradation):
    """Signal-dependent noise in linear light: ``y = x + sqrt(shot * x + read_var) * n``, n ~ N(0, 1).

    ``shot`` and ``read_var`` (a variance) are in units of the linear signal with white = 1.
    Severities follow Brooks et al.'s shot range with the mean read-shot relation.
    """

    name = "poisson-gaussian"
    stage = "sensor"
    LEVELS = {"shot": SHOT_LEVELS, "read_var": tuple(read_from_shot(s) for s in SHOT_LEVELS)}
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
        check_range("poisson-gaussian", "shot", shot, 0.0)
        check_range("poisson-gaussian", "read_var", read_var, 0.0)
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
_XYZ2CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
])
_RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]])


def _smoothstep_inverse(y: np.ndarray) -> np.ndarray:
    """Inverse of the global tone curve ``3x^2 - 2x^3`` (Brooks et al. 2019, Eq. 1)."""
    y = np.clip(y, 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)


def _demosaic_bilinear(raw: np.ndarray) -> np.ndarray:
    """Bilinear demosaic of an RGGB mosaic (HxW, even sides) -> HxWx3."""
    import cv2

    h, w = raw.shape
    planes = np.zeros((h, w, 3), np.float32)
    mask = np.zeros((h, w, 3), np.float32)
    for c, (dy, dx) in ((0, (0, 0)), (1, (0, 1)), (1, (1, 0)), (2, (1, 1))):
        planes[dy::2, dx::2, c] = raw[dy::2, dx::2]
        mask[dy::2, dx::2, c] = 1.0
    k = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]], np.float32)
    num = cv2.filter2D(planes, -1, k, borderType=cv2.BORDER_REFLECT_101)
    den = cv2.filter2D(mask, -1, k, borderType=cv2.BORDER_REFLECT_101)
    return num / den


@DEGRADATIONS.register("camera-noise", family="noise")
@dataclass(frozen=True)
class CameraNoise(Degradation):
    """Raw-domain shot/read noise through an unprocess -> mosaic -> demosaic -> reprocess pipeline."""

    name = "camera-noise"
    stage = "sensor"
    LEVELS = PoissonGaussian.LEVELS
    NEUTRAL = PoissonGaussian.NEUTRAL
    TRAIN = PoissonGaussian.TRAIN
    OOD = PoissonGaussian.OOD

    def severity_values(self, rng, image):
        return _with_read(self, super().severity_values(rng, image), rng)

    def extra(self, rng, image, depth):
        weights = rng.uniform(1e-8, 1.0, size=4)
        xyz2cam = np.tensordot(weights / weights.sum(), _XYZ2CAMS, axes=1)
        rgb2cam = xyz2cam @ _RGB2XYZ
        rgb2cam /= rgb2cam.sum(axis=1, keepdims=True)
        return {
            "rgb2cam": rgb2cam.round(6).tolist(),
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
        check_range("camera-noise", "shot", shot, 0.0)
        check_range("camera-noise", "read_var", read_var, 0.0)
        for key, value in (("red_gain", red_gain), ("blue_gain", blue_gain), ("rgb_gain", rgb_gain)):
            check_range("camera-noise", key, value, 1e-3)
        ccm = np.asarray(rgb2cam, np.float64)
        if ccm.shape != (3, 3) or abs(np.linalg.det(ccm)) < 1e-6:
            raise ValueError(f"camera-noise: rgb2cam must be an invertible 3x3 matrix, got {rgb2cam!r}")
        if shot == 0 and read_var == 0:
            return image.copy()
        h, w = image.shape[:2]
        # Unprocess (Brooks et al. Sec. 3): tone curve^-1, gamma^-1, CCM^-1, gains^-1, mosaic.
        x = _smoothstep_inverse(image.astype(np.float32) / 255.0)
        x = np.power(np.maximum(x, 1e-8), 2.2, dtype=np.float32)
        x = x @ ccm.T.astype(np.float32)
        gains = np.array([red_gain, 1.0, blue_gain], np.float32) * np.float32(rgb_gain)
        x = np.clip(x / gains, 0.0, 1.0)
        hp, wp = h + h % 2, w + w % 2
        x = np.pad(x, ((0, hp - h), (0, wp - w), (0, 0)), mode="reflect")
        raw = np.empty((hp, wp), np.float32)
        raw[0::2, 0::2] = x[0::2, 0::2, 0]
        raw[0::2, 1::2] = x[0::2, 1::2, 1]
        raw[1::2, 0::2] = x[1::2, 0::2, 1]
        raw[1::2, 1::2] = x[1::2, 1::2, 2]
        # Sensor: heteroscedastic Gaussian shot + read noise on the raw signal.
        std = np.sqrt(raw * np.float32(shot) + np.float32(read_var))
        raw = raw + std * field_rng(seed).standard_normal(raw.shape, dtype=np.float32)
        # Reprocess: demosaic, gains, CCM, gamma, tone curve; one rounding at the end.
        x = _demosaic_bilinear(raw)[:h, :w] * gains
        x = np.clip(x @ np.linalg.inv(ccm).T.astype(np.float32), 0.0, 1.0)
        x = np.power(np.maximum(x, 1e-8), 1 / 2.2, dtype=np.float32)
        x = 3.0 * x * x - 2.0 * x * x * x
        return round_to_uint8(x * 255.0)


DEGRADATIONS.add("noise", AWGN, family="noise", alias_of="awgn")
