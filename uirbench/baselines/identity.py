"""``identity``: returns its input. The floor of every table: a model must beat the degraded input."""

from __future__ import annotations

import torch

from uirbench.registry import MODELS
from uirbench.restorer import Restorer


@MODELS.register("identity", kind="baseline", paper="the degraded input itself")
class Identity(Restorer):
    """Returns the degraded input unchanged (scores equal the dataset card's input PSNR/SSIM)."""


    def forward(self, x: torch.Tensor, degradation_hint: list[str] | None = None) -> torch.Tensor:
        return x.clone()
