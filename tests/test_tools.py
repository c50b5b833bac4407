"""The release tools under tools/: shipping a run as a checkpoint with its card, the learning curves, the claim account."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from uirbench import checksums
from uirbench.cli import main
from uirbench.models import checkpoint_sha256, load_checkpoint

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _tool(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOLS / name), *map(str, args)], capture_output=True, text=True, timeout=300)


def _ship_module():
    """tools/ship_checkpoint.py as a module (tools/ is not a package), for its helpers."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ship_checkpoint", TOOLS / "ship_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run_and_evals(tiny_dataset, tmp_path_factory):
    """A 4-step NAFNet run (validation every 2 steps) and two evaluations of it on the tiny dataset: identity and the run."""
    work = tmp_path_factory.mktemp("tools")
    run = work / "run"
    assert main(["train", "--model", "nafnet", "--data", str(tiny_dataset), "--steps", "4", "--batch-size", "2", "--patch", "32",
                 "--val-every", "1", "--out", str(run)]) == 0
    assert main(["evaluate", "--model", "identity", "--data", str(tiny_dataset), "--out", str(work / "identity")]) == 0
    return work, run


def test_ship_checkpoint_copies_what_restores_and_writes_a_card_checked_against_the_scores(run_and_evals, tiny_dataset):
    work, run = run_and_evals
    dest = work / "shipped"
    done = _tool("ship_checkpoint.py", "--run", run, "--dest", dest, "--data", tiny_dataset)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["README.md", "checksums.json", "logs", "model.json", "model.safetensors"]
    assert checksums.problems(dest) == [] and checkpoint_sha256(dest) != checkpoint_sha256(run)  # the run also holds train.json
    card = (dest / "README.md").read_text()
    assert "uirbench train --model nafnet" in card and "Not scored yet." in card and "| 4 |" in card
    # scores of another checkpoint (the identity run has none) are refused, not written into the card
    refused = _tool("ship_checkpoint.py", "--run", run, "--dest", dest, "--data", tiny_dataset, "--eval", work / "identity",
                    "--identity", work / "identity")
    assert refused.returncode != 0 and "not the one shipped" in refused.stderr
    assert main(["evaluate", "--model", "nafnet", "--checkpoint", str(dest), "--data", str(tiny_dataset), "--out",
                 str(work / "scored")]) == 0
    scored = _tool("ship_checkpoint.py", "--run", run, "--dest", dest, "--data", tiny_dataset, "--eval", work / "scored",
                   "--identity", work / "identity", "--remark", "A note.")
    assert scored.returncode == 0, scored.stderr
    card = (dest / "README.md").read_text()
    summary = json.loads((work / "scored" / "summary.json").read_text())
    assert f"| overall | {summary['overall']['psnr']['mean']:.2f} [" in card and "## Notes\n\nA note." in card
    assert load_checkpoint(dest, expected_model="nafnet").name == "nafnet"


def test_ship_checkpoint_refuses_to_replace_a_folder_that_is_not_a_checkpoint(run_and_evals, tiny_dataset, tmp_path):
    _, run = run_and_evals
    (tmp_path / "precious.txt").write_text("keep me")
    refused = _tool("ship_checkpoint.py", "--run", run, "--dest", tmp_path, "--data", tiny_dataset)
    assert refused.returncode != 0 and (tmp_path / "precious.txt").read_text() == "keep me"


def test_learning_curves_and_the_claim_account_read_real_outputs(run_and_evals, tiny_dataset):
    work, run = run_and_evals
    curves = _tool("learning_curves.py", run, "--gain", "1")
    assert curves.returncode == 0 and "| 4 |" in curves.stdout and "dB per doubling" in curves.stdout
    claim = _tool("uir_lora_claim.py", "--uir", work / "identity", "--control", work / "identity")
    assert claim.returncode == 0, claim.stderr
    assert "#### mixed track" in claim.stdout and "+0.00 [+0.00, +0.00]" in claim.stdout
    assert "no routing column" in claim.stdout


def test_family_curves_score_training_snapshots_against_identity(run_and_evals, tiny_dataset, tmp_path):
    import pandas as pd

    work, run = run_and_evals
    snapshots = sorted(run.glob("state/step-*/model.safetensors"))
    assert len(snapshots) == 2
    done = _tool("family_curves.py", "--run", run, "--data", tiny_dataset, "--split", "test", "--work", tmp_path, *snapshots)
    assert done.returncode == 0, done.stderr
    steps = [int(p.parent.name.split("-")[1]) for p in snapshots]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [int(r.split("|")[1]) for r in rows] == steps and "too few snapshots" in done.stdout  # 2 points: no fit
    # the last snapshot holds the run's final weights: its scores are the run's own, and its gaps are identity's differences
    assert main(["evaluate", "--model", "nafnet", "--checkpoint", str(run), "--data", str(tiny_dataset), "--metrics", "psnr",
                 "--out", str(tmp_path / "final")]) == 0
    final = pd.read_parquet(tmp_path / "final" / "per_image.parquet").set_index("input_file_name").psnr
    last = pd.read_parquet(tmp_path / f"step-{steps[-1]}" / "eval" / "per_image.parquet").set_index("input_file_name").psnr
    identity = pd.read_parquet(tmp_path / "identity" / "per_image.parquet").set_index("input_file_name").psnr
    assert final.sort_index().equals(last.sort_index())
    overall = float(rows[-1].split("|")[-2])
    assert overall == pytest.approx(float((final - identity).mean()), abs=0.006)
    refused = _tool("family_curves.py", "--run", run, "--data", tiny_dataset, "--work", tmp_path / "bad",
                    work / "identity" / "per_image.parquet")
    assert refused.returncode != 0 and "no step-N" in refused.stderr
    renamed = tmp_path / "step-9.safetensors"
    renamed.write_bytes(b"not safetensors")
    refused = _tool("family_curves.py", "--run", run, "--data", tiny_dataset, "--work", tmp_path / "bad", renamed)
    assert refused.returncode != 0 and "step-9.safetensors is not a training snapshot" in refused.stderr
    refused = _tool("family_curves.py", "--run", tmp_path / "no-run", "--data", tiny_dataset, "--work", tmp_path / "bad", renamed)
    assert refused.returncode != 0 and refused.stderr.startswith("family_curves: --run") and "Traceback" not in refused.stderr


def test_ship_checkpoint_lists_stage_logs_in_the_order_the_stages_finished(tmp_path):
    """UIR-LoRA's card reads backbone, adapters, router: the order of the logs' last writes, not of their names."""
    ship = _ship_module()
    for when, stage in enumerate(["backbone-vae", "backbone-diffusion", "lora-rain", "lora-blur", "router"]):
        log = tmp_path / "stages" / stage / "logs" / "train.csv"
        log.parent.mkdir(parents=True)
        log.write_text("step,loss\n1,0.5\n")
        os.utime(log, (1_000_000 + when, 1_000_000 + when))
    assert list(ship.logs_of(tmp_path)) == ["backbone-vae", "backbone-diffusion", "lora-rain", "lora-blur", "router"]


def test_ship_checkpoint_gives_the_training_command_without_resume():
    ship = _ship_module()
    assert ship.command_line("uirbench train --model m --out r --resume", "cbsd68") == (
        "`uirbench train --model m --out r` (interrupted and continued with `--resume`) (in the folder holding the dataset `cbsd68`)")
    assert ship.command_line("uirbench train --model m --out r", "data") == (
        "`uirbench train --model m --out r` (in the folder holding the dataset `data`)")
    assert ship.command_line(None, "cbsd68") == "see logs"


def test_router_accuracy_routes_as_evaluate_does_and_reads_training_snapshots(tiny_dataset, tmp_path):
    """The tool's routing record of every test pair equals the ``routing`` column `uirbench evaluate` writes for the
    shipped UIR-LoRA, and a training snapshot of the same router (``model.``-prefixed weights) prints the same lines."""
    import importlib.util

    import pandas as pd
    import torch
    from safetensors.torch import save_file

    from uirbench.manifest import load_manifest
    from uirbench.models import create_model, shipped_checkpoint

    assert main(["evaluate", "--model", "uir-lora", "--data", str(tiny_dataset), "--out", str(tmp_path / "eval")]) == 0
    evaluated = pd.read_parquet(tmp_path / "eval" / "per_image.parquet").set_index("input_file_name")["routing"]
    spec = importlib.util.spec_from_file_location("router_accuracy", TOOLS / "router_accuracy.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rows = load_manifest(tiny_dataset, "test")
    model = create_model("uir-lora").eval().to(memory_format=torch.channels_last)  # as evaluate and the tool run it
    frame = tool.routing_frame(model, rows, tiny_dataset / "test")
    assert len(frame) == len(evaluated) > 0
    assert [json.loads(r) for r in frame["routing"]] == [json.loads(evaluated[row["input_file_name"]]) for row in rows]

    router = shipped_checkpoint("uir-lora") / "router.safetensors"
    snapshot = tmp_path / "model.safetensors"
    save_file({f"model.{k}": v.contiguous() for k, v in create_model("uir-lora").router.state_dict().items()}, str(snapshot))
    done = _tool("router_accuracy.py", "--data", tiny_dataset, "--split", "test", router, snapshot)
    assert done.returncode == 0, done.stderr
    blocks = done.stdout.split("#### ")[1:]
    assert len(blocks) == 2 and "top-1 family on single-degradation pairs" in blocks[0]
    assert blocks[0].split("\n", 1)[1] == blocks[1].split("\n", 1)[1]
    refused = _tool("router_accuracy.py", "--data", tiny_dataset, "--split", "test", tmp_path / "eval" / "per_image.parquet")
    assert refused.returncode != 0 and "per_image.parquet as safetensors" in refused.stderr and "Traceback" not in refused.stderr
    for bad, named in ((("--data", tmp_path / "missing"), "missing"), (("--data", tiny_dataset, "--top-k", "9"), "top_k=9")):
        refused = _tool("router_accuracy.py", *bad, router)
        assert refused.returncode != 0 and named in refused.stderr and "Traceback" not in refused.stderr
