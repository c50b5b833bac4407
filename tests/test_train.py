"""`uirbench train`: the accelerate engine with the baselines on a tiny real dataset."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from uirbench.cli import main
from uirbench.data import PairedPatches
from uirbench.models import create_model, load_checkpoint
from uirbench.runs import read_log
from uirbench.train import TrainConfig, train

FAST = dict(steps=24, batch_size=4, patch=32, save_every=8, val_every=12)


def _train(data: Path, out: Path, model: str = "nafnet", **kw) -> dict:
    return train(TrainConfig(model=model, data=str(data), out=str(out), **{**FAST, **kw}))


@pytest.fixture(scope="module")
def nafnet_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "nafnet"
    return out, _train(tiny_dataset, out)


def test_training_reduces_the_loss_on_a_fixed_batch(tiny_dataset, nafnet_run):
    out, summary = nafnet_run
    assert summary["steps"] == FAST["steps"]
    data = PairedPatches(tiny_dataset, "train", 32, seed=123)
    inputs, targets, _ = data.batch(0, 8)
    from uirbench.baselines.nafnet import PRESETS, NAFNet

    untrained = NAFNet(PRESETS["tiny"], generator=torch.Generator().manual_seed(0)).eval()
    trained = load_checkpoint(out)
    with torch.no_grad():
        before = (untrained(inputs) - targets).abs().mean()
        after = (trained(inputs) - targets).abs().mean()
    assert after < 0.9 * before


def test_log_has_loss_lr_and_validation(nafnet_run):
    out, _ = nafnet_run
    rows = read_log(out)
    losses = [r for r in rows if r["loss"]]
    assert [int(r["step"]) for r in losses] == list(range(10, FAST["steps"] + 1, 10)) + [FAST["steps"]] * (FAST["steps"] % 10 != 0)
    assert float(losses[-1]["lr"]) == pytest.approx(0.0, abs=1e-12)  # cosine reaches 0 at the last step
    assert any(r.get("val_psnr") for r in rows)
    assert (out / "logs" / "tb").is_dir()


def test_checkpoint_round_trip_gives_identical_outputs(tiny_dataset, nafnet_run, tmp_path):
    out, _ = nafnet_run
    a, b = load_checkpoint(out), create_model("nafnet", str(out))
    x = torch.rand(2, 3, 40, 44, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    assert main(["evaluate", "--model", "nafnet", "--checkpoint", str(out), "--data", str(tiny_dataset),
                 "--out", str(tmp_path / "e")]) == 0


KILL_AT_STEP = """
import os, signal, sys
import uirbench.engine as engine
due = engine._due
def killing_due(step, every, last):  # the engine's periodic check runs once per finished step: die right after step N
    if step == int(os.environ["KILL_AT_STEP"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return due(step, every, last)
engine._due = killing_due
from uirbench.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_resume_after_kill_continues_the_loss_curve_exactly(tiny_dataset, nafnet_run, tmp_path):
    ref_out, _ = nafnet_run
    out = tmp_path / "killed"
    args = ["train", "--model", "nafnet", "--data", str(tiny_dataset), "--out", str(out), "--steps", str(FAST["steps"]),
            "--batch-size", "4", "--patch", "32", "--save-every", "8", "--val-every", "12"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KILL_AT_STEP": "13"}  # between the checkpoints of steps 8 and 16
    killed = subprocess.run([sys.executable, "-c", KILL_AT_STEP, *args], capture_output=True, env=env, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [p.name for p in (out / "state").iterdir()] == ["step-0000008"]
    summary = _train(tiny_dataset, out, resume=True)
    assert summary["resumed_from"] == 8
    ref = [(r["step"], r["loss"], r["lr"]) for r in read_log(ref_out) if r["loss"]]
    got = [(r["step"], r["loss"], r["lr"]) for r in read_log(out) if r["loss"]]
    assert got == ref
    a, b = load_checkpoint(ref_out), load_checkpoint(out)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("name", ["restormer", "promptir", "airnet"])
def test_every_baseline_trains_and_saves(name, tiny_dataset, tmp_path):
    summary = _train(tiny_dataset, tmp_path / name, model=name, steps=3, save_every=3, val_every=3)
    assert summary["steps"] == 3 and (tmp_path / name / "model.safetensors").exists()
    assert type(load_checkpoint(tmp_path / name)).name == name


def test_bad_input_is_refused_with_clear_messages(tiny_dataset, nafnet_run, tmp_path, capsys):
    def run(*args: str) -> str:
        assert main(["train", *args]) == 2
        return capsys.readouterr().err

    assert "not a uirbench dataset" in run("--model", "nafnet", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "a"))
    assert "nafnet" in run("--model", "nafnett", "--data", str(tiny_dataset), "--out", str(tmp_path / "b"))
    assert "valid presets: tiny, small, paper" in run("--model", "nafnet", "--preset", "huge", "--data", str(tiny_dataset))
    assert "larger than the smallest image side" in run("--model", "nafnet", "--patch", "512", "--data", str(tiny_dataset),
                                                        "--out", str(tmp_path / "c"))
    out, _ = nafnet_run
    assert "already holds a training run" in run("--model", "nafnet", "--data", str(tiny_dataset), "--out", str(out))
    assert main(["evaluate", "--model", "restormer", "--checkpoint", str(out), "--data", str(tiny_dataset)]) == 2
    assert "holds a 'nafnet' model, not 'restormer'" in capsys.readouterr().err


@pytest.mark.slow
def test_cpu_ddp_with_two_processes(tiny_dataset, tmp_path):
    import json

    out = tmp_path / "ddp"
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "uirbench.cli", "train", "--model", "nafnet",
           "--data", str(tiny_dataset), "--out", str(out), "--steps", "4", "--batch-size", "4", "--patch", "32"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((out / "train.json").read_text())["processes"] == 2
    assert result.stdout.count("trained nafnet") == 1 and load_checkpoint(out).name == "nafnet"
