"""Use any uirbench degradation as an albumentations image-only transform.

``to_albumentations(create("haze+rain", severity=3))`` returns a transform for ``A.Compose``.
Parameters are sampled from the pipeline's own numpy generator (``Compose(seed=...)`` makes them
reproducible), and the recorded physical parameters are retrievable from the transform's
``params["uir_params"]`` or from ``Compose(..., save_applied_params=True)`` output.
"""

from __future__ import annotations

from typing import Any

from uirbench.degradations.base import Degradation


def to_albumentations(degradation: Degradation, p: float = 1.0) -> Any:
    """Wrap ``degradation`` as an ``albumentations.ImageOnlyTransform`` applied with probability ``p``."""
    from albumentations.core.transforms_interface import ImageOnlyTransform

    class UIRBenchDegradation(ImageOnlyTransform):
        """uirbench degradation inside albumentations (image only; masks/boxes untouched)."""

        def __init__(self) -> None:
            super().__init__(p=p)
            self.degradation = degradation

        @property
        def targets_as_params(self) -> list[str]:
            return ["image"]

        def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
            return {"uir_params": self.degradation.sample(self.random_generator, data["image"])}

        def apply(self, img: Any, uir_params: dict[str, Any], **_: Any) -> Any:
            return type(self.degradation).replay(img, uir_params)

        def get_transform_init_args_names(self) -> tuple[str, ...]:
            return ()

    return UIRBenchDegradation()
