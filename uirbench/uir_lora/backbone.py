"""One-step generative restorer: the frozen backbone that UIR-LoRA adapts (img2img-turbo style).

UIR-LoRA (Zhang et al., arXiv 2409.20197) builds on img2img-turbo (Parmar et al., arXiv 2403.12036):
SD-turbo run as a single-step image-to-image network. For an input x in [0, 1] (NCHW):

    z   = E(2x - 1) * c                    VAE encoder, posterior mode; c = vae scaling_factor
    eps = UNet(z, t = 999, prompt)          the noisy latent at t=999 is taken to be z itself
    z0  = (z - sqrt(1 - abar_t) eps) / sqrt(abar_t)      closed-form DDPM x0 prediction (one step)
    y   = (D(z0 / c, skips) + 1) / 2        VAE decoder with 1x1 skip convs from the encoder

abar_t is the DDPM cumulative product for SD's "scaled_linear" betas (sqrt-linear from 0.00085 to
0.012 over 1000 steps). The skips carry the encoder's down-block *inputs* (the only encoder
activations at every decoder resolution) into the decoder's up-block inputs; they start as constant
1e-5 weights, so at initialisation the decoder sees almost pure latents. ``forward`` is unclamped
(losses need the raw values); ``uirbench.restorer.restore`` clamps to [0, 1].

Sources (``load_backbone``): ``"tiny"`` (random, small, for tests), a folder written by
``save_backbone``, or SD-turbo as a hub id or a downloaded copy (the prompt embedding is computed once
by its CLIP text encoder, which is then dropped).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from uirbench import checksums
from uirbench.errors import UserError
from uirbench.io import write_bytes, write_json
from uirbench.rng import init_rand_

DEFAULT_SOURCE = "stabilityai/sd-turbo"
DEFAULT_PROMPT = "a sharp, clean, high quality photo"
FORMAT = "uirbench-one-step-backbone"
FORMAT_VERSION = 1


class BackboneError(UserError):
    """A backbone that cannot be built or loaded; the message says what to provide instead."""


@dataclass(frozen=True)
class BackboneConfig:
    """What defines a one-step backbone.

    ``vae`` / ``unet``: keyword arguments of diffusers' ``AutoencoderKL`` / ``UNet2DConditionModel``.
    ``prompt``: the fixed text prompt (used when a CLIP text encoder is available); ``prompt_length``:
    tokens in the prompt embedding (77 for CLIP). ``timestep``: the single diffusion step (999).
    ``beta_start`` / ``beta_end`` / ``num_train_timesteps``: SD's scaled-linear DDPM schedule.
    ``skip_init``: constant initial weight of the 1x1 skip convs (img2img-turbo uses 1e-5).
    """

    vae: dict[str, Any]
    unet: dict[str, Any]
    prompt: str = DEFAULT_PROMPT
    prompt_length: int = 77
    timestep: int = 999
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    skip_init: float = 1e-5


def tiny_backbone_config() -> BackboneConfig:
    """A CPU-sized backbone: VAE (4x down-sampling), UNet (2x), 8-token prompt.

    SD's block types (DownEncoderBlock2D VAE, a UNet with a cross-attention mid block), so every LoRA
    target exists, with attention only at the lowest resolution (the UNet's mid block, 1/8 of the image
    side): self-attention costs grow with the square of the token count, and at the VAE's 1/4 resolution a
    400x600 image has 15,000 tokens, which made attention 81% of the restore time. The VAE has no mid
    attention and the UNet's outer level is convolutional, so the cost per pixel is that of a small CNN.
    """
    vae = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32, 32), layers_per_block=1,
               down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
               norm_num_groups=8, sample_size=64, scaling_factor=1.0, mid_block_add_attention=False)
    unet = dict(in_channels=4, out_channels=4, sample_size=16, block_out_channels=(32, 64), layers_per_block=1,
                down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8, use_linear_projection=True)
    return BackboneConfig(vae=vae, unet=unet, prompt_length=8)


def sd_turbo_backbone_config() -> BackboneConfig:
    """SD-turbo's shapes (SD 2.1 architecture at 512 px): UNet 865.9M params, VAE 83.7M, CLIP-H prompt 77x1024."""
    vae = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
               down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
               norm_num_groups=32, sample_size=512, scaling_factor=0.18215)
    unet = dict(in_channels=4, out_channels=4, sample_size=64, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True)
    return BackboneConfig(vae=vae, unet=unet)


def ddpm_alphas_cumprod(config: BackboneConfig) -> torch.Tensor:
    """abar_t for t = 0..T-1 (float64, CPU) from diffusers' DDPMScheduler with SD's scaled-linear betas."""
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(num_train_timesteps=config.num_train_timesteps, beta_start=config.beta_start,
                          beta_end=config.beta_end, beta_schedule="scaled_linear")
    return sched.alphas_cumprod.double()


def _base_dtype(layer: nn.Module) -> torch.dtype:
    """dtype of a conv's own weight, also when an adapter wraps it (adapter weights stay float32)."""
    return getattr(layer, "base_layer", layer).weight.dtype


class OneStepRestorer(nn.Module):
    """VAE + UNet + fixed prompt embedding + decoder skip convs; ``forward`` maps [0, 1] NCHW to ~[0, 1].

    ``prompt_embedding``: [1, prompt_length, cross_attention_dim]. Spatial sizes must be multiples
    of ``size_multiple`` (VAE down-sampling x UNet down-sampling); ``restore`` pads to it.
    """

    def __init__(self, vae: nn.Module, unet: nn.Module, prompt_embedding: torch.Tensor, config: BackboneConfig) -> None:
        super().__init__()
        _own_memory(vae)
        _own_memory(unet)
        prompt_embedding = prompt_embedding.clone(memory_format=torch.contiguous_format)
        self.vae = vae
        self.unet = unet
        self.config = replace(config, vae=_public(vae.config), unet=_public(unet.config))  # with diffusers' defaults
        self.adapter_configs: dict[str, Any] = {}  # name -> lora.AdapterConfig, kept by uir_lora.lora
        self.register_buffer("prompt_embedding", prompt_embedding)
        # Not a buffer: module.to(bf16) would round abar_999 = 0.0047 to 3 digits, which z0 amplifies 15x.
        self._alphas_cumprod = ddpm_alphas_cumprod(config)
        enc, dec = vae.encoder.down_blocks, vae.decoder.up_blocks
        device = vae.encoder.conv_in.weight.device  # built before any adapter wraps conv_in
        self.skips = nn.ModuleList()
        for j, up in enumerate(dec):
            c_in, c_out = enc[len(enc) - 1 - j].resnets[0].in_channels, up.resnets[0].in_channels
            conv = torch.nn.utils.skip_init(nn.Conv2d, c_in, c_out, 1, device=device)
            if not conv.weight.is_meta:
                with torch.no_grad():
                    conv.weight.fill_(config.skip_init)
                    conv.bias.zero_()
            self.skips.append(conv)

    @property
    def size_multiple(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1) * 2 ** (len(self.unet.config.block_out_channels) - 1)

    def posterior(self, x: torch.Tensor) -> tuple[Any, list[torch.Tensor]]:
        """Image in [0, 1] -> (the VAE posterior q(z|x) of unscaled latents, encoder down-block inputs for the skips)."""
        from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

        enc = self.vae.encoder
        h = enc.conv_in((2 * x - 1).to(_base_dtype(enc.conv_in)))
        feats = []
        for block in enc.down_blocks:
            feats.append(h)
            h = block(h)
        h = enc.conv_out(enc.conv_act(enc.conv_norm_out(enc.mid_block(h))))
        if self.vae.quant_conv is not None:
            h = self.vae.quant_conv(h)
        return DiagonalGaussianDistribution(h), feats  # h = (mean | log-variance) along channels

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Image in [0, 1] -> (scaled latent z = mode * c, encoder down-block inputs for the skips)."""
        posterior, feats = self.posterior(x)
        return posterior.mode() * self.vae.config.scaling_factor, feats

    def decode(self, z0: torch.Tensor, feats: list[torch.Tensor]) -> torch.Tensor:
        """Scaled latent -> image in ~[-1, 1]; skip j adds the encoder feature of matching resolution."""
        dec = self.vae.decoder
        h = (z0 / self.vae.config.scaling_factor).to(_base_dtype(dec.conv_in))
        if self.vae.post_quant_conv is not None:
            h = self.vae.post_quant_conv(h)
        h = dec.mid_block(dec.conv_in(h), None)
        for skip, feat, block in zip(self.skips, reversed(feats), dec.up_blocks, strict=True):
            h = block(h + skip(feat), None)
        return dec.conv_out(dec.conv_act(dec.conv_norm_out(h)))

    def predict_noise(self, z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """UNet epsilon prediction for latents z_t [B, 4, h, w] at integer timesteps t [B], fixed prompt."""
        prompt = self.prompt_embedding.expand(z_t.shape[0], -1, -1)
        return self.unet(z_t.to(prompt.dtype), t, encoder_hidden_states=prompt).sample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, feats = self.encode(x)
        t = torch.full((x.shape[0],), self.config.timestep, device=x.device, dtype=torch.long)
        eps = self.predict_noise(z, t).float()
        abar = float(self._alphas_cumprod[self.config.timestep])
        z0 = (z.float() - math.sqrt(1.0 - abar) * eps) / math.sqrt(abar)
        return (self.decode(z0, feats).float() + 1.0) / 2.0


def _own_memory(module: nn.Module) -> None:
    """Move every parameter and buffer of ``module`` into its own freshly allocated, contiguous memory.

    ``from_pretrained`` hands over tensors that live inside the memory-mapped ``.safetensors`` file,
    at each tensor's offset in it (e.g. 20, 40 or 52 bytes past a 64-byte boundary), whereas a
    constructed model's tensors come from the allocator (64-byte aligned). CPU kernels pick their
    vectorised path by alignment: with one image, the UNet's time-embedding linears (matrix-vector
    products) summed in another order, and a reloaded backbone differed from the saved one by ~2e-6
    although every weight was equal. Re-allocating here, on every way a backbone is made, gives
    loaded and constructed models the same memory and so bit-identical outputs; it also detaches a
    loaded model from its files. Parameter objects are kept (only ``.data`` changes), so references
    to them stay valid.
    """
    with torch.no_grad():
        for param in module.parameters():
            param.data = param.data.clone(memory_format=torch.contiguous_format)
        for sub in module.modules():
            for name, buf in sub._buffers.items():
                if buf is not None:
                    sub._buffers[name] = buf.clone(memory_format=torch.contiguous_format)


def _init_like_torch(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default init drawn from ``generator``: conv/linear U(+-1/sqrt(fan_in)) (``rng.init_rand_``), norms 1 and 0.

    Raises on any other parametrised layer, so nothing is left as uninitialised memory.
    """
    for layer in module.modules():
        own = list(layer.parameters(recurse=False))
        if not own or own[0].is_meta:
            continue
        with torch.no_grad():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                init_rand_(layer.weight, layer.bias, generator)
            elif isinstance(layer, (nn.GroupNorm, nn.LayerNorm)):
                layer.weight.fill_(1.0)
                layer.bias.zero_()
            else:
                raise BackboneError(f"no random initialisation defined for {type(layer).__name__}")


def build_backbone(config: BackboneConfig, generator: torch.Generator, device: str | torch.device = "cpu",
                   dtype: torch.dtype = torch.float32) -> OneStepRestorer:
    """A randomly initialised backbone of ``config``'s shape (weights and prompt from ``generator``).

    Built on the meta device, then materialised and drawn on ``generator.device``, so the global RNG
    is never touched. ``device="meta"`` allocates nothing (for parameter counts of full-size configs).
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel

    with torch.device("meta"):
        vae, unet = AutoencoderKL(**config.vae), UNet2DConditionModel(**config.unet)
    if any(True for _ in vae.buffers()) or any(True for _ in unet.buffers()):
        raise BackboneError("the VAE/UNet config creates buffers, which build_backbone cannot initialise")
    shape = (1, config.prompt_length, config.unet["cross_attention_dim"])
    if str(device) == "meta":
        return OneStepRestorer(vae, unet, torch.empty(shape, device="meta"), config)
    for part in (vae, unet):
        part.to_empty(device=generator.device)
        _init_like_torch(part, generator)
    prompt = torch.randn(shape, generator=generator, device=generator.device)
    return OneStepRestorer(vae, unet, prompt, config).to(device=device, dtype=dtype)


def _public(diffusers_config: Any) -> dict[str, Any]:
    """A diffusers config as plain kwargs (no private keys; JSON lists back to tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in dict(diffusers_config).items() if not k.startswith("_")}


def _has_adapters(model: OneStepRestorer) -> bool:
    """Whether any layer is wrapped by an adapter: peft's LoRA layers and ``lora.DeltaConv2d`` keep the
    layer they wrap as ``base_layer`` (checked by that name, so this module need not import ``lora``)."""
    return any(hasattr(layer, "base_layer") for layer in model.modules())


def save_backbone(model: OneStepRestorer, directory: str | Path) -> Path:
    """Write ``vae/`` and ``unet/`` (diffusers ``save_pretrained``), ``restorer.safetensors`` (prompt
    embedding, skip convs), ``backbone.json`` and ``checksums.json``. Adapters are saved separately
    (``lora.save_adapter``).

    Safe against interruption: ``checksums.json`` (``uirbench.checksums``) marks a complete backbone, so
    it is removed first and written last; each subfolder is written beside its final name and swapped
    in, each file atomically.
    """
    from safetensors.torch import save

    if _has_adapters(model):
        raise BackboneError("save_backbone: the model carries LoRA adapters; save uirbench.uir_lora.lora.without_adapters(model) "
                            "(or the backbone before adding them) and save adapters with uirbench.uir_lora.lora.save_adapter")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    checksums.unseal(directory)
    for name, part in (("vae", model.vae), ("unet", model.unet)):
        tmp, old = directory / f".{name}.tmp", directory / f".{name}.old"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
        part.save_pretrained(tmp, safe_serialization=True)
        if (directory / name).exists():
            os.replace(directory / name, old)
        os.replace(tmp, directory / name)
        shutil.rmtree(old, ignore_errors=True)
    tensors = {"prompt_embedding": model.prompt_embedding, **{f"skips.{k}": v for k, v in model.skips.state_dict().items()}}
    write_bytes(directory / "restorer.safetensors", save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}))
    meta = {k: v for k, v in asdict(model.config).items() if k not in ("vae", "unet")}
    write_json(directory / "backbone.json", {"format": FORMAT, "version": FORMAT_VERSION, **meta})
    parts = sorted(p.relative_to(directory).as_posix() for name in ("vae", "unet") for p in (directory / name).rglob("*") if p.is_file())
    checksums.seal(directory, [*parts, "restorer.safetensors", "backbone.json"])
    return directory


def _load_saved(directory: Path) -> OneStepRestorer:
    """A ``save_backbone`` folder, after checking its files against ``checksums.json`` (an interrupted save has none)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import load_file

    checksums.verify(directory, "backbone")
    with checksums.loading(directory / "backbone.json"):
        meta = json.loads((directory / "backbone.json").read_text())
    if meta.pop("format", None) != FORMAT or meta.pop("version", None) != FORMAT_VERSION:
        raise BackboneError(f"{directory / 'backbone.json'}: not a {FORMAT} v{FORMAT_VERSION} file")
    with checksums.loading(directory / "vae"):
        vae = AutoencoderKL.from_pretrained(directory / "vae", local_files_only=True)
    with checksums.loading(directory / "unet"):
        unet = UNet2DConditionModel.from_pretrained(directory / "unet", local_files_only=True)
    known = {f.name for f in fields(BackboneConfig)} - {"vae", "unet"}
    config = BackboneConfig(vae={}, unet={}, **{k: v for k, v in meta.items() if k in known})
    with checksums.loading(directory / "restorer.safetensors"):
        tensors = load_file(str(directory / "restorer.safetensors"))
    model = OneStepRestorer(vae, unet, tensors.pop("prompt_embedding"), config)
    model.skips.load_state_dict({k.removeprefix("skips."): v for k, v in tensors.items()}, strict=True)
    return model


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def _load_pretrained(source: str) -> OneStepRestorer:
    """SD-turbo-layout weights (subfolders vae, unet, text_encoder, tokenizer) from a hub id or folder."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    from transformers import CLIPTextModel, CLIPTokenizer

    local_only = _hub_offline() or Path(source).is_dir()
    try:
        vae = AutoencoderKL.from_pretrained(source, subfolder="vae", local_files_only=local_only)
        unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet", local_files_only=local_only)
        tokenizer = CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", local_files_only=local_only)
        text_encoder = CLIPTextModel.from_pretrained(source, subfolder="text_encoder", local_files_only=local_only)
    except (OSError, LocalEntryNotFoundError, HfHubHTTPError, ValueError) as exc:
        where = "offline (HF_HUB_OFFLINE is set)" if _hub_offline() else "from the Hugging Face hub or disk"
        raise BackboneError(
            f"cannot load backbone {source!r} {where}: {exc}\nProvide the weights: on a machine with internet run "
            f"`huggingface-cli download {DEFAULT_SOURCE} --local-dir DIR`, copy DIR here and pass `--model-arg backbone=DIR` "
            "(a folder with vae/, unet/, text_encoder/ and tokenizer/ subfolders), or pre-train a small backbone offline: "
            "`uirbench train --model uir-lora --preset tiny`") from exc
    config = BackboneConfig(vae={}, unet={}, prompt_length=tokenizer.model_max_length)
    ids = tokenizer(config.prompt, padding="max_length", max_length=config.prompt_length, truncation=True,
                    return_tensors="pt").input_ids
    with torch.no_grad():
        prompt = text_encoder(ids).last_hidden_state.float()
    return OneStepRestorer(vae, unet, prompt, config)


def load_backbone(source: str = DEFAULT_SOURCE, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                  generator: torch.Generator | None = None) -> OneStepRestorer:
    """The backbone named by ``source``: "tiny" (random, needs ``generator``), a ``save_backbone`` folder,
    an SD-turbo-layout folder, or a hub id (default "stabilityai/sd-turbo"; ``local_files_only`` when
    HF_HUB_OFFLINE is set, so it fails fast with instructions instead of waiting on the network)."""
    if source == "tiny":
        if generator is None:
            raise UserError("load_backbone('tiny') draws random weights: pass generator=torch.Generator().manual_seed(...)")
        return build_backbone(tiny_backbone_config(), generator, device=device, dtype=dtype)
    path = Path(source)
    if any((path / name).exists() for name in (checksums.MANIFEST, "backbone.json", "restorer.safetensors", ".unet.tmp", ".vae.tmp")):
        model = _load_saved(path)  # also a save_backbone that was interrupted: refused, it has no checksums.json
    elif path.is_dir() or (source.count("/") == 1 and not source.startswith((".", "/", "~"))):
        model = _load_pretrained(source)
    else:
        raise BackboneError(f"backbone source {source!r}: not 'tiny', not a folder, not a hub id like {DEFAULT_SOURCE!r}")
    return model.to(device=device, dtype=dtype)


def vae_reconstruction_loss(model: OneStepRestorer, clean: torch.Tensor, generator: torch.Generator,
                            kl_weight: float = 1e-6, skips: bool = False) -> torch.Tensor:
    """VAE pre-training objective (LDM, Rombach et al. 2022): L1 + kl_weight * KL (+ L1 through the skips).

    A posterior sample (drawn from ``generator``) is decoded; L1 is the mean absolute error in [0, 1]
    units; KL(q(z|x) || N(0, I)) is summed over latent elements and divided by the image's 3HW
    values, i.e. LDM's per-image sums with the same 1e-6 weight, both divided by 3HW.
    ``skips``: also decode the same sample with the skip convs (``decode``) and add that L1, so the
    shared skips learn to carry the detail a small latent cannot (train them with the VAE).
    """
    posterior, feats = model.posterior(clean)
    eps = torch.randn(posterior.mean.shape, generator=generator, device=generator.device).to(posterior.mean)
    z = posterior.mean + posterior.std * eps
    recon = (model.vae.decode(z).sample.float() + 1) / 2
    kl = posterior.kl().float().mean() / clean[0].numel()
    loss = F.l1_loss(recon, clean) + kl_weight * kl
    if skips:
        loss = loss + F.l1_loss((model.decode(z * model.vae.config.scaling_factor, feats).float() + 1) / 2, clean)
    return loss


def latent_diffusion_loss(model: OneStepRestorer, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """UNet pre-training objective (DDPM, Ho et al. 2020): MSE between the noise and its prediction.

    Latents of ``clean`` come from the frozen VAE (posterior mode x scaling_factor); t ~ U{0..T-1} and
    the noise are drawn from ``generator``; the UNet sees the fixed prompt embedding.
    """
    with torch.no_grad():
        z = model.encode(clean)[0].float()
    abar = model._alphas_cumprod.to(generator.device, torch.float32)
    t = torch.randint(0, len(abar), (z.shape[0],), generator=generator, device=generator.device)
    noise = torch.randn(z.shape, generator=generator, device=generator.device)
    a, noise, t = abar[t].view(-1, 1, 1, 1).to(z.device), noise.to(z.device), t.to(z.device)  # generator may be on the CPU
    z_t = a.sqrt() * z + (1 - a).sqrt() * noise
    return F.mse_loss(model.predict_noise(z_t, t).float(), noise)


def calibrate_scaling_factor(model: OneStepRestorer, clean: torch.Tensor) -> float:
    """Set the VAE's scaling_factor to 1 / std of unscaled latents of ``clean`` (LDM Sec. 4.3.2), return it.

    Needed once after pre-training a small VAE so that z has unit variance, as the DDPM schedule assumes.
    """
    with torch.no_grad():
        std = model.vae.encode(2 * clean - 1).latent_dist.mode().float().std().item()
    model.vae.register_to_config(scaling_factor=1.0 / std)
    return 1.0 / std


def restoration_loss(pred: torch.Tensor, target: torch.Tensor, *, l1_weight: float = 1.0, lpips: Any = None,
                     lpips_weight: float = 5.0) -> torch.Tensor:
    """Adapter training objective: MSE + l1_weight * L1 (+ lpips_weight * mean LPIPS if ``lpips`` is given).

    ``pred`` / ``target``: NCHW in [0, 1]. ``lpips`` is a callable on two [0, 1] NCHW batches returning
    per-image or mean distances (pyiqa / torchmetrics ``normalize=True`` convention). img2img-turbo
    used L2 + 5 x LPIPS; without LPIPS weights (offline) L1 sharpens the L2 optimum.
    """
    loss = F.mse_loss(pred, target) + l1_weight * F.l1_loss(pred, target)
    if lpips is not None:
        loss = loss + lpips_weight * lpips(pred, target).mean()
    return loss
