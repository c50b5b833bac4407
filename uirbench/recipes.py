"""Training recipes: the optimisation half of a preset (the architecture half is the model's ``PRESETS``).

A model registers both halves, keyed by preset name: ``@MODELS.register(..., presets=PRESETS, recipes=RECIPES["nafnet"])``
(a plugin passes its own ``{"tiny": Recipe(...)}``); :func:`uirbench.models.preset_recipe` reads them back.

``tiny`` recipes train on 2 CPU cores in minutes (tests, demos); ``small`` recipes fill a budget of
about 45 minutes of CPU training per model (one thread, two runs side by side on a 2-core machine:
steps = budget / measured seconds per step, data included) and make the shipped checkpoints, trained
with ``--online`` on the CBSD68 board's train split (each model card has the command, wall time and
log); ``paper`` recipes follow the published settings (sources in ``source``). Every field can be overridden from
the command line (``--steps``, ``--batch-size``, ``--patch``, ``--lr``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from uirbench.errors import UserError


@dataclass(frozen=True)
class Recipe:
    """Optimisation settings: AdamW + linear warm-up + cosine decay to ``min_lr``; L1 or PSNR loss."""

    steps: int
    batch_size: int
    patch: int
    lr: float
    warmup: int = 0
    min_lr: float = 0.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = 1.0
    ema: float | None = None
    loss: str = "l1"
    source: str = ""

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "patch"):
            if getattr(self, key) < 1:
                raise UserError(f"--{key.replace('_', '-')} must be >= 1, got {getattr(self, key)}")
        if not self.lr > 0:
            raise UserError(f"--lr must be > 0, got {self.lr}")
        if self.loss not in ("l1", "psnr"):
            raise UserError(f"recipe loss must be l1 or psnr, got {self.loss!r}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise UserError(f"ema decay must be in (0, 1), got {self.ema}")

    def with_overrides(self, **overrides: object) -> Recipe:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_TINY = dict(steps=300, batch_size=8, patch=48, warmup=20, grad_clip=1.0, source="uirbench tiny preset (CPU, minutes)")



def _small(steps: int, batch_size: int, patch: int, per_step: str) -> Recipe:
    """A ``small`` recipe: AdamW lr 1e-3 with 100 warm-up steps and cosine decay to 1e-6, L1 loss."""
    return Recipe(steps=steps, batch_size=batch_size, patch=patch, lr=1e-3, warmup=100, min_lr=1e-6, grad_clip=1.0,
                  source=f"uirbench small: ~45 min budget on 1 CPU thread, {per_step} s per step measured (forward, "
                         "backward and on-the-fly degradation)")


RECIPES: dict[str, dict[str, Recipe]] = {
    "nafnet": {
        "tiny": Recipe(lr=2e-3, **_TINY),
        "small": _small(2500, 16, 96, "~0.9"),
        "paper": Recipe(steps=200_000, batch_size=64, patch=256, lr=1e-3, min_lr=1e-7, betas=(0.9, 0.9), loss="psnr",
                        grad_clip=None, source="Chen et al. 2022 (SIDD): AdamW b=(0.9,0.9), wd 0, lr 1e-3 cosine, 200k it, "
                               "256 px, batch 64, PSNR loss"),
    },
    "restormer": {
        "tiny": Recipe(lr=2e-3, **_TINY),
        "small": _small(1500, 16, 64, "~1.65"),
        "paper": Recipe(steps=300_000, batch_size=64, patch=128, lr=3e-4, min_lr=1e-6, weight_decay=1e-4,
                        source="Zamir et al. 2022: AdamW wd 1e-4, lr 3e-4 cosine to 1e-6, 300k it; "
                               "first progressive stage 128 px, batch 64"),
    },
    "promptir": {
        "tiny": Recipe(lr=2e-3, **_TINY),
        "small": _small(1300, 16, 64, "~1.95"),
        "paper": Recipe(steps=150_000, batch_size=32, patch=128, lr=2e-4, warmup=15_000,
                        source="Potlapalli et al. 2023: Adam lr 2e-4, warm-up + cosine, batch 32, 128 px, "
                               "120 epochs (~150k it on the 3-task set)"),
    },
    "airnet": {
        "tiny": Recipe(lr=2e-3, **_TINY),
        "small": _small(1000, 8, 64, "~2.6"),
        "paper": Recipe(steps=300_000, batch_size=8, patch=128, lr=1e-3,
                        source="Li et al. 2022: Adam lr 1e-3 (halved every 125 epochs in the paper; cosine here), "
                               "128 px; batch per authors' setup"),
    },
}
