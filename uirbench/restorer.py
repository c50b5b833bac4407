"""The ``Restorer`` interface every model implements (baselines and UIR-LoRA).

A restorer is a ``torch.nn.Module`` whose ``forward(x, degradation_hint=None)`` maps an NCHW
float32 RGB batch in [0, 1] to a restored batch of the same shape, approximately in [0, 1]
(``restore`` clamps). ``degradation_hint``
is an optional list (one entry per image) of degradation names from the manifest; only
oracle-label models (``classical``, UIR-LoRA with ``--model-arg router=oracle``) read it.

``restore`` is the one inference entry point: it pads to the model's ``size_multiple``, tiles
images larger than ``tile`` with overlapping, linearly blended tiles, and clamps the output.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from uirbench.errors import UserError
from uirbench.registry import MODELS

MODEL_JSON = "model.json"
WEIGHTS = "model.safetensors"


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples frozen configs hold."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def config_from_json(name: str, data: dict[str, Any]) -> Any:
    """Model ``name``'s config dataclass from its JSON form (``model.json``'s ``config``); unknown fields are refused."""
    cls = MODELS.spec(name).config
    if cls is None:
        raise UserError(f"model {name!r} has no config")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise UserError(f"{name}: unknown config fields {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")
    return cls(**{k: _tuples(v) for k, v in data.items()})


class Restorer(torch.nn.Module):
    """Base class. Subclasses implement ``forward``; the registration (``@MODELS.register``) sets ``name``.

    ``size_multiple``: spatial sizes the network needs (e.g. 8 for three 2x downsamplings; may be
    set per instance when it depends on the config); ``restore`` reflect-pads to it and crops back.
    ``config`` (a frozen dataclass or None) is what a checkpoint stores to rebuild the model.

    Optional hooks, with the defaults below: ``uses_hint`` (reads the oracle degradation label),
    ``auxiliary_loss`` (a training term beside the restoration loss, AirNet's contrastive loss),
    ``last_routing`` (per-image routing of the last forward, UIR-LoRA), and the checkpoint format
    ``from_checkpoint`` / ``save_checkpoint`` (``model.json`` + ``model.safetensors``; UIR-LoRA has its own).
    """

    name: ClassVar[str] = ""
    size_multiple: int = 1
    uses_hint: ClassVar[bool] = False
    last_routing: list[dict[str, Any]] | None = None

    def forward(self, x: torch.Tensor, degradation_hint: list[str] | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    @property
    def config(self) -> Any:
        return getattr(self, "_config", None)

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def auxiliary_loss(self, degraded: torch.Tensor, generator: torch.Generator) -> torch.Tensor | None:
        """A training loss term beside the restoration loss (None: none)."""
        return None

    @classmethod
    def from_checkpoint(cls, path: Path, meta: dict[str, Any], device: str = "cpu", **options: Any) -> Restorer:
        """Rebuild the model from a verified checkpoint folder ``path`` whose ``model.json`` is ``meta``.
        ``options``: inference options (``ModelSpec.options``), already checked."""
        from safetensors.torch import load_file

        from uirbench import checksums
        if options:
            raise UserError(f"model {cls.name!r} takes no inference options (got {', '.join(sorted(options))})")
        model = cls(config_from_json(cls.name, meta["config"]))
        with checksums.loading(path / WEIGHTS):
            weights = load_file(path / WEIGHTS, device="cpu")
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise UserError(f"--checkpoint {path}: weights do not match the {cls.name} config "
                            f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        return model.to(device).eval()

    def save_checkpoint(self, path: Path, **extra: Any) -> None:
        """Write ``model.safetensors`` + ``model.json`` into ``path``, each atomically, then their ``checksums.json``
        (removed first: a save interrupted half-way leaves none, and is refused on load)."""
        from safetensors.torch import save

        from uirbench import checksums
        from uirbench.io import write_bytes, write_json

        state = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        checksums.unseal(path)
        write_bytes(path / WEIGHTS, save(state))
        write_json(path / MODEL_JSON, {"model": self.name, "config": dataclasses.asdict(self.config), **extra})
        checksums.seal(path, [WEIGHTS, MODEL_JSON])


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """(``x`` padded at the bottom and right to sides divisible by ``multiple``, original H, W): reflection where the
    padding is narrower than the side, else replication; what ``restore`` feeds a model."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def _forward_padded(model: Restorer, x: torch.Tensor, hint: list[str] | None) -> torch.Tensor:
    padded, h, w = pad_to_multiple(x, max(1, model.size_multiple))
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


@torch.inference_mode()
def restore(model: Restorer, x: torch.Tensor, degradation_hint: list[str] | None = None, *, tile: int | None = None,
            overlap: int = 32) -> torch.Tensor:
    """Restore an NCHW [0, 1] batch; images larger than ``tile`` are processed in blended tiles.

    Tiles of ``tile`` x ``tile`` px overlap by ``overlap`` px; overlapping outputs are averaged
    with linear ramps, so seams are invisible for translation-equivariant networks.

    >>> from uirbench.models import create_model
    >>> x = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    >>> restore(create_model("identity"), x).shape
    torch.Size([1, 3, 40, 56])
    >>> torch.allclose(restore(create_model("identity"), x, tile=32, overlap=8), x, atol=1e-6)
    True
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise UserError(f"restore: expected an NCHW batch with 3 channels, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if tile is None or (h <= tile and w <= tile):
        out = _forward_padded(model, x, degradation_hint)
    else:
        if overlap * 2 >= tile:
            raise UserError(f"restore: overlap ({overlap}) must be less than half the tile size ({tile})")
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
