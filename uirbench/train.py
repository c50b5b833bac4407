"""``uirbench train``: the generic training command. It knows no model: it looks up the model's trainer in
``MODELS`` (``ModelSpec.trainer``, a ``"module:function"`` taking a :class:`TrainConfig`) and calls it; the
trainer builds its task(s) and runs them on the engine (``uirbench.engine.run``).

Model-specific settings arrive as ``--model-arg key=value`` pairs (:attr:`TrainConfig.model_args`), which
each trainer checks against its own options dataclass (``uirbench.options.typed_options``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from uirbench.engine import EngineConfig
from uirbench.errors import UserError
from uirbench.recipes import Recipe
from uirbench.registry import MODELS


@dataclass(frozen=True)
class TrainConfig:
    """Arguments of ``uirbench train`` (see ``--help``); None = the preset's value."""

    model: str
    preset: str = "tiny"
    data: str = "uirbench-data"
    out: str | None = None
    steps: int | None = None
    batch_size: int | None = None
    patch: int | None = None
    lr: float | None = None
    mix: str | None = None
    online: bool = False
    resume: bool = False
    seed: int = 0
    save_every: int | None = None
    val_every: int | None = None
    amp: str = "no"
    device: str = "cpu"
    command: str = ""
    model_args: tuple[tuple[str, str], ...] = ()

    def recipe(self, base: Recipe) -> Recipe:
        """``base`` with the command's --steps/--batch-size/--patch/--lr overrides."""
        return base.with_overrides(steps=self.steps, batch_size=self.batch_size, patch=self.patch, lr=self.lr)

    def engine(self, out: str, recipe: Recipe, resume: bool | None = None) -> EngineConfig:
        """The engine settings of one run into ``out`` (checkpoints every steps/3 unless --save-every)."""
        return EngineConfig(out=out, seed=self.seed, resume=self.resume if resume is None else resume,
                            save_every=self.save_every or max(1, recipe.steps // 3), val_every=self.val_every,
                            amp=self.amp, device=self.device, command=self.command, inputs=self.inputs())

    def inputs(self) -> tuple[tuple[str, str], ...]:
        """What the batches depend on besides the seed: the data (its fingerprint when it is a generated dataset, so a
        moved folder still resumes), --online and --mix."""
        from uirbench.manifest import read_fingerprint

        try:
            data = read_fingerprint(self.data)["fingerprint"]
        except UserError:
            data = str(self.data)
        return (("data", data), ("online", str(self.online)), ("mix", self.mix or ""))


def trainer(name: str) -> Any:
    """The training function registered for model ``name``; models that need no training are refused."""
    spec = MODELS.spec(name)
    if spec.trainer is None:
        trainable = [n for n in MODELS.names() if MODELS.spec(n).trainable]
        raise UserError(f"--model {name}: needs no training; trainable models: {', '.join(trainable)}")
    module, _, function = spec.trainer.partition(":")
    return getattr(importlib.import_module(module), function)


def train(config: TrainConfig) -> dict[str, Any]:
    """Train ``config.model`` with its registered trainer; returns the trainer's summary (out, steps, loss, seconds)."""
    return trainer(config.model)(config)
