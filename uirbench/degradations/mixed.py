"""Mixed degradations: a chain of single degradations applied in physical order.

Whatever order the stages are listed in, they are applied as a camera would meet them (see
``base.STAGES``): scene (haze, then rain in front of it) -> optics (blur) -> exposure (low light)
-> sensor (noise) -> compression (JPEG). Ties inside one stage keep a fixed order by name.

Seeds: ``sample`` draws one chain seed from the caller's generator; each stage then gets its own
``np.random.SeedSequence(chain_seed, spawn_key=(crc32(stage name),))`` child. A stage's parameters
therefore do not depend on which other stages are in the chain or on their order, and adding a
stage never changes the others' random draws. Every stage's parameters are recorded, in applied
order, as ``{"stages": [{"name": ..., "params": {...}}, ...]}``.

Between stages the image is rounded to uint8 (each stage rounds once at its end); the extra
quantisation (variance 1/12 DN^2 per stage) is far below every stage's own effect.

Valid ``stages`` (checked by ``apply`` before any stage runs): a non-empty list of
``{"name": ..., "params": {...}}`` records, names registered single degradations (not ``mixed``),
each at most once, in physical order, each record with exactly its degradation's parameter names.
Each stage checks the ranges of its own values (:class:`~uirbench.errors.ParameterError`, naming
the stage's degradation, the parameter, its value and the range) before it allocates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from uirbench.degradations.base import STAGES, Degradation, check_param_names, draw_seed, short_repr
from uirbench.errors import ParameterError
from uirbench.registry import DEGRADATIONS
from uirbench.rng import child_rng, key32

# Within the scene stage, haze (distant atmosphere) is composited before rain (streaks near the camera).
_WITHIN_STAGE_ORDER = {"haze": 0, "rain": 1}

RECIPES: dict[str, tuple[str, ...]] = {
    # pairs and triples of capture degradations
    "blur+noise": ("motion-blur", "poisson-gaussian"),
    "blur+jpeg": ("motion-blur", "jpeg"),
    "noise+jpeg": ("poisson-gaussian", "jpeg"),
    "lowlight+blur": ("lowlight", "motion-blur"),
    "blur+noise+jpeg": ("motion-blur", "poisson-gaussian", "jpeg"),
    # weather combinations (CDD-11 style, without snow)
    "haze+rain": ("haze", "rain"),
    "lowlight+haze": ("lowlight", "haze"),
    "lowlight+rain": ("lowlight", "rain"),
    "lowlight+haze+rain": ("lowlight", "haze", "rain"),
}
"""Named recipes: recipe name -> stage names (applied in physical order, not in this order)."""


def canonical(name: str) -> str:
    """Resolve a family alias (``noise`` -> ``awgn``) to the registered variant name."""
    return DEGRADATIONS.spec(name).alias_of or name


def stage_class(name: str) -> type[Degradation]:
    cls = DEGRADATIONS.get(name)
    if cls is Mixed:
        raise ParameterError("mixed: a stage cannot itself be 'mixed'; list single degradations, e.g. motion-blur+awgn+jpeg")
    return cls


def physical_order(names: tuple[str, ...] | list[str]) -> list[str]:
    """Canonical stage names sorted into capture order (scene -> optics -> exposure -> sensor -> compression)."""
    resolved = [canonical(n) for n in names]
    if len(set(resolved)) != len(resolved):
        raise ParameterError(f"mixed: a degradation is listed twice in {list(names)}")

    def key(name: str) -> tuple[int, int, str]:
        return STAGES.index(stage_class(name).stage), _WITHIN_STAGE_ORDER.get(name, 0), name

    return sorted(resolved, key=key)


def stage_rng(chain_seed: int, name: str) -> np.random.Generator:
    """The generator of one stage: a SeedSequence child keyed by the stage's name."""
    return child_rng(chain_seed, key32(name))


@DEGRADATIONS.register("mixed", family="mixed")
@dataclass(frozen=True)
class Mixed(Degradation):
    """A chain of degradations at one ``severity`` (every stage gets it), in physical order."""

    stages: tuple[str, ...] = RECIPES["blur+noise+jpeg"]

    stage = "mixed"
    uses_depth = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.stages, str) or not self.stages:
            raise ParameterError(f"mixed: stages must be a non-empty tuple of degradation names, got {self.stages!r}")
        physical_order(self.stages)  # validates names, duplicates and nesting

    def sample(self, rng: np.random.Generator, image: np.ndarray, depth: np.ndarray | None = None) -> dict[str, Any]:
        chain_seed = draw_seed(rng)
        stages = []
        for name in physical_order(self.stages):
            cls = stage_class(name)
            params = cls(severity=self.severity, track=self.track).sample(stage_rng(chain_seed, name), image, depth)
            stages.append({"name": name, "params": params})
        return {"stages": stages}

    @staticmethod
    def apply(image: np.ndarray, *, stages: list[dict[str, Any]], depth: np.ndarray | None = None) -> np.ndarray:
        if not isinstance(stages, list) or not stages or not all(
                isinstance(s, dict) and set(s) == {"name", "params"} and isinstance(s["name"], str) for s in stages):
            raise ParameterError(f"mixed: parameter stages={short_repr(stages)} must be a non-empty list of "
                                 "{'name': ..., 'params': {...}} records")
        names = [s["name"] for s in stages]
        if names != physical_order(names):
            raise ParameterError(f"mixed: recorded stages {names} are not in physical order {physical_order(names)}")
        for record in stages:
            check_param_names(stage_class(record["name"]), record["params"])
        out = image
        for record in stages:
            out = stage_class(record["name"]).replay(out, record["params"], depth)
        return out if out is not image else image.copy()
