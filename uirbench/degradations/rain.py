"""Rain: streak layers at several depths plus the veiling (accumulation) of distant rain.

Model (in linear light, white = 1), after the layered rain models of Garg & Nayar (2007,
"Vision and rain") and the heavy-rain model of Li, Cheong & Tan (2019, "Heavy rain image
restoration: integrating physics model and conditional adversarial learning"):

    I = [J (1 - a) + a L] t + A (1 - t),    a = 1 - prod_i (1 - a_i),    t = exp(-veil_beta d)

* ``a_i``: the streak opacity of layer i, HxW in [0, 1]: sparse seeds (a Poisson number,
  ``density`` per pixel, uniform positions, opacity ``intensity * U[0.5, 1]``) convolved with an
  anti-aliased line kernel (``length``, ``angle_deg``, Gaussian cross-section of FWHM ``width``),
  clipped to 1 where streaks overlap. Never normalised per image, so density and intensity keep
  their meaning. Layers are depth planes: near streaks are long, wide (hence soft, out of focus)
  and bright but sparse; far ones short, thin, dim and dense. All layers share a dominant angle
  with a small per-layer jitter.
* ``L``: streak radiance. A falling drop refracts light from a wide cone of the environment
  (Garg & Nayar), so its radiance is close to the ambient sky light: we take ``L = A``, the airlight.
* the veil: distant rain scatters like fog, through the haze model on scene depth ``d``
  (stored map or ground-plane prior, see ``depth.py``) with a small ``veil_beta``.

With ``L = A`` the whole composite is the scattering model with an effective transmission
``(1 - a) t``, which ``apply`` evaluates in one pass.

Angles: ``angle_deg`` is the tilt from vertical; positive tilts the bottom of a streak to the
right (rain blown rightwards). Lengths and widths are pixels; the severity table defines them at a
512-px short side and ``sample`` scales them (and density, by the square of the inverse scale,
so the number of streaks per image does not depend on resolution).

Valid parameters (checked by ``apply`` before any array is allocated; a
:class:`~uirbench.errors.ParameterError` names the parameter, its value and the range), with S the
image's shorter side:

=======================  =======================================================================
``layers``               a list of at most ``MAX_LAYERS`` (3: far, mid, near) dicts, keys below
``layers[i].length``     [0, S/2] px (``MAX_LENGTH``; sampled lengths reach 0.18 S)
``layers[i].angle_deg``  [-90, 90] degrees from vertical
``layers[i].width``      (0, S/8] px FWHM (``MAX_WIDTH``; sampled widths reach 0.005 S)
``layers[i].intensity``  [0, 1]
``layers[i].density``    [0, MAX_STREAK_SEEDS / canvas] seeds per px, the canvas being the image
                         padded by the streak kernel's radius (:func:`streak_radius`) on every
                         side, at most (H + 0.82 S + 5) x (W + 0.82 S + 5) px: a layer draws
                         about 1e6 seeds at most (sampled rain: 40 to 130 000, the most on long,
                         narrow images, where density scales with 1 / S^2)
``layers[i].seed``       an integer in [0, 2**63)
``veil_beta``            [0, ``MAX_BETA``] (as haze's ``beta``)
``airlight``             (0, 1], linear light
``depth_source``         ``"map"`` or ``"prior:ground-plane"``
=======================  =======================================================================

Cross-machine reproducibility: streak kernels are evaluated in float64 and rounded to float32
(numpy's float32 ``exp`` differs by up to 2 ulp between its AVX-512, AVX2 and baseline loops, which
moved rounded pixels). The streak field is filtered by ``cv2.filter2D`` in float32: its SIMD paths
differ by an ulp on the opacities, which has not moved a rounded pixel in any check (benchmarks/
pixel_stability.py; 96 rain images with ``cv2.setUseOptimized(False)``), and float64 filtering
would cost about half again the rain's run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from uirbench.degradations.base import (
    Degradation,
    Range,
    check_range,
    check_seed,
    draw_seed,
    field_rng,
    short_repr,
    spatial_scale,
)
from uirbench.degradations.depth import check_depth_source, depth_source_of, scene_depth
from uirbench.degradations.haze import MAX_BETA, check_airlight, composite, draw_airlight, transmission
from uirbench.errors import ParameterError
from uirbench.registry import DEGRADATIONS

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
MIN_RENDER_SIGMA = 0.5
"""Thinner cross-sections are drawn at this sigma (px) with the peak lowered to keep the profile's
integral: a sub-pixel streak then covers a pixel partly instead of aliasing."""
LAYER_KEYS = ("length", "angle_deg", "width", "intensity", "density", "seed")
PLANES = {  # length factor, width (px at 512), intensity factor, density factor; relative to the table
    "far": (0.3, 1.0, 0.5, 1.0),
    "mid": (0.55, 1.6, 0.75, 0.4),
    "near": (1.0, 2.6, 1.0, 0.12),
}
PLANE_SETS = {2: ("far", "near"), 3: ("far", "mid", "near")}
MAX_ANGLE = 30.0
"""Dominant angle ~ U[-30, 30) degrees from vertical; each layer adds U[-ANGLE_JITTER, ANGLE_JITTER)."""
ANGLE_JITTER = 4.0
JITTER = 0.15
"""Per-layer length, intensity and density are multiplied by U[1 - JITTER, 1 + JITTER)."""
MAX_LAYERS = len(PLANES)
MAX_LENGTH = 0.5
"""Streak lengths are at most this fraction of the image's shorter side."""
MAX_WIDTH = 0.125
"""Streak widths (FWHM) are at most this fraction of the image's shorter side."""
MAX_STREAK_SEEDS = 1_000_000
"""Expected streak seeds per layer on its padded canvas are at most this (about 20 MB of arrays)."""


def streak_radius(length: float, angle_deg: float, width: float) -> tuple[int, int]:
    """Half-sizes (ry, rx) of :func:`streak_kernel`: the segment's half extent along each axis plus
    three rendering sigmas, rounded up."""
    render = max(width / FWHM_PER_SIGMA, MIN_RENDER_SIGMA)
    theta = math.radians(angle_deg)
    half = length / 2.0
    return (math.ceil(half * abs(math.cos(theta)) + 3.0 * render),
            math.ceil(half * abs(math.sin(theta)) + 3.0 * render))


def streak_kernel(length: float, angle_deg: float, width: float) -> np.ndarray:
    """Anti-aliased line kernel (odd-sized, float32, peak <= 1) centred on its middle pixel.

    Value at offset p: ``exp(-dist(p, segment)^2 / (2 sigma^2))`` for the segment of ``length`` px
    through the centre in direction (sin angle, cos angle) (x right, y down), sigma = width / 2.355
    (rendered at no less than ``MIN_RENDER_SIGMA`` with the peak scaled by sigma / sigma_render).
    Evaluated in float64, rounded to float32.
    """
    sigma = width / FWHM_PER_SIGMA
    render = max(sigma, MIN_RENDER_SIGMA)
    theta = math.radians(angle_deg)
    ux, uy = math.sin(theta), math.cos(theta)
    half = length / 2.0
    ry, rx = streak_radius(length, angle_deg, width)
    x = np.arange(-rx, rx + 1, dtype=np.float64)[None, :]
    y = np.arange(-ry, ry + 1, dtype=np.float64)[:, None]
    along = np.clip(x * ux + y * uy, -half, half)
    dist2 = (x - along * ux) ** 2 + (y - along * uy) ** 2
    return (sigma / render * np.exp(dist2 * (-0.5 / render**2))).astype(np.float32)


def streak_alpha(shape: tuple[int, ...], *, length: float, angle_deg: float, width: float, intensity: float,
                 density: float, seed: int) -> np.ndarray:
    """Streak opacity of one layer: HxW float32 in [0, 1] for an image of ``shape`` (HxW[x3]).

    Seeds are drawn on a canvas padded by the kernel radius and cropped after filtering, so streaks
    enter from beyond the border and density is uniform up to the edges. The parameters must lie
    in the ranges :func:`check_layers` enforces.
    """
    height, width_px = shape[:2]
    kernel = streak_kernel(length, angle_deg, width)
    ry, rx = kernel.shape[0] // 2, kernel.shape[1] // 2
    canvas_shape = (height + 2 * ry, width_px + 2 * rx)
    rng = field_rng(int(seed))
    count = rng.poisson(density * canvas_shape[0] * canvas_shape[1])
    where = rng.integers(0, canvas_shape[0] * canvas_shape[1], size=count)
    opacity = rng.uniform(0.5, 1.0, size=count).astype(np.float32)
    opacity *= np.float32(intensity)
    seeds = np.zeros(canvas_shape[0] * canvas_shape[1], np.float32)
    np.add.at(seeds, where, opacity)
    alpha = cv2.filter2D(seeds.reshape(canvas_shape), -1, kernel, borderType=cv2.BORDER_CONSTANT)
    # clipping at 0 also removes the round-off of OpenCV's FFT path for large kernels
    return np.clip(alpha[ry:ry + height, rx:rx + width_px], 0.0, 1.0)


def check_layers(layers: Any, shape: tuple[int, ...]) -> None:
    """Raise a :class:`~uirbench.errors.ParameterError` unless ``layers`` is valid for an image of
    ``shape`` (HxW[x3]): the ranges in the module docstring. Allocates nothing."""
    if not isinstance(layers, list) or len(layers) > MAX_LAYERS:
        got = f"{len(layers)} layers" if isinstance(layers, list) else type(layers).__name__  # no repr: it may be huge
        raise ParameterError(f"rain: parameter layers must be a list of at most {MAX_LAYERS} dicts with keys "
                             f"{', '.join(LAYER_KEYS)}; got {got}")
    short = min(shape[:2])
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or set(layer) != set(LAYER_KEYS):
            got = f"keys {short_repr(sorted(map(str, layer)))}" if isinstance(layer, dict) else type(layer).__name__
            raise ParameterError(f"rain: parameter layers[{i}] must be a dict with exactly the keys "
                                 f"{', '.join(LAYER_KEYS)}; got {got}")
        key = f"layers[{i}]."
        check_range("rain", key + "length", layer["length"], 0.0, MAX_LENGTH * short)
        check_range("rain", key + "angle_deg", layer["angle_deg"], -90.0, 90.0)
        check_range("rain", key + "width", layer["width"], 0.0, MAX_WIDTH * short)
        if layer["width"] == 0:
            raise ParameterError(f"rain: parameter {key}width=0 is outside the valid range (0, {MAX_WIDTH * short}]")
        check_range("rain", key + "intensity", layer["intensity"], 0.0, 1.0)
        ry, rx = streak_radius(layer["length"], layer["angle_deg"], layer["width"])
        canvas = (shape[0] + 2 * ry) * (shape[1] + 2 * rx)
        check_range("rain", key + "density", layer["density"], 0.0, MAX_STREAK_SEEDS / canvas)
        check_seed(f"rain: layers[{i}]", layer["seed"])


@DEGRADATIONS.register("rain", family="rain")
@dataclass(frozen=True)
class Rain(Degradation):
    """Rain streak layers at 2-3 depths composited in linear light, then a depth-dependent veil.

    Parameters: ``layers`` (list of {length, angle_deg, width, intensity, density, seed}, px and
    seeds per px of this image), ``veil_beta``, ``airlight`` (linear, (0, 1]), ``depth_source``;
    valid ranges in the module docstring.
    The severity table holds the near layer's length (px at 512) and intensity, the far layer's
    density (seeds per px at 512), the number of layers and ``veil_beta``; out-of-distribution rain
    is denser, longer, brighter, always three layers and more veiled.
    """

    stage = "scene"
    uses_depth = True
    LEVELS = {
        "veil_beta": (0.03, 0.06, 0.1, 0.15, 0.2),  # linear-light veil: see haze.py on its strength
        "density": (0.0015, 0.0025, 0.0035, 0.005, 0.007),
        "intensity": (0.3, 0.4, 0.5, 0.6, 0.7),
        "length": (24.0, 30.0, 36.0, 42.0, 48.0),
        "layers": (2, 2, 3, 3, 3),
    }
    NEUTRAL = {"veil_beta": 0.0, "density": 0.0, "intensity": 0.0, "length": 0.0, "layers": 0}
    TRAIN = {
        "veil_beta": Range(0.02, 0.2),
        "density": Range(0.001, 0.007, log=True),
        "intensity": Range(0.25, 0.7),
        "length": Range(20.0, 48.0),
        "layers": Range(2, 4, integer=True),
    }
    OOD = {
        "veil_beta": Range(0.2, 0.4),
        "density": Range(0.007, 0.015, log=True),
        "intensity": Range(0.7, 0.9),
        "length": Range(48.0, 80.0),
        "layers": Range(3, 4, integer=True),
    }
    SPATIAL = ("length",)

    def severity_values(self, rng, image):
        """Expand the table's per-image values into per-layer records (``layers``) plus ``veil_beta``."""
        values = super().severity_values(rng, image)
        if self.severity == 0:
            return {"layers": [], "veil_beta": 0.0}
        scale = spatial_scale(image)
        angle = rng.uniform(-MAX_ANGLE, MAX_ANGLE)
        layers = []
        for plane in PLANE_SETS[int(values["layers"])]:
            length_f, width, intensity_f, density_f = PLANES[plane]
            jitter = rng.uniform(1.0 - JITTER, 1.0 + JITTER, size=3)
            layers.append({
                "length": float(values["length"] * length_f * jitter[0]),
                "angle_deg": float(angle + rng.uniform(-ANGLE_JITTER, ANGLE_JITTER)),
                "width": float(width * scale),
                "intensity": float(min(1.0, values["intensity"] * intensity_f * jitter[1])),
                "density": float(values["density"] * density_f * jitter[2] / scale**2),
                "seed": draw_seed(rng),
            })
        return {"layers": layers, "veil_beta": float(values["veil_beta"])}

    def extra(self, rng, image, depth):
        return {"airlight": draw_airlight(rng), "depth_source": depth_source_of(depth)}

    def neutral_extra(self, image, depth):
        return {"airlight": 1.0, "depth_source": depth_source_of(depth)}

    @staticmethod
    def apply(image: np.ndarray, *, layers: list[dict], veil_beta: float, airlight: float, depth_source: str,
              depth: np.ndarray | None = None) -> np.ndarray:
        check_layers(layers, image.shape)
        check_range("rain", "veil_beta", veil_beta, 0.0, MAX_BETA)
        check_airlight("rain", airlight)
        check_depth_source("rain", depth_source)
        if not layers and veil_beta == 0:
            return image.copy()
        keep = np.ones(image.shape[:2], np.float32)  # the effective transmission (1 - a) t
        for layer in layers:
            keep *= np.float32(1.0) - streak_alpha(image.shape, **layer)
        if veil_beta > 0:
            keep *= transmission(scene_depth("rain", image.shape, depth, depth_source), veil_beta)
        return composite(image, keep, airlight)
