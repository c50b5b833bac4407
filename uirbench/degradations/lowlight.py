"""Low light: an under-exposed capture, and the gamma-darkening synthesis of Lv et al. 2021.

* ``lowlight`` (family default): a physical under-exposure. The sRGB image is linearised
  (IEC 61966-2-1), the exposure is cut by ``ev`` stops (``x_dim = 2^-ev x``), the sensor counts
  photons exactly, ``photons ~ Poisson(x_dim / shot)``, ``y = photons * shot``, and adds Gaussian
  read noise of standard deviation ``read``; ``y`` goes back to sRGB with one rounding and *no*
  re-brightening. ``shot`` is the linear signal of one photon (1 / full-well photons at white), so
  ``E[y] = x_dim`` and ``Var[y] = shot * x_dim + read^2`` before ``y`` is clipped to [0, 1] for
  8-bit output (in dark tones the clip at 0 raises the mean: +5 % at grey 60 and EV 4, +75 % at
  EV 6): the darker the exposure, the fewer photons and the lower the SNR (``sqrt(x_dim / shot)``
  without read noise), with no extra knob.
  Severity levels use one documented sensor, ``SENSOR``: 2000 photons at white (shot 1/2000) and
  a read noise of 0.002 of white (4 electrons rms), at ev 2-6 (the 2-6 stops of REFERENCE.md).
  Cost ~35 ms per 512x512 image on one thread, ~29 ms of it numpy's exact Poisson sampler.
* ``lowlight-compat``: Lv, Li and Lu 2021, "Attention guided low-light image enhancement with a
  large scale low-light simulation dataset" (IJCV 129), on sRGB values ``x`` in [0, 1]:
  ``y = beta * (alpha * x)^gamma`` with their ranges alpha ~ U(0.9, 1), beta ~ U(0.5, 1),
  gamma ~ U(1.5, 5), then additive Gaussian noise of ``sigma`` DN on the 0-255 scale (our
  simplification of their Poisson-Gaussian noise; sigma 1-8 DN is our choice), one rounding.
  Severity levels sweep gamma and sigma with alpha and beta fixed at the centres of Lv's ranges
  (0.95, 0.75), so a level is one fixed darkening curve; continuous draws use all four ranges.

Both are the ``exposure`` stage: in a chain they come before sensor noise and JPEG. Every
parameter has a valid range, stated in each class docstring and checked by ``apply`` before any
array is allocated (:class:`~uirbench.errors.ParameterError` names the parameter, its value and the
range).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from uirbench.degradations.base import (
    Degradation,
    Range,
    check_range,
    check_seed,
    draw_seed,
    field_rng,
    round_to_uint8,
    to_linear,
    to_srgb8,
)
from uirbench.errors import ParameterError
from uirbench.registry import DEGRADATIONS

SENSOR = {"shot": 1 / 2000, "read": 0.002}
"""The sensor of the severity levels: linear signal per photon (2000 photons at white) and read-noise std."""
MIN_SHOT = 1e-6
"""Smallest non-zero ``shot``: a million photons at white keeps numpy's Poisson sampler in range and fast."""


@DEGRADATIONS.register("lowlight", family="lowlight")
@dataclass(frozen=True)
class LowLight(Degradation):
    """Under-exposure by ``ev`` stops in linear light with exact Poisson shot noise and Gaussian read noise.

    Valid ranges: ``ev`` in [0, 16] stops (16 stops down, white is below half a DN); ``shot`` in
    linear units per photon, 0 (noiseless ideal sensor) or in [1e-6, 1] (at most a million photons at
    white); ``read``, the read-noise standard deviation in linear units (white = 1), in [0, 1];
    ``seed`` an integer in [0, 2**63).
    """

    stage = "exposure"
    LEVELS = {"ev": (2.0, 3.0, 4.0, 5.0, 6.0), "shot": (SENSOR["shot"],) * 5, "read": (SENSOR["read"],) * 5}
    NEUTRAL = {"ev": 0.0, "shot": 0.0, "read": 0.0}
    TRAIN = {"ev": Range(2.0, 6.0), "shot": Range(2e-4, 2e-3, log=True), "read": Range(5e-4, 4e-3, log=True)}
    OOD = {"ev": Range(6.0, 8.0), "shot": TRAIN["shot"], "read": TRAIN["read"]}

    def extra(self, rng, image, depth):
        return {"seed": draw_seed(rng)}

    def neutral_extra(self, image, depth):
        return {"seed": 0}

    @staticmethod
    def apply(image: np.ndarray, *, ev: float, shot: float, read: float, seed: int) -> np.ndarray:
        check_range("lowlight", "ev", ev, 0.0, 16.0)
        check_range("lowlight", "shot", shot, 0.0, 1.0)
        if 0 < shot < MIN_SHOT:
            raise ParameterError(f"lowlight: parameter shot={shot!r} must be 0 (noiseless) or in [{MIN_SHOT}, 1.0]")
        check_range("lowlight", "read", read, 0.0, 1.0)
        check_seed("lowlight", seed)
        if ev == 0 and shot == 0 and read == 0:
            return image.copy()
        linear = to_linear(image)
        linear *= np.float32(2.0 ** -ev)
        rng = field_rng(seed)
        if shot > 0:
            # Exact photon counting; lam stays float64 so bright pixels of tiny-shot sensors keep precision.
            photons = rng.poisson(np.divide(linear, shot, dtype=np.float64))
            linear = np.multiply(photons, shot, dtype=np.float32)
        if read > 0:
            noise = rng.standard_normal(image.shape, dtype=np.float32)
            noise *= np.float32(read)
            linear += noise
        return to_srgb8(linear)


@DEGRADATIONS.register("lowlight-compat", family="lowlight")
@dataclass(frozen=True)
class LowLightCompat(Degradation):
    """Lv et al. 2021 darkening ``beta * (alpha * x)^gamma`` on sRGB in [0, 1], plus Gaussian noise of ``sigma`` DN.

    Valid ranges: ``gamma`` in [1, 10] (1 = no curve), ``alpha`` and ``beta`` in [0, 1], ``sigma`` in
    [0, 255] DN (0-255 scale), ``seed`` an integer in [0, 2**63).
    """

    stage = "exposure"
    LEVELS = {
        "gamma": (1.5, 2.25, 3.0, 4.0, 5.0),
        "sigma": (1.0, 2.0, 4.0, 6.0, 8.0),
        "alpha": (0.95,) * 5,
        "beta": (0.75,) * 5,
    }
    NEUTRAL = {"gamma": 1.0, "sigma": 0.0, "alpha": 1.0, "beta": 1.0}
    TRAIN = {"gamma": Range(1.5, 5.0), "sigma": Range(1.0, 8.0), "alpha": Range(0.9, 1.0), "beta": Range(0.5, 1.0)}
    OOD = {"gamma": Range(5.0, 7.0), "sigma": TRAIN["sigma"], "alpha": TRAIN["alpha"], "beta": TRAIN["beta"]}

    def extra(self, rng, image, depth):
        return {"seed": draw_seed(rng)}

    def neutral_extra(self, image, depth):
        return {"seed": 0}

    @staticmethod
    def apply(image: np.ndarray, *, gamma: float, sigma: float, alpha: float, beta: float, seed: int) -> np.ndarray:
        check_range("lowlight-compat", "gamma", gamma, 1.0, 10.0)
        check_range("lowlight-compat", "sigma", sigma, 0.0, 255.0)
        check_range("lowlight-compat", "alpha", alpha, 0.0, 1.0)
        check_range("lowlight-compat", "beta", beta, 0.0, 1.0)
        check_seed("lowlight-compat", seed)
        if gamma == 1 and sigma == 0 and alpha == 1 and beta == 1:
            return image.copy()
        # The curve depends on the 8-bit value only: evaluate it once per level (in DN), then look up.
        curve = 255.0 * beta * (alpha * np.arange(256) / 255.0) ** gamma
        dark = cv2.LUT(image, curve.astype(np.float32))
        if sigma == 0:
            return round_to_uint8(dark)
        noise = field_rng(seed).standard_normal(image.shape, dtype=np.float32)
        noise *= np.float32(sigma)
        return cv2.add(noise, dark, dtype=cv2.CV_8U)  # the float32 sum, rounded half to even and saturated
