"""The trainer of the supervised baselines (NAFNet, Restormer, PromptIR, AirNet): ``train_baseline`` builds a
:class:`RestorationTask` from the model's preset and runs it on the engine. Registered as each baseline's
``trainer``; ``--model-arg key=value`` overrides fields of the model's config (e.g. ``width=32``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from uirbench.engine import run
from uirbench.options import typed_options
from uirbench.restorer import Restorer
from uirbench.rng import child_torch_generator, torch_generator
from uirbench.train import TrainConfig

VAL_PAIRS = 16
VAL_CROP = 256
"""Validation PSNR: mean over 16 val pairs stratified by degradation (``validation.stratified``), centre crops of at most 256 px."""


class RestorationTask:
    """Supervised restoration on paired patches: L1 (or PSNR) loss, plus the model's auxiliary loss if any."""

    find_unused_parameters = False

    def __init__(self, model: Restorer, data: Any, loss: str, val: list[tuple[torch.Tensor, torch.Tensor, dict]], seed: int) -> None:
        self.name = model.name
        self.module = model
        self.data = data
        self.loss_kind = loss
        self.val = val
        self.seed = seed

    def loss(self, module: torch.nn.Module, step: int, offset: int, batch_size: int, device: torch.device) -> torch.Tensor:
        inputs, targets, _ = self.data.batch(step, batch_size, offset)
        inputs, targets = inputs.to(device), targets.to(device)
        pred = module(inputs).float()
        if self.loss_kind == "psnr":  # NAFNet's PSNR loss: mean over images of 10 log10(MSE)
            loss = 10 * torch.log10(((pred - targets) ** 2).flatten(1).mean(1) + 1e-8).mean()
        else:
            loss = (pred - targets).abs().mean()
        auxiliary = self.module.auxiliary_loss(inputs, child_torch_generator(self.seed, step, offset))
        return loss if auxiliary is None else loss + auxiliary

    def validate(self, module: torch.nn.Module, device: torch.device) -> dict[str, float]:
        from uirbench.metrics import PSNR
        from uirbench.restorer import restore

        scores = [float(PSNR()(restore(module, x.to(device)), y.to(device))[0]) for x, y, _ in self.val]
        return {"val_psnr": sum(scores) / len(scores)} if scores else {}

    def save(self, module: torch.nn.Module, out: Path, extra: dict[str, Any]) -> None:
        module.save_checkpoint(out, **extra)


def train_baseline(config: TrainConfig) -> dict[str, Any]:
    """``uirbench train --model NAME`` for a baseline: its preset config (with --model-arg overrides), its recipe
    (with the command's overrides), paired patches of the train split (pre-generated, or degraded on the fly with
    --online), validation crops of the val split."""
    from uirbench.data import parse_mix
    from uirbench.models import preset_config, preset_recipe
    from uirbench.online import training_pairs
    from uirbench.registry import MODELS
    from uirbench.validation import val_pairs

    cls = MODELS.get(config.model)
    preset = preset_config(config.model, config.preset)
    model_config = replace(preset, **typed_options(type(preset), dict(config.model_args), f"model {config.model!r}"))
    recipe = config.recipe(preset_recipe(config.model, config.preset))
    model = cls(model_config, generator=torch_generator(config.seed))
    data = training_pairs(config.data, recipe.patch, seed=config.seed, online=config.online, mix=parse_mix(config.mix))
    val = val_pairs(config.data, VAL_CROP, VAL_PAIRS)
    out = config.out or f"runs/{config.model}-{config.preset}"
    summary = run(RestorationTask(model, data, recipe.loss, val, config.seed), recipe, config.engine(out, recipe))
    summary["parameters"] = model.num_parameters()
    return summary
