"""The ``Restorer`` interface every model implements (baselines and UIR-LoRA).

A restorer is a ``torch.nn.Module`` whose ``forward(x, degradation_hint=None)`` maps an NCHW
float32 RGB batch in [0, 1] to a restored batch of the same shape, approximately in [0, 1]
(``restore`` clamps). ``degradation_hint``
is an optional list (one entry per image) of degradation names from the manifest; only
oracle-label models (``classical``, UIR-LoRA with ``--router oracle``) read it.

``restore`` is the one inference entry point: it pads to the model's ``size_multiple``, tiles
images larger than ``tile`` with overlapping, linearly blended tiles, and clamps the output.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F


class Restorer(torch.nn.Module):
    """Base class. Subclasses set ``name`` and implement ``forward``.

    ``size_multiple``: spatial sizes the network needs (e.g. 8 for three 2x downsamplings; may be
    set per instance when it depends on the config); ``restore`` reflect-pads to it and crops back.
    ``config`` (a frozen dataclass or None) is what a checkpoint stores to rebuild the model.
    """

    name: ClassVar[str] = ""
    size_multiple: int = 1
    uses_hint: ClassVar[bool] = False

    def forward(self, x: torch.Tensor, degradation_hint: list[str] | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    @property
    def config(self) -> Any:
        return getattr(self, "_config", None)

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def _forward_padded(model: Restorer, x: torch.Tensor, hint: list[str] | None) -> torch.Tensor:
    padded, h, w = _pad_to_multiple(x, max(1, model.size_multiple))
    out = model(padded, degradation_hint=hint)
    return out[..., :h, :w]


def _tile_starts(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, step))
    return [*starts, size - tile]


def _blend_window(tile_h: int, tile_w: int, overlap: int, device: torch.device) -> torch.Tensor:
    def ramp(n: int) -> torch.Tensor:
        r = torch.ones(n, device=device)
        k = min(overlap, n // 2)
        if k > 0:
            edge = torch.arange(1, k + 1, device=device, dtype=torch.float32) / (k + 1)
            r[:k] = edge
            r[-k:] = edge.flip(0)
        return r

    return ramp(tile_h)[:, None] * ramp(tile_w)[None, :]


@torch.no_grad()
def restore(model: Restorer, x: torch.Tensor, degradation_hint: list[str] | None = None, *, tile: int | None = None,
            overlap: int = 32) -> torch.Tensor:
    """Restore an NCHW [0, 1] batch; images larger than ``tile`` are processed in blended tiles.

    Tiles of ``tile`` x ``tile`` px overlap by ``overlap`` px; overlapping outputs are averaged
    with linear ramps, so seams are invisible for translation-equivariant networks.
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"restore: expected an NCHW batch with 3 channels, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if tile is None or (h <= tile and w <= tile):
        out = _forward_padded(model, x, degradation_hint)
    else:
        if overlap * 2 >= tile:
            raise ValueError(f"restore: overlap ({overlap}) must be less than half the tile size ({tile})")
        step = tile - overlap
        out = torch.zeros_like(x)
        weight = torch.zeros((1, 1, h, w), device=x.device)
        for top in _tile_starts(h, tile, step):
            for left in _tile_starts(w, tile, step):
                patch = x[..., top:top + tile, left:left + tile]
                res = _forward_padded(model, patch, degradation_hint).float()
                win = _blend_window(patch.shape[-2], patch.shape[-1], overlap, x.device)
                out[..., top:top + tile, left:left + tile] += res * win
                weight[..., top:top + tile, left:left + tile] += win
        out = out / weight
    if out.shape != x.shape:
        raise RuntimeError(f"{model.name}: output shape {tuple(out.shape)} differs from input {tuple(x.shape)}")
    return out.float().clamp_(0.0, 1.0)
