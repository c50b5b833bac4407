"""The shape every degradation shares: frozen config -> ``sample`` -> pure ``apply``.

A degradation is a frozen dataclass (its configuration: ``severity`` and ``track``) with

* ``sample(rng, image, depth=None) -> params``: draws every random choice from the explicit
  ``np.random.Generator`` and returns plain JSON values (physical parameters, plus integer seeds
  for random fields such as noise or motion trajectories);
* ``apply(image, depth=None, **params) -> image``: a pure static function; replaying recorded
  params reproduces the output exactly.

Severity: ``1``-``5`` select fixed parameter values (``LEVELS``), defined at a 512-px short side;
spatial values scale with ``min(H, W) / 512``. ``0`` selects neutral parameters, which return the
input unchanged byte for byte. ``None`` draws continuous values from the ``train``
(in-distribution) range or the disjoint ``ood`` range (``track``). Ranges are half-open [lo, hi).

Physics happens in linear light (IEC 61966-2-1 sRGB transfer function, via look-up tables) in
float32, with one rounding to uint8 at the end.

Cross-machine stability: outputs and recorded params must not depend on the CPU's SIMD dispatch
(numpy's AVX2/AVX-512 transcendental loops, OpenBLAS kernels, FMA). So per-pixel transcendental
functions are tabulated once in float64 (``_TO_LINEAR``, ``_TO_SRGB8``), small matrices are applied
with elementwise multiply/add in a fixed order, and scalar transcendentals use Python's ``math``
(libm) with the result rounded to 12 significant digits (:func:`round_sig12`), which absorbs the
1-ulp differences between libm variants.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from uirbench.errors import ParameterError
from uirbench.io import check_rgb

STAGES = ("scene", "optics", "exposure", "sensor", "compression")
"""Physical order of a capture: scene (haze, rain) -> optics (blur) -> exposure (low light) ->
sensor (noise) -> compression (JPEG). ``mixed`` chains apply stages in this order."""

TRACKS = ("train", "ood")
REFERENCE_SIDE = 512
SEED_BOUND = 2**63


@dataclass(frozen=True)
class Range:
    """A half-open parameter range [lo, hi); ``log`` draws log-uniformly, ``integer`` draws ints."""

    lo: float
    hi: float
    log: bool = False
    integer: bool = False

    def draw(self, rng: np.random.Generator) -> float | int:
        """One draw. Log-uniform draws are ``exp(U[log lo, log hi))`` in scalar libm, rounded to 12
        significant digits (:func:`round_sig12`) so that they replay on every CPU; a draw that rounds
        out of [lo, hi) (probability below 1e-11) is redrawn."""
        if self.integer:
            return int(rng.integers(int(self.lo), int(self.hi)))
        if self.log:
            while True:
                value = round_sig12(math.exp(float(rng.uniform(math.log(self.lo), math.log(self.hi)))))
                if self.lo <= value < self.hi:
                    return value
        return float(rng.uniform(self.lo, self.hi))


def round_sig12(value: float) -> float:
    """``value`` rounded to 12 significant digits (correctly rounded decimal conversion).

    libm's ``exp``/``log``/``pow`` may differ by 1 ulp (~1e-16 relative) between CPU variants (FMA or
    not); after rounding to 12 digits they agree unless the value lies within that ulp of a rounding
    boundary of the 12th digit (a chance of ~1e-4 for a value that differs at all).
    """
    return float(f"{value:.11e}")


@dataclass(frozen=True)
class Degradation:
    """Base class; subclasses are frozen dataclasses registered in ``DEGRADATIONS``.

    Class attributes a subclass sets: ``name``, ``stage`` (one of ``STAGES``), ``LEVELS``
    (key -> five values for severities 1-5), ``NEUTRAL`` (key -> value at severity 0), ``TRAIN``
    and ``OOD`` (key -> :class:`Range`), ``SPATIAL`` (keys measured in pixels at 512 px).
    """

    severity: int | None = 3
    track: str = "train"

    name: ClassVar[str] = ""
    stage: ClassVar[str] = ""
    uses_depth: ClassVar[bool] = False
    LEVELS: ClassVar[dict[str, tuple[float, ...]]] = {}
    NEUTRAL: ClassVar[dict[str, float]] = {}
    TRAIN: ClassVar[dict[str, Range]] = {}
    OOD: ClassVar[dict[str, Range]] = {}
    SPATIAL: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        if self.severity is not None and (isinstance(self.severity, bool) or self.severity not in range(6)):
            raise ParameterError(f"{self.name}: severity must be an integer 0-5 or None (continuous), got {self.severity!r}")
        if self.track not in TRACKS:
            raise ParameterError(f"{self.name}: track must be one of {', '.join(TRACKS)}, got {self.track!r}")

    # -- the two steps ------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, image: np.ndarray, depth: np.ndarray | None = None) -> dict[str, Any]:
        """Draw physical parameters for ``image``: the severity values plus what ``extra`` adds."""
        params = self.severity_values(rng, image)
        if self.severity != 0:
            params.update(self.extra(rng, image, depth))
        else:
            params.update(self.neutral_extra(image, depth))
        return params

    def extra(self, rng: np.random.Generator, image: np.ndarray, depth: np.ndarray | None) -> dict[str, Any]:
        """Parameters beyond the severity table (seeds, angles, ...); override in subclasses."""
        return {}

    def neutral_extra(self, image: np.ndarray, depth: np.ndarray | None) -> dict[str, Any]:
        """Parameters beyond ``NEUTRAL`` at severity 0 (placeholders that ``apply`` ignores)."""
        return {}

    @staticmethod
    def apply(image: np.ndarray, **params: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared machinery ---------------------------------------------------------------------
    def severity_values(self, rng: np.random.Generator, image: np.ndarray) -> dict[str, Any]:
        """Values of the severity-controlled keys, spatial ones scaled to this image's short side."""
        if self.severity == 0:
            return dict(self.NEUTRAL)
        if self.severity is None:
            ranges = self.TRAIN if self.track == "train" else self.OOD
            values = {key: r.draw(rng) for key, r in ranges.items()}
        else:
            values = {key: levels[self.severity - 1] for key, levels in self.LEVELS.items()}
        scale = spatial_scale(image)
        for key in self.SPATIAL:
            values[key] = float(values[key] * scale)
        return values

    def __call__(self, image: np.ndarray, rng: np.random.Generator, depth: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Degrade ``image`` (HxWx3 uint8 RGB); returns ``(degraded, params)``."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"{self.name}: rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
        check_rgb(image)
        params = self.sample(rng, image, depth)
        return self.replay(image, params, depth), params

    @classmethod
    def replay(cls, image: np.ndarray, params: dict[str, Any], depth: np.ndarray | None = None) -> np.ndarray:
        """Apply recorded ``params`` to ``image``; unknown or missing keys raise, naming the valid ones."""
        check_rgb(image)
        check_param_names(cls, params)
        kwargs = dict(params)
        if cls.uses_depth:
            kwargs["depth"] = depth
        out = cls.apply(image, **kwargs)
        assert out.dtype == np.uint8 and out.shape == image.shape, f"{cls.name}: apply broke shape/dtype"
        return out

    @classmethod
    def param_names(cls) -> list[str]:
        return list(_param_names(cls))


@functools.cache
def _param_names(cls: type[Degradation]) -> tuple[str, ...]:
    """Parameter names of ``cls.apply``, read once per class (``inspect.signature`` costs more than the rest of a replay's checks)."""
    return tuple(p for p in inspect.signature(cls.apply).parameters if p not in ("image", "depth"))


def check_param_names(cls: type[Degradation], params: dict[str, Any]) -> None:
    valid = cls.param_names()
    if not isinstance(params, dict):
        raise ParameterError(f"{cls.name}: params must be a JSON object of {', '.join(valid)}, got {type(params).__name__}")
    unknown = sorted(map(str, set(params) - set(valid)))
    missing = sorted(set(valid) - set(params))
    if unknown or missing:
        parts = [f"unknown {', '.join(unknown)}" if unknown else "", f"missing {', '.join(missing)}" if missing else ""]
        raise ParameterError(f"{cls.name}: bad parameters ({'; '.join(p for p in parts if p)}); valid parameters: {', '.join(valid)}")


def check_range(name: str, key: str, value: Any, lo: float | None = None, hi: float | None = None) -> None:
    """Raise a :class:`ParameterError` naming the degradation, the parameter, its value and the valid
    interval, for a value that is not a real number (bool, string, list, None, NaN, inf) or lies outside [lo, hi]."""
    interval = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{name}: parameter {key}={short_repr(value)} must be a number in {interval}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int beyond float64 (above 1.8e308) cannot be used as a number
        finite = False
    if not finite or (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ParameterError(f"{name}: parameter {key}={short_repr(value)} is outside the valid range {interval}")


def check_seed(name: str, value: Any) -> None:
    """Raise a :class:`ParameterError` unless ``value`` is an integer seed in [0, 2**63) (bool refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < SEED_BOUND:
        raise ParameterError(f"{name}: parameter seed={short_repr(value)} must be an integer in [0, 2**63)")


def short_repr(value: Any) -> str:
    """``repr`` of a parameter value for an error message, cut to 80 characters (values may be huge lists)."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's 4300-digit limit for str conversion
        text = f"<{type(value).__name__} too large to print>"
    return text if len(text) <= 80 else f"{text[:77]}..."


def spatial_scale(image: np.ndarray) -> float:
    """Scale of spatial parameters: ``min(H, W) / 512`` (they are defined at a 512-px short side)."""
    return min(image.shape[:2]) / REFERENCE_SIDE


def draw_seed(rng: np.random.Generator) -> int:
    """An integer seed for a random field, recorded in params so ``apply`` can replay it."""
    return int(rng.integers(SEED_BOUND))


def field_rng(seed: int) -> np.random.Generator:
    """The generator ``apply`` uses for a recorded seed (SFC64: the fastest numpy bit generator)."""
    return np.random.Generator(np.random.SFC64(seed))


# -- sRGB <-> linear light (IEC 61966-2-1) -----------------------------------------------------
def _decode(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _encode(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055)


_TO_LINEAR = _decode(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)
_ENCODE_BINS = 1 << 16
# Each bin of linear light maps to the uint8 level nearest to the sRGB value of the bin centre;
# results differ from exact rounding only within 1/2^17 of a rounding threshold.
_TO_SRGB8 = np.clip(np.rint(_encode((np.arange(_ENCODE_BINS) + 0.5) / _ENCODE_BINS) * 255.0), 0, 255).astype(np.uint8)


def to_linear(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 sRGB -> float32 linear light in [0, 1] (exact, by look-up table)."""
    return cv2.LUT(np.ascontiguousarray(image), _TO_LINEAR)


def to_srgb8(linear: np.ndarray) -> np.ndarray:
    """float32 linear light -> uint8 sRGB, clipped to [0, 1] and rounded once (never truncated).

    ``to_srgb8(to_linear(x)) == x`` exactly for every uint8 value.
    """
    return srgb8_from_bins(np.multiply(linear, _ENCODE_BINS, dtype=np.float32))


def srgb8_from_bins(bins: np.ndarray) -> np.ndarray:
    """:func:`to_srgb8` of float32 linear light already multiplied by ``_ENCODE_BINS`` (clipped in place).

    For callers that can fold the exact power-of-two scale into an earlier step (a kernel, a cast),
    saving a pass: ``srgb8_from_bins(x * 2**16) == to_srgb8(x)`` bit for bit.
    """
    np.clip(bins, 0, _ENCODE_BINS - 1, out=bins)
    return np.take(_TO_SRGB8, bins.astype(np.uint16))


def add_round_uint8(values: np.ndarray, image: np.ndarray) -> np.ndarray:
    """``round_to_uint8(values + image)`` for float32 ``values`` (|values| < 2^31) and a uint8 ``image`` of the
    same HxW[x3] shape, in one OpenCV pass: the float32 sum, rounded half to even and saturated to [0, 255].

    Both operands must be float32: given a uint8 operand, ``cv2.add`` sums in float64, which rounds
    differently at sums that float32 rounds onto a half.
    """
    return cv2.add(values, image.astype(np.float32), dtype=cv2.CV_8U)


def round_to_uint8(values: np.ndarray) -> np.ndarray:
    """float sRGB values in DN (0-255) -> uint8, rounded half-to-even once and clipped."""
    out = np.rint(values)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)
