"""The training engine: one loop on Hugging Face accelerate for every trainer; it knows no model.

The same code runs on a CPU, one GPU, or many (``accelerate launch`` / ``torchrun``; on CPU-only
machines set ``ACCELERATE_USE_CPU=1`` for real DDP instead of independent copies). What is trained
is a :class:`Task` (a module, its loss, its validation and how it is saved), built by the model's own
trainer (``ModelSpec.trainer``, called by ``uirbench.train``); the engine brings:

* AdamW + linear warm-up + cosine decay, gradient clipping, optional EMA of the weights;
* AMP on GPU (``bf16``/``fp16`` autocast; master weights stay fp32);
* batches that are a pure function of ``(seed, step)`` (``uirbench.data``), so ``--resume``
  continues exactly: the loss curve equals an uninterrupted run's on CPU;
* checkpoints every ``save_every`` steps and at the end: first the model (``model.json`` +
  weights, EMA weights when enabled) at the top of ``--out`` for ``evaluate --checkpoint``, then the
  full state (weights, optimizer, scheduler, EMA, RNG, step) under ``state/step-N`` (written to a
  temporary folder with its ``checksums.json``, then renamed; the last two are kept). A state
  therefore exists only once the model saved before it is complete;
* ``--resume`` checks the newest state against its ``checksums.json`` before loading it. A damaged
  one (or one whose loading fails) is refused with the file at fault and the way out: the previous
  intact state is named, to resume from after deleting the damaged folder, or, with none left,
  starting over. It is never skipped silently: that would drop finished steps without a word, and the
  next save would rotate the evidence away;
* validation PSNR on the val split every ``val_every`` steps; logs to ``logs/train.csv`` and
  TensorBoard (``logs/tb``); a progress bar with loss, lr, it/s and ETA.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from uirbench import checksums
from uirbench.errors import CheckpointError, UserError
from uirbench.io import write_json
from uirbench.progress import Progress
from uirbench.recipes import Recipe
from uirbench.runs import STATE_DIR, saved_states

LOG_FIELDS = ("step", "loss", "lr", "seconds")


class Task(Protocol):
    """What the engine trains: ``module`` (its trainable parameters are optimised), a loss per step,
    a validation, and how the trained result is saved as a checkpoint."""

    name: str
    module: torch.nn.Module
    find_unused_parameters: bool

    def loss(self, module: torch.nn.Module, step: int, offset: int, batch_size: int, device: torch.device) -> torch.Tensor: ...

    def validate(self, module: torch.nn.Module, device: torch.device) -> dict[str, float]: ...

    def save(self, module: torch.nn.Module, out: Path, extra: dict[str, Any]) -> None:
        """Write the checkpoint into ``out``, ending with its ``checksums.json`` (``uirbench.checksums``)."""


@dataclass(frozen=True)
class EngineConfig:
    """Run-level settings shared by every task."""

    out: str
    seed: int = 0
    resume: bool = False
    save_every: int = 100
    val_every: int | None = None
    log_every: int = 10
    amp: str = "no"
    device: str = "cpu"
    command: str = ""
    inputs: tuple[tuple[str, str], ...] = ()
    """What the batches depend on besides ``seed`` (the trainer's data settings); ``--resume`` refuses a change."""


class EMA:
    """Exponential moving average of trainable weights (Polyak averaging), checkpointed with the run."""

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        for name, p in module.named_parameters():
            if name in self.shadow:
                self.shadow[name].lerp_(p.detach(), 1.0 - self.decay)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = state["decay"]
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}

    @torch.no_grad()
    def swap(self, module: torch.nn.Module) -> None:
        """Exchange the live and the averaged weights (call twice to restore)."""
        for name, p in module.named_parameters():
            if name in self.shadow:
                tmp = p.detach().clone()
                p.copy_(self.shadow[name])
                self.shadow[name] = tmp


class StepCounter:
    """The global step as a checkpointable object."""

    def __init__(self) -> None:
        self.step = 0

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step = int(state["step"])


def lr_lambda(recipe: Recipe):
    """Multiplier of the base lr: linear warm-up, then cosine decay to ``min_lr`` at ``steps``."""
    floor = recipe.min_lr / recipe.lr

    def factor(step: int) -> float:
        if recipe.warmup and step < recipe.warmup:
            return (step + 1) / recipe.warmup
        progress = min(1.0, (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _load_state(accelerator: Any, out: Path, state: Path) -> None:
    """Verify ``state`` against its checksums, then load it; a damaged one is refused with the way out."""
    try:
        checksums.verify(state, "--resume: the training state")
        try:
            accelerator.load_state(str(state))
        except Exception as exc:
            raise checksums.unreadable(_damaged_file(state) or state, exc) from exc
    except CheckpointError as exc:
        states = saved_states(out)
        earlier = next((s for s in reversed(states[:states.index(state)]) if not checksums.problems(s)), None)
        if earlier is None:
            hint = f"No intact earlier state is left in {out / STATE_DIR}: start over (delete {out} and run the command again)."
        else:
            hint = f"Resume from the previous intact state {earlier.name} instead: delete {state} and run the same command again."
        raise CheckpointError(f"{exc} {hint}") from exc


def _damaged_file(state: Path) -> Path | None:
    """The first file of ``state`` whose container is damaged (a safetensors header that does not fit the file, a
    torch.save zip archive with a bad structure or CRC: accelerate writes only these), to name it after a failed load."""
    import zipfile

    from safetensors import safe_open

    for path in sorted(state.iterdir()):
        try:
            if path.suffix == ".safetensors":
                with safe_open(str(path), framework="pt"):
                    pass
            elif path.suffix in (".bin", ".pkl"):
                with zipfile.ZipFile(path) as archive:
                    if archive.testzip() is not None:
                        return path
        except Exception:
            return path
    return None


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows past the resumed step (they belong to work lost with the interrupted run)."""
    if not path.exists():
        return
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    fields = list(rows[0].keys()) if rows else list(LOG_FIELDS)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(r for r in rows if int(r["step"]) <= step)


class Logger:
    """CSV (always) + TensorBoard (main process) logging of scalars per step."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.path = out / "logs" / "train.csv"
        self.fields: list[str] | None = None
        self.tb = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "logs" / "tb"))

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": step, **values}
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists and self.fields is None:
            with open(self.path, newline="") as fh:
                self.fields = next(csv.reader(fh))
        if self.fields is None or not set(row) <= set(self.fields):
            self._rewrite_with(list(dict.fromkeys([*(self.fields or LOG_FIELDS), *row])))
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.fields).writerow(row)
        for key, value in values.items():
            self.tb.add_scalar(key, value, step)

    def _rewrite_with(self, fields: list[str]) -> None:
        rows = []
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, newline="") as fh:
                rows = list(csv.DictReader(fh))
        with open(self.path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        self.fields = fields

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def run(task: Task, recipe: Recipe, engine: EngineConfig) -> dict[str, Any]:
    """Train ``task`` with ``recipe``; resumable; returns a summary (steps, final loss, seconds, out)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    out = Path(engine.out)
    if engine.amp not in ("no", "bf16", "fp16"):
        raise UserError(f"--amp {engine.amp!r}: valid values are no, bf16, fp16")
    if engine.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here; use --device cpu")
    accelerator = Accelerator(cpu=engine.device == "cpu", mixed_precision=engine.amp if engine.device != "cpu" else "no",
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=task.find_unused_parameters)])
    params = [p for p in task.module.parameters() if p.requires_grad]
    if not params:
        raise UserError(f"{task.name}: nothing to train (no parameter requires grad)")
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, betas=recipe.betas, weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(recipe))
    module, optimizer, scheduler = accelerator.prepare(task.module, optimizer, scheduler)
    counter = StepCounter()
    accelerator.register_for_checkpointing(counter)
    ema = EMA(accelerator.unwrap_model(module), recipe.ema) if recipe.ema else None
    if ema is not None:
        accelerator.register_for_checkpointing(ema)
    state = (saved_states(out) or [None])[-1]
    if engine.resume:
        if state is None:
            raise UserError(f"--resume: {out} holds no saved state ({out}/{STATE_DIR}/step-*); start without --resume")
        _check_same_inputs(out, engine)
        _load_state(accelerator, out, state)
        if accelerator.is_main_process:
            _truncate_log(out / "logs" / "train.csv", counter.step)
    elif state is not None or (out / "train.json").exists():
        raise UserError(f"--out {out}: already holds a training run; pass --resume to continue it or choose another --out")
    accelerator.wait_for_everyone()  # every rank has checked --out before the main one writes to it
    if accelerator.is_main_process:
        write_json(out / "train.json", {"task": task.name, "recipe": asdict(recipe), "engine": asdict(engine),
                                         "processes": accelerator.num_processes})
    logger = Logger(out, accelerator.is_main_process)
    val_every = engine.val_every or max(1, recipe.steps // 4)
    local_batch = recipe.batch_size // accelerator.num_processes
    if local_batch * accelerator.num_processes != recipe.batch_size:
        raise UserError(f"--batch-size {recipe.batch_size} is not divisible by the {accelerator.num_processes} processes")
    start, t0, last_loss = counter.step, time.perf_counter(), float("nan")
    bar = Progress(recipe.steps, "step", f"train {task.name}", initial=start, enabled=accelerator.is_main_process)
    finished = False
    try:
        module.train()
        for step in range(start, recipe.steps):
            # forward: the task draws its batch as a pure function of (seed, step, rank offset), so a resumed
            # run sees exactly the batches an uninterrupted one would
            with accelerator.autocast():
                loss = task.loss(module, step, accelerator.process_index * local_batch, local_batch, accelerator.device)
            # backward and update: gradients averaged over ranks by DDP, clipped, then the scheduled AdamW step
            accelerator.backward(loss)
            if recipe.grad_clip:
                accelerator.clip_grad_norm_(params, recipe.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:  # the averaged weights are what validation and checkpoints use
                ema.update(accelerator.unwrap_model(module))
            counter.step = step + 1
            # bookkeeping: the loss averaged over ranks, shown and logged every log_every steps
            last_loss = float(accelerator.reduce(loss.detach(), reduction="mean"))
            lr = scheduler.get_last_lr()[0]
            bar.postfix(loss=f"{last_loss:.4f}", lr=f"{lr:.2e}")
            bar.update(1)
            if _due(counter.step, engine.log_every, recipe.steps):
                logger.log(counter.step, {"loss": last_loss, "lr": lr, "seconds": round(time.perf_counter() - t0, 3)})
            # validation on the main process, with the EMA weights swapped in
            if _due(counter.step, val_every, recipe.steps):
                metrics = _validate(task, module, accelerator, ema)
                if metrics:
                    logger.log(counter.step, metrics)
            # checkpoint: the model first, then the full state, so a state exists only once its model is complete
            if _due(counter.step, engine.save_every, recipe.steps):
                _checkpoint(task, module, accelerator, ema, out, counter.step, engine, recipe)
        finished = True
    finally:
        bar.close(finished)
        logger.close()
    return {"out": str(out), "steps": counter.step, "resumed_from": start, "loss": last_loss,
            "seconds": round(time.perf_counter() - t0, 2)}


def _check_same_inputs(out: Path, engine: EngineConfig) -> None:
    """A resumed run continues exactly only on the same batches: refuse another seed or data settings than the run's."""
    import json

    try:
        saved = json.loads((out / "train.json").read_text())["engine"]
    except (OSError, ValueError, KeyError):
        return  # no record to compare (a run from before inputs were recorded): nothing to check against
    now = {"seed": engine.seed, **dict(engine.inputs)}
    before = {"seed": saved.get("seed"), **{k: v for k, v in saved.get("inputs", [])}}
    changed = [f"{k} {before[k]!r} -> {now[k]!r}" for k in now if k in before and before[k] != now[k]]
    if changed:
        raise UserError(f"--resume {out}: the run was trained with other settings ({'; '.join(changed)}); resume with the run's "
                        "own settings, or start a new run with another --out")


def _due(step: int, every: int, last: int) -> bool:
    """Whether a periodic action (log, validation, checkpoint) runs after ``step``: every ``every`` steps and at the last."""
    return step % every == 0 or step == last


def _validate(task: Task, module: Any, accelerator: Any, ema: EMA | None) -> dict[str, float]:
    if not accelerator.is_main_process:
        return {}
    model = accelerator.unwrap_model(module)
    if ema is not None:
        ema.swap(model)
    model.eval()
    try:
        with torch.no_grad():
            return task.validate(model, accelerator.device)
    finally:
        model.train()
        if ema is not None:
            ema.swap(model)


def _checkpoint(task: Task, module: Any, accelerator: Any, ema: EMA | None, out: Path, step: int, engine: EngineConfig,
                recipe: Recipe) -> None:
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    model = accelerator.unwrap_model(module)
    if ema is not None:
        ema.swap(model)
    try:
        task.save(model, out, {"step": step, "recipe": asdict(recipe), "command": engine.command, "seed": engine.seed})
    finally:
        if ema is not None:
            ema.swap(model)
    final = out / STATE_DIR / f"step-{step:07d}"
    tmp = out / STATE_DIR / f".tmp-step-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    accelerator.save_state(str(tmp))
    checksums.seal(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in saved_states(out)[:-2]:
        shutil.rmtree(old)


