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
    """Build a degradation by name: variant, family alias, mixed recipe or ``a+b+c`` chain."""
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
    return sorted({DEGRADATIONS.meta(s)["family"] for s in stages})


def describe() -> list[tuple[str, str]]:
    """(name, one-line description) for every registered degradation and mixed recipe."""
    rows = []
    for name in DEGRADATIONS.names():
        meta = DEGRADATIONS.meta(name)
        cls = DEGRADATIONS.get(name)
        if "alias_of" in meta:
            text = f"family '{meta['family']}': default variant {meta['alias_of']}"
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
