"""Summary statistics shared by evaluate and the leaderboard: means with bootstrap confidence intervals."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from uirbench.errors import UserError

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def bootstrap_ci(values: np.ndarray | list[float], *, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (Efron & Tibshirani 1993), resampling images with replacement.

    Deterministic: the resampling generator is seeded (``seed``). A single value gives (v, v).
    """
    x = np.asarray(values, np.float64)
    if x.size == 0:
        raise UserError("bootstrap_ci: no values")
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(resamples, x.size))
    means = x[idx].mean(axis=1)
    alpha = (1.0 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def summarize(values: np.ndarray | list[float]) -> dict[str, Any]:
    """``{"mean", "ci95": [lo, hi], "n"}`` of per-image scores (finite values only are allowed); the interval is
    the seeded percentile bootstrap of :func:`bootstrap_ci`.

    >>> summarize([30.0, 31.0, 32.0])
    {'mean': 31.0, 'ci95': [30.0, 32.0], 'n': 3}
    """
    x = np.asarray(values, np.float64)
    if not np.isfinite(x).all():
        raise UserError("summarize: scores must be finite (PSNR is capped, never inf)")
    lo, hi = bootstrap_ci(x)
    return {"mean": float(x.mean()), "ci95": [lo, hi], "n": int(x.size)}


def overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two summaries' 95% intervals overlap (then their difference is not established)."""
    return not (a["ci95"][1] < b["ci95"][0] or b["ci95"][1] < a["ci95"][0])


def fmt(value: float, digits: int = 2) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
