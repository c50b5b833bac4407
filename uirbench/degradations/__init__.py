"""Degradation generators, one file per family, registered in ``DEGRADATIONS``."""

from uirbench.degradations import noise  # noqa: F401  (registers awgn, poisson-gaussian, camera-noise)
from uirbench.degradations.base import STAGES, Degradation, Range, to_linear, to_srgb8

__all__ = ["STAGES", "Degradation", "Range", "to_linear", "to_srgb8"]
