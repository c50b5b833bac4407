"""Learned baselines (NAFNet, Restormer, PromptIR, AirNet): shapes, published sizes, trainability.

Every model is built from its ``tiny`` preset except the parameter-count checks, which build the
``paper`` preset on the meta device (no memory, no initialisation cost), and one small forward
pass per ``paper`` model (under a second each).
"""

from __future__ import annotations

import importlib
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from uirbench.baselines import airnet, nafnet, promptir, restormer
from uirbench.io import to_tensor
from uirbench.registry import MODELS
from uirbench.restorer import Restorer, restore

NAMES = ["nafnet", "restormer", "promptir", "airnet"]

# REFERENCE.md section 5: counts built from the official code.
PUBLISHED_PARAMS = {"nafnet": 17.11e6, "restormer": 26.13e6, "promptir": 35.59e6, "airnet": 8.93e6}


def presets(name: str) -> dict:
    return importlib.import_module(MODELS.get(name).__module__).PRESETS


def tiny(name: str, seed: int = 0) -> Restorer:
    return MODELS.get(name)(presets(name)["tiny"], generator=torch.Generator().manual_seed(seed))


def test_modules_register_their_models():
    for module, name in [(nafnet, "nafnet"), (restormer, "restormer"), (promptir, "promptir"), (airnet, "airnet")]:
        cls = MODELS.get(name)
        assert cls.__module__ == module.__name__ and cls.name == name and issubclass(cls, Restorer)
        assert MODELS.spec(name).kind == "baseline" and MODELS.spec(name).paper
        assert set(module.PRESETS) == {"tiny", "small", "paper"} == set(MODELS.spec(name).recipes)


@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_range_and_odd_sizes(name, small_image):
    model = tiny(name).eval()
    assert model.config is presets(name)["tiny"]
    x = to_tensor(small_image[:32, :32])
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    odd = to_tensor(small_image[5:42, 7:52])  # 37 x 45: not a multiple of any size_multiple > 1
    out = restore(model, odd)
    assert out.shape == (1, 3, 37, 45) and torch.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize(("name", "config", "published"), [
    *[(n, "paper", PUBLISHED_PARAMS[n]) for n in NAMES],
    ("nafnet", nafnet.NAFNetConfig(width=64), 67.89e6),
])
def test_paper_parameter_count(name, config, published):
    with torch.device("meta"):
        model = MODELS.get(name)(presets(name)["paper"] if config == "paper" else config)
    count = model.num_parameters(trainable_only=True)  # AirNet's MoCo key encoder is a momentum copy, not counted
    assert abs(count - published) / published < 0.05, f"{name}: {count / 1e6:.2f}M vs published {published / 1e6:.2f}M"


def test_block_parameter_counts_by_hand():
    c = 24
    # NAFBlock: 1x1 c->2c, dw3x3 2c, SCA 1x1 c->c, 1x1 c->c, FFN 1x1 c->2c and c->c (all with bias),
    # two LayerNorms (2c each), beta and gamma (c each).
    expected = (2 * c * c + 2 * c) + (2 * c * 9 + 2 * c) + (c * c + c) * 2 + (2 * c * c + 2 * c) + (c * c + c) + 4 * c + 2 * c
    assert sum(p.numel() for p in nafnet.NAFBlock(c).parameters()) == expected
    # Restormer block (no conv bias): qkv 1x1 + dw3x3, projection, temperature per head; GDFN with
    # hidden = int(2.66 c): expand to 2 hidden, dw3x3, project; two LayerNorms.
    heads, hidden = 2, int(c * 2.66)
    expected = 3 * c * c + 3 * c * 9 + c * c + heads + 2 * hidden * c + 2 * hidden * 9 + hidden * c + 4 * c
    assert sum(p.numel() for p in restormer.TransformerBlock(c, heads, 2.66).parameters()) == expected


def _noisy_batch(image, generator: torch.Generator, n: int = 4, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """n random crops of a real photograph, plus AWGN of sigma 25/255 (inputs are not clipped)."""
    full = to_tensor(image)
    h, w = full.shape[-2:]
    tops = torch.randint(0, h - size + 1, (n,), generator=generator).tolist()
    lefts = torch.randint(0, w - size + 1, (n,), generator=generator).tolist()
    clean = torch.cat([full[..., t:t + size, left:left + size] for t, left in zip(tops, lefts, strict=True)])
    noise = torch.randn(clean.shape, generator=generator) * (25.0 / 255.0)
    return clean + noise, clean


@pytest.mark.parametrize("name", NAMES)
def test_training_steps_reduce_l1_loss(name, small_image):
    model = tiny(name).train()
    noisy, clean = _noisy_batch(small_image, torch.Generator().manual_seed(1))
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(12):
        loss = F.l1_loss(model(noisy), clean)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.8 * losses[0], f"{name}: L1 {losses[0]:.4f} -> {losses[-1]:.4f}"


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name, small_image):
    model = tiny(name).train()
    noisy, clean = _noisy_batch(small_image, torch.Generator().manual_seed(2), n=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):  # after one step the zero-initialised scales (NAFNet beta/gamma) are non-zero
        optimiser.zero_grad()
        F.l1_loss(model(noisy), clean).backward()
        optimiser.step()
    # AirNet's projection head is trained by the contrastive loss only (test_contrastive_loss_*)
    unused = {n for n, _ in model.named_parameters() if n.startswith("encoder.head.")} if name == "airnet" else set()
    for n, p in model.named_parameters():
        if not p.requires_grad:  # AirNet's momentum key encoder
            assert n.startswith("key_encoder.")
            continue
        if n in unused:
            assert p.grad is None, f"{name}: {n} unexpectedly used by the restoration forward"
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient reaches {n}"


@pytest.mark.parametrize("name", NAMES)
def test_tiny_forward_is_fast(name):
    model = tiny(name).eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        model(x)
        start = time.perf_counter()
        model(x)
        elapsed = time.perf_counter() - start
    assert elapsed < 0.5, f"{name}: tiny forward took {elapsed * 1000:.0f} ms"


@pytest.mark.parametrize("name", NAMES)
def test_construction_is_seeded_and_leaves_global_rng_alone(name):
    state = torch.random.get_rng_state()
    a, b, c = tiny(name, seed=5), tiny(name, seed=5), tiny(name, seed=6)
    assert torch.equal(state, torch.random.get_rng_state())
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)


def test_nafblock_starts_as_identity():
    block = nafnet.NAFBlock(8)
    x = torch.randn(2, 8, 5, 7, generator=torch.Generator().manual_seed(4))
    assert torch.equal(block(x), x)  # beta = gamma = 0 at initialisation


def test_mdta_matches_per_head_reference():
    attn = restormer.MDTA(12, heads=3)
    with torch.no_grad():
        attn.temperature.copy_(torch.tensor([0.5, 1.0, 2.0]).view(3, 1, 1))
    x = torch.randn(2, 12, 6, 5, generator=torch.Generator().manual_seed(5))
    q, k, v = attn.qkv_dw(attn.qkv(x)).flatten(2).chunk(3, dim=1)  # (2, 12, 30) each
    heads = []
    for h in range(3):
        sl = slice(4 * h, 4 * h + 4)
        qh = q[:, sl] / q[:, sl].norm(dim=-1, keepdim=True)
        kh = k[:, sl] / k[:, sl].norm(dim=-1, keepdim=True)
        weights = torch.softmax(qh @ kh.transpose(1, 2) * attn.temperature[h], dim=-1)  # channel x channel
        heads.append(weights @ v[:, sl])
    expected = attn.project(torch.cat(heads, dim=1).view(2, 12, 6, 5))
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-6)


def test_prompt_weights_select_a_component():
    gen = promptir.PromptGeneration(channels=6, prompt_dim=4, prompt_len=3, prompt_size=5)
    with torch.no_grad():
        gen.components.copy_(torch.randn(3, 4, 5, 5, generator=torch.Generator().manual_seed(6)))
        gen.weights.weight.zero_()
        gen.weights.bias.copy_(torch.tensor([0.0, 100.0, 0.0]))  # softmax ~ one-hot on component 1
    feat = torch.randn(2, 6, 5, 5, generator=torch.Generator().manual_seed(7))
    expected = gen.conv(gen.components[1:2].expand(2, -1, -1, -1))  # same size: resizing is the identity
    torch.testing.assert_close(gen(feat), expected, rtol=1e-4, atol=1e-5)


def test_dgm_at_initialisation_is_half_masked_conv_plus_sft():
    dgm = tiny("airnet").body[0].blocks[0].dgm1
    g = torch.Generator().manual_seed(8)
    x, guide, z = torch.randn(2, 8, 6, 6, generator=g), torch.randn(2, 8, 6, 6, generator=g), torch.randn(2, 32, generator=g)
    # zero offsets sample the regular grid; masks are sigmoid(0) = 0.5 and scale the sampled values, not the bias
    conv = 0.5 * F.conv2d(x, dgm.dcn.weight, padding=1) + dgm.dcn.bias.view(1, -1, 1, 1)
    sft = x * dgm.gamma(z)[:, :, None, None] + dgm.beta(z)[:, :, None, None]
    torch.testing.assert_close(dgm(x, guide, z), x + conv + sft, rtol=1e-5, atol=1e-5)


def test_contrastive_loss_matches_hand_computed_value_and_trains_the_head():
    t = 0.5
    q = torch.tensor([[2.0, 0.0]], requires_grad=True)
    key = torch.tensor([[1.0, 1.0]])  # cosine 1/sqrt(2) with q
    queue = torch.tensor([[0.0, 3.0], [-1.0, 0.0]])  # cosines 0 and -1
    loss = airnet.contrastive_loss(q, key, queue, temperature=t)
    pos = math.exp(math.sqrt(0.5) / t)
    expected = -math.log(pos / (pos + math.exp(0.0) + math.exp(-1.0 / t)))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="queue"):
        airnet.contrastive_loss(q, key, torch.zeros(3, 5))
    encoder = tiny("airnet").encoder
    g = torch.Generator().manual_seed(9)
    a, b = torch.rand(4, 3, 16, 16, generator=g), torch.rand(4, 3, 16, 16, generator=g)
    query, key = encoder.project(encoder(a)[0]), encoder.project(encoder(b)[0])
    loss = airnet.contrastive_loss(query, key, torch.randn(8, 32, generator=g))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.head.parameters())


def test_momentum_update_moves_key_towards_query():
    key, query = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = key.weight.detach().clone()
    airnet.momentum_update(key, query, momentum=0.9)
    torch.testing.assert_close(key.weight, 0.9 * before + 0.1 * query.weight)


def test_configs_reject_bad_arguments():
    with pytest.raises(ValueError, match="dec_blocks"):
        nafnet.NAFNetConfig(enc_blocks=(1, 1), dec_blocks=(1,))
    with pytest.raises(ValueError, match=r"heads\[1\]"):
        restormer.RestormerConfig(dim=48, heads=(1, 5, 4, 8))
    with pytest.raises(ValueError, match="prompt_dims"):
        promptir.PromptIRConfig(prompt_dims=(64, 128))
    with pytest.raises(ValueError, match="encoder_widths"):
        airnet.AirNetConfig(encoder_widths=(8, 16))


@pytest.mark.parametrize("name", NAMES)
def test_paper_preset_forward(name):
    model = MODELS.get(name)(presets(name)["paper"]).eval()
    x = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_classical_passes_labels_it_has_no_filter_for(small_image):
    """Imported sets carry labels outside uirbench's families (CDD-11's snow): no filter, the run goes on."""
    from uirbench.baselines.classical import Classical, restore_classical
    from uirbench.io import to_numpy, to_tensor

    x = to_tensor(small_image)
    model = Classical()
    assert torch.equal(model(x, ["snow"]), x)
    assert np.array_equal(to_numpy(model(x, ["haze+snow"]))[0], restore_classical(small_image, ["haze"]))
