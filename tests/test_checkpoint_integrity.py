"""Fault injection on every file of checkpoints and training states (``uirbench.checksums``).

Each file of a real tiny NAFNet run (its checkpoint and its newest training state), of a saved UIR-LoRA
checkpoint and of a UIR-LoRA stage run is truncated, has one bit flipped, is replaced by garbage of the
same size, is emptied or is removed; the command that reads it (``evaluate`` or ``train --resume``) must
exit with status 2 and one line naming that file and the way out, and leave every file as it was.
Then the second line of defence: a damaged file whose checksums were rewritten to match it still gives
a one-line error naming the file, from the library that fails to read it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from uirbench import checksums
from uirbench.cli import main
from uirbench.errors import CheckpointError
from uirbench.registry import MODELS

FAULTS = ("truncate", "flip", "garbage", "empty", "remove")
TRAIN = ("train", "--model", "nafnet", "--preset", "tiny", "--steps", "4", "--batch-size", "2", "--patch", "32",
         "--save-every", "2", "--val-every", "4")
CHECKPOINT_FILES = ("model.json", "model.safetensors", "checksums.json")
STATE_FILES = ("model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl", "custom_checkpoint_0.pkl",
               "checksums.json")
NEWEST, PREVIOUS = "step-0000004", "step-0000002"
UIR_FILES = ("model.json", "checksums.json", "router.safetensors", "adapters/blur.safetensors", "adapters/blur.json",
             "adapters/noise.safetensors", "adapters/noise.json", "backbone/checksums.json", "backbone/backbone.json",
             "backbone/restorer.safetensors", "backbone/vae/config.json", "backbone/vae/diffusion_pytorch_model.safetensors",
             "backbone/unet/config.json", "backbone/unet/diffusion_pytorch_model.safetensors")


def damage(path: Path, fault: str) -> None:
    """Apply ``fault`` to ``path``. A flip is one bit, 1000 bytes before the end of a large file (inside the
    weights, reliability case G3b), else in the middle; garbage keeps the size, so only the sha256 can tell."""
    data = bytearray(path.read_bytes())
    if fault == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif fault == "flip":
        data[len(data) - 1000 if len(data) > 2000 else len(data) // 2] ^= 0x01
        path.write_bytes(data)
    elif fault == "garbage":
        path.write_bytes((b"garbage!" * (len(data) // 8 + 1))[: len(data)])
    elif fault == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (and every folder, as "dir"), by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def damaged(name: str, fault: str) -> str:
    """How an error names the file at fault: "is damaged: NAME ..." ("is incomplete:" when the folder's manifest is gone)."""
    return f"is incomplete: {name} " if (name, fault) == ("checksums.json", "remove") else f"is damaged: {name} "


def refused(capsys, args: list[str]) -> str:
    """Run the CLI, expect exit status 2 and one line on stderr; return that line."""
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"uirbench {args[0]}: error: "), err
    assert "Traceback" not in err
    return err


def reseal(folder: Path) -> None:
    """Rewrite ``folder``'s checksums.json over the files it lists, as they are now (to reach the loaders)."""
    checksums.seal(folder, json.loads((folder / checksums.MANIFEST).read_text())["files"])


@pytest.fixture(scope="module")
def nafnet_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("integrity") / "run"
    assert main([*TRAIN, "--data", str(tiny_dataset), "--out", str(out)]) == 0
    return out


@pytest.fixture
def run(nafnet_run, tmp_path):
    return Path(shutil.copytree(nafnet_run, tmp_path / "run"))


def test_every_file_of_the_run_is_covered(nafnet_run):
    assert sorted(json.loads((nafnet_run / "checksums.json").read_text())["files"]) == ["model.json", "model.safetensors"]
    for step in (PREVIOUS, NEWEST):
        state = nafnet_run / "state" / step
        assert sorted(p.name for p in state.iterdir()) == sorted(STATE_FILES)
        assert checksums.problems(state) == []


# ---- the manifest catches every damage ----------------------------------------------------------------------------

@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", CHECKPOINT_FILES)
def test_damaged_checkpoint_is_refused_by_evaluate(run, tiny_dataset, tmp_path, capsys, name, fault):
    damage(run / name, fault)
    before = snapshot(run)
    err = refused(capsys, ["evaluate", "--model", "nafnet", "--checkpoint", str(run), "--data", str(tiny_dataset),
                           "--out", str(tmp_path / "eval")])
    assert f"--checkpoint {run} " in err and damaged(name, fault) in err
    assert f"delete the newest training state {run / 'state' / NEWEST}" in err and "--resume" in err
    assert snapshot(run) == before and not (tmp_path / "eval").exists()


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", STATE_FILES)
def test_damaged_state_is_refused_by_resume(run, tiny_dataset, capsys, name, fault):
    state = run / "state" / NEWEST
    damage(state / name, fault)
    before = snapshot(run)
    err = refused(capsys, [*TRAIN, "--data", str(tiny_dataset), "--out", str(run), "--resume"])
    assert f"training state {state} " in err and damaged(name, fault) in err
    assert f"Resume from the previous intact state {PREVIOUS} instead: delete {state}" in err
    assert snapshot(run) == before  # train.json, the log and the states as they were


def test_resuming_from_the_previous_state_as_told_gives_the_same_run(run, nafnet_run, tiny_dataset, capsys):
    state = run / "state" / NEWEST
    damage(state / "model.safetensors", "flip")
    refused(capsys, [*TRAIN, "--data", str(tiny_dataset), "--out", str(run), "--resume"])
    shutil.rmtree(state)
    assert main([*TRAIN, "--data", str(tiny_dataset), "--out", str(run), "--resume"]) == 0
    for name in ("model.safetensors", f"state/{NEWEST}/model.safetensors", f"state/{NEWEST}/optimizer.bin"):
        assert (run / name).read_bytes() == (nafnet_run / name).read_bytes(), name


def test_a_damaged_checkpoint_is_written_again_as_told(run, nafnet_run, tiny_dataset, capsys):
    damage(run / "model.safetensors", "garbage")
    refused(capsys, ["evaluate", "--model", "nafnet", "--checkpoint", str(run), "--data", str(tiny_dataset)])
    shutil.rmtree(run / "state" / NEWEST)
    assert main([*TRAIN, "--data", str(tiny_dataset), "--out", str(run), "--resume"]) == 0
    assert (run / "model.safetensors").read_bytes() == (nafnet_run / "model.safetensors").read_bytes()
    assert checksums.problems(run) == []


def test_no_intact_state_left_says_start_over(run, tiny_dataset, capsys):
    for step in (PREVIOUS, NEWEST):
        damage(run / "state" / step / "optimizer.bin", "truncate")
    err = refused(capsys, [*TRAIN, "--data", str(tiny_dataset), "--out", str(run), "--resume"])
    assert f"No intact earlier state is left in {run / 'state'}: start over" in err


def test_an_interrupted_save_is_refused_as_incomplete(run, monkeypatch):
    from uirbench import models

    model = models.load_checkpoint(run)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # after the weights, before model.json

    monkeypatch.setattr("uirbench.io.write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        models.save_checkpoint(model, run, step=4)
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match=r"checksums\.json is missing: the save was interrupted"):
        models.load_checkpoint(run)


# ---- the loaders catch what a matching manifest lets through ------------------------------------------------------

@pytest.mark.parametrize(("name", "fault"), [("model.safetensors", "truncate"), ("model.json", "garbage")])
def test_unreadable_checkpoint_file_with_matching_checksums(run, tiny_dataset, capsys, name, fault):
    damage(run / name, fault)
    reseal(run)
    err = refused(capsys, ["evaluate", "--model", "nafnet", "--checkpoint", str(run), "--data", str(tiny_dataset)])
    assert f"{run / name} cannot be loaded" in err


@pytest.mark.parametrize(("name", "fault"), [("model.safetensors", "truncate"), ("model.safetensors", "header"),
                                             ("optimizer.bin", "garbage"), ("scheduler.bin", "truncate"),
                                             ("custom_checkpoint_0.pkl", "empty")])
def test_unreadable_state_file_with_matching_checksums(run, tiny_dataset, capsys, name, fault):
    """Reliability cases G3, G9, G4 and G8: once tracebacks from safetensors, torch.load and pickle."""
    state = run / "state" / NEWEST
    if fault == "header":  # one byte of the safetensors header length
        data = bytearray((state / name).read_bytes())
        data[3] ^= 0xFF
        (state / name).write_bytes(data)
    else:
        damage(state / name, fault)
    checksums.seal(state)
    err = refused(capsys, [*TRAIN, "--data", str(tiny_dataset), "--out", str(run), "--resume"])
    assert f"{state / name} cannot be loaded" in err and f"previous intact state {PREVIOUS}" in err


# ---- UIR-LoRA: a saved checkpoint and a stage run -----------------------------------------------------------------

@pytest.fixture(scope="module")
def uir_checkpoint(tmp_path_factory):
    """Tiny backbone + two adapters + a learned router, saved with ``save_checkpoint``."""
    from uirbench.uir_lora import lora
    from uirbench.uir_lora.backbone import load_backbone
    from uirbench.uir_lora.model import UIRLoRA, UIRLoRAConfig
    from uirbench.uir_lora.router import LearnedRouter, RouterConfig

    backbone = load_backbone("tiny", generator=torch.Generator().manual_seed(0)).eval()
    for i, name in enumerate(("blur", "noise")):
        lora.add_adapter(backbone, name, torch.Generator().manual_seed(10 + i))
    router = LearnedRouter(("blur", "noise"), RouterConfig(), torch.Generator().manual_seed(3))
    path = tmp_path_factory.mktemp("uir") / "ckpt"
    UIRLoRA(backbone, ("blur", "noise"), router, UIRLoRAConfig(top_k=1)).save_checkpoint(path, step=1)
    return path


@pytest.fixture
def uir(uir_checkpoint, tmp_path):
    return Path(shutil.copytree(uir_checkpoint, tmp_path / "ckpt"))


def test_uir_lora_checkpoint_files_are_all_covered(uir_checkpoint):
    assert sorted(p.relative_to(uir_checkpoint).as_posix() for p in uir_checkpoint.rglob("*") if p.is_file()) == sorted(UIR_FILES)
    assert checksums.problems(uir_checkpoint) == [] and checksums.problems(uir_checkpoint / "backbone") == []


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", UIR_FILES)
def test_damaged_uir_lora_checkpoint_is_refused_by_evaluate(uir, tiny_dataset, tmp_path, capsys, name, fault):
    damage(uir / name, fault)
    before = snapshot(uir)
    err = refused(capsys, ["evaluate", "--model", "uir-lora", "--checkpoint", str(uir), "--data", str(tiny_dataset),
                           "--out", str(tmp_path / "eval")])
    inner = name.startswith("backbone/") and name != "backbone/checksums.json"  # vouched for by the backbone's own checksums
    folder, file = (uir / "backbone", name.removeprefix("backbone/")) if inner else (uir, name)
    assert f"{folder} " in err and damaged(file, fault) in err
    assert "Replace it with an intact copy" in err
    assert snapshot(uir) == before and not (tmp_path / "eval").exists()


@pytest.mark.parametrize(("name", "fault"), [("model.json", "garbage"), ("router.safetensors", "garbage"),
                                             ("adapters/noise.safetensors", "truncate"), ("adapters/blur.json", "garbage"),
                                             ("backbone/backbone.json", "garbage"), ("backbone/restorer.safetensors", "truncate"),
                                             ("backbone/vae/config.json", "garbage"),
                                             ("backbone/unet/diffusion_pytorch_model.safetensors", "truncate")])
def test_unreadable_uir_lora_file_with_matching_checksums(uir, tiny_dataset, capsys, name, fault):
    damage(uir / name, fault)
    if name.startswith("backbone/"):
        reseal(uir / "backbone")
    reseal(uir)
    err = refused(capsys, ["evaluate", "--model", "uir-lora", "--checkpoint", str(uir), "--data", str(tiny_dataset)])
    where = uir / name if name.count("/") < 2 else uir / name.rpartition("/")[0]  # diffusers loads a subfolder
    assert f"{where} cannot be loaded" in err


@pytest.mark.parametrize("name", [n for n in MODELS.names() if MODELS.spec(n).default_checkpoint is not None])
def test_shipped_checkpoints_are_intact_small_and_carry_their_model_card(name):
    """Every shipped checkpoint: its checksums hold, it loads as its model, it is under 10 MB, its card names the command."""
    from uirbench.models import load_checkpoint, shipped_checkpoint

    path = shipped_checkpoint(name)
    assert path == MODELS.spec(name).default_checkpoint()
    assert checksums.problems(path) == []
    if (path / "backbone").is_dir():
        assert checksums.problems(path / "backbone") == []
    assert sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) <= 10 * 2**20
    assert f"uirbench train --model {name} --preset" in (path / "README.md").read_text()
    assert load_checkpoint(path, expected_model=name).name == name


def test_a_missing_shipped_checkpoint_says_how_to_get_one(monkeypatch, tmp_path):
    from uirbench import models

    monkeypatch.setattr(models, "CHECKPOINTS", tmp_path)
    with pytest.raises(CheckpointError, match=r"the shipped nafnet checkpoint is missing .* reinstall uirbench, or train one with "
                                              r"`uirbench train --model nafnet --preset small --out DIR`"):
        models.shipped_checkpoint("nafnet")


@pytest.fixture(scope="module")
def uir_stage_run(tiny_dataset, tmp_path_factory):
    """A 2-step blur adapter stage (saved every step) on a saved tiny backbone."""
    from uirbench.uir_lora.backbone import load_backbone, save_backbone

    root = tmp_path_factory.mktemp("uir-stage")
    save_backbone(load_backbone("tiny", generator=torch.Generator().manual_seed(0)), root / "bb")
    backbone = f"backbone={root / 'bb'}"
    assert main([*STAGE, "--data", str(tiny_dataset), "--out", str(root / "run"), "--steps", "2", "--model-arg", backbone]) == 0
    return root / "run"


STAGE = ("train", "--model", "uir-lora", "--model-arg", "stage=lora", "--model-arg", "degradation=blur", "--save-every", "1")
STAGE_RESULT_FILES = ("adapter.safetensors", "adapter.json", "checksums.json")


@pytest.fixture
def stage_run(uir_stage_run, tmp_path):
    return Path(shutil.copytree(uir_stage_run, tmp_path / "run"))


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", STAGE_RESULT_FILES)
def test_damaged_stage_result_is_not_published(stage_run, tiny_dataset, capsys, name, fault):
    result = stage_run / "stages" / "lora-blur"
    damage(result / name, fault)
    before = snapshot(stage_run)
    err = refused(capsys, [*STAGE, "--data", str(tiny_dataset), "--out", str(stage_run), "--steps", "2", "--resume"])
    assert f"stage {result} " in err and damaged(name, fault) in err and f"Delete {result} and run the same command with --resume" in err
    assert snapshot(stage_run) == before  # the checkpoint in --out keeps its adapter and its checksums.json


@pytest.mark.parametrize("name", STATE_FILES)
def test_damaged_stage_state_is_refused_by_resume(stage_run, tiny_dataset, capsys, name):
    state = stage_run / "stages" / "lora-blur" / "state" / "step-0000002"
    damage(state / name, "flip")
    before = snapshot(stage_run)
    err = refused(capsys, [*STAGE, "--data", str(tiny_dataset), "--out", str(stage_run), "--steps", "3", "--resume"])
    assert f"training state {state} " in err and damaged(name, "flip") in err and "previous intact state step-0000001" in err
    assert snapshot(stage_run) == before


def test_stage_trained_again_as_told_publishes_the_same_adapter(stage_run, uir_stage_run, tiny_dataset, capsys):
    result = stage_run / "stages" / "lora-blur"
    damage(result / "adapter.safetensors", "flip")
    refused(capsys, [*STAGE, "--data", str(tiny_dataset), "--out", str(stage_run), "--steps", "2", "--resume"])
    shutil.rmtree(result)
    assert main([*STAGE, "--data", str(tiny_dataset), "--out", str(stage_run), "--steps", "2", "--resume"]) == 0
    published = stage_run / "adapters" / "blur.safetensors"
    assert published.read_bytes() == (uir_stage_run / "adapters" / "blur.safetensors").read_bytes()
    assert checksums.problems(stage_run) == []


def test_checkpoint_sha256_covers_what_restores_not_the_card_or_logs(tmp_path):
    from uirbench.models import checkpoint_sha256

    (tmp_path / "logs").mkdir()
    (tmp_path / "model.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    before = checkpoint_sha256(tmp_path)
    (tmp_path / "README.md").write_text("# the model card, rewritten with new scores")
    (tmp_path / "logs" / "train.csv").write_text("step,loss\n")
    assert checkpoint_sha256(tmp_path) == before
    (tmp_path / "model.safetensors").write_bytes(b"weight5")
    assert checkpoint_sha256(tmp_path) != before
