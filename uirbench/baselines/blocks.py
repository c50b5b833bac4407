"""Building blocks shared by the learned baselines, and their seeded initialisation.

* ``LayerNorm2d``: layer normalisation over the channels of every pixel of an NCHW map, with a
  learnable per-channel scale and shift (NAFNet Sec. 3.2; Restormer's "WithBias" LayerNorm,
  Sec. 3). Equivalent to ``nn.LayerNorm(C)`` applied to the NHWC view.
* ``init_weights``: every model builds its layers inside ``uirbench.rng.private_rng()`` (so
  PyTorch's default initialisation leaves the global RNG untouched), then redraws the weights from
  an explicit ``torch.Generator`` with PyTorch's own default distribution (``rng.init_uniform_``).
  A model built twice with generators of the same seed is bit-identical, whatever else ran before.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from uirbench.rng import DEFAULT_SEED, init_uniform_, torch_generator


class LayerNorm2d(nn.Module):
    """LayerNorm over channels: ``(x - mean_c) / sqrt(var_c + eps) * weight + bias`` per pixel.

    Shapes: (N, C, H, W) -> (N, C, H, W). ``var_c`` is the population variance over the C channels.
    """

    def __init__(self, channels: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


def init_weights(module: nn.Module, generator: torch.Generator | None) -> None:
    """Redraw the weight and bias of every layer with a >= 2-D ``weight`` (conv, linear, deformable
    conv) as U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    That is PyTorch's default (``kaiming_uniform_(a=sqrt(5))`` for weights, the same bound for
    biases), drawn from ``generator`` (seed ``DEFAULT_SEED`` when None) in ``module.modules()``
    order by ``rng.init_uniform_``. Norm layers and the models' own constant-initialised parameters
    are left as built. Parameters on the ``meta`` device (parameter counting) are skipped.
    """
    if generator is None:
        generator = torch_generator(DEFAULT_SEED)
    for layer in module.modules():
        weight, bias = getattr(layer, "weight", None), getattr(layer, "bias", None)
        if not isinstance(weight, nn.Parameter) or weight.ndim < 2 or weight.is_meta:
            continue  # norm layers (1-D weights) keep their ones / zeros
        init_uniform_(weight, bias, generator)  # fan_in = in_channels / groups * kh * kw
