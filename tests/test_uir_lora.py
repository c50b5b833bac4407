"""UIR-LoRA as a model: router, composition in the Restorer, training stages through the CLI, checkpoints, evaluate.

Tiny configs only. The trained checkpoint used here is made by the project's own `uirbench train` with a
few steps; the shipped checkpoint is checked for what it promises (loads, restores, fits in 10 MB).
"""

from __future__ import annotations

import json
import math
import shutil
import string
from dataclasses import asdict

import pandas as pd
import pytest
import torch

from uirbench import checksums
from uirbench.cli import main
from uirbench.degradations import families
from uirbench.models import load_checkpoint, shipped_checkpoint
from uirbench.recipes import Recipe
from uirbench.registry import MODELS
from uirbench.restorer import restore
from uirbench.uir_lora import lora
from uirbench.uir_lora.backbone import load_backbone
from uirbench.uir_lora.model import UIRLoRA, UIRLoRAConfig
from uirbench.uir_lora.router import ClipRouter, LearnedRouter, RouterConfig, label_targets, oracle_weights, route, windows
from uirbench.uir_lora.train import PRESETS, Preset, adapter_loss

FAMILIES = ("blur", "haze", "noise")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def composed():
    """Tiny backbone + three adapters with non-zero weights + an untrained learned router."""
    backbone = load_backbone("tiny", generator=gen(0)).eval()
    for i, name in enumerate(FAMILIES):
        lora.add_adapter(backbone, name, gen(10 + i))
        with torch.no_grad():
            for p in lora.adapter_state(backbone, name).values():
                p.copy_(torch.randn(p.shape, generator=gen(20 + i)) * 0.05)
    router = LearnedRouter(FAMILIES, RouterConfig(), gen(3)).eval()
    return UIRLoRA(backbone, FAMILIES, router, UIRLoRAConfig(top_k=2)).eval()


# ---- router ----------------------------------------------------------------------------------------------------

def test_route_is_softmax_over_the_top_k():
    sim = torch.tensor([[0.9, 0.1, 0.5], [-0.2, 0.3, 0.2]])
    w = route(sim, 2, 0.1)
    hi = 1 / (1 + math.exp(-4.0))  # softmax([9, 5]) by hand
    assert w[0].tolist() == pytest.approx([hi, 0.0, 1 - hi], abs=1e-6)
    assert w[1].tolist() == pytest.approx([0.0, 1 / (1 + math.exp(-1.0)), 1 - 1 / (1 + math.exp(-1.0))], abs=1e-6)
    assert route(sim, 1, 0.1).tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    with pytest.raises(ValueError, match="top_k"):
        route(sim, 4, 0.1)


def test_oracle_weights_are_uniform_over_true_families():
    names = ("blur", "jpeg", "noise", "rain")
    w = oracle_weights(["blur+noise+jpeg", "rain", "awgn"], names, 3)
    assert torch.allclose(w, torch.tensor([[1 / 3, 1 / 3, 1 / 3, 0], [0, 0, 0, 1], [0, 0, 1, 0]]))
    assert oracle_weights(["blur+noise+jpeg"], names, 2).tolist() == [[0.5, 0.5, 0.0, 0.0]]  # first K in sorted order
    with pytest.raises(ValueError, match="haze"):
        oracle_weights(["haze"], names, 1)
    with pytest.raises(ValueError, match="degradation_hint"):
        oracle_weights(None, names, 1)


def _toy_batch(n: int, seed: int) -> tuple[torch.Tensor, list[list[str]]]:
    """Each family brightens one colour channel of a grey noise image; an image has one or two families."""
    g = gen(seed)
    x = 0.3 + 0.05 * torch.rand(n, 3, 24, 24, generator=g)
    labels = []
    for i in range(n):
        count = 1 + int(torch.randint(2, (1,), generator=g))
        chosen = sorted(torch.randperm(3, generator=g)[:count].tolist())
        for c in chosen:
            x[i, c] += 0.5
        labels.append([FAMILIES[c] for c in chosen])
    return x, labels


def test_learned_router_top_k_finds_the_true_labels_after_a_few_steps():
    router = LearnedRouter(FAMILIES, RouterConfig(width=8, levels=2, embed_dim=16), gen(1))
    opt = torch.optim.Adam(router.parameters(), lr=1e-2)
    x_test, y_test = _toy_batch(32, 999)
    with torch.no_grad():
        first = float(router.loss(x_test, label_targets(y_test, FAMILIES)))
    for step in range(60):
        x, labels = _toy_batch(16, step)
        loss = router.loss(x, label_targets(labels, FAMILIES))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        sim = router.similarity(x_test)
        assert float(router.loss(x_test, label_targets(y_test, FAMILIES))) < first / 4
    for row, labels in zip(sim, y_test, strict=True):
        assert {FAMILIES[i] for i in row.topk(len(labels)).indices.tolist()} == set(labels)


def test_windows_tile_every_pixel_evenly():
    x = torch.arange(2 * 5 * 7, dtype=torch.float32).view(2, 1, 5, 7)
    tiles = windows(x, 3)  # rows at 0, 2; columns at 0, 2, 4; window-major, then batch
    assert tiles.shape == (12, 1, 3, 3)
    assert tiles[:, 0, 0, 0].tolist() == [0, 35, 2, 37, 4, 39, 14, 49, 16, 51, 18, 53]
    covered = torch.zeros(5, 7)
    for r in (0, 2):
        for c in (0, 2, 4):
            covered[r:r + 3, c:c + 3] = 1
    assert bool(covered.all())
    y = torch.rand(1, 3, 40, 56, generator=gen(6))
    assert windows(y, 64).shape == (2, 3, 40, 40)  # windows as wide as the short side, at both ends
    assert torch.equal(windows(y, 64)[1], y[0, :, :, 16:])
    assert windows(y, 64) is not y and windows(y[..., :40], 64).shape == (1, 3, 40, 40)


def test_learned_router_averages_the_cosines_of_its_windows():
    router = LearnedRouter(FAMILIES, RouterConfig(width=8, levels=2, embed_dim=16, window=32), gen(7)).eval()
    x = torch.rand(2, 3, 64, 96, generator=gen(8))
    with torch.no_grad():
        tiles = [router.similarity(x[..., r:r + 32, c:c + 32]) for r in (0, 32) for c in (0, 32, 64)]
        assert torch.allclose(router.similarity(x), torch.stack(tiles).mean(0), atol=1e-6)
        assert not torch.allclose(router.similarity(x), tiles[0], atol=1e-3)  # the windows differ


def test_a_router_file_without_a_window_loads_with_the_tiny_window_and_says_so(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    from uirbench.uir_lora.router import load_router, save_router

    router = LearnedRouter(FAMILIES, RouterConfig(width=8, levels=2, embed_dim=16, window=32), gen(9))
    save_router(router, tmp_path / "new.safetensors")
    assert load_router(tmp_path / "new.safetensors").config.window == 32 and "records no window" not in capsys.readouterr().err
    config = json.dumps({k: v for k, v in asdict(router.config).items() if k != "window"})
    save_file(load_file(tmp_path / "new.safetensors"), tmp_path / "old.safetensors",
              metadata={"format": "uirbench-uir-lora-router", "families": json.dumps(FAMILIES), "config": config})
    old = load_router(tmp_path / "old.safetensors")
    assert old.config.window == 64 and "old.safetensors records no window" in capsys.readouterr().err
    assert torch.equal(old.embeddings, router.embeddings)


def test_a_preset_trains_its_router_on_patches_of_its_window():
    assert all(p.recipes["router"].patch == p.router.window for p in PRESETS.values() if "router" in p.recipes)
    with pytest.raises(ValueError, match="window"):
        Preset(backbone="tiny", top_k=1, router=RouterConfig(window=128),
               recipes={"router": Recipe(steps=1, batch_size=1, patch=96, lr=1e-3)})


def test_a_family_adapter_takes_its_own_recipe_where_the_preset_has_one():
    from uirbench.train import TrainConfig
    from uirbench.uir_lora.train import adapter_recipe

    small, plain = PRESETS["small"], TrainConfig(model="uir-lora", preset="small")
    assert [adapter_recipe(plain, small, f).steps for f in ("blur", "haze", "jpeg", "lowlight", "noise", "rain")] == \
        [600, 1800, 600, 1800, 600, 600]
    assert adapter_recipe(plain, small, "haze").lr == small.recipes["lora"].lr  # only the length differs
    assert adapter_recipe(TrainConfig(model="uir-lora", steps=5), small, "haze").steps == 5  # --steps overrides every stage
    assert adapter_recipe(plain, PRESETS["tiny"], "haze") == PRESETS["tiny"].recipes["lora"]


def test_clip_router_loads_local_weights_and_fails_clearly_offline(tmp_path, monkeypatch):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    chars = [*string.ascii_lowercase, ",", "."]
    vocab = {t: i for i, t in enumerate([*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"])}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(vocab_file=str(tmp_path / "vocab.json"), merges_file=str(tmp_path / "merges.txt"), model_max_length=48)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(tmp_path / "clip")
    config = CLIPConfig(text_config=dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, max_position_embeddings=48, bos_token_id=len(vocab) - 2,
                                         eos_token_id=len(vocab) - 1, pad_token_id=len(vocab) - 1),
                        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                           image_size=32, patch_size=8), projection_dim=8)
    with torch.device("meta"):
        model = CLIPModel(config)
    model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen(4)) * 0.1)
    model.save_pretrained(tmp_path / "clip")

    router = ClipRouter(FAMILIES, str(tmp_path / "clip"))
    x = torch.rand(2, 3, 40, 56, generator=gen(5))
    sim = router.similarity(x)
    assert sim.shape == (2, 3) and bool((sim.abs() <= 1 + 1e-5).all())
    assert router.temperature == pytest.approx(1 / math.exp(float(router.model.logit_scale)))

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="huggingface-cli download"):
        ClipRouter(FAMILIES, "openai/clip-vit-base-patch32")


# ---- the composed model ----------------------------------------------------------------------------------------

def test_model_keeps_shape_and_range_and_records_routing(composed):
    x = torch.rand(3, 3, 40, 52, generator=gen(6))  # not a multiple of 8: restore pads
    out = restore(composed, x)
    assert out.shape == x.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert len(composed.last_routing) == 3
    for record in composed.last_routing:
        json.dumps(record)
        assert len(record["weights"]) == 2 and sum(record["weights"].values()) == pytest.approx(1, abs=1e-3)
        top2 = sorted(record["similarity"], key=record["similarity"].get)[-2:]
        assert set(record["weights"]) == set(top2)


def test_top1_output_is_that_adapter_alone(composed):
    x = torch.rand(2, 3, 32, 32, generator=gen(7))
    model = UIRLoRA(composed.backbone, FAMILIES, composed.router, UIRLoRAConfig(top_k=1))
    with torch.no_grad():
        out = model(x)
        for i, record in enumerate(model.last_routing):
            (name,) = record["weights"]
            with lora.mixture(composed.backbone, [name], torch.ones(1, 1)):
                ref = composed.backbone(x[i:i + 1])
            assert torch.allclose(out[i:i + 1], ref, atol=1e-5)


def test_oracle_model_uses_the_hint(composed):
    model = UIRLoRA(composed.backbone, FAMILIES, None, UIRLoRAConfig(top_k=2, router="oracle"))
    assert model.uses_hint and not composed.uses_hint
    x = torch.rand(2, 3, 32, 32, generator=gen(8))
    with torch.no_grad():
        out = model(x, degradation_hint=["haze", "blur+noise"])
        with lora.mixture(composed.backbone, ["blur", "noise"], torch.tensor([[0.5, 0.5]])):
            ref = composed.backbone(x[1:])
    assert torch.allclose(out[1:], ref, atol=1e-5)
    assert model.last_routing[0]["weights"] == {"haze": 1.0}


def test_model_refuses_bad_settings(composed):
    with pytest.raises(ValueError, match="top_k"):
        UIRLoRA(composed.backbone, FAMILIES, composed.router, UIRLoRAConfig(top_k=4))
    with pytest.raises(ValueError, match="router"):
        UIRLoRAConfig(router="nearest")
    small = LearnedRouter(("blur", "noise"), RouterConfig(), gen(1))
    with pytest.raises(ValueError, match="haze"):
        UIRLoRA(composed.backbone, FAMILIES, small, UIRLoRAConfig())


def test_single_router_belongs_to_the_multitask_control(composed):
    with pytest.raises(ValueError, match="router 'single' belongs to the multi-task control"):
        UIRLoRA(composed.backbone, FAMILIES, None, UIRLoRAConfig(router="single", top_k=1))
    lora.add_adapter(composed.backbone, "multitask", gen(30))
    control = UIRLoRA(composed.backbone, ["multitask"], None, UIRLoRAConfig(router="single", top_k=1)).eval()
    x = torch.rand(2, 3, 32, 40, generator=gen(31))
    with torch.no_grad():
        out = control(x)
        with lora.mixture(composed.backbone, ["multitask"], torch.ones(2, 1)):
            assert torch.equal(out, composed.backbone(x))  # the one adapter at weight 1 for every image
    assert control.last_routing[0]["weights"] == {"multitask": 1.0} and not control.uses_hint
    with pytest.raises(ValueError, match="router 'single' belongs"):
        UIRLoRA(composed.backbone, ["noise"], None, UIRLoRAConfig(router="single", top_k=1))


def test_checkpoint_round_trip(composed, tmp_path):
    composed.save_checkpoint(tmp_path / "ckpt", step=3, command="test")
    loaded = load_checkpoint(tmp_path / "ckpt")
    x = torch.rand(2, 3, 32, 40, generator=gen(9))
    with torch.no_grad():
        assert torch.equal(loaded(x), composed(x))
    assert loaded.last_routing == composed.last_routing
    assert load_checkpoint(tmp_path / "ckpt", top_k=1, router="oracle").uses_hint
    meta = json.loads((tmp_path / "ckpt" / "model.json").read_text())
    assert meta["model"] == "uir-lora" and meta["adapters"] == list(FAMILIES) and meta["step"] == 3
    assert MODELS.spec("uir-lora").kind == "reference"


def test_adapter_loss_reaches_only_the_adapter(composed):
    backbone = composed.backbone
    params = lora.mark_trainable(backbone, "noise")
    x, y = torch.rand(2, 3, 32, 32, generator=gen(10)), torch.rand(2, 3, 32, 32, generator=gen(11))
    adapter_loss(backbone, x, y, "noise").backward()
    with_grad = {id(p) for p in backbone.parameters() if p.grad is not None}
    assert with_grad == {id(p) for p in params}
    assert all(float(p.grad.abs().sum()) > 0 for p in params)
    for p in backbone.parameters():
        p.requires_grad_(False)
        p.grad = None


# ---- training stages through the CLI, evaluate ------------------------------------------------------------------

def _train(*args: str) -> None:
    assert main(["train", "--model", "uir-lora", "--save-every", "1", *args]) == 0


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    """`--model-arg stage=backbone` then the blur adapter, 2 steps each, on the real tiny dataset."""
    out = tmp_path_factory.mktemp("uir") / "run"
    _train("--data", str(tiny_dataset), "--out", str(out), "--model-arg", "stage=backbone", "--steps", "2")
    _train("--data", str(tiny_dataset), "--out", str(out), "--model-arg", "stage=lora", "--model-arg", "degradation=blur", "--steps", "2")
    return out


@pytest.mark.slow
def test_backbone_stage_trains_vae_and_skips_then_the_unet(trained):
    from dataclasses import replace

    from uirbench.uir_lora.backbone import build_backbone, tiny_backbone_config
    from uirbench.uir_lora.train import PRESETS

    fresh = build_backbone(replace(tiny_backbone_config(), timestep=PRESETS["tiny"].timestep), gen(0))  # the stage's seed-0 init
    after_vae = load_backbone(str(trained / "stages" / "backbone-vae"))
    final = load_backbone(str(trained / "backbone"))

    def same(a, b, part: str) -> bool:
        left, right = getattr(a, part).state_dict(), getattr(b, part).state_dict()
        return all(torch.equal(x, y) for x, y in zip(left.values(), right.values(), strict=True))

    assert same(fresh, after_vae, "unet") and not same(fresh, after_vae, "vae") and not same(fresh, after_vae, "skips")
    assert same(after_vae, final, "vae") and same(after_vae, final, "skips") and not same(after_vae, final, "unet")
    assert final.config.timestep == 500 and final.vae.config.scaling_factor != 1.0  # calibrated before the UNet phase


@pytest.mark.slow
def test_lora_stage_adds_one_adapter_and_leaves_the_rest(trained, tiny_dataset):
    out = trained
    before = {p: p.read_bytes() for p in [*(out / "backbone").rglob("*"), *(out / "adapters").glob("*")] if p.is_file()}
    _train("--data", str(tiny_dataset), "--out", str(out), "--model-arg", "stage=lora", "--model-arg", "degradation=awgn", "--steps", "2")
    assert (out / "adapters" / "noise.safetensors").is_file()
    assert all(p.read_bytes() == data for p, data in before.items())  # backbone and the blur adapter untouched
    meta = json.loads((out / "model.json").read_text())
    assert meta["adapters"] == ["blur", "noise"] and meta["config"]["router"] == "oracle"
    # the noise run exists: retraining it needs --resume or deleting its folder
    assert main(["train", "--model", "uir-lora", "--data", str(tiny_dataset), "--out", str(out), "--model-arg", "stage=lora",
                 "--model-arg", "degradation=noise", "--steps", "2"]) == 2


@pytest.mark.slow
def test_stage_resume_continues_exactly(trained, tiny_dataset, tmp_path):
    out = tmp_path / "run"
    args = ("--data", str(tiny_dataset), "--out", str(out), "--model-arg", "stage=lora", "--model-arg", "degradation=rain", "--steps", "4")
    _train(*args, "--save-every", "2", "--model-arg", f"backbone={trained / 'backbone'}")  # a ready backbone seeds a new run folder
    assert (out / "backbone" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == \
        (trained / "backbone" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert main(["train", "--model", "uir-lora", *args, "--model-arg", f"backbone={trained / 'backbone'}"]) == 2  # not over an existing one
    run = out / "stages" / "lora-rain"
    finished = (run / "adapter.safetensors").read_bytes()
    shutil.rmtree(run / "state" / "step-0000004")  # as if killed between step 2 and 4
    (out / "adapters" / "rain.safetensors").unlink()
    _train(*args, "--save-every", "2", "--resume")
    assert (run / "adapter.safetensors").read_bytes() == finished
    assert (out / "adapters" / "rain.safetensors").read_bytes() == finished
    _train(*args, "--resume")  # finished: skipped, nothing rewritten
    assert (run / "adapter.safetensors").read_bytes() == finished


@pytest.mark.slow
def test_router_stage_and_evaluate_record_routing(trained, tiny_dataset, tmp_path):
    from uirbench.evaluate import EvaluateConfig, evaluate

    _train("--data", str(tiny_dataset), "--out", str(trained), "--model-arg", "stage=router", "--steps", "2")
    assert json.loads((trained / "model.json").read_text())["config"]["router"] == "learned"
    result = evaluate(EvaluateConfig(model="uir-lora", checkpoint=str(trained), data=str(tiny_dataset), model_args=(("top_k", "1"),),
                                     out=str(tmp_path / "k1")))
    rows = pd.read_parquet(tmp_path / "k1" / "per_image.parquet")
    assert result["summary"]["dataset"]["pairs"] == len(rows)
    for text in rows["routing"]:
        record = json.loads(text)
        assert record["router"] == "learned" and list(record["weights"].values()) == [1.0]


@pytest.mark.slow
def test_multitask_stage_matches_the_family_adapters_parameters(trained, tiny_dataset, tmp_path, capsys):
    """The control: one adapter on every family with the family adapters' parameters and steps together, router single."""
    from uirbench.evaluate import EvaluateConfig, evaluate
    from uirbench.uir_lora.train import PRESETS, matched_adapter

    out = tmp_path / "control"
    _train("--data", str(tiny_dataset), "--out", str(out), "--model-arg", "stage=multitask", "--model-arg",
           f"backbone={trained / 'backbone'}", "--steps", "1")
    meta = json.loads((out / "model.json").read_text())
    assert meta["adapters"] == ["multitask"] and meta["config"] == {**meta["config"], "router": "single", "top_k": 1}
    families_trained = 6  # the tiny dataset's train split has single pairs of every family
    assert meta["stages"]["lora-multitask"]["steps"] == families_trained
    shape, count, target = matched_adapter(trained / "backbone", PRESETS["tiny"], families_trained)
    assert abs(count - target) / target < 0.05 and shape.unet_rank > PRESETS["tiny"].adapter.unet_rank
    assert json.loads((out / "adapters" / "multitask.json").read_text())["config"]["unet_rank"] == shape.unet_rank
    evaluate(EvaluateConfig(model="uir-lora", checkpoint=str(out), data=str(tiny_dataset), out=str(tmp_path / "eval")))
    records = [json.loads(t) for t in pd.read_parquet(tmp_path / "eval" / "per_image.parquet")["routing"]]
    assert all(r == {"router": "single", "top_k": 1, "weights": {"multitask": 1.0}} for r in records)
    with pytest.raises(ValueError, match="takes router 'single' only"):
        load_checkpoint(out, router="oracle")
    # the same command resumes (its backbone is the one saved in --out, re-saved); another backbone is refused
    def resume(backbone: object) -> int:
        return main(["train", "--model", "uir-lora", "--data", str(tiny_dataset), "--out", str(out), "--model-arg",
                     "stage=multitask", "--model-arg", f"backbone={backbone}", "--steps", "1", "--resume"])

    assert resume(trained / "backbone") == 0
    other = tmp_path / "other-backbone"
    shutil.copytree(trained / "backbone", other)
    (other / "backbone.json").write_text((other / "backbone.json").read_text() + "\n")
    checksums.seal(other)
    capsys.readouterr()
    assert resume(other) == 2 and "is not that one; to resume, run without --model-arg backbone" in capsys.readouterr().err
    # the control and the family adapters never share a folder
    assert main(["train", "--model", "uir-lora", "--data", str(tiny_dataset), "--out", str(trained), "--model-arg",
                 "stage=multitask", "--steps", "1"]) == 2
    assert main(["train", "--model", "uir-lora", "--data", str(tiny_dataset), "--out", str(out), "--model-arg",
                 "stage=router", "--steps", "1"]) == 2


# the shipped router's cosines (families in sorted order) on the built-in motorcycle photo, one family each at severity 3
SHIPPED_ROUTING = {
    "awgn": ("noise", [-0.26, -0.497, -0.495, -0.506, 0.475, -0.516]),
    "gaussian-blur": ("blur", [0.489, -0.375, -0.177, -0.369, -0.278, -0.533]),
    "haze": ("haze", [-0.353, 0.033, -0.534, -0.544, -0.396, -0.1]),
    "jpeg": ("jpeg", [-0.076, -0.604, 0.204, -0.527, -0.128, -0.558]),
    "lowlight": ("lowlight", [-0.235, -0.319, -0.533, 0.495, -0.483, -0.187]),
    "rain": ("rain", [-0.258, -0.331, -0.53, -0.445, -0.342, 0.28]),
}


def test_shipped_router_routes_a_real_photo_to_its_family_over_windows_of_its_patch_size():
    import numpy as np

    from uirbench.degradations import create
    from uirbench.io import to_tensor
    from uirbench.sources import builtin_items, read_item
    from uirbench.uir_lora.router import load_router

    router = load_router(shipped_checkpoint("uir-lora") / "router.safetensors").eval()
    assert router.config == PRESETS["small"].router and router.config.window == 128
    image, depth = read_item(next(i for i in builtin_items() if i.image_id == "motorcycle"))  # 500x741: 4 x 6 windows
    for name, (family, cosines) in SHIPPED_ROUTING.items():
        degraded, _ = create(name, 3)(image, np.random.default_rng(7), depth)
        with torch.inference_mode():
            sim = router.similarity(to_tensor(degraded))[0]
        assert router.families[int(sim.argmax())] == family
        assert sim.tolist() == pytest.approx(cosines, abs=2e-3), name


def test_shipped_checkpoint_restores_and_evaluates_with_the_oracle(tiny_dataset, tmp_path):
    from uirbench.evaluate import EvaluateConfig, evaluate
    from uirbench.models import create_model

    path = shipped_checkpoint("uir-lora")
    assert sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) <= 10 * 2**20
    assert "uirbench train --model uir-lora --preset small" in (path / "README.md").read_text()
    model = create_model("uir-lora")
    x = torch.rand(1, 3, 48, 60, generator=gen(12))
    out = restore(model, x)
    assert out.shape == x.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    result = evaluate(EvaluateConfig(model="uir-lora", data=str(tiny_dataset), model_args=(("router", "oracle"),),
                                     out=str(tmp_path / "oracle"), command="uirbench evaluate --model uir-lora --model-arg router=oracle"))
    entry = json.loads((tmp_path / "oracle" / "entry.json").read_text())
    assert result["summary"]["model"]["checkpoint"] == str(path) and entry["model"]["checkpoint_sha256"]  # the shipped one
    # a shipped checkpoint is part of the package (its model card says how it was trained): nothing to retrain
    assert entry["commands"] == ["uirbench evaluate --model uir-lora --model-arg router=oracle"]
    rows = pd.read_parquet(tmp_path / "oracle" / "per_image.parquet")
    top_k = json.loads((path / "model.json").read_text())["config"]["top_k"]
    assert top_k == PRESETS["small"].top_k == 3  # chosen on the CBSD68 val split (the preset's comment)
    for degradation, text in zip(rows["degradation"], rows["routing"], strict=True):
        weights = json.loads(text)["weights"]
        true = families(degradation)[:top_k]
        assert weights == pytest.approx({f: 1 / len(true) for f in true}, abs=1e-4)
