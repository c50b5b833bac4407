"""LPIPS (Zhang, Isola, Efros, Shechtman, Wang 2018, "The Unreasonable Effectiveness of Deep
Features as a Perceptual Metric", CVPR), computed by pyiqa with verified offline weights.

LPIPS v0.1 on AlexNet: unit-normalised conv features of both images, squared differences weighted
per channel by learned linear layers, spatially averaged and summed over five layers. 0 for
identical images, larger is more different (typically 0-0.8). Inputs are RGB in [0, 1] (pyiqa maps
them to [-1, 1]); no colour conversion or border crop is applied.

Weights (see :mod:`uirbench.metrics.weights`): torchvision's ``alexnet-owt-7be5be79.pth`` and
pyiqa's ``LPIPS_v0.1_alex-df73285e.pth``; both are checked by sha256 before pyiqa runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from uirbench.metrics.base import check_pair
from uirbench.metrics.weights import ALEXNET, LPIPS_ALEX_LINEAR, require, require_pyiqa, torch_home
from uirbench.registry import METRICS


@lru_cache(maxsize=4)
def _lpips_model(weights_dir: str | None, device: str) -> torch.nn.Module:
    require_pyiqa("lpips")
    with torch_home(weights_dir):
        paths = require((LPIPS_ALEX_LINEAR, ALEXNET), weights_dir, "lpips")
        import pyiqa

        # the verified linear-layer file is passed explicitly; AlexNet comes from hub/checkpoints
        model = pyiqa.create_metric("lpips", device=torch.device(device),
                                    pretrained_model_path=str(paths[LPIPS_ALEX_LINEAR.name]))
    return model.eval()


@METRICS.register("lpips", higher_is_better=False, needs_reference=True, needs_weights=True, per_image=True)
@dataclass(frozen=True)
class LPIPS:
    """LPIPS v0.1 (AlexNet) per image via pyiqa. ``weights_dir``: a TORCH_HOME-style folder
    (``hub/pyiqa``, ``hub/checkpoints``); None uses TORCH_HOME / ``~/.cache/torch``.

    Input: NCHW float RGB in [0, 1]; output: float64 tensor [B], lower is better.
    The network is built once per (weights_dir, device) on the first call or :meth:`load`.
    """

    weights_dir: str | None = None

    def load(self, device: torch.device | str = "cpu") -> torch.nn.Module:
        """The pyiqa LPIPS model on ``device``; raises :class:`MissingWeightsError` naming missing files."""
        return _lpips_model(self.weights_dir, str(torch.device(device)))

    def __call__(self, restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_pair(restored, target)
        model = self.load(restored.device)
        with torch.no_grad():
            score = model(restored.float(), target.float())
        return score.reshape(restored.shape[0]).double()

    def spec(self) -> dict[str, Any]:
        return {"network": "LPIPS v0.1, AlexNet (Zhang et al. 2018)", "implementation": "pyiqa",
                "color_space": "RGB", "crop_border": 0, "input": "RGB in [0, 1], mapped to [-1, 1]"}
