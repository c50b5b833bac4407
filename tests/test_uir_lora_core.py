"""UIR-LoRA core: the one-step backbone (against diffusers' own encode/decode/scheduler) and the stacked
per-sample multi-LoRA (against peft's weight merging, one image at a time). Tiny configs only."""

from __future__ import annotations

import copy
import json
import math
import string
import time

import pytest
import torch

from uirbench.errors import CheckpointError
from uirbench.restorer import Restorer, restore
from uirbench.uir_lora import lora
from uirbench.uir_lora.backbone import (
    BackboneError,
    build_backbone,
    calibrate_scaling_factor,
    ddpm_alphas_cumprod,
    latent_diffusion_loss,
    load_backbone,
    restoration_loss,
    save_backbone,
    sd_turbo_backbone_config,
    tiny_backbone_config,
    vae_reconstruction_loss,
)

NAMES = ("noise", "blur", "haze")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def base():
    return load_backbone("tiny", generator=gen(0)).eval()


def randomise(model, name: str, seed: int, std: float = 0.05) -> None:
    """Non-zero B and deltas, so every adapter visibly changes the output."""
    g = gen(seed)
    with torch.no_grad():
        for p in lora.adapter_state(model, name).values():
            p.copy_(torch.randn(p.shape, generator=g) * std)


@pytest.fixture(scope="module")
def adapted(base):
    model = copy.deepcopy(base)
    for i, name in enumerate(NAMES):
        lora.add_adapter(model, name, gen(10 + i))
        randomise(model, name, 20 + i)
    return model


def images(batch: int, size: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=gen(seed))


def run(model, x, names=None, weights=None) -> torch.Tensor:
    with torch.no_grad():
        if names is None:
            return model(x)
        with lora.mixture(model, names, weights):
            return model(x)


class Wrapped(Restorer):
    name = "test-one-step"

    def __init__(self, backbone) -> None:
        super().__init__()
        self.backbone = backbone
        self.size_multiple = backbone.size_multiple

    def forward(self, x, degradation_hint=None):
        return self.backbone(x)


# ---- backbone -------------------------------------------------------------------------------------------------

def test_tiny_backbone_regime(base):
    assert base.size_multiple == 4 * 2
    assert 0.7e6 < sum(p.numel() for p in base.unet.parameters()) < 0.9e6
    assert 0.2e6 < sum(p.numel() for p in base.vae.parameters()) < 0.3e6
    assert base.prompt_embedding.shape == (1, 8, 32)


def test_alphas_cumprod_is_sd_scaled_linear():
    betas = [(math.sqrt(0.00085) + (math.sqrt(0.012) - math.sqrt(0.00085)) * i / 999) ** 2 for i in range(1000)]
    abar = math.prod(1 - b for b in betas)
    got = ddpm_alphas_cumprod(tiny_backbone_config())
    assert got.shape == (1000,)
    assert got[-1].item() == pytest.approx(abar, rel=1e-5)
    assert got[0].item() == pytest.approx(1 - 0.00085, rel=1e-6)


def test_encode_decode_match_diffusers(base):
    x = images(2)
    with torch.no_grad():
        z, feats = base.encode(x)
        ref = base.vae.encode(2 * x - 1).latent_dist.mode() * base.vae.config.scaling_factor
        assert torch.allclose(z, ref, atol=1e-6)
        no_skip = copy.deepcopy(base)
        for skip in no_skip.skips:
            skip.weight.zero_()
        ref_dec = base.vae.decode(z / base.vae.config.scaling_factor).sample
        assert torch.allclose(no_skip.decode(z, feats), ref_dec, atol=1e-5)
        assert not torch.allclose(base.decode(z, feats), ref_dec, atol=1e-7)  # the 1e-5 skips do contribute


def test_forward_is_one_ddpm_step_to_x0(base):
    from diffusers import DDPMScheduler

    x = images(2)
    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False)
    with torch.no_grad():
        z, feats = base.encode(x)
        eps = base.unet(z, 999, encoder_hidden_states=base.prompt_embedding.expand(2, -1, -1)).sample
        z0 = sched.step(eps, 999, z).pred_original_sample
        expected = (base.decode(z0, feats) + 1) / 2
        assert torch.allclose(base(x), expected, atol=1e-4)


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (1, 3, 37, 45)])
def test_restore_keeps_shape_and_range(base, shape):
    x = torch.rand(shape, generator=gen(3))
    out = restore(Wrapped(base), x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_save_load_backbone_round_trip(base, tmp_path):
    save_backbone(base, tmp_path / "bb")
    again = load_backbone(str(tmp_path / "bb")).eval()
    for batch in (1, 2):  # one image: the time-embedding linears are matrix-vector products, alignment-sensitive on CPU
        x = images(batch)
        assert torch.equal(run(base, x), run(again, x))
    assert again.config == base.config
    # Loaded tensors own allocator memory like constructed ones, not views into the memory-mapped files
    # (tensors at unaligned file offsets made CPU kernels sum in another order: outputs off by ~2e-6).
    for tensor in [*again.parameters(), *again.buffers()]:
        assert tensor.data_ptr() % 64 == 0 and tensor.is_contiguous()


def test_save_backbone_over_an_old_one_is_all_or_nothing(base, tmp_path, monkeypatch):
    other = copy.deepcopy(base)
    with torch.no_grad():
        next(other.unet.parameters()).add_(1.0)
    save_backbone(base, tmp_path / "bb")
    save_backbone(other, tmp_path / "bb")  # replaces the old one; no temporary folders left behind
    assert sorted(p.name for p in (tmp_path / "bb").iterdir()) == ["backbone.json", "checksums.json", "restorer.safetensors", "unet", "vae"]
    x = images(1)
    assert torch.equal(run(load_backbone(str(tmp_path / "bb")).eval(), x), run(other, x))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as if interrupted while writing the UNet

    monkeypatch.setattr(type(base.unet), "save_pretrained", killed)
    with pytest.raises(KeyboardInterrupt):
        save_backbone(base, tmp_path / "bb")
    assert not (tmp_path / "bb" / "checksums.json").exists()  # no longer marked complete: never half old, half new
    with pytest.raises(CheckpointError, match=r"checksums\.json is missing: the save was interrupted"):
        load_backbone(str(tmp_path / "bb"))


def test_save_backbone_refuses_adapters(adapted, tmp_path):
    with pytest.raises(BackboneError, match="adapters"):
        save_backbone(adapted, tmp_path / "bb")


def test_offline_hub_id_fails_fast_with_instructions(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(BackboneError, match="huggingface-cli download stabilityai/sd-turbo --local-dir"):
        load_backbone("stabilityai/sd-turbo")
    assert time.perf_counter() - start < 30


def test_unknown_source_is_refused():
    with pytest.raises(BackboneError, match="tiny"):
        load_backbone("./no/such/folder")
    with pytest.raises(ValueError, match="generator"):
        load_backbone("tiny")


def _tiny_clip_folder(root, base) -> None:
    """An SD-turbo-layout folder with a small CLIP text encoder and character-level tokenizer."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    chars = [*string.ascii_lowercase, ",", "."]
    vocab = {t: i for i, t in enumerate([*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"])}
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(vocab_file=str(root / "vocab.json"), merges_file=str(root / "merges.txt"),
                  model_max_length=12).save_pretrained(root / "tokenizer")
    cfg = CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=12, bos_token_id=len(vocab) - 2,
                         eos_token_id=len(vocab) - 1, pad_token_id=len(vocab) - 1)
    with torch.device("meta"):
        text = CLIPTextModel(cfg)
    text.to_empty(device="cpu")
    g = gen(5)
    with torch.no_grad():
        for p in text.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    text.save_pretrained(root / "text_encoder")
    base.vae.save_pretrained(root / "vae")
    base.unet.save_pretrained(root / "unet")


def test_sd_turbo_layout_folder_uses_the_text_encoder(base, tmp_path):
    from transformers import CLIPTextModel, CLIPTokenizer

    _tiny_clip_folder(tmp_path, base)
    model = load_backbone(str(tmp_path))
    tok = CLIPTokenizer.from_pretrained(tmp_path / "tokenizer")
    ids = tok(model.config.prompt, padding="max_length", max_length=12, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        expected = CLIPTextModel.from_pretrained(tmp_path / "text_encoder")(ids).last_hidden_state
    assert model.prompt_embedding.shape == (1, 12, 32)
    assert torch.allclose(model.prompt_embedding, expected)
    assert torch.isfinite(run(model.eval(), images(1))).all()


def test_sd_turbo_shapes_on_meta():
    model = build_backbone(sd_turbo_backbone_config(), gen(0), device="meta")
    assert model.size_multiple == 64
    assert sum(p.numel() for p in model.unet.parameters()) / 1e6 == pytest.approx(865.9, abs=0.05)
    assert sum(p.numel() for p in model.vae.parameters()) / 1e6 == pytest.approx(83.65, abs=0.05)
    lora.add_adapter(model, "noise", gen(1))
    unet_lora = sum(v.numel() for k, v in lora.adapter_state(model, "noise").items() if k.startswith("unet.") and ".lora_" in k)
    assert unet_lora / 1e6 == pytest.approx(8.11, abs=0.005)


def test_pretraining_losses(base):
    model = copy.deepcopy(base).train()
    clean = images(2, 32)
    rec = vae_reconstruction_loss(model, clean, gen(7))
    assert rec.item() == pytest.approx(vae_reconstruction_loss(model, clean, gen(7)).item())
    rec.backward()
    assert model.vae.decoder.conv_out.weight.grad is not None and model.unet.conv_in.weight.grad is None
    diff = latent_diffusion_loss(model, clean, gen(8))
    assert diff.item() == pytest.approx(latent_diffusion_loss(model, clean, gen(8)).item())
    assert diff.item() != pytest.approx(latent_diffusion_loss(model, clean, gen(9)).item())
    diff.backward()
    assert model.unet.conv_in.weight.grad is not None
    factor = calibrate_scaling_factor(model, clean)
    assert model.vae.config.scaling_factor == factor
    assert model.encode(clean)[0].std().item() == pytest.approx(1.0, rel=1e-3)


def test_restoration_loss_hand_computed():
    pred, target = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    assert restoration_loss(pred, target).item() == pytest.approx(0.25 + 0.5)
    assert restoration_loss(pred, target, l1_weight=0.0).item() == pytest.approx(0.25)
    lpips = lambda a, b: torch.tensor([0.1, 0.3])  # noqa: E731
    assert restoration_loss(pred, target, lpips=lpips, lpips_weight=2.0).item() == pytest.approx(0.75 + 0.4)


# ---- stacked multi-LoRA ---------------------------------------------------------------------------------------

def merged_reference(model, names, row) -> torch.nn.Module:
    """An independent per-image reference: peft merges s_i * scaling_i * B_i A_i into the base weights
    (its own get_delta_weight), the conv_in/skip deltas are added by hand; no mixture is set."""
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for _, layer in ref.named_modules():
            if isinstance(layer, (lora.MixLinear, lora.MixConv2d)):
                for n, s in zip(names, row.tolist(), strict=True):
                    layer.scaling[n] *= s
                layer.merge(adapter_names=list(names))
            elif isinstance(layer, lora.DeltaConv2d):
                for n, s in zip(names, row.tolist(), strict=True):
                    layer.base_layer.weight += s * layer.delta_weight[n]
                    layer.base_layer.bias += s * layer.delta_bias[n]
    return ref


def test_per_sample_mixture_matches_per_image_references(adapted):
    x = images(3)
    w = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.5, 0.3], [0.0, 0.9, 0.4]])
    batched = run(adapted, x, NAMES, w)
    for b in range(3):
        single = run(adapted, x[b:b + 1], NAMES, w[b:b + 1])
        merged = run(merged_reference(adapted, NAMES, w[b]), x[b:b + 1])
        assert torch.allclose(batched[b:b + 1], single, atol=1e-5, rtol=0)
        assert torch.allclose(batched[b:b + 1], merged, atol=1e-5, rtol=0)
    assert (batched[0] - batched[1]).abs().max() > 1e-3  # the mixtures really differ


def test_mixture_order_and_subsets(adapted):
    x = images(2)
    w = torch.tensor([[0.3, 0.7], [0.6, 0.4]])
    assert torch.allclose(run(adapted, x, ["blur", "haze"], w), run(adapted, x, ["haze", "blur"], w.flip(1)), atol=1e-5)
    full = torch.cat([torch.zeros(2, 1), w], dim=1)
    assert torch.allclose(run(adapted, x, ["blur", "haze"], w), run(adapted, x, NAMES, full), atol=1e-6)


def test_zero_weights_equal_the_base(base, adapted):
    x = images(2)
    assert torch.equal(run(adapted, x, NAMES, torch.zeros(2, 3)), run(base, x))
    assert torch.equal(run(adapted, x), run(base, x))  # no mixture: the frozen base
    assert not torch.allclose(run(adapted, x, NAMES, torch.full((2, 3), 1 / 3)), run(base, x), atol=1e-3)


def test_fresh_adapter_is_identity_and_rng_is_untouched(base):
    model = copy.deepcopy(base)
    state = torch.get_rng_state()
    lora.add_adapter(model, "noise", gen(1))
    assert torch.equal(torch.get_rng_state(), state)
    x = images(1)
    assert torch.equal(run(model, x, ["noise"], torch.ones(1, 1)), run(base, x))  # B = 0, deltas = 0


def test_training_one_adapter_touches_only_its_parameters(adapted):
    model = copy.deepcopy(adapted).train()
    params = lora.mark_trainable(model, "blur")
    assert {id(p) for p in params} == {id(p) for p in model.parameters() if p.requires_grad}
    kinds = {k.rsplit(".", 2)[-2] if "lora_" in k else k.rsplit(".", 1)[-1] for k in lora.adapter_state(model, "blur")}
    assert kinds == {"lora_A", "lora_B", "delta_weight", "delta_bias"}
    assert any(k.startswith("unet.conv_in.") for k in lora.adapter_state(model, "blur"))
    assert sum(k.startswith("skips.") for k in lora.adapter_state(model, "blur")) == 2 * len(model.skips)
    x, target = images(2), images(2, seed=9)
    with lora.mixture(model, ["blur"], torch.ones(2, 1)):
        restoration_loss(model(x), target).backward()
    trained = {id(p) for p in params}
    assert all(p.grad is None for p in model.parameters() if id(p) not in trained)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


def test_gradients_reach_the_mixture_weights(adapted):
    model = copy.deepcopy(adapted)
    w = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], requires_grad=True)
    with lora.mixture(model, NAMES, w):
        model(images(2)).mean().backward()
    assert w.grad is not None and (w.grad.abs() > 0).all()


def test_adapters_save_load_round_trip(base, adapted, tmp_path):
    for name in NAMES:
        lora.save_adapter(adapted, name, tmp_path / name)
    fresh = copy.deepcopy(base)
    for name in NAMES:
        assert lora.load_adapter(fresh, tmp_path / f"{name}.safetensors") == name
    x, w = images(3), torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.5, 0.3], [0.0, 0.9, 0.1]])
    assert torch.equal(run(fresh, x, NAMES, w), run(adapted, x, NAMES, w))
    assert lora.load_adapter(fresh, tmp_path / "noise.safetensors", name="noise2") == "noise2"
    assert torch.equal(run(fresh, x[:1], ["noise2"], torch.ones(1, 1)), run(adapted, x[:1], ["noise"], torch.ones(1, 1)))
    assert json.loads((tmp_path / "noise.json").read_text())["config"]["unet_rank"] == 8


def test_loading_into_another_backbone_fails_cleanly(adapted, tmp_path):
    lora.save_adapter(adapted, "noise", tmp_path / "noise")
    cfg = tiny_backbone_config()
    other = build_backbone(type(cfg)(vae=cfg.vae, unet={**cfg.unet, "block_out_channels": (16, 32)}, prompt_length=8), gen(0))
    with pytest.raises(ValueError, match="does not fit"):
        lora.load_adapter(other, tmp_path / "noise.safetensors")
    assert lora.adapter_names(other) == [] and other.adapter_configs == {}


def test_adding_an_adapter_leaves_the_others_unchanged(adapted):
    model = copy.deepcopy(adapted)
    x, w = images(3), torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.5, 0.3], [0.0, 0.9, 0.1]])
    before = run(model, x, NAMES, w)
    lora.add_adapter(model, "rain", gen(4))
    randomise(model, "rain", 30)
    assert torch.equal(run(model, x, NAMES, w), before)
    w4 = torch.cat([w, torch.zeros(3, 1)], dim=1)
    assert torch.allclose(run(model, x, [*NAMES, "rain"], w4), before, atol=1e-6)
    assert lora.adapter_names(model) == [*NAMES, "rain"]


def test_parameter_counts(base, adapted):
    assert lora.base_parameter_count(adapted) == sum(p.numel() for p in base.parameters())
    counts = [lora.adapter_parameter_count(adapted, n) for n in NAMES]
    assert counts[0] == counts[1] == counts[2] > 0
    assert sum(p.numel() for p in adapted.parameters()) == lora.base_parameter_count(adapted) + sum(counts)


def test_low_precision_backbone_keeps_float32_adapters(base):
    model = copy.deepcopy(base).to(torch.bfloat16)
    lora.add_adapter(model, "noise", gen(1))
    randomise(model, "noise", 2)
    assert all(p.dtype == torch.float32 for p in lora.adapter_state(model, "noise").values())
    model.to(torch.bfloat16)  # a later cast is undone by mark_trainable
    assert all(p.dtype == torch.float32 for p in lora.mark_trainable(model, "noise"))
    with lora.mixture(model, ["noise"], torch.ones(1, 1)):
        out = model(images(1))
    out.mean().backward()
    assert torch.isfinite(out).all()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in lora.adapter_state(model, "noise").values())


def test_mixture_errors_name_the_problem(adapted):
    with pytest.raises(KeyError, match="noise, blur, haze"):
        lora.set_mixture(adapted, ["snow"], torch.ones(1, 1))
    with pytest.raises(ValueError, match=r"\[batch, 2\]"):
        lora.set_mixture(adapted, ["noise", "blur"], torch.ones(1, 3))
    with pytest.raises(ValueError, match="one row per image"):
        run(adapted, images(2), ["noise"], torch.ones(3, 1))
    lora.clear_mixture(adapted)
    with pytest.raises(ValueError, match="already exists"):
        lora.add_adapter(adapted, "noise", gen(0))
