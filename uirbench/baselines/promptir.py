"""PromptIR: Potlapalli, Zamir, Khan, Khan, "PromptIR: Prompting for All-in-One Blind Image
Restoration", NeurIPS 2023.

A Restormer U-Net (see ``restormer.py``) whose decoder receives a prompt block between every two
consecutive levels (Sec. 3, Fig. 2): three blocks for the 4-level model. A prompt block
(Sec. 3.1, Fig. 3) has two parts:

* Prompt generation (PGM, Eq. 1): ``N`` learnable prompt components P_c (N x C_p x S x S) are
  mixed with weights ``w = softmax(linear(global_avg_pool(F)))`` predicted from the incoming
  features F, the mixture is resized (bilinear) to F's size and passed through a 3x3 conv.
* Prompt interaction (PIM, Eq. 2): concatenate F and the prompt along channels, one Restormer
  Transformer block, a 1x1 conv back to the decoder's channels.

Published configuration: Restormer width 48, blocks [4, 6, 6, 8], heads [1, 2, 4, 8], 4
refinement blocks; N = 5 components, C_p = 64 / 128 / 320 and S = 64 / 32 / 16 at decoder levels
2 / 3 / 4 (counted from the top). In the released model the latent level's interaction conv also
halves the channels (C_latent + C_p -> C_latent / 2), so the first up-sampling starts from half the
latent width and the level-3 skip reduction takes 1.5x instead of 2x the level's channels; we
follow that layout: 35.38M parameters (REFERENCE, from the official code: 35.59M).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from uirbench.baselines.restormer import Restormer, RestormerConfig, TransformerBlock, upsample
from uirbench.errors import UserError
from uirbench.models import shipped
from uirbench.recipes import RECIPES
from uirbench.registry import MODELS
from uirbench.rng import DEFAULT_SEED, torch_generator


@dataclass(frozen=True)
class PromptIRConfig(RestormerConfig):
    """Restormer architecture plus one prompt block per level below the top.

    ``prompt_len``: components N per block; ``prompt_dims`` / ``prompt_sizes``: channels C_p and
    side S of the components at levels 1 .. levels-1 (0 = full resolution). Needs >= 3 levels
    (the latent interaction hands half the latent width to a level that has a skip reduction).
    """

    prompt_len: int = 5
    prompt_dims: tuple[int, ...] = (64, 128, 320)
    prompt_sizes: tuple[int, ...] = (64, 32, 16)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.levels < 3:
            raise UserError(f"PromptIRConfig.num_blocks {self.num_blocks}: PromptIR needs at least 3 levels")
        if len(self.prompt_dims) != self.levels - 1 or len(self.prompt_sizes) != self.levels - 1:
            raise UserError(f"PromptIRConfig.prompt_dims {self.prompt_dims} and prompt_sizes {self.prompt_sizes} need "
                             f"one entry per level below the top ({self.levels - 1})")
        for level, dim in enumerate(self.prompt_dims, start=1):
            if (self.level_channels(level) + dim) % self.heads[level]:
                raise UserError(f"PromptIRConfig.prompt_dims[{level - 1}]={dim}: channels + prompt_dim must be "
                                 f"divisible by heads[{level}]={self.heads[level]}")
        if self.prompt_len < 1 or min(self.prompt_sizes) < 1:
            raise UserError("PromptIRConfig.prompt_len and prompt_sizes must be positive")


PRESETS = {
    "tiny": PromptIRConfig(dim=8, num_blocks=(1, 1, 1), heads=(1, 2, 4), refinement_blocks=1,
                           prompt_len=3, prompt_dims=(8, 16), prompt_sizes=(16, 8)),
    "small": PromptIRConfig(dim=16, num_blocks=(1, 2, 2, 4), heads=(1, 2, 4, 8), refinement_blocks=1,  # Restormer small's
                            prompt_len=5, prompt_dims=(16, 32, 64), prompt_sizes=(32, 16, 8)),  # backbone; 2.15M parameters
    "paper": PromptIRConfig(),
}


class PromptGeneration(nn.Module):
    """PGM (Sec. 3.1, Eq. 1): features (B, C, H, W) -> prompt (B, C_p, H, W).

    ``components`` (N, C_p, S, S) start as U[0, 1) draws (``PromptIR.__init__``).
    """

    def __init__(self, channels: int, prompt_dim: int, prompt_len: int, prompt_size: int) -> None:
        super().__init__()
        self.components = nn.Parameter(torch.empty(prompt_len, prompt_dim, prompt_size, prompt_size))
        self.weights = nn.Linear(channels, prompt_len)
        self.conv = nn.Conv2d(prompt_dim, prompt_dim, 3, padding=1, bias=False)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        w = self.weights(feat.mean(dim=(2, 3))).softmax(dim=1)  # (B, N)
        prompt = torch.einsum("bn,nchw->bchw", w, self.components)
        prompt = F.interpolate(prompt, size=feat.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(prompt)


class PromptBlock(nn.Module):
    """Prompt generation + interaction (Sec. 3.1, Fig. 3): (B, C, H, W) -> (B, out_channels, H, W)."""

    def __init__(self, channels: int, out_channels: int, prompt_dim: int, prompt_len: int, prompt_size: int,
                 heads: int, expansion: float) -> None:
        super().__init__()
        self.generate = PromptGeneration(channels, prompt_dim, prompt_len, prompt_size)
        self.interact = TransformerBlock(channels + prompt_dim, heads, expansion)
        self.project = nn.Conv2d(channels + prompt_dim, out_channels, 1, bias=False)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        fused = torch.cat([feat, self.generate(feat)], dim=1)
        return self.project(self.interact(fused))


@MODELS.register("promptir", kind="baseline", config=PromptIRConfig, presets=PRESETS, recipes=RECIPES["promptir"],
                 trainer="uirbench.baselines.task:train_baseline", default_checkpoint=shipped("promptir"),
                 paper="Potlapalli et al. 2023, PromptIR: Prompting for All-in-One Blind Image Restoration")
class PromptIR(Restormer):
    """PromptIR (Sec. 3, Fig. 2); (N, 3, H, W) in [0, 1] -> same, H and W multiples of 2^(levels-1).

    Weights and prompt components are drawn from ``generator`` (seed 0 when None).
    """


    def __init__(self, config: PromptIRConfig, *, generator: torch.Generator | None = None) -> None:
        generator = generator if generator is not None else torch_generator(DEFAULT_SEED)
        super().__init__(config, generator=generator)
        for block in self.prompt_blocks:
            components = block.generate.components
            if not components.is_meta:
                with torch.no_grad():
                    components.copy_(torch.rand(components.shape, generator=generator))

    def build(self, config: PromptIRConfig) -> None:
        super().build(config)
        ch, top = config.level_channels, config.levels - 1
        self.prompt_blocks = nn.ModuleList(
            PromptBlock(ch(level), ch(level - 1) if level == top else ch(level), config.prompt_dims[level - 1],
                        config.prompt_len, config.prompt_sizes[level - 1], config.heads[level], config.ffn_expansion)
            for level in range(1, top + 1))
        # the latent block already halved the channels: up-sample from ch(top-1), reduce 1.5 x ch(top-1)
        self.ups[top - 1] = upsample(ch(top - 1))
        self.reduces[top - 1] = nn.Conv2d(ch(top - 1) // 2 + ch(top - 1), ch(top - 1), 1, bias=False)

    def bridge(self, level: int, feat: torch.Tensor) -> torch.Tensor:
        return self.prompt_blocks[level - 1](feat)
