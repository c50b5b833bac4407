"""Degradation generators, one file per family, registered in ``DEGRADATIONS``.

Use :func:`create` to build one by name: a registered variant (``awgn``), a family (``noise``,
its default variant), a mixed recipe (``haze+rain``) or any ``+``-joined chain of names.
"""

from __future__ import annotations

from uirbench.degradations import blur, haze, jpeg, lowlight, noise, rain  # noqa: F401  (register built-ins)
from uirbench.degradations.base import STAGES, TRACKS, Degradation, Range, to_linear, to_srgb8
from uirbench.degradations.mixed import RECIPES, Mixed, canonical, physical_order
from uirbench.registry import DEGRADATIONS, UnknownNameError


def create(name: str, severity: int | None = 3, track: str = "train") -> Degradation:
    """Build a degradation by name: variant, family alias, mixed recipe or ``a+b+c`` chain (``uirbench list degradations``).

    ``severity``: 1-5 (the suite's fixed levels), 0 (neutral: the image is returned unchanged) or None
    (continuous parameters drawn from the ``track``'s ranges: ``train`` or ``ood``). Calling the result on an
    HxWx3 uint8 RGB image with a ``numpy.random.Generator`` returns the degraded image and its physical parameters:

    >>> import numpy as np
    >>> degraded, params = create("jpeg", severity=5)(np.full((16, 16, 3), 128, np.uint8), np.random.default_rng(0))
    >>> degraded.shape, degraded.dtype.name, params
    ((16, 16, 3), 'uint8', {'quality': 30})
    """
    if name in RECIPES:
        return Mixed(stages=RECIPES[name], severity=severity, track=track)
    if "+" in name:
        return Mixed(stages=tuple(part.strip() for part in name.split("+")), severity=severity, track=track)
    if name not in DEGRADATIONS:
        raise UnknownNameError(DEGRADATIONS.unknown_message(name) + f". Mixed recipes: {', '.join(RECIPES)}; "
                               "or join names with '+', e.g. motion-blur+awgn+jpeg")
    return DEGRADATIONS.get(name)(severity=severity, track=track)


def families(name: str) -> list[str]:
    """Family labels of a degradation, recipe or chain (sorted).

    >>> families("blur+noise+jpeg")
    ['blur', 'jpeg', 'noise']
    >>> families("camera-noise")
    ['noise']
    """
    deg = create(name, severity=1)
    stages = deg.stages if isinstance(deg, Mixed) else (name,)
    return sorted({DEGRADATIONS.spec(s).family for s in stages})


def describe() -> list[tuple[str, str]]:
    """(name, one-line description) for every registered degradation and mixed recipe."""
    rows = []
    for name in DEGRADATIONS.names():
        spec = DEGRADATIONS.spec(name)
        cls = DEGRADATIONS.get(name)
        if spec.alias_of is not None:
            text = f"family '{spec.family}': default variant {spec.alias_of}"
        else:
            doc = (cls.__doc__ or "").strip().splitlines()[0]
            text = f"[{cls.stage}] {doc}"
        rows.append((name, text))
    for recipe, stages in RECIPES.items():
        rows.append((recipe, f"[mixed recipe] {' -> '.join(physical_order(stages))}"))
    return rows


__all__ = [
    "RECIPES", "STAGES", "TRACKS", "Degradation", "Mixed", "Range", "canonical", "create", "describe", "families",
    "to_linear", "to_srgb8",
]
