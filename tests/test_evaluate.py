"""`uirbench evaluate` end to end on a tiny generated dataset, with identity, classical and misbehaving models."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from uirbench.cli import main
from uirbench.evaluate import EvaluateConfig, evaluate
from uirbench.leaderboard.entry import load_entry
from uirbench.registry import MODELS
from uirbench.restorer import Restorer


@pytest.fixture(scope="module")
def identity_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "identity"
    return evaluate(EvaluateConfig(model="identity", data=str(tiny_dataset), out=str(out)))


def test_identity_scores_equal_the_recorded_input_quality(tiny_dataset, identity_run):
    out = identity_run["out"]
    rows = pd.read_parquet(f"{out}/per_image.parquet").set_index("input_file_name")
    manifest = [json.loads(line) for line in (tiny_dataset / "test" / "metadata.jsonl").read_text().splitlines()]
    assert set(rows.index) == {m["input_file_name"] for m in manifest}
    for m in manifest:
        assert rows.loc[m["input_file_name"], "psnr"] == pytest.approx(m["input_psnr"], abs=1e-9)
        assert rows.loc[m["input_file_name"], "ssim"] == pytest.approx(m["input_ssim"], abs=1e-9)


def test_summary_and_entry(identity_run, tiny_dataset):
    summary = identity_run["summary"]
    fingerprint = json.loads((tiny_dataset / "fingerprint.json").read_text())["fingerprint"]
    assert summary["dataset"]["fingerprint"] == fingerprint
    assert summary["metric_spec"]["averaging"] == "mean of per-image scores"
    overall = summary["overall"]["psnr"]
    assert overall["ci95"][0] <= overall["mean"] <= overall["ci95"][1] and overall["n"] == summary["dataset"]["pairs"]
    assert set(summary["per_track"]) == {"single", "mixed", "ood"}
    assert "noise@s3" in summary["per_degradation_severity"]
    entry = load_entry(f"{identity_run['out']}/entry.json")
    assert entry["provenance"] == "recomputed" and entry["results"]["overall"]["psnr"]["mean"] == overall["mean"]


def test_classical_beats_identity_on_noise(tiny_dataset, identity_run, tmp_path):
    classical = evaluate(EvaluateConfig(model="classical", data=str(tiny_dataset), out=str(tmp_path / "classical")))
    ours = classical["summary"]["per_degradation"]["noise"]["psnr"]["mean"]
    floor = identity_run["summary"]["per_degradation"]["noise"]["psnr"]["mean"]
    assert ours > floor + 1.0


def test_y_channel_and_crop_change_scores_as_documented(tiny_dataset, identity_run, tmp_path):
    y = evaluate(EvaluateConfig(model="identity", data=str(tiny_dataset), out=str(tmp_path / "y"), color_space="y", crop_border=4))
    assert y["summary"]["metric_spec"]["psnr"]["crop_border"] == 4
    # Y PSNR of noisy images is higher than RGB PSNR (noise is partly averaged out by the luma weights)
    assert y["summary"]["per_degradation"]["noise"]["psnr"]["mean"] > identity_run["summary"]["per_degradation"]["noise"]["psnr"]["mean"]


def test_cli_prints_table_and_conventions(tiny_dataset, tmp_path, capsys):
    assert main(["evaluate", "--model", "identity", "--data", str(tiny_dataset), "--out", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "mean of per-image scores" in text and "overall" in text and "color_space" in text


def test_trained_model_without_checkpoint_is_refused(tiny_dataset, tmp_path, capsys):
    """A trainable model that ships no checkpoint must be trained first; the error says how."""
    from uirbench.baselines.nafnet import NAFNet, NAFNetConfig
    from uirbench.registry import MODELS

    class Unshipped(NAFNet):
        """NAFNet registered without a shipped checkpoint."""

    MODELS.add("nafnet-unshipped", Unshipped, kind="baseline", paper="test", config=NAFNetConfig,
               trainer="uirbench.baselines.task:train_baseline")
    try:
        assert main(["evaluate", "--model", "nafnet-unshipped", "--data", str(tiny_dataset), "--out", str(tmp_path / "o")]) == 2
    finally:
        MODELS.remove("nafnet-unshipped")
    assert "must be trained first: `uirbench train --model nafnet-unshipped" in capsys.readouterr().err


def test_a_shipped_model_evaluates_offline_with_its_checkpoint(tiny_dataset, tmp_path):
    from uirbench.models import checkpoint_sha256, shipped_checkpoint

    assert main(["evaluate", "--model", "nafnet", "--data", str(tiny_dataset), "--out", str(tmp_path / "o")]) == 0
    entry = json.loads((tmp_path / "o" / "entry.json").read_text())
    assert entry["model"]["checkpoint_sha256"] == checkpoint_sha256(shipped_checkpoint("nafnet"))
    assert entry["model"]["parameters"] == 1961139


def test_missing_and_corrupt_images_name_the_pair(tiny_dataset, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_dataset, broken)
    first = json.loads((broken / "test" / "metadata.jsonl").read_text().splitlines()[0])
    (broken / "test" / first["input_file_name"]).write_bytes(b"garbage")
    assert main(["evaluate", "--model", "identity", "--data", str(broken), "--out", str(tmp_path / "o")]) == 2
    assert first["input_file_name"] in capsys.readouterr().err
    (broken / "test" / first["input_file_name"]).unlink()
    assert main(["evaluate", "--model", "identity", "--data", str(broken), "--out", str(tmp_path / "o")]) == 2
    assert first["input_file_name"] in capsys.readouterr().err


class _Shrinking(Restorer):
    """Returns an image one row short: a broken third-party model."""

    def forward(self, x, degradation_hint=None):
        return x[..., :-1, :]


class _NaN(Restorer):
    """Returns NaN for the second image of a batch."""

    def forward(self, x, degradation_hint=None):
        out = x.clone()
        if out.shape[0] > 1:
            out[1] = torch.nan
        return out


@pytest.fixture
def broken_models():
    """The two broken models, registered for one test only (the global registry is left as it was)."""
    for name, cls in (("test-shrinking", _Shrinking), ("test-nan", _NaN)):
        MODELS.register(name, kind="test", paper="a broken third-party model")(cls)
    yield
    for name in ("test-shrinking", "test-nan"):
        MODELS.remove(name)


@pytest.mark.parametrize(("model", "message"), [("test-shrinking", "shape"), ("test-nan", "NaN")])
def test_bad_model_outputs_are_refused_naming_the_pair(model, message, broken_models, tiny_dataset, tmp_path, capsys):
    assert main(["evaluate", "--model", model, "--data", str(tiny_dataset), "--out", str(tmp_path / "o"),
                 "--batch-size", "2"]) == 2  # the NaN model breaks the second image of a batch
    err = capsys.readouterr().err
    assert message in err and "input/" in err
    assert not (tmp_path / "o" / "summary.json").exists()


def test_bootstrap_ci_is_deterministic_and_covers_the_mean():
    from uirbench.stats import bootstrap_ci, summarize

    x = np.random.default_rng(0).normal(10, 2, size=200)
    assert bootstrap_ci(x) == bootstrap_ci(x)
    s = summarize(x)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)  # normal-theory half-width, about 0.28
    assert s["ci95"][0] == pytest.approx(s["mean"] - half, abs=0.06) and s["ci95"][1] == pytest.approx(s["mean"] + half, abs=0.06)


def test_entries_record_the_commands_that_made_them(tmp_path):
    from uirbench.evaluate import provenance_commands

    data, run = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    run.mkdir()
    (data / "suite.json").write_text(json.dumps({"command": "uirbench generate --out data"}))
    (run / "model.json").write_text(json.dumps({"model": "nafnet", "command": "uirbench train --model nafnet --out run"}))
    evaluate_cmd = "uirbench evaluate --model nafnet --checkpoint run --data data"
    assert provenance_commands(data, str(run), evaluate_cmd) == [
        "uirbench generate --out data", "uirbench train --model nafnet --out run", evaluate_cmd]
    (data / "suite.json").write_text(json.dumps({"command": ""}))  # a dataset made from Python records no command
    assert provenance_commands(data, None, evaluate_cmd) == [evaluate_cmd]
