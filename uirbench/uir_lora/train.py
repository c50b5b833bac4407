"""UIR-LoRA training stages on the shared engine (``uirbench.engine.run``): backbone, lora, router, all.

``uirbench train --model uir-lora --model-arg stage=STAGE --out D`` (default stage ``all`` = backbone, then every
family's adapter, then the router). Every stage is its own engine run under ``D/stages/`` with its
own state, logs and ``--resume``; a finished stage is copied into the checkpoint layout at ``D`` and
``D/model.json`` is rewritten, so ``evaluate --checkpoint D`` works after any stage::

    D/stages/backbone-vae/        VAE reconstruction (LDM autoencoder objective) on clean targets
    D/stages/backbone-diffusion/  latent DDPM objective on clean targets (UNet), after calibrating the latent scale
    D/stages/lora-<family>/       one adapter, trained only on pairs whose labels are exactly [family]
    D/stages/router/              the learned router, multi-label BCE on all train pairs
    D/backbone/ D/adapters/ D/router.safetensors D/model.json D/checksums.json     the checkpoint (``model.py``)

``backbone`` exists for small configs only (``tiny``: no pretrained weights are reachable offline);
the ``paper`` preset adapts SD-turbo: ``--model-arg backbone=HUB_ID_OR_DIR`` (e.g. a folder from ``huggingface-cli
download stabilityai/sd-turbo --local-dir DIR``), else a downloaded copy at ``D/backbone``, else the hub.
The first lora run writes it to ``D/backbone`` (``save_backbone``); later runs read it from there.
In the lora stage the backbone is frozen (cast to the AMP dtype on GPU) and only the adapter's LoRA
weights and its full-rank conv_in / skip-conv deltas train, in float32, on MSE + L1
(``backbone.restoration_loss``; img2img-turbo's LPIPS, CLIP and GAN terms need pretrained networks that
are not reachable offline, so both presets leave them out). ``--steps/--batch-size/--patch/--lr``
override every stage run by the command.

Checksums (``uirbench.checksums``): every stage's saved result carries a ``checksums.json`` in its run
folder (a backbone's is written by ``save_backbone``) and is verified before it is used or published
into D. D's own ``checksums.json`` is removed before the command's first write into D and written
again by ``assemble``, so an interrupted command leaves D refused as incomplete until it is re-run.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from uirbench import checksums
from uirbench.engine import run
from uirbench.errors import UserError
from uirbench.io import write_bytes
from uirbench.options import typed_options
from uirbench.recipes import Recipe
from uirbench.rng import child_torch_generator, key32, torch_generator
from uirbench.runs import finished_step, read_log
from uirbench.train import TrainConfig
from uirbench.uir_lora.lora import AdapterConfig
from uirbench.uir_lora.model import MULTITASK, ROUTER_FILE, UIRLoRAConfig, write_model_json
from uirbench.uir_lora.router import RouterConfig
from uirbench.validation import val_pairs

STAGES = ("backbone", "lora", "router", "all", "multitask")
VAL_PAIRS = 4


@dataclass(frozen=True)
class Preset:
    """Everything a preset fixes: backbone source ("tiny" = pre-trained by stage backbone), adapter and router
    shapes, default top-K, one recipe per run (vae, diffusion, lora, router; ``lora-<family>`` for one family's adapter
    where it differs from ``lora``), gradient checkpointing, val crop.

    ``timestep`` (pre-trained backbones only): the one-step restorer's t. SD-turbo is distilled for one step
    from t = 999; a small DDPM-trained UNet is not, and at t = 999 its x0 estimate multiplies eps errors by
    sqrt((1 - abar)/abar) = 14.6. At t = 500 that factor is 1.6 (abar = 0.276); on the built-in data 400-step
    adapters gained 1.0-1.5 dB (haze, JPEG val crops) over t = 999, and t = 200 lost on haze.
    """

    backbone: str
    top_k: int
    recipes: dict[str, Recipe] = field(hash=False)
    timestep: int = 999
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    router: RouterConfig = field(default_factory=RouterConfig)
    gradient_checkpointing: bool = False
    val_crop: int = 128

    def __post_init__(self) -> None:
        router = self.recipes.get("router")
        if router is not None and router.patch != self.router.window:
            raise UserError(f"Preset: the router trains on patches of its window ({self.router.window} px), not {router.patch}")


_SMALL_LORA = Recipe(steps=600, batch_size=8, patch=96, lr=2e-3, warmup=30, min_lr=1e-5,
                     source="uirbench small: one adapter in ~6 min on 1 CPU thread (~0.6 s per step)")

PRESETS = {
    "tiny": Preset(backbone="tiny", top_k=2, timestep=500, recipes={
        "vae": Recipe(steps=600, batch_size=8, patch=64, lr=4e-3, warmup=20, source="LDM autoencoder objective, CPU-sized"),
        "diffusion": Recipe(steps=400, batch_size=8, patch=64, lr=1e-3, warmup=20, source="DDPM epsilon objective, CPU-sized"),
        "lora": Recipe(steps=400, batch_size=4, patch=64, lr=2e-3, warmup=20, source="uirbench tiny: one adapter in ~1.5 min on CPU"),
        "router": Recipe(steps=1500, batch_size=16, patch=64, lr=2e-3, warmup=20, source="uirbench tiny router"),
    }),
    # small: the tiny architecture (backbone + six adapters + router must fit the 10 MB shipped checkpoint: twice the
    # widths would be 3.8M backbone parameters, 15 MB), trained longer and on larger patches, the router twice as wide;
    # budget ~45 min for the backbone (vae + diffusion), ~80 min for the six adapters, then ~1 h for the router, 1 CPU thread
    # router: 128-px patches, the size it averages over at inference: 90.8% top-1 on the CBSD68 test's single-degradation
    # images after 2,000 steps (trained on 96-px patches: 79.3% from whole-image statistics, 89.8% over 96-px windows,
    # 91.2% over 128-px); trained 6,000 steps instead of 2,000: 93.9% -> 97.7% top-1 on the val split's single-degradation
    # pairs, 82.7% -> 88.2% of the mixed pairs' families in its top 2 (tools/router_accuracy.py on the training snapshots)
    # top_k 3: the best mean PSNR on the CBSD68 val split (231 pairs) with these adapters and router, K = 1, 2, 3, 4:
    # 24.286, 24.367, 24.371, 24.371 dB (mixed pairs 21.664, 21.799, 21.813, 21.811); the smallest K at the best
    "small": Preset(backbone="tiny", top_k=3, timestep=500, router=RouterConfig(width=32, window=128), recipes={
        "vae": Recipe(steps=2000, batch_size=8, patch=96, lr=2e-3, warmup=50, min_lr=1e-5,
                      source="LDM autoencoder objective; uirbench small: ~0.7 s per step, ~25 min on 1 CPU thread"),
        "diffusion": Recipe(steps=4000, batch_size=16, patch=96, lr=1e-3, warmup=50, min_lr=1e-5,
                            source="DDPM epsilon objective; uirbench small: ~0.3 s per step, ~20 min on 1 CPU thread"),
        "lora": _SMALL_LORA,
        # haze and low light: 3x the steps. Their val PSNR still rose at the end of 600 steps (haze 21.69, 23.88, 24.41 dB
        # at 250, 500, 600; low light 21.08, 21.64, 22.03) while the other four were flat to 0.1 dB
        "lora-haze": replace(_SMALL_LORA, steps=1800, source="uirbench small: haze adapter, 3x the steps (val still rising at "
                                                              "600), ~21 min on 1 CPU thread"),
        "lora-lowlight": replace(_SMALL_LORA, steps=1800, source="uirbench small: low-light adapter, 3x the steps (val still "
                                                                  "rising at 600), ~27 min on 1 CPU thread"),
        "router": Recipe(steps=6000, batch_size=16, patch=128, lr=2e-3, warmup=50, min_lr=1e-5,
                         source="uirbench small router: ~0.63 s per step, ~63 min on 1 CPU thread"),
    }),
    "paper": Preset(backbone="stabilityai/sd-turbo", top_k=2, gradient_checkpointing=True, val_crop=512,
                    router=RouterConfig(width=32, window=256), recipes={
        "lora": Recipe(steps=10_000, batch_size=4, patch=512, lr=5e-6, min_lr=5e-6, warmup=500, weight_decay=1e-2,
                       source="img2img-turbo (REFERENCE 1): AdamW lr 5e-6 (constant after warm-up), batch 4, 512 px; "
                              "steps, warm-up and weight decay are our choice"),
        "router": Recipe(steps=2_000, batch_size=16, patch=256, lr=1e-3, warmup=100, source="uirbench: learned router at 256 px"),
    }),
}


def _recipe(config: TrainConfig, preset: Preset, key: str) -> Recipe:
    return config.recipe(preset.recipes[key])


def adapter_recipe(config: TrainConfig, preset: Preset, family: str) -> Recipe:
    """The recipe of ``family``'s adapter: the preset's ``lora-<family>`` where it has one, else its ``lora``."""
    return config.recipe(preset.recipes.get(f"lora-{family}", preset.recipes["lora"]))


class Objective(nn.Module):
    """A model and its loss as one module (``forward`` = the loss), so the engine and DDP see a plain module."""

    def __init__(self, model: nn.Module, loss_fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, *args: Any) -> torch.Tensor:
        return self.loss_fn(self.model, *args)


def adapter_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, name: str) -> torch.Tensor:
    """The adapter alone at weight 1 (img2img-turbo's setting): restoration loss of model(x) against y.

    The mixture stays set after the call: gradient checkpointing recomputes the forward during
    ``backward`` and must see the same adapters.
    """
    from uirbench.uir_lora.backbone import restoration_loss
    from uirbench.uir_lora.lora import set_mixture

    set_mixture(model, [name], x.new_ones(x.shape[0], 1, dtype=torch.float32))
    return restoration_loss(model(x).float(), y)


def router_loss(router: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return router.loss(x, targets)


class _Task:
    """Engine task: batches from ``PairedPatches``, the objective's loss, a small validation; subclasses save."""

    find_unused_parameters = False

    def __init__(self, name: str, objective: Objective, data: Any, val: list) -> None:
        self.name, self.module, self.data, self.val = name, objective, data, val


class BackboneTask(_Task):
    """Backbone pre-training on clean targets: phase "vae" (VAE and skip convs: L1 + KL reconstruction through the
    latent alone and through the skips) or "diffusion" (UNet: DDPM epsilon MSE on the frozen VAE's latents).

    The skips join the VAE phase because a 0.25M-parameter VAE trained on a few images reconstructs unseen
    ones at ~23 dB through its latent alone (built-in data): adapters starting from near-zero skips stayed
    below that ceiling; with shared pre-trained skips (30 dB on a val crop) 400-step adapters gained 2-3.5 dB.
    """

    def __init__(self, phase: str, backbone: nn.Module, data: Any, val: list, seed: int) -> None:
        from uirbench.uir_lora.backbone import latent_diffusion_loss, vae_reconstruction_loss

        self.phase, self.seed = phase, seed
        parts = (backbone.vae, backbone.skips) if phase == "vae" else (backbone.unet,)
        for p in backbone.parameters():
            p.requires_grad_(False)
        for part in parts:
            for p in part.parameters():
                p.requires_grad_(True)
        loss_fn = partial(vae_reconstruction_loss, skips=True) if phase == "vae" else latent_diffusion_loss
        super().__init__(f"uir-lora backbone-{phase}", Objective(backbone, loss_fn), data, val)

    def save(self, module: nn.Module, out: Path, extra: dict[str, Any]) -> None:
        from uirbench.uir_lora.backbone import save_backbone

        save_backbone(module.model, out)  # with its checksums.json

    def loss(self, module: nn.Module, step: int, offset: int, batch_size: int, device: torch.device) -> torch.Tensor:
        clean = self.data.clean_batch(step, batch_size, offset)
        return module(clean.to(device), child_torch_generator(self.seed, step, offset))

    def validate(self, module: nn.Module, device: torch.device) -> dict[str, float]:
        from uirbench.metrics import PSNR

        if not self.val:
            return {}
        model = module.model
        if self.phase == "vae":  # reconstruction of clean val crops from the posterior mode, with and without skips
            psnr, latent = [], []
            for _, y, _ in self.val:
                y = y.to(device)
                z, feats = model.encode(y)
                psnr.append(float(PSNR()(((model.decode(z, feats).float() + 1) / 2).clamp(0, 1), y)[0]))
                recon = (model.vae.decode(z / model.vae.config.scaling_factor).sample.float() + 1) / 2
                latent.append(float(PSNR()(recon.clamp(0, 1), y)[0]))
            return {"val_psnr": sum(psnr) / len(psnr), "val_psnr_latent": sum(latent) / len(latent)}
        losses = [float(module(y.to(device), child_torch_generator(self.seed, i))) for i, (_, y, _) in enumerate(self.val)]
        return {"val_loss": sum(losses) / len(losses)}


class AdapterTask(_Task):
    """One adapter on (degraded, clean) patches; validation PSNR of the adapter alone on val crops."""

    def __init__(self, name: str, backbone: nn.Module, data: Any, val: list, run_dir_name: str) -> None:
        self.adapter = name
        super().__init__(f"uir-lora {run_dir_name}", Objective(backbone, partial(adapter_loss, name=name)), data, val)

    def save(self, module: nn.Module, out: Path, extra: dict[str, Any]) -> None:
        from uirbench.uir_lora.lora import save_adapter

        checksums.unseal(out)
        save_adapter(module.model, self.adapter, out / "adapter.safetensors")
        checksums.seal(out, ["adapter.safetensors", "adapter.json"])

    def loss(self, module: nn.Module, step: int, offset: int, batch_size: int, device: torch.device) -> torch.Tensor:
        x, y, _ = self.data.batch(step, batch_size, offset)
        return module(x.to(device), y.to(device))

    def validate(self, module: nn.Module, device: torch.device) -> dict[str, float]:
        from uirbench.metrics import PSNR
        from uirbench.uir_lora.lora import mixture

        scores = []
        for x, y, _ in self.val:
            with mixture(module.model, [self.adapter], torch.ones(1, 1, device=device)):
                pred = module.model(x.to(device)).float().clamp(0, 1)
            scores.append(float(PSNR()(pred, y.to(device))[0]))
        return {"val_psnr": sum(scores) / len(scores)} if scores else {}


class RouterTask(_Task):
    """The learned router on all pairs, multi-label targets; validation: share of val images whose top-|labels|
    families are exactly their labels."""

    def __init__(self, router: nn.Module, data: Any, val: list) -> None:
        super().__init__("uir-lora router", Objective(router, router_loss), data, val)

    def save(self, module: nn.Module, out: Path, extra: dict[str, Any]) -> None:
        from uirbench.uir_lora.router import save_router

        checksums.unseal(out)
        save_router(module.model, out / ROUTER_FILE)
        checksums.seal(out, [ROUTER_FILE])

    def loss(self, module: nn.Module, step: int, offset: int, batch_size: int, device: torch.device) -> torch.Tensor:
        from uirbench.uir_lora.router import label_targets

        x, _, rows = self.data.batch(step, batch_size, offset)
        return module(x.to(device), label_targets([r["labels"] for r in rows], self.module.model.families).to(device))

    def validate(self, module: nn.Module, device: torch.device) -> dict[str, float]:
        router = module.model
        hits = []
        for x, _, row in self.val:
            top = router.similarity(x.to(device)).topk(len(row["labels"]), dim=1).indices[0].tolist()
            hits.append(float({router.families[i] for i in top} == set(row["labels"])))
        return {"val_acc": sum(hits) / len(hits)} if hits else {}


def _run(make_task: Callable[[], _Task], recipe: Recipe, run_dir: Path, config: TrainConfig) -> dict[str, Any]:
    """One stage run on the engine; with --resume a finished run is skipped and an unfinished one continued."""
    done = finished_step(run_dir)
    if config.resume and done is not None and done >= recipe.steps:
        rows = [r for r in read_log(run_dir) if r.get("loss")]
        return {"out": str(run_dir), "steps": done, "resumed_from": done, "loss": float(rows[-1]["loss"]), "seconds": 0.0}
    if (run_dir / "train.json").exists() and not config.resume:
        raise UserError(f"{run_dir} already holds a run of this stage: pass --resume to continue it, "
                         "or delete that folder to train the stage again")
    if config.resume and done is None and run_dir.exists():
        shutil.rmtree(run_dir)  # started but never checkpointed: nothing to continue from
    return run(make_task(), recipe, config.engine(str(run_dir), recipe, resume=config.resume and done is not None))


def _stage_hint(run_dir: Path) -> str:
    return f"Delete {run_dir} and run the same command with --resume: that stage is trained again, the finished ones are kept."


def _verified(run_dir: Path) -> Path:
    """A finished stage run whose saved result matches its checksums.json (checked before it is published into D)."""
    with checksums.recovery(_stage_hint(run_dir)):
        checksums.verify(run_dir, "the saved result of stage")
    return run_dir


def _patches(config: TrainConfig, patch: int, labels: list[str] | None = None, singles: bool = False) -> Any:
    from uirbench.online import training_pairs

    return training_pairs(config.data, patch, seed=config.seed, online=config.online, labels=labels, singles=singles)


def _backbone_task(phase: str, config: TrainConfig, preset: Preset, patch: int, vae_dir: Path) -> BackboneTask:
    from uirbench.uir_lora.backbone import build_backbone, calibrate_scaling_factor, load_backbone, tiny_backbone_config

    if phase == "vae":
        backbone = build_backbone(replace(tiny_backbone_config(), timestep=preset.timestep), torch_generator(config.seed))
    else:  # the trained VAE, its latents rescaled to unit variance (LDM Sec. 4.3.2) before the UNet learns them
        with checksums.recovery(_stage_hint(vae_dir)):
            backbone = load_backbone(str(vae_dir))
        calibrate_scaling_factor(backbone, _patches(config, patch).clean_batch(0, 64))
    val = val_pairs(config.data, preset.val_crop, VAL_PAIRS, backbone.size_multiple)
    return BackboneTask(phase, backbone, _patches(config, patch), val, config.seed)


def train_backbone(config: TrainConfig, preset: Preset, out: Path) -> dict[str, dict[str, Any]]:
    """Pre-train a small backbone: VAE reconstruction, latent-scale calibration, latent diffusion; publish D/backbone."""
    from uirbench.uir_lora.backbone import load_backbone, save_backbone

    if preset.backbone != "tiny":
        raise UserError(f"--model-arg stage=backbone pre-trains the tiny-architecture backbone only (--preset tiny or small); "
                         f"preset {config.preset!r} adapts the pretrained {preset.backbone}")
    summaries = {}
    vae_dir = out / "stages" / "backbone-vae"
    for phase in ("vae", "diffusion"):
        recipe = _recipe(config, preset, phase)
        summaries[f"backbone-{phase}"] = _run(partial(_backbone_task, phase, config, preset, recipe.patch, vae_dir), recipe,
                                              out / "stages" / f"backbone-{phase}", config)
    with checksums.recovery(_stage_hint(out / "stages" / "backbone-diffusion")):
        backbone = load_backbone(str(out / "stages" / "backbone-diffusion"))
    checksums.unseal(out)
    save_backbone(backbone, out / "backbone")
    return summaries


def backbone_dir(out: Path, preset: Preset, source: str | None) -> Path:
    """D/backbone as a ``save_backbone`` folder. Written on first use from ``source`` (--model-arg backbone: hub id or
    folder), else from a downloaded copy placed at D/backbone, else from the preset's pretrained source."""
    from uirbench.uir_lora.backbone import load_backbone, save_backbone

    path = out / "backbone"
    if (path / "backbone.json").is_file():
        if source is not None and not _same_backbone(Path(source), path):
            raise UserError(f"--model-arg backbone={source}: {path} already holds the backbone its adapters were trained on, "
                             "and it is not that one; to resume, run without --model-arg backbone; use another --out to "
                             "adapt another backbone")
        return path
    source = source or (str(path) if path.is_dir() else None) or (None if preset.backbone == "tiny" else preset.backbone)
    if source in (None, "tiny"):
        raise UserError(f"{path}: no backbone yet; pre-train one with `uirbench train --model uir-lora --preset tiny|small "
                         f"--model-arg stage=backbone --out {out}` (or stage=all), or pass --model-arg backbone=HUB_ID_OR_DIR")
    backbone = load_backbone(source)
    checksums.unseal(out)
    save_backbone(backbone, path)
    return path


def _same_backbone(source: Path, saved: Path) -> bool:
    """Whether ``source`` is a saved backbone folder holding what ``saved`` holds: the same files by their checksums,
    except that diffusers' ``config.json`` files may differ in ``_name_or_path`` (a re-save records where the model
    was loaded from)."""
    mine, theirs = checksums.recorded(saved), checksums.recorded(source)
    if mine is None or theirs is None or mine.keys() != theirs.keys():
        return False

    def config(folder: Path, name: str) -> dict[str, Any]:
        return {k: v for k, v in json.loads((folder / name).read_bytes()).items() if k != "_name_or_path"}

    return all(mine[name] == theirs[name] or (name.endswith("config.json") and config(saved, name) == config(source, name))
               for name in mine)


def train_adapter(config: TrainConfig, preset: Preset, backbone: Path, run_dir: Path, name: str, labels: list[str] | None,
                  adapter: AdapterConfig | None = None, recipe: Recipe | None = None, singles: bool = False) -> dict[str, Any]:
    """Train adapter ``name`` (shape ``adapter``, default the preset's) on the pairs whose labels are within ``labels``
    (None: every pair; ``singles``: single-degradation pairs only) into ``run_dir``, with ``recipe`` (default the
    preset's lora recipe)."""
    from uirbench.uir_lora.backbone import load_backbone
    from uirbench.uir_lora.lora import add_adapter, mark_trainable

    recipe = recipe or adapter_recipe(config, preset, name)
    data = _patches(config, recipe.patch, labels, singles)

    def make() -> _Task:
        low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp) if config.device == "cuda" else None
        with checksums.recovery("Write it again with the same --out: `uirbench train --model uir-lora --model-arg "
                                f"stage=backbone --resume` publishes the pre-trained one again (tiny and small presets), or "
                                f"delete {backbone} and pass --model-arg backbone again."):
            model = load_backbone(str(backbone), dtype=low or torch.float32)  # frozen base in the AMP dtype
        if preset.gradient_checkpointing:
            model.unet.enable_gradient_checkpointing()
        add_adapter(model, name, child_torch_generator(config.seed, key32(name)), adapter or preset.adapter)
        mark_trainable(model, name)  # adapter weights float32
        val = val_pairs(config.data, preset.val_crop, VAL_PAIRS, model.size_multiple,
                        keep=lambda r: (labels is None or set(r["labels"]) <= set(labels)) and (not singles or len(r["labels"]) == 1))
        return AdapterTask(name, model, data, val, run_dir.name)

    return _run(make, recipe, run_dir, config)


def train_router(config: TrainConfig, preset: Preset, out: Path) -> dict[str, Any]:
    """The learned router over every family in the train labels; published to D/router.safetensors."""
    from uirbench.uir_lora.router import LearnedRouter

    recipe = _recipe(config, preset, "router")
    data = _patches(config, recipe.patch)
    families = sorted({f for labels in data.label_sets() for f in labels})
    run_dir = out / "stages" / "router"

    def make() -> _Task:
        router = LearnedRouter(families, preset.router, child_torch_generator(config.seed, key32("router")))
        val = val_pairs(config.data, preset.val_crop, 64)  # cheap: the router is small
        return RouterTask(router, data, val)

    summary = _run(make, recipe, run_dir, config)
    _verified(run_dir)
    checksums.unseal(out)
    write_bytes(out / ROUTER_FILE, (run_dir / ROUTER_FILE).read_bytes())
    return summary


def matched_adapter(backbone: Path, preset: Preset, adapters: int) -> tuple[AdapterConfig, int, int]:
    """The multi-task control's adapter shape: the preset's with its LoRA ranks multiplied by the integer that brings its
    parameter count closest to ``adapters`` of the preset's adapters together; returns (config, its count, the target)."""
    from uirbench.uir_lora.backbone import load_backbone
    from uirbench.uir_lora.lora import _remove, adapter_parameter_count, add_adapter

    if adapters < 1:
        raise UserError("the multi-task control needs at least one family with single-degradation training pairs")
    model, base = load_backbone(str(backbone)), preset.adapter  # a scratch copy: one probe adapter at a time
    gen = torch.Generator().manual_seed(0)  # only the shapes are counted
    counts: dict[tuple[int, int], int] = {}

    def count(shape: AdapterConfig) -> int:
        key = (shape.unet_rank, shape.vae_rank)
        if key not in counts:
            add_adapter(model, "probe", gen, shape)
            counts[key] = adapter_parameter_count(model, "probe")
            _remove(model, "probe")
        return counts[key]

    target = adapters * count(base)
    best = min((replace(base, unet_rank=base.unet_rank * m, unet_alpha=base.unet_alpha * m, vae_rank=base.vae_rank * m,
                        vae_alpha=base.vae_alpha * m) for m in range(1, 4 * adapters + 1)), key=lambda c: abs(count(c) - target))
    return best, count(best), target


def train_multitask(config: TrainConfig, preset: Preset, out: Path, backbone: Path, families: list[str]) -> dict[str, Any]:
    """The multi-task control: one adapter on the single-degradation pairs of every family (the data the family adapters
    see together), as many trainable parameters as those adapters together and as many steps as they have together;
    published as a checkpoint whose router is ``single``."""
    base = _recipe(config, preset, "lora")
    steps = [adapter_recipe(config, preset, family).steps for family in families]
    shape, count, target = matched_adapter(backbone, preset, len(families))
    recipe = replace(base, steps=sum(steps),
                     source=f"{base.source}; multi-task control: the {len(families)} adapters' steps together "
                            f"({' + '.join(map(str, steps))}), LoRA ranks {shape.unet_rank}/{shape.vae_rank}: {count:,} "
                            f"parameters for {target:,} in {len(families)} adapters")
    run_dir = out / "stages" / f"lora-{MULTITASK}"
    summary = train_adapter(config, preset, backbone, run_dir, MULTITASK, None, shape, recipe, singles=True)
    summary["parameters"] = {"adapter": count, "family_adapters": target}
    _publish_adapter(out, run_dir, MULTITASK)
    return summary


def _publish_adapter(out: Path, run_dir: Path, name: str) -> None:
    _verified(run_dir)
    checksums.unseal(out)
    for suffix in (".json", ".safetensors"):  # atomic copies; the weights, which mark the adapter present, last
        write_bytes((out / "adapters" / name).with_suffix(suffix), (run_dir / "adapter").with_suffix(suffix).read_bytes())


def _check_adapters(out: Path, stage: str) -> None:
    """The multi-task control and family adapters never share an --out: its checkpoint is one adapter, routed by 'single'."""
    present = sorted(p.stem for p in (out / "adapters").glob("*.safetensors"))
    if stage == MULTITASK and set(present) - {MULTITASK}:
        raise UserError(f"--out {out}: holds family adapters ({', '.join(present)}); train the multi-task control into its own "
                        f"--out, with --model-arg backbone={out / 'backbone'}")
    if stage != MULTITASK and MULTITASK in present and stage != "backbone":
        raise UserError(f"--out {out}: holds the multi-task control; train UIR-LoRA's family adapters and router into another --out")


def single_families(config: TrainConfig) -> list[str]:
    """Families with single-degradation pairs (labels == [family]) among the training pairs."""
    return sorted(labels[0] for labels in _patches(config, 1).label_sets() if len(labels) == 1)


def _family(name: str) -> str:
    from uirbench.degradations import families

    found = families(name)
    if len(found) != 1:
        raise UserError(f"--model-arg degradation={name}: an adapter is trained on one family, {name!r} has {found}")
    return found[0]


def assemble(out: Path, preset: Preset, command: str) -> bool:
    """(Re)write D/model.json and D/checksums.json from what D holds (backbone, adapters, router); False while
    backbone or adapters are missing."""
    adapters = sorted(p.stem for p in (out / "adapters").glob("*.safetensors"))
    if not (out / "backbone" / checksums.MANIFEST).is_file() or not adapters:  # a backbone whose save finished
        return False
    stages = {}
    for run_dir in sorted((out / "stages").glob("*")):
        rows = [r for r in read_log(run_dir) if r.get("loss")] if (run_dir / "logs" / "train.csv").exists() else []
        if rows:
            stages[run_dir.name] = {"steps": int(rows[-1]["step"]), "loss": float(rows[-1]["loss"]), "seconds": float(rows[-1]["seconds"])}
    router = "learned" if (out / ROUTER_FILE).is_file() else "single" if adapters == [MULTITASK] else "oracle"
    write_model_json(out, UIRLoRAConfig(top_k=min(preset.top_k, len(adapters)), router=router), adapters,
                     step=sum(s["steps"] for s in stages.values()), stages=stages, command=command)
    return True


@dataclass(frozen=True)
class TrainOptions:
    """UIR-LoRA's ``--model-arg`` options of ``uirbench train``.

    ``stage``: backbone, lora, router or all, or multitask (the control: one adapter trained on every family, with
    as many parameters and steps as the family adapters together, into its own --out, router ``single``);
    ``degradation``: with stage lora, the one family whose adapter is trained (default: every family with
    single-degradation pairs); ``backbone``: a ready backbone (hub id or folder) for stage lora, all or multitask,
    e.g. a folder from ``huggingface-cli download stabilityai/sd-turbo --local-dir DIR`` made elsewhere, or the
    ``backbone/`` of a UIR-LoRA run (default: the preset's).
    """

    stage: str = "all"
    degradation: str | None = None
    backbone: str | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise UserError(f"--model-arg stage={self.stage}: valid stages are {', '.join(STAGES)}")
        if self.degradation and self.stage != "lora":
            raise UserError("--model-arg degradation applies to stage=lora only (it names the one adapter to train)")
        if self.backbone and self.stage not in ("lora", "all", MULTITASK):
            raise UserError("--model-arg backbone names a ready backbone for stage=lora, all or multitask (stage=backbone "
                            "pre-trains one)")


def train_uir_lora(config: TrainConfig) -> dict[str, Any]:
    """``uirbench train --model uir-lora``: run the ``stage`` option (default all) of ``config.preset`` into ``config.out``."""
    options = TrainOptions(**typed_options(TrainOptions, dict(config.model_args), "uirbench train --model uir-lora"))
    stage = options.stage
    if config.preset not in PRESETS:
        raise UserError(f"model 'uir-lora' has no preset {config.preset!r}; valid presets: {', '.join(PRESETS)}")
    if config.mix:
        raise UserError("--mix does not apply to uir-lora: each adapter trains on its own family, the router on all pairs")
    preset, out = PRESETS[config.preset], Path(config.out or f"runs/uir-lora-{config.preset}")
    t0 = time.perf_counter()
    summaries: dict[str, dict[str, Any]] = {}
    if stage == "backbone" or (stage == "all" and preset.backbone == "tiny" and options.backbone is None):
        summaries.update(train_backbone(config, preset, out))
    _check_adapters(out, stage)
    if stage in ("lora", "all"):
        families = [_family(options.degradation)] if options.degradation else single_families(config)
        base = backbone_dir(out, preset, options.backbone)
        for family in families:
            run_dir = out / "stages" / f"lora-{family}"
            summaries[run_dir.name] = train_adapter(config, preset, base, run_dir, family, [family])
            _publish_adapter(out, run_dir, family)
    if stage == MULTITASK:
        summaries[f"lora-{MULTITASK}"] = train_multitask(config, preset, out, backbone_dir(out, preset, options.backbone),
                                                         single_families(config))
    if stage in ("router", "all"):
        summaries["router"] = train_router(config, preset, out)
    assembled = assemble(out, preset, config.command)
    last = list(summaries.values())[-1]
    return {"out": str(out), "steps": sum(s["steps"] for s in summaries.values()), "loss": last["loss"],
            "seconds": round(time.perf_counter() - t0, 2), "stages": summaries, "checkpoint": assembled}
