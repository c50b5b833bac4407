"""AirNet: Li, Liu, Hu, Wu, Lv, Peng, "All-In-One Image Restoration for Unknown Corruption", CVPR 2022.

Two parts (Sec. 3, Fig. 2):

* CBDE, the contrastive-based degradation encoder (Sec. 3.1): a small ResNet-like encoder whose
  global-pooled output z is the degradation representation. It is trained MoCo-style: patches of
  the same image (same degradation) are positives, patches of other images and a queue of past
  keys are negatives, InfoNCE on a projection of z (``contrastive_loss``); the key encoder is a
  momentum copy of the query encoder (``momentum_update``). Here: three residual blocks (3x3
  conv-BN-LeakyReLU-3x3 conv-BN, 1x1 conv-BN shortcut, LeakyReLU(0.1) after the sum) with
  strides 1, 2, 2, global average pooling, and a 2-layer MLP projection head.
* DGRN, the degradation-guided restoration network (Sec. 3.2): 3x3 conv head, ``groups``
  degradation-guided groups (DGG) of ``blocks`` degradation-guided blocks (DGB) each, a 3x3 conv
  and a long skip, 3x3 conv tail giving the restored image directly (no image-level residual).
  A DGB is DGM -> ReLU -> conv -> ReLU -> DGM -> ReLU -> conv, plus its input. A DGM (degradation-
  guided module) adds to its input (a) a modulated deformable 3x3 conv (DCNv2) whose offsets and
  masks are predicted from the features concatenated with the encoder's full-resolution feature
  map, and (b) an SFT-like channel modulation x * gamma(z) + beta(z) from the representation.

Published model: encoder widths 64/128/256 (z has 256 dims), 64 channels, 5 DGG x 5 DGB: 8.84M
parameters here (REFERENCE, from the official code: 8.93M).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from uirbench.baselines.blocks import init_weights
from uirbench.errors import UserError
from uirbench.models import shipped
from uirbench.recipes import RECIPES
from uirbench.registry import MODELS
from uirbench.restorer import Restorer
from uirbench.rng import DEFAULT_SEED, private_rng, torch_generator


@dataclass(frozen=True)
class AirNetConfig:
    """``encoder_widths``: channels of the CBDE's three residual blocks (the last is z's size);
    ``channels``: DGRN width; ``groups`` / ``blocks``: DGGs, and DGBs per DGG."""

    encoder_widths: tuple[int, int, int] = (64, 128, 256)
    channels: int = 64
    groups: int = 5
    blocks: int = 5
    queue_size: int = 4096
    momentum: float = 0.999

    def __post_init__(self) -> None:
        if len(self.encoder_widths) != 3 or min(self.encoder_widths) < 1:
            raise UserError(f"AirNetConfig.encoder_widths must be three positive widths, got {self.encoder_widths}")
        if min(self.channels, self.groups, self.blocks, self.queue_size) < 1:
            raise UserError("AirNetConfig.channels, groups, blocks and queue_size must be positive")
        if not 0 <= self.momentum < 1:
            raise UserError(f"AirNetConfig.momentum must be in [0, 1), got {self.momentum}")


PRESETS = {
    # torchvision's CPU deformable conv dominates the cost (backward ~0.3 s per DGM at 8 channels, batch 8, 64x64)
    "tiny": AirNetConfig(encoder_widths=(8, 16, 32), channels=8, groups=1, blocks=1, queue_size=256, momentum=0.99),
    "small": AirNetConfig(encoder_widths=(16, 32, 64), channels=16, groups=1, blocks=2, queue_size=1024, momentum=0.99),
    "paper": AirNetConfig(),
}


class ResBlock(nn.Module):
    """CBDE residual block: (B, C_in, H, W) -> (B, C_out, H/stride, W/stride)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.1),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.body(x) + self.shortcut(x), 0.1)


class DegradationEncoder(nn.Module):
    """CBDE (Sec. 3.1). ``forward``: image (B, 3, H, W) -> (z (B, D), feature map (B, E_0, H, W)).

    ``project`` maps z to the L2-normalised (B, D) embedding the contrastive loss compares.
    """

    def __init__(self, widths: tuple[int, int, int]) -> None:
        super().__init__()
        self.stem = ResBlock(3, widths[0], stride=1)
        self.body = nn.Sequential(ResBlock(widths[0], widths[1], stride=2), ResBlock(widths[1], widths[2], stride=2))
        self.head = nn.Sequential(nn.Linear(widths[2], widths[2]), nn.LeakyReLU(0.1), nn.Linear(widths[2], widths[2]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = self.stem(x)
        return self.body(feature).mean(dim=(2, 3)), feature

    def project(self, z: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(z), dim=1)


def contrastive_loss(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """MoCo InfoNCE (He et al. 2020, Eq. 1; AirNet Sec. 3.1): mean over the batch of
    ``-log(exp(q.k+/t) / (exp(q.k+/t) + sum_queue exp(q.k-/t)))``.

    query, key: (B, D) embeddings of two patches of the same degraded images (row i of each is
    a positive pair); queue: (K, D) negatives. All are L2-normalised here; key and queue carry no
    gradient (they come from the momentum encoder).
    """
    if query.shape != key.shape or query.ndim != 2 or queue.ndim != 2 or queue.shape[1] != query.shape[1]:
        raise UserError(f"contrastive_loss: query {tuple(query.shape)} and key {tuple(key.shape)} must both be (B, D) "
                         f"and queue {tuple(queue.shape)} (K, D)")
    q = F.normalize(query, dim=1)
    k = F.normalize(key.detach(), dim=1)
    negatives = F.normalize(queue.detach(), dim=1)
    logits = torch.cat([(q * k).sum(dim=1, keepdim=True), q @ negatives.T], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


@torch.no_grad()
def momentum_update(key_encoder: nn.Module, query_encoder: nn.Module, momentum: float = 0.999) -> None:
    """MoCo key-encoder update: theta_k <- m theta_k + (1 - m) theta_q, parameters and buffers alike."""
    for k, q in zip(key_encoder.state_dict().values(), query_encoder.state_dict().values(), strict=True):
        if k.dtype.is_floating_point:
            k.mul_(momentum).add_(q, alpha=1.0 - momentum)
        else:
            k.copy_(q)


class DeformableConv3x3(nn.Module):
    """Modulated deformable 3x3 conv (DCNv2, Zhu et al. 2019), C -> C channels, stride 1.

    forward(x (B, C, H, W), offset (B, 18, H, W), mask (B, 9, H, W) in [0, 1]) -> (B, C, H, W):
    each of the 9 taps samples x bilinearly at its grid position plus its (dy, dx) offset and is
    scaled by its mask before the weighted sum; the bias is added after.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, channels, 3, 3))
        self.bias = nn.Parameter(torch.empty(channels))

    def forward(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        from torchvision.ops import deform_conv2d  # importing torchvision takes seconds; only AirNet needs it

        return deform_conv2d(x, offset, self.weight, self.bias, padding=(1, 1), mask=mask)


class DGM(nn.Module):
    """Degradation-guided module (Sec. 3.2, Fig. 3): x (B, C, H, W), guide map (B, E_0, H, W),
    z (B, D) -> x + DCN(x; offsets, masks from [x, guide]) + x * gamma(z) + beta(z).

    The offset/mask conv starts at zero (a plain 3x3 conv with all masks 0.5), the usual DCNv2
    initialisation.
    """

    def __init__(self, channels: int, guide_channels: int, z_dim: int) -> None:
        super().__init__()
        self.offsets = nn.Conv2d(channels + guide_channels, 3 * 9, 3, padding=1)  # 2 x 9 offsets + 9 masks
        self.dcn = DeformableConv3x3(channels)
        self.gamma = nn.Sequential(nn.Linear(z_dim, channels, bias=False), nn.LeakyReLU(0.1),
                                   nn.Linear(channels, channels, bias=False))
        self.beta = nn.Sequential(nn.Linear(z_dim, channels, bias=False), nn.LeakyReLU(0.1),
                                  nn.Linear(channels, channels, bias=False))

    def forward(self, x: torch.Tensor, guide: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        offset, mask = self.offsets(torch.cat([x, guide], dim=1)).split([18, 9], dim=1)
        deformed = self.dcn(x, offset, mask.sigmoid())
        modulated = x * self.gamma(z)[:, :, None, None] + self.beta(z)[:, :, None, None]
        return x + deformed + modulated


class DGB(nn.Module):
    """Degradation-guided block (Sec. 3.2): (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int, guide_channels: int, z_dim: int) -> None:
        super().__init__()
        self.dgm1 = DGM(channels, guide_channels, z_dim)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.dgm2 = DGM(channels, guide_channels, z_dim)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, guide: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(F.relu(self.dgm1(x, guide, z))))
        return x + self.conv2(F.relu(self.dgm2(out, guide, z)))


class DGG(nn.Module):
    """Degradation-guided group (Sec. 3.2): DGBs, a 3x3 conv, plus the input; (B, C, H, W) -> same."""

    def __init__(self, channels: int, guide_channels: int, z_dim: int, blocks: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(DGB(channels, guide_channels, z_dim) for _ in range(blocks))
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, guide: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        out = x
        for block in self.blocks:
            out = block(out, guide, z)
        return x + self.conv(out)


@MODELS.register("airnet", kind="baseline", config=AirNetConfig, presets=PRESETS, recipes=RECIPES["airnet"],
                 trainer="uirbench.baselines.task:train_baseline", default_checkpoint=shipped("airnet"),
                 paper="Li et al. 2022, All-In-One Image Restoration for Unknown Corruption")
class AirNet(Restorer):
    """AirNet = CBDE + DGRN; (B, 3, H, W) in [0, 1] -> same, any H, W (the DGRN keeps the resolution).

    ``encoder``'s projection head is trained only by ``contrastive_loss``; the restoration forward
    uses z and the feature map. Weights are drawn from ``generator`` (seed 0 when None).
    """


    def __init__(self, config: AirNetConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self._config = config
        c, widths = config.channels, config.encoder_widths
        with private_rng():
            self.encoder = DegradationEncoder(widths)
            self.head = nn.Conv2d(3, c, 3, padding=1)
            self.body = nn.ModuleList(DGG(c, widths[0], widths[2], config.blocks) for _ in range(config.groups))
            self.body_end = nn.Conv2d(c, c, 3, padding=1)
            self.tail = nn.Conv2d(c, 3, 3, padding=1)
        init_weights(self, generator)
        for module in self.modules():
            if isinstance(module, DGM) and not module.offsets.weight.is_meta:
                nn.init.zeros_(module.offsets.weight)
                nn.init.zeros_(module.offsets.bias)
        # MoCo key encoder (a momentum copy, never optimised) and the queue of past keys (Sec. 3.1)
        self.key_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        queue = torch.randn(config.queue_size, widths[2], generator=generator or torch_generator(DEFAULT_SEED))
        self.register_buffer("queue", F.normalize(queue, dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def auxiliary_loss(self, degraded: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The CBDE's contrastive loss for one training batch (added to the L1 loss by the trainer).

        Positives: the batch patch and a geometric view of it (a random 90-degree rotation and flip
        drawn from ``generator``), i.e. the same image and degradation. The paper takes two crops of
        one image; uirbench's sampler yields one crop per pair, so the second view is a transform of
        it. Negatives: the queue. Updates the key encoder (momentum) and the queue as a side effect.
        """
        turns = int(torch.randint(1, 4, (), generator=generator))
        view = torch.rot90(degraded, turns, dims=(2, 3)).flip(3)
        momentum_update(self.key_encoder, self.encoder, self._config.momentum)
        with torch.no_grad():
            key = self.key_encoder.project(self.key_encoder(view)[0])
        query = self.encoder.project(self.encoder(degraded)[0])
        loss = contrastive_loss(query, key, self.queue.clone())
        with torch.no_grad():
            n, size = len(key), len(self.queue)
            index = (self.queue_ptr + torch.arange(n, device=key.device)) % size
            self.queue[index] = F.normalize(key.float(), dim=1)
            self.queue_ptr.copy_((self.queue_ptr + n) % size)
        return loss

    def forward(self, x: torch.Tensor, degradation_hint: list[str] | None = None) -> torch.Tensor:
        z, guide = self.encoder(x)
        feat = self.head(x)
        out = feat
        for group in self.body:
            out = group(out, guide, z)
        return self.tail(feat + self.body_end(out))
