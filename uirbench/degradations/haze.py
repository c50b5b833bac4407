"""Haze: the atmospheric scattering model in linear light.

Koschmieder's law as used by McCartney (1976) and Narasimhan & Nayar (2003):

    I(x) = J(x) t(x) + A (1 - t(x)),    t(x) = exp(-beta d(x))

with J the clean scene radiance and I the hazy image (linear light, white = 1), A the grey
airlight (linear light), beta the scattering coefficient per unit of relative depth and d(x) the
relative depth in [0, 1] (``uirbench.degradations.depth``: a stored map, normalised and slightly
smoothed, or the ground-plane prior). RESIDE-like ranges (Li et al. 2019): airlight 0.7-1.0 as an
sRGB value, here converted to linear light; beta 0.6-1.8. With metric depth, beta = 3.912 /
visibility (Koschmieder); on relative depth, beta is the optical depth of the farthest point, so
beta 1.2 (severity 5) leaves 30% of the far scene's radiance (t = exp(-1.2)).

Valid parameters (checked by ``apply`` before any array is allocated; a
:class:`~uirbench.errors.ParameterError` names the parameter, its value and the range): ``beta``
in [0, ``MAX_BETA``], ``airlight`` in (0, 1] (linear light), ``depth_source`` ``"map"`` or
``"prior:ground-plane"``.

The transmission ``exp(-beta d)`` is evaluated in float64 and rounded to float32: numpy's float32
``exp`` differs by up to 2 ulp between its AVX-512, AVX2 and baseline loops, which moves a rounded
pixel now and then; the float64 loops differ by at most 1 ulp, which the rounding to float32 hides.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from uirbench.degradations.base import Degradation, Range, check_range, to_linear, to_srgb8
from uirbench.degradations.depth import check_depth_source, depth_source_of, scene_depth
from uirbench.errors import ParameterError
from uirbench.registry import DEGRADATIONS

AIRLIGHT_SRGB = (0.7, 1.0)
"""Range of the grey airlight as an sRGB value in [0, 1] (RESIDE's A range)."""
BAND_PIXELS = 1 << 14
"""Pixels per band in :func:`composite` (32 rows at 512 px wide)."""
MAX_BETA = 10.0
"""Largest optical depth of the farthest point: t = exp(-10) = 4.5e-5 there, so the far scene is
entirely veiled (sampled values reach 2.0)."""


def draw_airlight(rng: np.random.Generator) -> float:
    """Grey airlight in linear light: an sRGB value ~ U[0.7, 1.0) decoded by IEC 61966-2-1."""
    value = rng.uniform(*AIRLIGHT_SRGB)
    return float(((value + 0.055) / 1.055) ** 2.4)  # value > 0.04045: the power branch of the sRGB curve


def check_airlight(name: str, airlight: float) -> None:
    """Airlight must lie in (0, 1] (linear light; 0 would be black 'haze', > 1 brighter than white)."""
    check_range(name, "airlight", airlight, 0.0, 1.0)
    if airlight == 0:
        raise ParameterError(f"{name}: parameter airlight=0 is outside the valid range (0, 1]")


def transmission(depth01: np.ndarray, beta: float) -> np.ndarray:
    """Beer-Lambert transmission ``t = exp(-beta d)``: HxW float32 in (0, 1] for relative depth d.

    Computed in float64 (see the module docstring); ``t`` is exactly 1 where ``d`` is 0.
    """
    trans = np.multiply(depth01, -float(beta), dtype=np.float64)
    return np.exp(trans, out=trans).astype(np.float32)


def scatter(linear: np.ndarray, trans: np.ndarray, airlight: float) -> np.ndarray:
    """``I = J t + A (1 - t)``, in place on HxWx3 float32 linear light J with HxW transmission t.

    Where t == 1 both products are exact (J * 1, A * 0), so the result is J bit for bit and the
    uint8 round trip exact. The HxW maps are expanded to three channels by ``cv2.merge`` because
    numpy's broadcast over a trailing axis of 3 is ~3x slower than contiguous arithmetic.
    """
    veil = np.float32(1.0) - trans
    veil *= np.float32(airlight)
    expanded = cv2.merge([trans] * 3)
    linear *= expanded
    linear += cv2.merge([veil] * 3, dst=expanded)
    return linear


def composite(image: np.ndarray, trans: np.ndarray, airlight: float) -> np.ndarray:
    """HxWx3 uint8 sRGB -> linear -> ``scatter`` with HxW transmission -> uint8 sRGB, rounded once.

    Works on bands of about ``BAND_PIXELS`` pixels: the float temporaries (~200 kB) then stay in
    cache and are reused by the allocator rather than returned to the OS and page-faulted back;
    at 512 px this is ~3x faster than whole-image arithmetic, with identical results.
    """
    out = np.empty_like(image)
    rows = max(1, BAND_PIXELS // image.shape[1])
    for top in range(0, image.shape[0], rows):
        band = slice(top, top + rows)
        out[band] = to_srgb8(scatter(to_linear(image[band]), trans[band], airlight))
    return out


@DEGRADATIONS.register("haze", family="haze")
@dataclass(frozen=True)
class Haze(Degradation):
    """Atmospheric scattering I = J t + A(1 - t), t = exp(-beta d), on scene depth, in linear light.

    Parameters: ``beta`` (scattering coefficient on relative depth in [0, 1]; valid in
    [0, ``MAX_BETA``]), ``airlight`` (grey airlight, linear light in (0, 1]), ``depth_source``
    (``"map"`` or ``"prior:ground-plane"``).
    """

    stage = "scene"
    uses_depth = True
    # Lower than RESIDE's beta 0.6-1.8: compositing in linear light (the physical model) veils dark
    # regions far more than RESIDE's sRGB compositing. These levels span input PSNR ~19 -> ~10 dB on
    # natural photos (the range of RESIDE's hazy inputs); see the dataset card's difficulty table.
    LEVELS = {"beta": (0.15, 0.3, 0.5, 0.8, 1.2)}
    NEUTRAL = {"beta": 0.0}
    TRAIN = {"beta": Range(0.1, 1.2)}
    OOD = {"beta": Range(1.2, 2.0)}

    def extra(self, rng, image, depth):
        return {"airlight": draw_airlight(rng), "depth_source": depth_source_of(depth)}

    def neutral_extra(self, image, depth):
        return {"airlight": 1.0, "depth_source": depth_source_of(depth)}

    @staticmethod
    def apply(image: np.ndarray, *, beta: float, airlight: float, depth_source: str,
              depth: np.ndarray | None = None) -> np.ndarray:
        check_range("haze", "beta", beta, 0.0, MAX_BETA)
        check_airlight("haze", airlight)
        check_depth_source("haze", depth_source)
        if beta == 0:
            return image.copy()
        depth01 = scene_depth("haze", image.shape, depth, depth_source)
        return composite(image, transmission(depth01, beta), airlight)
