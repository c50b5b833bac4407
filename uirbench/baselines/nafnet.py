"""NAFNet: Chen, Chu, Zhang, Sun, "Simple Baselines for Image Restoration", ECCV 2022.

A nonlinear-activation-free U-Net. Every block replaces activations by a SimpleGate (split the
channels in two halves and multiply them, Sec. 3.3) and channel attention by the Simplified
Channel Attention (global average pool + 1x1 conv, multiply, Sec. 3.3). The network
(Sec. 3.1, Fig. 2c/3) is: 3x3 conv to ``width`` channels; per encoder level, NAFBlocks then a
2x2 stride-2 conv that halves the resolution and doubles the channels; middle blocks; per decoder
level, a 1x1 conv + PixelShuffle(2) that doubles the resolution and halves the channels, the
encoder skip added, then NAFBlocks; a 3x3 conv to 3 channels, added to the input (global residual).

Published configuration counted here: width 32, encoder blocks [1, 1, 1, 28], 1 middle block,
decoder blocks [1, 1, 1, 1] (the paper's GoPro model): 17.11M parameters (REFERENCE: 17.11M; width 64: 67.89M).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from uirbench.baselines.blocks import LayerNorm2d, init_weights
from uirbench.errors import UserError
from uirbench.models import shipped
from uirbench.recipes import RECIPES
from uirbench.registry import MODELS
from uirbench.restorer import Restorer
from uirbench.rng import private_rng


@dataclass(frozen=True)
class NAFNetConfig:
    """Architecture of a NAFNet U-Net.

    ``width``: channels at full resolution (doubled at every level); ``enc_blocks`` /
    ``dec_blocks``: NAFBlocks per level from the top (one entry per 2x down-sampling);
    ``middle_blocks``: blocks at the lowest resolution.
    """

    width: int = 32
    enc_blocks: tuple[int, ...] = (1, 1, 1, 28)
    middle_blocks: int = 1
    dec_blocks: tuple[int, ...] = (1, 1, 1, 1)

    def __post_init__(self) -> None:
        if self.width < 1:
            raise UserError(f"NAFNetConfig.width must be positive, got {self.width}")
        if len(self.enc_blocks) != len(self.dec_blocks) or not self.enc_blocks:
            raise UserError(f"NAFNetConfig.enc_blocks {self.enc_blocks} and dec_blocks {self.dec_blocks} "
                             "must be non-empty and of equal length (one entry per level)")
        if min(*self.enc_blocks, *self.dec_blocks, self.middle_blocks) < 0:
            raise UserError("NAFNetConfig: block counts must be >= 0")


PRESETS = {
    "tiny": NAFNetConfig(width=16, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1)),
    "small": NAFNetConfig(width=16, enc_blocks=(1, 1, 1, 4), middle_blocks=2, dec_blocks=(1, 1, 1, 1)),  # 1.96M parameters
    "paper": NAFNetConfig(),
}


class SimpleGate(nn.Module):
    """SimpleGate (Sec. 3.3): (N, 2C, H, W) -> (N, C, H, W), first half times second half."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class SimplifiedChannelAttention(nn.Module):
    """SCA (Sec. 3.3): ``x * conv1x1(global_avg_pool(x))``; (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv(self.pool(x))


class NAFBlock(nn.Module):
    """NAFNet's block (Sec. 3.2-3.3, Fig. 3c); (N, C, H, W) -> (N, C, H, W).

    Spatial branch: LayerNorm -> 1x1 conv (C -> 2C) -> 3x3 depthwise conv -> SimpleGate (-> C)
    -> SCA -> 1x1 conv, scaled by ``beta``. Feed-forward branch: LayerNorm -> 1x1 conv (C -> 2C)
    -> SimpleGate -> 1x1 conv, scaled by ``gamma``. Both branches are residual; ``beta`` and
    ``gamma`` are per-channel and start at zero, so every block starts as the identity.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        c = channels
        self.norm1 = LayerNorm2d(c, eps=1e-6)
        self.spatial = nn.Sequential(
            nn.Conv2d(c, 2 * c, 1),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c),
            SimpleGate(),
            SimplifiedChannelAttention(c),
            nn.Conv2d(c, c, 1),
        )
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.norm2 = LayerNorm2d(c, eps=1e-6)
        self.ffn = nn.Sequential(nn.Conv2d(c, 2 * c, 1), SimpleGate(), nn.Conv2d(c, c, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.beta * self.spatial(self.norm1(x))
        return y + self.gamma * self.ffn(self.norm2(y))


def _stage(channels: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(*[NAFBlock(channels) for _ in range(blocks)])


@MODELS.register("nafnet", kind="baseline", config=NAFNetConfig, presets=PRESETS, recipes=RECIPES["nafnet"],
                 trainer="uirbench.baselines.task:train_baseline", default_checkpoint=shipped("nafnet"),
                 paper="Chen et al. 2022, Simple Baselines for Image Restoration")
class NAFNet(Restorer):
    """NAFNet U-Net (Sec. 3.1); (N, 3, H, W) in [0, 1] -> (N, 3, H, W), H and W multiples of 2^levels.

    Weights are drawn from ``generator`` (seed 0 when None), never from the global RNG.
    """


    def __init__(self, config: NAFNetConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self._config = config
        self.size_multiple = 2 ** len(config.enc_blocks)
        w = config.width
        widths = [w * 2**i for i in range(len(config.enc_blocks))]
        with private_rng():
            self.intro = nn.Conv2d(3, w, 3, padding=1)
            self.encoders = nn.ModuleList(_stage(c, n) for c, n in zip(widths, config.enc_blocks, strict=True))
            self.downs = nn.ModuleList(nn.Conv2d(c, 2 * c, 2, stride=2) for c in widths)
            self.middle = _stage(2 * widths[-1], config.middle_blocks)
            # decoders run bottom-up: index 0 is the lowest level
            self.ups = nn.ModuleList(
                nn.Sequential(nn.Conv2d(2 * c, 4 * c, 1, bias=False), nn.PixelShuffle(2)) for c in reversed(widths))
            self.decoders = nn.ModuleList(_stage(c, n) for c, n in zip(reversed(widths), reversed(config.dec_blocks), strict=True))
            self.ending = nn.Conv2d(w, 3, 3, padding=1)
        init_weights(self, generator)

    def forward(self, x: torch.Tensor, degradation_hint: list[str] | None = None) -> torch.Tensor:
        feat = self.intro(x)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            feat = encoder(feat)
            skips.append(feat)
            feat = down(feat)
        feat = self.middle(feat)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips), strict=True):
            feat = decoder(up(feat) + skip)
        return x + self.ending(feat)
