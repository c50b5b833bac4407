"""Building restorers by name, and the checkpoint format shared by ``train`` and ``evaluate``.

A checkpoint is a folder holding ``model.json`` (model name, its frozen config as JSON, step,
the command that made it), ``model.safetensors`` (the weights) and ``checksums.json`` (their sha256,
written last: ``uirbench.checksums``). ``evaluate --checkpoint DIR`` rebuilds the model from it
without repeating any argument, after checking every file against ``checksums.json``; a damaged or
incomplete checkpoint is refused with the file and the way out. Models with their own format
(UIR-LoRA: backbone + one file per adapter) implement ``from_checkpoint(dir)`` and
``save_checkpoint(dir)``, with the same checksums.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from uirbench import checksums
from uirbench.registry import MODELS

MODEL_JSON = "model.json"
WEIGHTS = "model.safetensors"


def register_builtins() -> None:
    """Import the built-in models (each registers itself in ``MODELS``)."""
    import uirbench.baselines
    import uirbench.uir_lora  # noqa: F401


def model_class(name: str) -> Any:
    register_builtins()
    return MODELS.get(name)


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples frozen configs hold."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def config_from_json(name: str, data: dict[str, Any]) -> Any:
    cls = MODELS.meta(name)["config"]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"{name}: unknown config fields {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")
    return cls(**{k: _tuples(v) for k, v in data.items()})


def preset_config(name: str, preset: str) -> Any:
    presets = MODELS.meta(name).get("presets")
    if not presets:
        raise ValueError(f"model {name!r} has no presets (it needs no training)")
    if preset not in presets:
        raise ValueError(f"model {name!r} has no preset {preset!r}; valid presets: {', '.join(presets)}")
    return presets[preset]


def read_model_json(path: str | Path) -> dict[str, Any]:
    """The checkpoint's ``model.json``, once its files are verified against ``checksums.json``."""
    path = Path(path)
    meta_path = path / MODEL_JSON
    if not meta_path.is_file() and not (path / checksums.MANIFEST).is_file():
        raise ValueError(f"--checkpoint {path}: not a uirbench checkpoint (no {MODEL_JSON}); "
                         "checkpoints are folders written by `uirbench train`")
    checksums.verify(path, "--checkpoint")
    with checksums.loading(meta_path):
        return json.loads(meta_path.read_text())


def _recovery_hint(path: Path) -> str:
    """The way out for a damaged checkpoint, from what the folder is: installed with uirbench, a UIR-LoRA
    training run, a baseline training run, or a copy."""
    import uirbench
    from uirbench.train import STATE_DIR, rewrite_hint

    if path.resolve().is_relative_to(Path(uirbench.__file__).resolve().parent):
        return "It is part of the installed uirbench package: reinstall it (`pip install --force-reinstall uirbench`)."
    if (path / "stages").is_dir():
        return ("Re-run the `uirbench train --model uir-lora` stage that wrote the damaged file with --resume and the same "
                "--out: a finished stage is not trained again, its saved result is published again.")
    if (path / STATE_DIR).is_dir():
        return rewrite_hint(path)
    return "Replace it with an intact copy, or train the model again (`uirbench train`)."


def load_checkpoint(path: str | Path, expected_model: str | None = None, device: str = "cpu", **options: Any) -> Any:
    """Rebuild a restorer from a checkpoint folder; refuses a checkpoint of another model, and a damaged one
    (a CheckpointError naming the file and the way out).

    ``options`` are inference options of models with their own format (UIR-LoRA: ``top_k``,
    ``router``); models without such options refuse them.
    """
    path = Path(path)
    with checksums.recovery(_recovery_hint(path)):
        return _load_checkpoint(path, expected_model, device, **options)


def _load_checkpoint(path: Path, expected_model: str | None, device: str, **options: Any) -> Any:
    from safetensors.torch import load_file

    register_builtins()
    meta = read_model_json(path)
    name = meta["model"]
    if expected_model is not None and name != expected_model:
        raise ValueError(f"--checkpoint {path} holds a {name!r} model, not {expected_model!r}; "
                         f"use --model {name} or another checkpoint")
    cls = MODELS.get(name)
    if hasattr(cls, "from_checkpoint"):
        return cls.from_checkpoint(path, device=device, **options)
    if options:
        raise ValueError(f"model {name!r} takes no inference options (got {', '.join(sorted(options))})")
    model = cls(config_from_json(name, meta["config"]))
    with checksums.loading(path / WEIGHTS):
        weights = load_file(path / WEIGHTS, device="cpu")
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ValueError(f"--checkpoint {path}: weights do not match the {name} config "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(device).eval()


def save_checkpoint(model: Any, path: str | Path, **extra: Any) -> None:
    """Write ``model.safetensors`` + ``model.json`` into ``path`` (a folder), each atomically, then their
    ``checksums.json`` (removed first: a save interrupted half-way leaves none, and is refused on load)."""
    from safetensors.torch import save

    from uirbench.io import write_bytes, write_json

    path = Path(path)
    if hasattr(model, "save_checkpoint"):
        model.save_checkpoint(path, **extra)
        return
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    checksums.unseal(path)
    write_bytes(path / WEIGHTS, save(state))
    write_json(path / MODEL_JSON, {"model": model.name, "config": dataclasses.asdict(model.config), **extra})
    checksums.seal(path, [WEIGHTS, MODEL_JSON])


def build_model(name: str, checkpoint: str | None = None, device: str = "cpu", **options: Any) -> Any:
    """A ready-to-run restorer: untrained baselines directly, trained ones from a checkpoint.

    A model registered with ``default_checkpoint`` (a callable returning a folder, e.g. the tiny
    UIR-LoRA checkpoint shipped inside the package) uses it when no checkpoint is given.
    """
    cls = model_class(name)
    meta = MODELS.meta(name)
    checkpoint = resolved_checkpoint(name, checkpoint)
    if checkpoint is not None:
        return load_checkpoint(checkpoint, expected_model=name, device=device, **options)
    if options:
        raise ValueError(f"model {name!r} takes no inference options (got {', '.join(sorted(options))})")
    if not meta.get("trainable", True):
        return cls().to(device).eval()
    raise ValueError(f"model {name!r} must be trained first: `uirbench train --model {name} --preset tiny --out DIR`, "
                     f"then `uirbench evaluate --model {name} --checkpoint DIR`")


def resolved_checkpoint(name: str, checkpoint: str | None) -> str | None:
    """The checkpoint folder a model run uses: ``checkpoint``, else the model's shipped default (UIR-LoRA), else None."""
    model_class(name)  # registers the built-ins; unknown names get the error listing valid ones
    default = MODELS.meta(name).get("default_checkpoint")
    return checkpoint if checkpoint is not None or default is None else str(default())


def checkpoint_sha256(path: str | Path | None) -> str | None:
    """sha256 over a checkpoint's files (names and bytes), training state, logs and ``checksums.json`` manifests
    (derived from the other files) excluded; None without one."""
    if path is None:
        return None
    h = hashlib.sha256()
    files = [p for p in Path(path).rglob("*")
             if p.is_file() and p.name != checksums.MANIFEST and not {"state", "logs"} & set(p.relative_to(path).parts)]
    for file in sorted(files):
        h.update(file.relative_to(path).as_posix().encode() + b"\0" + file.read_bytes())
    return h.hexdigest()
