"""Stacked multi-LoRA with per-sample mixture weights: UIR-LoRA's composition (arXiv 2409.20197, Sec. 3).

Each adapted layer computes, for image b of a batch and the K adapters of the current mixture,

    y_b = f_0(x_b) + sum_i s_bi * scaling_i * B_i A_i x_b          scaling_i = alpha_i / r_i

with s of shape (batch, K) set by ``set_mixture`` (the router's normalised top-K similarities, or
a one-hot row while an adapter is trained alone). One pass serves a batch of different mixtures:
the K down-projections are stacked into one matmul/conv with sum(r_i) outputs, scaled per sample and
per channel, and one up-projection [B_1 ... B_K] sums the branches. Gradients reach s and the LoRA
weights. Without a mixture (``clear_mixture``) every layer is its frozen base f_0.

Adapters are defined with peft (``LoraConfig`` + ``inject_adapter_in_model``; our layer classes
subclass peft's LoRA Linear/Conv2d and only replace ``forward``, because peft's ``set_adapters``
applies one weight vector to the whole batch). Defaults follow img2img-turbo: rank 8 on the UNet's
attention, feed-forward, projection and conv layers (8.11M params on SD-turbo), rank 4 on the VAE
encoder/decoder convs. alpha = rank, so scaling = 1. A ~ U(+-1/sqrt(fan_in)) (peft's default law,
drawn from an explicit generator), B = 0.

The UNet's conv_in and the decoder skip convs are trained in full, per adapter, as full-rank
deltas: f(x) = conv_0(x) + sum_i s_i (dW_i * x + db_i), dW_i and db_i zero-initialised. Trained
alone (s = 1) an adapter owns the conv conv_0 + dW_i, as in img2img-turbo. Because convolution is
linear in its weights, a mixture whose weights sum to 1 is exactly the conv with the s-weighted
average of the adapters' trained weights; for other sums (all zero: the base) it is the same
f_0 + sum s_i f_i rule as the LoRA layers.

LoRA weights stay float32 on a bf16/fp16 backbone (the branch runs in float32, its output is cast
to the base's dtype).
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners import lora as peft_lora
from safetensors.torch import load_file, save
from torch import nn

from uirbench.checksums import loading
from uirbench.errors import UserError
from uirbench.io import write_bytes, write_json
from uirbench.rng import init_rand_

if TYPE_CHECKING:  # annotations only: backbone.py must not be imported back at run time
    from uirbench.uir_lora.backbone import OneStepRestorer

UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
                "conv1", "conv2", "conv_shortcut", "conv", "conv_out")
VAE_TARGETS = ("conv_in", "conv1", "conv2", "conv_shortcut", "conv", "conv_out")
FORMAT = "uirbench-uir-lora-adapter"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class AdapterConfig:
    """One degradation's adapter: LoRA rank/alpha/targets for the UNet and the VAE (peft suffix match
    on module names), plus full-rank deltas on the UNet's conv_in and the skip convs (always)."""

    unet_rank: int = 8
    unet_alpha: float = 8.0
    unet_targets: tuple[str, ...] = UNET_TARGETS
    vae_rank: int = 4
    vae_alpha: float = 4.0
    vae_targets: tuple[str, ...] = VAE_TARGETS


def _check_batch(mix_batch: int, x: torch.Tensor) -> None:
    if mix_batch != x.shape[0]:
        raise UserError(f"mixture weights have {mix_batch} rows but the layer input has batch {x.shape[0]}; "
                         "call set_mixture with one row per image of the batch")


def _stacked(layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, nn.Module]:
    """The active mixture of a peft LoRA layer as stacked weights: (A [sum r, ...], B [out, sum r, ...], per-image
    per-rank-channel scale [B, sum r], the first adapter's A module for its conv geometry)."""
    names, scale = layer._uir_mix
    _check_batch(scale.shape[0], x)
    a = torch.cat([layer.lora_A[n].weight for n in names])
    b = torch.cat([layer.lora_B[n].weight for n in names], dim=1)
    return a, b, scale, layer.lora_A[names[0]]


class MixLinear(peft_lora.Linear):
    """peft's LoRA Linear with the stacked per-sample forward (see module docstring)."""

    _uir_mix: tuple[tuple[str, ...], torch.Tensor] | None = None  # (names, per-channel scale [B, sum r])

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)
        if self._uir_mix is None:
            return result
        a, b, scale, _ = _stacked(self, x)
        h = F.linear(x.to(a.dtype), a) * scale.view(scale.shape[0], *[1] * (x.ndim - 2), -1)
        return result + F.linear(h, b).to(result.dtype)


class MixConv2d(peft_lora.Conv2d):
    """peft's LoRA Conv2d (A: the base's kernel/stride/padding, B: 1x1) with the stacked per-sample forward."""

    _uir_mix: tuple[tuple[str, ...], torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)
        if self._uir_mix is None:
            return result
        a, b, scale, a0 = _stacked(self, x)
        h = F.conv2d(x.to(a.dtype), a, None, a0.stride, a0.padding, a0.dilation) * scale[:, :, None, None]
        return result + F.conv2d(h, b).to(result.dtype)


class DeltaConv2d(nn.Module):
    """A conv with full-rank per-adapter deltas: conv_0(x) + sum_i s_i (dW_i * x + db_i), per sample.

    The per-sample weight sum_i s_bi dW_i is built first and applied as one grouped conv (groups = batch).
    """

    _uir_mix: tuple[tuple[str, ...], torch.Tensor] | None = None  # (names, weights [B, K])

    def __init__(self, base_layer: nn.Conv2d) -> None:
        super().__init__()
        if base_layer.groups != 1 or base_layer.padding_mode != "zeros" or base_layer.bias is None:
            raise UserError(f"DeltaConv2d needs an ungrouped, zero-padded conv with bias, got {base_layer}")
        self.base_layer = base_layer
        self.delta_weight = nn.ParameterDict()
        self.delta_bias = nn.ParameterDict()

    def add(self, name: str) -> None:
        w = self.base_layer.weight
        self.delta_weight[name] = nn.Parameter(torch.zeros(w.shape, device=w.device), requires_grad=False)
        self.delta_bias[name] = nn.Parameter(torch.zeros(w.shape[0], device=w.device), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base_layer(x)
        if self._uir_mix is None:
            return result
        names, s = self._uir_mix
        _check_batch(s.shape[0], x)
        conv, batch = self.base_layer, x.shape[0]
        dw = torch.einsum("bk,koihw->boihw", s, torch.stack([self.delta_weight[n] for n in names]))
        db = s @ torch.stack([self.delta_bias[n] for n in names])
        out = F.conv2d(x.to(dw.dtype).reshape(1, -1, *x.shape[2:]), dw.flatten(0, 1), None, conv.stride, conv.padding,
                       conv.dilation, groups=batch)
        delta = out.view(batch, -1, *out.shape[2:]) + db[:, :, None, None]
        return result + delta.to(result.dtype)


_MIXED = (MixLinear, MixConv2d, DeltaConv2d)


def _has(layer: nn.Module, name: str) -> bool:
    return name in (layer.delta_weight if isinstance(layer, DeltaConv2d) else layer.lora_A)


def _mixed_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    return ((path, m) for path, m in model.named_modules() if isinstance(m, _MIXED))


def adapter_names(model: nn.Module) -> list[str]:
    """Names of the adapters in ``model``, in the order they were added."""
    names: dict[str, None] = {}
    for _, layer in _mixed_layers(model):
        names.update(dict.fromkeys(layer.delta_weight if isinstance(layer, DeltaConv2d) else layer.lora_A))
    return list(names)


def _inject_lora(part: nn.Module, name: str, rank: int, alpha: float, target_modules: Sequence[str]) -> None:
    """Inject an uninitialised (float32) LoRA named ``name`` into ``part`` with our mixture layers."""
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(target_modules), lora_dropout=0.0,
                        init_lora_weights=False, bias="none")
    config._register_custom_module({nn.Linear: MixLinear, nn.Conv2d: MixConv2d})
    # Weights are created on the meta device (no global RNG draw), then allocated in float32 next to the base.
    with warnings.catch_warnings():  # several adapters in one model is the point here
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
        inject_adapter_in_model(config, part, adapter_name=name, low_cpu_mem_usage=True)
    for _, layer in _mixed_layers(part):
        if isinstance(layer, DeltaConv2d) or name not in layer.lora_A:
            continue
        device = layer.base_layer.weight.device
        for pair in (layer.lora_A, layer.lora_B):
            pair[name] = pair[name].to_empty(device=device).float()


def _init_lora(part: nn.Module, name: str, generator: torch.Generator) -> None:
    """A ~ U(+-1/sqrt(fan_in)) from ``generator`` (``rng.init_rand_``), B = 0, layer by layer in module order."""
    for _, layer in _mixed_layers(part):
        if isinstance(layer, DeltaConv2d) or name not in layer.lora_A or layer.lora_A[name].weight.is_meta:
            continue
        init_rand_(layer.lora_A[name].weight, None, generator)
        with torch.no_grad():
            layer.lora_B[name].weight.zero_()


def add_lora(part: nn.Module, name: str, rank: int, alpha: float, target_modules: Sequence[str],
             generator: torch.Generator) -> None:
    """Add LoRA ``name`` (rank, alpha, peft target suffixes) to a model part (e.g. ``model.unet``)."""
    _inject_lora(part, name, rank, alpha, target_modules)
    _init_lora(part, name, generator)


def _delta_layers(model: OneStepRestorer) -> list[DeltaConv2d]:
    """The UNet's conv_in and the skip convs, wrapped as DeltaConv2d on first use."""
    if not isinstance(model.unet.conv_in, DeltaConv2d):
        model.unet.conv_in = DeltaConv2d(model.unet.conv_in)
    for j, skip in enumerate(model.skips):
        if not isinstance(skip, DeltaConv2d):
            model.skips[j] = DeltaConv2d(skip)
    return [model.unet.conv_in, *model.skips]


def _add_uninitialised(model: OneStepRestorer, name: str, config: AdapterConfig) -> None:
    if not name.isidentifier():
        raise UserError(f"adapter name {name!r} must be a Python identifier (letters, digits, underscores)")
    if name in adapter_names(model):
        raise UserError(f"adapter {name!r} already exists; existing adapters: {', '.join(adapter_names(model))}")
    _inject_lora(model.unet, name, config.unet_rank, config.unet_alpha, config.unet_targets)
    _inject_lora(model.vae, name, config.vae_rank, config.vae_alpha, config.vae_targets)
    for layer in _delta_layers(model):
        layer.add(name)
    model.adapter_configs[name] = config
    for p in model.parameters():  # a defined state: everything frozen until mark_trainable
        p.requires_grad_(False)


def add_adapter(model: OneStepRestorer, name: str, generator: torch.Generator, config: AdapterConfig = AdapterConfig()) -> None:
    """Add one degradation's adapter to ``model``; other adapters and the base are left untouched.

    Afterwards every parameter is frozen: call ``mark_trainable(model, name)`` to train it.
    """
    _add_uninitialised(model, name, config)
    _init_lora(model.unet, name, generator)
    _init_lora(model.vae, name, generator)


def adapter_state(model: nn.Module, name: str) -> dict[str, nn.Parameter]:
    """The parameters of adapter ``name``, keyed by module path (adapter name left out of the keys)."""
    state = {}
    for path, layer in _mixed_layers(model):
        if not _has(layer, name):
            continue
        if isinstance(layer, DeltaConv2d):
            state[f"{path}.delta_weight"], state[f"{path}.delta_bias"] = layer.delta_weight[name], layer.delta_bias[name]
        else:
            state[f"{path}.lora_A.weight"], state[f"{path}.lora_B.weight"] = layer.lora_A[name].weight, layer.lora_B[name].weight
    if not state:
        raise KeyError(f"no adapter {name!r}; adapters: {', '.join(adapter_names(model)) or 'none'}")
    return state


def mark_trainable(model: nn.Module, name: str) -> list[nn.Parameter]:
    """Freeze everything except adapter ``name`` (cast to float32 if the model was cast); return its parameters."""
    params = list(adapter_state(model, name).values())
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        if p.dtype != torch.float32:
            p.data = p.data.float()
        p.requires_grad_(True)
    return params


def adapter_parameter_count(model: nn.Module, name: str) -> int:
    return sum(p.numel() for p in adapter_state(model, name).values())


def base_parameter_count(model: nn.Module) -> int:
    """Parameters of the frozen backbone (everything that belongs to no adapter)."""
    return sum(p.numel() for p in model.parameters()) - sum(adapter_parameter_count(model, n) for n in adapter_names(model))


def set_mixture(model: nn.Module, names: Sequence[str], weights: torch.Tensor) -> None:
    """Make every adapted layer compute f_0 + sum_i weights[:, i] f_names[i] for the next forward passes.

    ``weights``: [batch, K] (one row per image, K = len(names)), float; gradients flow back to it.
    """
    names = tuple(names)
    known = adapter_names(model)
    if not names or len(set(names)) != len(names):
        raise UserError(f"set_mixture: names must be non-empty and distinct, got {names}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"set_mixture: unknown adapter(s) {unknown}; adapters: {', '.join(known) or 'none'}")
    if weights.ndim != 2 or weights.shape[1] != len(names) or not weights.is_floating_point():
        raise UserError(f"set_mixture: weights must be a float [batch, {len(names)}] tensor, got {tuple(weights.shape)}")
    weights = weights.float()
    cache: dict[tuple, torch.Tensor] = {}  # layers with the same ranks/scalings share one scale tensor
    for _, layer in _mixed_layers(model):
        idx = tuple(i for i, n in enumerate(names) if _has(layer, n))
        present = tuple(names[i] for i in idx)
        if not idx:
            layer._uir_mix = None
        elif isinstance(layer, DeltaConv2d):
            layer._uir_mix = (present, weights if len(idx) == len(names) else weights[:, list(idx)])
        else:
            ranks = tuple(layer.r[n] for n in present)
            key = (idx, ranks, tuple(layer.scaling[n] for n in present))
            if key not in cache:
                per_adapter = weights[:, list(idx)] * torch.tensor(key[2], device=weights.device)
                cache[key] = per_adapter.repeat_interleave(torch.tensor(ranks, device=weights.device), dim=1,
                                                           output_size=sum(ranks))
            layer._uir_mix = (present, cache[key])


def clear_mixture(model: nn.Module) -> None:
    """Back to the frozen base: no adapter contributes until the next ``set_mixture``."""
    for _, layer in _mixed_layers(model):
        layer._uir_mix = None


@contextmanager
def mixture(model: nn.Module, names: Sequence[str], weights: torch.Tensor) -> Iterator[None]:
    """``with mixture(model, names, weights): out = model(x)`` - set for the block, cleared after."""
    set_mixture(model, names, weights)
    try:
        yield
    finally:
        clear_mixture(model)


def _remove(model: OneStepRestorer, name: str) -> None:
    model.adapter_configs.pop(name, None)
    for _, layer in _mixed_layers(model):
        if isinstance(layer, DeltaConv2d) and name in layer.delta_weight:
            del layer.delta_weight[name], layer.delta_bias[name]
        elif not isinstance(layer, DeltaConv2d) and name in layer.lora_A:
            layer.delete_adapter(name)


def without_adapters(model: OneStepRestorer) -> OneStepRestorer:
    """A copy of ``model`` with every adapted layer replaced by its frozen base layer (for ``save_backbone``)."""
    base = copy.deepcopy(model)
    for path, layer in list(_mixed_layers(base)):
        parent, _, attr = path.rpartition(".")
        setattr(base.get_submodule(parent), attr, layer.base_layer)
    for part in (base.unet, base.vae):
        part.__dict__.pop("peft_config", None)  # left by peft's inject_adapter_in_model
    base.adapter_configs = {}
    return base


def save_adapter(model: OneStepRestorer, name: str, path: str | Path) -> Path:
    """Write adapter ``name`` to ``path`` (.safetensors, float32) and its AdapterConfig to the .json beside it."""
    path = Path(path).with_suffix(".safetensors")
    state = {k: v.detach().float().contiguous().cpu() for k, v in adapter_state(model, name).items()}
    write_bytes(path, save(state))  # atomic: temporary file + rename
    write_json(path.with_suffix(".json"), {"format": FORMAT, "version": FORMAT_VERSION, "name": name,
                                           "config": asdict(model.adapter_configs[name])})
    return path


def load_adapter(model: OneStepRestorer, path: str | Path, name: str | None = None) -> str:
    """Add the adapter saved at ``path`` (under ``name``, default: its saved name); return the name.

    Every tensor must match the backbone's layers exactly, else the adapter is removed and an error
    names the offending keys.
    """
    path = Path(path).with_suffix(".safetensors")
    with loading(path.with_suffix(".json")):
        meta = json.loads(path.with_suffix(".json").read_text())
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise UserError(f"{path.with_suffix('.json')}: not a {FORMAT} v{FORMAT_VERSION} file")
    config = AdapterConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()})
    name = name or meta["name"]
    with loading(path):
        tensors = load_file(str(path))
    _add_uninitialised(model, name, config)
    state = adapter_state(model, name)
    bad = sorted(set(state) ^ set(tensors)) + [k for k in state.keys() & tensors.keys() if state[k].shape != tensors[k].shape]
    if bad:
        _remove(model, name)
        raise UserError(f"{path}: adapter does not fit this backbone; mismatched keys (first 5): {bad[:5]}")
    with torch.no_grad():
        for key, param in state.items():
            param.copy_(tensors[key])
    return name
