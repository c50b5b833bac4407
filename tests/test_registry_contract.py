"""The registry contract, checked for every registered model and metric (a plugin gets these tests for free).

Each test is parametrised over ``MODELS`` / ``METRICS`` as they are after ``import uirbench``; the model tests
run the real registered classes at their ``tiny`` presets on a small real photo crop.
"""

from __future__ import annotations

import dataclasses
import importlib

import pytest
import torch

import uirbench
from uirbench.errors import UnknownNameError, UserError
from uirbench.io import to_tensor
from uirbench.models import create_model, load_checkpoint, preset_config, save_checkpoint
from uirbench.registry import METRICS, MODELS, MetricSpec, ModelSpec
from uirbench.restorer import Restorer, restore

torch.set_num_threads(1)


def test_builtins_are_there_right_after_import():
    assert {"identity", "classical", "nafnet", "restormer", "promptir", "airnet", "uir-lora"} <= set(uirbench.MODELS)
    assert {"psnr", "ssim", "lpips", "fid", "kid"} <= set(uirbench.METRICS)
    assert {"awgn", "haze", "jpeg", "rain", "lowlight", "motion-blur"} <= set(uirbench.DEGRADATIONS)
    with pytest.raises(UnknownNameError, match=r"Did you mean 'nafnet'.*Valid models: airnet"):
        uirbench.MODELS.get("nafnett")


def test_a_registration_with_an_unknown_spec_field_is_refused_at_once():
    with pytest.raises(TypeError, match=r"trainable.*ModelSpec fields: kind, paper"):
        MODELS.register("never-added", kind="test", paper="-", trainable=False)(Restorer)
    assert "never-added" not in MODELS


@pytest.fixture(scope="module")
def crop(astronaut) -> torch.Tensor:
    return to_tensor(astronaut[100:148, 180:236])  # 1x3x48x56 real photo


@pytest.mark.parametrize("name", MODELS.names())
def test_model_spec_is_complete(name):
    spec, cls = MODELS.spec(name), MODELS.get(name)
    assert isinstance(spec, ModelSpec) and spec.kind in ("baseline", "reference") and spec.paper
    assert issubclass(cls, Restorer) and cls.name == name and (cls.__doc__ or "").strip()
    if spec.config is not None:
        assert dataclasses.is_dataclass(spec.config) and spec.config.__dataclass_params__.frozen
    for config in spec.presets.values():
        assert isinstance(config, spec.config)
    assert set(spec.recipes) <= set(spec.presets) or not spec.presets
    if spec.trainer is not None:
        module, _, function = spec.trainer.partition(":")
        assert callable(getattr(importlib.import_module(module), function))


@pytest.mark.parametrize("name", MODELS.names())
def test_model_restores_a_photo_and_round_trips_its_checkpoint(name, crop, tmp_path):
    spec = MODELS.spec(name)
    if "tiny" in spec.presets:
        model = MODELS.get(name)(preset_config(name, "tiny"), generator=torch.Generator().manual_seed(0)).eval()
    elif spec.trainable and spec.default_checkpoint is None:
        pytest.fail(f"{name}: a trainable model needs a tiny preset or a shipped checkpoint to be tested")
    else:
        model = create_model(name)
    hint = ["awgn"] if model.uses_hint else None
    out = restore(model, crop, hint)
    assert out.shape == crop.shape and torch.isfinite(out).all()
    if spec.trainable and spec.presets:
        save_checkpoint(model, tmp_path / "ckpt", step=0)
        loaded = load_checkpoint(tmp_path / "ckpt", expected_model=name)
        assert torch.equal(restore(loaded, crop, hint), out)


@pytest.mark.parametrize("name", MODELS.names())
def test_model_refuses_options_it_does_not_have(name):
    options = MODELS.spec(name).options
    message = "takes no options" if options is None else "has no option 'no_such_option'"
    with pytest.raises(UserError, match=message):
        create_model(name, no_such_option=1)


@pytest.mark.parametrize("name", METRICS.names())
def test_metric_spec_and_factory(name):
    spec = METRICS.spec(name)
    assert isinstance(spec, MetricSpec) and METRICS.get(name).name == name
    metric = uirbench.create_metric(name)
    assert isinstance(metric.spec(), dict) and metric.spec()
    with pytest.raises(UserError, match=f"metric '{name}' takes no setting no_such_setting"):
        uirbench.create_metric(name, no_such_setting=1)


@pytest.mark.parametrize("name", [n for n in METRICS.names() if METRICS.spec(n).per_image and not METRICS.spec(n).needs_weights])
def test_per_image_metric_prefers_the_clean_image_in_its_stated_direction(name, crop):
    metric = uirbench.create_metric(name)
    noisy = (crop + 0.1 * torch.randn(crop.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    perfect, degraded = float(metric(crop, crop)[0]), float(metric(noisy, crop)[0])
    assert (perfect > degraded) == METRICS.spec(name).higher_is_better
