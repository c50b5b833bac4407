"""Restormer: Zamir, Arora, Khan, Hayat, Khan, Yang, "Restormer: Efficient Transformer for
High-Resolution Image Restoration", CVPR 2022.

A 4-level U-Net of Transformer blocks (Sec. 3, Fig. 2). Each block is LayerNorm -> MDTA
(multi-Dconv head transposed attention, Sec. 3.1) and LayerNorm -> GDFN (gated-Dconv
feed-forward network, Sec. 3.2), both residual. Attention is computed across channels, not
pixels, so its cost is linear in the image size. Down-sampling is a 3x3 conv halving the channels
followed by PixelUnshuffle(2); up-sampling a 3x3 conv doubling them followed by PixelShuffle(2).
Decoder skips are concatenated and reduced by a 1x1 conv at every level except the top one, whose
decoder and the refinement stage run at twice the base width. A 3x3 conv gives the residual image
added to the input. Convolutions have no bias; LayerNorms have one ("WithBias").

Published configuration: width 48, blocks [4, 6, 6, 8], heads [1, 2, 4, 8], 4 refinement
blocks, GDFN expansion 2.66: 26.13M parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from uirbench.baselines.blocks import LayerNorm2d, init_weights
from uirbench.errors import UserError
from uirbench.models import shipped
from uirbench.recipes import RECIPES
from uirbench.registry import MODELS
from uirbench.restorer import Restorer
from uirbench.rng import private_rng


@dataclass(frozen=True)
class RestormerConfig:
    """Architecture of a Restormer U-Net.

    ``dim``: channels at full resolution (doubled per level); ``num_blocks`` / ``heads``:
    Transformer blocks and attention heads per level, top to bottom (the last entry is the
    latent level); ``refinement_blocks``: blocks after the top decoder; ``ffn_expansion``: GDFN
    hidden-channel factor gamma.
    """

    dim: int = 48
    num_blocks: tuple[int, ...] = (4, 6, 6, 8)
    heads: tuple[int, ...] = (1, 2, 4, 8)
    refinement_blocks: int = 4
    ffn_expansion: float = 2.66

    def __post_init__(self) -> None:
        if len(self.num_blocks) != len(self.heads) or len(self.num_blocks) < 2:
            raise UserError(f"RestormerConfig.num_blocks {self.num_blocks} and heads {self.heads} must have "
                             "equal length >= 2 (one entry per level)")
        for level, h in enumerate(self.heads):
            channels = self.level_channels(level)
            if h < 1 or channels % h:
                raise UserError(f"RestormerConfig.heads[{level}]={h} must divide the level's {channels} channels")
        if self.ffn_expansion <= 0:
            raise UserError(f"RestormerConfig.ffn_expansion must be positive, got {self.ffn_expansion}")

    @property
    def levels(self) -> int:
        return len(self.num_blocks)

    def level_channels(self, level: int) -> int:
        """Encoder channels at ``level`` (0 = full resolution)."""
        return self.dim * 2**level


PRESETS = {
    "tiny": RestormerConfig(dim=8, num_blocks=(1, 1, 1), heads=(1, 2, 4), refinement_blocks=1),  # PromptIR tiny's backbone
    "small": RestormerConfig(dim=16, num_blocks=(1, 2, 2, 4), heads=(1, 2, 4, 8), refinement_blocks=1),  # 1.56M parameters
    "paper": RestormerConfig(),
}


class MDTA(nn.Module):
    """Multi-Dconv head transposed attention (Sec. 3.1, Eq. 1-2); (N, C, H, W) -> (N, C, H, W).

    Q, K, V = 3x3 depthwise(1x1 conv(x)); per head, Q and K (C/heads x HW) are L2-normalised
    along HW and the C/heads x C/heads map softmax(K Q^T * temperature) mixes V's channels.
    ``temperature`` is one learnable scalar per head (starts at 1).
    """

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(channels, 3 * channels, 1, bias=False)
        self.qkv_dw = nn.Conv2d(3 * channels, 3 * channels, 3, padding=1, groups=3 * channels, bias=False)
        self.project = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv_dw(self.qkv(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)  # (N, heads, C/heads, C/heads)
        return self.project((attn @ v).reshape(n, c, h, w))


class GDFN(nn.Module):
    """Gated-Dconv feed-forward network (Sec. 3.2, Eq. 3); (N, C, H, W) -> (N, C, H, W).

    1x1 conv to 2 x hidden channels (hidden = int(gamma * C)), 3x3 depthwise conv, split in two
    halves, GELU(first) * second, 1x1 conv back to C.
    """

    def __init__(self, channels: int, expansion: float) -> None:
        super().__init__()
        hidden = int(channels * expansion)
        self.expand = nn.Conv2d(channels, 2 * hidden, 1, bias=False)
        self.dw = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=False)
        self.project = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.dw(self.expand(x)).chunk(2, dim=1)
        return self.project(F.gelu(gate) * value)


class TransformerBlock(nn.Module):
    """Restormer block (Fig. 2): x + MDTA(LN(x)), then + GDFN(LN(.)); (N, C, H, W) -> same."""

    def __init__(self, channels: int, heads: int, expansion: float) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(channels, eps=1e-5)
        self.attn = MDTA(channels, heads)
        self.norm2 = LayerNorm2d(channels, eps=1e-5)
        self.ffn = GDFN(channels, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def transformer_stage(channels: int, blocks: int, heads: int, expansion: float) -> nn.Sequential:
    return nn.Sequential(*[TransformerBlock(channels, heads, expansion) for _ in range(blocks)])


def downsample(channels: int) -> nn.Sequential:
    """(N, C, H, W) -> (N, 2C, H/2, W/2): 3x3 conv to C/2, PixelUnshuffle(2)."""
    return nn.Sequential(nn.Conv2d(channels, channels // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))


def upsample(channels: int) -> nn.Sequential:
    """(N, C, H, W) -> (N, C/2, 2H, 2W): 3x3 conv to 2C, PixelShuffle(2)."""
    return nn.Sequential(nn.Conv2d(channels, 2 * channels, 3, padding=1, bias=False), nn.PixelShuffle(2))


@MODELS.register("restormer", kind="baseline", config=RestormerConfig, presets=PRESETS, recipes=RECIPES["restormer"],
                 trainer="uirbench.baselines.task:train_baseline", default_checkpoint=shipped("restormer"),
                 paper="Zamir et al. 2022, Restormer: Efficient Transformer for High-Resolution Image Restoration")
class Restormer(Restorer):
    """Restormer U-Net (Sec. 3, Fig. 2); (N, 3, H, W) in [0, 1] -> same, H and W multiples of 2^(levels-1).

    The decoder calls ``bridge(level, feat)`` on the features of every level below the top before
    they are up-sampled; here it is the identity (PromptIR inserts its prompt blocks there).
    Weights are drawn from ``generator`` (seed 0 when None), never from the global RNG.
    """


    def __init__(self, config: RestormerConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self._config = config
        self.size_multiple = 2 ** (config.levels - 1)
        with private_rng():
            self.build(config)
        init_weights(self, generator)

    def build(self, config: RestormerConfig) -> None:
        """Create the layers (called inside ``private_rng``); subclasses add theirs after this."""
        cfg, top = config, config.levels - 1
        ch = cfg.level_channels
        self.embed = nn.Conv2d(3, cfg.dim, 3, padding=1, bias=False)
        self.encoders = nn.ModuleList(
            transformer_stage(ch(i), cfg.num_blocks[i], cfg.heads[i], cfg.ffn_expansion) for i in range(top + 1))
        self.downs = nn.ModuleList(downsample(ch(i)) for i in range(top))
        # decoder modules are indexed by level; level 0 keeps the concatenated 2 x dim channels
        self.ups = nn.ModuleList(upsample(ch(i + 1)) for i in range(top))
        self.reduces = nn.ModuleList(
            nn.Identity() if i == 0 else nn.Conv2d(2 * ch(i), ch(i), 1, bias=False) for i in range(top))
        self.decoders = nn.ModuleList(
            transformer_stage(ch(i) if i else 2 * cfg.dim, cfg.num_blocks[i], cfg.heads[i], cfg.ffn_expansion)
            for i in range(top))
        self.refinement = transformer_stage(2 * cfg.dim, cfg.refinement_blocks, cfg.heads[0], cfg.ffn_expansion)
        self.output = nn.Conv2d(2 * cfg.dim, 3, 3, padding=1, bias=False)

    def bridge(self, level: int, feat: torch.Tensor) -> torch.Tensor:
        return feat

    def forward(self, x: torch.Tensor, degradation_hint: list[str] | None = None) -> torch.Tensor:
        feat = self.embed(x)
        skips = []
        for level, down in enumerate(self.downs):
            feat = self.encoders[level](feat)
            skips.append(feat)
            feat = down(feat)
        feat = self.encoders[-1](feat)
        for level in reversed(range(len(self.ups))):
            feat = self.ups[level](self.bridge(level + 1, feat))
            feat = self.reduces[level](torch.cat([feat, skips[level]], dim=1))
            feat = self.decoders[level](feat)
        return x + self.output(self.refinement(feat))
