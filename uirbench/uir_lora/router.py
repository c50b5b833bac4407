"""Degradation routers: which LoRAs a given image gets, and how much of each (UIR-LoRA, arXiv 2409.20197).

The paper's router compares an image embedding d with one embedding per degradation name
(the rows of B) and composes the adapters of the best matches:

    s_o = cos(d, B_j)  for every family j          similarity, in [-1, 1]
    keep the top K of s_o                          K = ``top_k`` (an argument; the paper does not state it)
    s   = softmax(s_o[kept] / tau)                 weights of the kept adapters, summing to 1

``tau`` (``temperature``) is ours to choose, like K: with tau = 0.1 a confident single-degradation
image gives its second choice a weight of e^-10 or less, while an image whose two similarities are
close (a mixed degradation) gets both adapters about equally. ``route`` turns [B, F] similarities
into dense [B, F] weights (zero outside the top K).

Three routers produce the similarities:

* ``LearnedRouter`` (the offline default): a small CNN (a stride-1 conv, then stride-2 convs with
  GroupNorm), the mean and standard deviation of every level's features over the image (multi-scale
  statistics: noise and JPEG live at full resolution, haze and low light in the coarse levels), a
  linear map to ``embed_dim``, and one learned embedding per family. Trained with multi-label binary
  cross-entropy on logits s_o / tau against the manifest's ``labels`` (a mixed image has several
  true families), so top-K picks all the families present. It is trained on square patches of
  ``window`` pixels and sees a larger image the same way: s_o is the mean of the cosines of
  windows of that size tiling the image. On the CBSD68 test split (481x321) the small router, trained
  on 96-px patches, picked the true family of 79% of single-degradation images from whole-image
  statistics and of 91% as the mean over 128-px windows (haze: 26% and 79%): the statistics of a
  whole photo are not those of the patches the router learned from. Retrained on 128-px patches
  it picks 90.8% (haze 81%) after 2,000 steps and 94.2% (haze 91%) after 6,000 (the shipped router).
* ``ClipRouter``: frozen CLIP image/text encoders (``transformers``), text prompts per family
  (``PROMPTS``); tau is CLIP's own learned logit scale. Needs the CLIP weights (hub id or folder).
* ``oracle_weights``: uniform weights over the true families read from the manifest's degradation
  name (ablation: a perfect router).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from uirbench.checksums import loading
from uirbench.errors import UserError
from uirbench.io import write_bytes
from uirbench.rng import init_rand_

ROUTERS = ("learned", "oracle", "clip", "single")
"""learned (trained here), oracle (manifest labels), clip (zero-shot CLIP), single (the one adapter of a multi-task
control checkpoint at weight 1 for every image)."""
CLIP_SOURCE = "openai/clip-vit-base-patch32"
PROMPTS = {
    "noise": "a noisy photo", "blur": "a blurry photo", "rain": "a photo taken in the rain", "haze": "a hazy photo",
    "lowlight": "a dark photo taken in low light", "jpeg": "a photo with JPEG compression artifacts",
}
"""CLIP text prompt per degradation family (DA-CLIP-style degradation names in a photo caption)."""


@dataclass(frozen=True)
class RouterConfig:
    """Learned router: ``width`` channels (a multiple of 8, for GroupNorm's 8 groups) after the stride-1 stem,
    doubled by each of ``levels`` stride-2 convs (capped at 4x width); ``embed_dim``: size of d and of each
    family embedding; ``temperature``: tau of the BCE logits (training) and of the routing softmax; ``window``:
    side in pixels of the square patches it trains on and of the windows it averages over a larger image."""

    width: int = 16
    levels: int = 4
    embed_dim: int = 64
    temperature: float = 0.1
    window: int = 64

    def __post_init__(self) -> None:
        if min(self.width, self.levels, self.embed_dim, self.window) < 1 or self.width % 8 or not self.temperature > 0:
            raise UserError(f"RouterConfig: width (a multiple of 8), levels, embed_dim, window must be >= 1 and temperature > 0, "
                            f"got {self}")


def route(similarity: torch.Tensor, top_k: int, temperature: float) -> torch.Tensor:
    """Dense routing weights [B, F] from similarities [B, F]: softmax(s / tau) over each row's top K, 0 elsewhere."""
    if not 1 <= top_k <= similarity.shape[1]:
        raise UserError(f"top_k={top_k}: must be between 1 and the number of adapters ({similarity.shape[1]})")
    values, index = similarity.topk(top_k, dim=1)
    return torch.zeros_like(similarity).scatter(1, index, torch.softmax(values / temperature, dim=1))


class LearnedRouter(nn.Module):
    """Image encoder + family embeddings; ``similarity`` maps NCHW [0, 1] images (any size) to cosines [B, F]."""

    def __init__(self, families: tuple[str, ...] | list[str], config: RouterConfig, generator: torch.Generator) -> None:
        super().__init__()
        if not families or len(set(families)) != len(families):
            raise UserError(f"LearnedRouter: families must be non-empty and distinct, got {families}")
        self.families, self.config = tuple(families), config
        channels = [config.width]
        for _ in range(config.levels):
            channels.append(min(2 * channels[-1], 4 * config.width))
        self.levels = nn.ModuleList([nn.Sequential(nn.Conv2d(3, config.width, 3, padding=1), nn.GELU())])
        for c_in, c_out in itertools.pairwise(channels):
            self.levels.append(nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GroupNorm(8, c_out), nn.GELU()))
        self.project = nn.Linear(2 * sum(channels), config.embed_dim)
        self.embeddings = nn.Parameter(torch.empty(len(families), config.embed_dim))
        for layer in self.modules():  # PyTorch's default laws, drawn from ``generator``
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                init_rand_(layer.weight, layer.bias, generator)
        with torch.no_grad():
            self.embeddings.copy_(torch.randn(self.embeddings.shape, generator=generator))

    @property
    def temperature(self) -> float:
        return self.config.temperature

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """d: [B, embed_dim] from the mean and std of every level's features (their level and their texture)."""
        h, stats = 2 * x - 1, []
        for level in self.levels:
            h = level(h)
            stats += [h.flatten(2).mean(2), h.flatten(2).std(2)]
        return self.project(torch.cat(stats, dim=1))

    def similarity(self, x: torch.Tensor) -> torch.Tensor:
        """Cosines [B, F] of NCHW images in [0, 1]: the mean over the :func:`windows` of ``config.window`` px."""
        cosines = F.normalize(self.embed(windows(x, self.config.window)), dim=1) @ F.normalize(self.embeddings, dim=1).T
        return cosines.view(-1, x.shape[0], cosines.shape[1]).mean(0)

    def loss(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Multi-label BCE on logits s_o / tau; ``targets`` [B, F] in {0, 1} (several ones for mixed images)."""
        return F.binary_cross_entropy_with_logits(self.similarity(x) / self.config.temperature, targets)


def windows(x: torch.Tensor, size: int) -> torch.Tensor:
    """Square windows of side ``s = min(size, H, W)`` covering every pixel of NCHW ``x``: ceil(H / s) x ceil(W / s)
    of them, spaced evenly from edge to edge (overlapping where s does not divide the side), stacked window-major
    as [n * B, C, s, s]; ``x`` itself when it is one window.

    >>> windows(torch.zeros(2, 3, 321, 481), 128).shape
    torch.Size([24, 3, 128, 128])
    """
    h, w = x.shape[-2:]
    s = min(size, h, w)
    if (h, w) == (s, s):
        return x
    rows, cols = (torch.linspace(0, side - s, -(-side // s)).round().long().tolist() for side in (h, w))
    return torch.cat([x[..., r:r + s, c:c + s] for r in rows for c in cols])


def label_targets(labels: list[list[str]], families: tuple[str, ...]) -> torch.Tensor:
    """[B, F] 0/1 targets from the manifest's ``labels`` lists; labels outside ``families`` raise."""
    unknown = sorted({name for row in labels for name in row} - set(families))
    if unknown:
        raise UserError(f"labels {unknown} have no adapter; adapters: {', '.join(families)}")
    return torch.tensor([[float(f in row) for f in families] for row in labels])


def oracle_weights(hints: list[str] | None, families: tuple[str, ...], top_k: int) -> torch.Tensor:
    """Weights [B, F] from manifest degradation names: uniform over the image's true families (the first
    ``top_k`` in sorted order when it has more), e.g. ``blur+noise`` -> 1/2 blur, 1/2 noise."""
    from uirbench.degradations import families as families_of

    if hints is None:
        raise UserError("router 'oracle' needs the degradation names of the batch (degradation_hint); "
                         "use --model-arg router=learned to route from the image alone")
    rows = []
    for hint in hints:
        true = families_of(hint)
        missing = [f for f in true if f not in families]
        if missing:
            raise UserError(f"oracle router: degradation {hint!r} has families {missing} without an adapter; "
                             f"adapters: {', '.join(families)}")
        kept = true[:top_k]
        rows.append([1.0 / len(kept) if f in kept else 0.0 for f in families])
    return torch.tensor(rows)


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


class ClipRouter(nn.Module):
    """Frozen CLIP (Radford et al. 2021) image and text towers from ``source`` (hub id or local folder).

    Text embeddings of ``PROMPTS`` are computed once; ``similarity`` resizes/normalises images with the
    model's own processor settings (shortest side, centre crop, CLIP mean/std) and returns cosines
    [B, F]. ``temperature`` = 1 / CLIP's logit scale, the temperature CLIP was trained with.
    """

    def __init__(self, families: tuple[str, ...] | list[str], source: str = CLIP_SOURCE) -> None:
        super().__init__()
        from transformers import CLIPModel, CLIPProcessor

        missing = [f for f in families if f not in PROMPTS]
        if missing:
            raise UserError(f"clip router: no text prompt for {missing}; prompts exist for {', '.join(PROMPTS)}")
        local_only = _hub_offline() or Path(source).is_dir()
        try:
            self.model = CLIPModel.from_pretrained(source, local_files_only=local_only).eval()
            self.processor = CLIPProcessor.from_pretrained(source, local_files_only=local_only)
        except (OSError, ValueError) as exc:
            raise UserError(
                f"clip router: cannot load CLIP weights {source!r}{' (HF_HUB_OFFLINE is set)' if local_only else ''}: {exc}\n"
                f"Provide them: on a machine with internet run `huggingface-cli download {CLIP_SOURCE}` (fills the Hugging "
                "Face cache; copy ~/.cache/huggingface here) or save CLIPModel/CLIPProcessor to a folder and pass it as "
                "ClipRouter(source=DIR); or use --model-arg router=learned (no weights needed)") from exc
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.families = tuple(families)
        text = self.processor(text=[PROMPTS[f] for f in self.families], return_tensors="pt", padding=True)
        with torch.no_grad():
            self.register_buffer("text", F.normalize(_features(self.model.get_text_features(**text)), dim=1))
        self.temperature = 1.0 / float(self.model.logit_scale.exp())
        image = self.processor.image_processor
        size = image.crop_size
        self.size = (size["height"], size["width"])
        self.register_buffer("mean", torch.tensor(image.image_mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(image.image_std).view(1, 3, 1, 1))

    def similarity(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        scale = max(self.size) / min(h, w)  # shortest side to the crop size, then centre crop (CLIP's preprocessing)
        x = F.interpolate(x.float(), size=(round(h * scale), round(w * scale)), mode="bicubic", antialias=True,
                          align_corners=False).clamp(0, 1)
        top, left = (x.shape[-2] - self.size[0]) // 2, (x.shape[-1] - self.size[1]) // 2
        x = x[..., top:top + self.size[0], left:left + self.size[1]]
        feats = _features(self.model.get_image_features(pixel_values=((x - self.mean) / self.std).to(self.text.dtype)))
        return F.normalize(feats, dim=1) @ self.text.T


def _features(out: object) -> torch.Tensor:
    """CLIP's projected features: a tensor (transformers < 5) or the output's ``pooler_output`` (>= 5)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


ROUTER_FORMAT = "uirbench-uir-lora-router"


def save_router(router: LearnedRouter, path: str | Path) -> Path:
    """Write the learned router's weights (float32) to ``path`` with its families and config in the header."""
    from safetensors.torch import save

    path = Path(path)
    state = {k: v.detach().float().contiguous().cpu() for k, v in router.state_dict().items()}
    meta = {"format": ROUTER_FORMAT, "families": json.dumps(router.families), "config": json.dumps(asdict(router.config))}
    write_bytes(path, save(state, metadata=meta))  # atomic: temporary file + rename
    return path


def load_router(path: str | Path, device: str | torch.device = "cpu") -> LearnedRouter:
    """The learned router saved by ``save_router``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    with loading(path):
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        tensors = load_file(str(path))
    if meta.get("format") != ROUTER_FORMAT:
        raise UserError(f"{path}: not a {ROUTER_FORMAT} file")
    config = json.loads(meta["config"])
    if "window" not in config:  # saved before routers recorded their window
        print(f"note: {path} records no window (saved before routers recorded one): routing over {RouterConfig.window}-px windows, "
              "the tiny preset's patch; retrain the router (--model-arg stage=router) to record the patch it learned from",
              file=sys.stderr)
    router = LearnedRouter(json.loads(meta["families"]), RouterConfig(**config), torch.Generator())
    router.load_state_dict(tensors, strict=True)
    return router.to(device)
