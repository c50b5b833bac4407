"""Building restorers by name, and the checkpoint format shared by ``train`` and ``evaluate``.

A checkpoint is a folder holding ``model.json`` (model name, its frozen config as JSON, step,
the command that made it), the weights and ``checksums.json`` (their sha256, written last:
``uirbench.checksums``). ``evaluate --checkpoint DIR`` rebuilds the model from it without repeating
any argument, after checking every file against ``checksums.json``; a damaged or incomplete
checkpoint is refused with the file and the way out. The format is the model's
(``Restorer.from_checkpoint`` / ``save_checkpoint``: ``model.safetensors`` by default; UIR-LoRA:
backbone + one file per adapter).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from uirbench import checksums
from uirbench.errors import CheckpointError, UserError
from uirbench.options import typed_options
from uirbench.registry import MODELS
from uirbench.restorer import MODEL_JSON, Restorer

CHECKPOINTS = Path(__file__).parent / "checkpoints"
"""The checkpoints installed with the package, one folder per model (``uirbench/checkpoints/<name>/``), each with
its model card (``README.md``: command, data fingerprint, wall time, log, scores)."""


def shipped_checkpoint(name: str) -> Path:
    """The checkpoint folder shipped for model ``name``; a missing one is an error that says how to get one."""
    path = CHECKPOINTS / name
    if not (path / MODEL_JSON).is_file():
        raise CheckpointError(f"the shipped {name} checkpoint is missing ({path}/{MODEL_JSON}): reinstall uirbench, or train "
                              f"one with `uirbench train --model {name} --preset small --out DIR` and pass --checkpoint DIR")
    return path


def shipped(name: str) -> Callable[[], Path]:
    """``ModelSpec.default_checkpoint`` of a model whose checkpoint ships in ``uirbench/checkpoints/<name>/``."""
    return partial(shipped_checkpoint, name)


def preset_config(name: str, preset: str) -> Any:
    """The config of model ``name``'s preset ``preset`` (``tiny``, ``paper``, ...)."""
    presets = MODELS.spec(name).presets
    if not presets:
        raise UserError(f"model {name!r} has no presets (it needs no training)")
    if preset not in presets:
        raise UserError(f"model {name!r} has no preset {preset!r}; valid presets: {', '.join(presets)}")
    return presets[preset]


def preset_recipe(name: str, preset: str) -> Any:
    """The training recipe (``uirbench.recipes.Recipe``) of model ``name``'s preset ``preset``."""
    recipes = MODELS.spec(name).recipes
    if preset not in recipes:
        raise UserError(f"model {name!r} has no training recipe for preset {preset!r}; "
                        f"its presets with recipes: {', '.join(recipes) or 'none'}")
    return recipes[preset]


def read_model_json(path: str | Path) -> dict[str, Any]:
    """The checkpoint's ``model.json``, once its files are verified against ``checksums.json``."""
    path = Path(path)
    meta_path = path / MODEL_JSON
    if not meta_path.is_file() and not (path / checksums.MANIFEST).is_file():
        raise UserError(f"--checkpoint {path}: not a uirbench checkpoint (no {MODEL_JSON}); "
                         "checkpoints are folders written by `uirbench train`")
    checksums.verify(path, "--checkpoint")
    with checksums.loading(meta_path):
        return json.loads(meta_path.read_text())


def _recovery_hint(path: Path) -> str:
    """The way out for a damaged checkpoint, from what the folder is: installed with uirbench, a UIR-LoRA
    training run, a baseline training run, or a copy."""
    import uirbench
    from uirbench.runs import STATE_DIR, rewrite_hint

    if path.resolve().is_relative_to(Path(uirbench.__file__).resolve().parent):
        return "It is part of the installed uirbench package: reinstall it (`pip install --force-reinstall uirbench`)."
    if (path / "stages").is_dir():
        return ("Re-run the `uirbench train --model uir-lora` stage that wrote the damaged file with --resume and the same "
                "--out: a finished stage is not trained again, its saved result is published again.")
    if (path / STATE_DIR).is_dir():
        return rewrite_hint(path)
    return "Replace it with an intact copy, or train the model again (`uirbench train`)."


def load_checkpoint(path: str | Path, expected_model: str | None = None, device: str = "cpu", **options: Any) -> Restorer:
    """Rebuild a restorer from a checkpoint folder; refuses a checkpoint of another model, and a damaged one
    (a CheckpointError naming the file and the way out).

    ``options``: inference options, checked against the model's ``ModelSpec.options`` (UIR-LoRA: ``top_k``,
    ``router``); models without options refuse them.
    """
    path = Path(path)
    with checksums.recovery(_recovery_hint(path)):
        meta = read_model_json(path)
        name = meta["model"]
        if expected_model is not None and name != expected_model:
            raise UserError(f"--checkpoint {path} holds a {name!r} model, not {expected_model!r}; "
                            f"use --model {name} or another checkpoint")
        options = typed_options(MODELS.spec(name).options, options, f"model {name!r}")
        return MODELS.get(name).from_checkpoint(path, meta, device=device, **options)


def save_checkpoint(model: Restorer, path: str | Path, **extra: Any) -> None:
    """Write ``model``'s checkpoint folder (its ``save_checkpoint`` format), ending with its ``checksums.json``."""
    model.save_checkpoint(Path(path), **extra)


def create_model(name: str, checkpoint: str | None = None, device: str = "cpu", **options: Any) -> Restorer:
    """A ready-to-run restorer (``uirbench list models``): untrained baselines directly, trained ones from a
    checkpoint folder (default: the model's shipped checkpoint, when it has one). ``options``: the model's
    inference options (``--model-arg``), checked against ``ModelSpec.options``.

    >>> model = create_model("identity")
    >>> model.name, model.num_parameters()
    ('identity', 0)
    >>> create_model("nafnet").num_parameters()  # its shipped small checkpoint (uirbench/checkpoints/nafnet/)
    1961139
    >>> create_model("nafnet", checkpoint="no/such/folder")
    Traceback (most recent call last):
    ...
    uirbench.errors.UserError: --checkpoint no/such/folder: not a uirbench checkpoint (no model.json); ...
    """
    spec = MODELS.spec(name)  # unknown names get the error listing valid ones
    checkpoint = resolved_checkpoint(name, checkpoint)
    if checkpoint is not None:
        return load_checkpoint(checkpoint, expected_model=name, device=device, **options)
    typed_options(spec.options, options, f"model {name!r}")
    if not spec.trainable:
        return MODELS.get(name)().to(device).eval()
    raise UserError(f"model {name!r} must be trained first: `uirbench train --model {name} --preset tiny --out DIR`, "
                    f"then `uirbench evaluate --model {name} --checkpoint DIR`")


def resolved_checkpoint(name: str, checkpoint: str | None) -> str | None:
    """The checkpoint folder a model run uses: ``checkpoint``, else the model's shipped default, else None."""
    default = MODELS.spec(name).default_checkpoint
    return checkpoint if checkpoint is not None or default is None else str(default())


def checkpoint_sha256(path: str | Path | None) -> str | None:
    """sha256 over a checkpoint's files (names and bytes): what restores. Training state, logs, the model card
    (top-level ``README.md``) and ``checksums.json`` manifests (derived from the other files) are excluded; None
    without a checkpoint."""
    if path is None:
        return None
    h = hashlib.sha256()
    files = [p for p in Path(path).rglob("*")
             if p.is_file() and p.name != checksums.MANIFEST and not {"state", "logs"} & set(p.relative_to(path).parts)
             and p.relative_to(path).as_posix() != "README.md"]
    for file in sorted(files):
        h.update(file.relative_to(path).as_posix().encode() + b"\0" + file.read_bytes())
    return h.hexdigest()
