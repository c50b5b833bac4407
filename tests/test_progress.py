"""Progress lines when stderr is not a terminal (logs, CI): plain lines with counts, rate and ETA."""

from __future__ import annotations

import re

from uirbench.cli import main
from uirbench.progress import Progress, _duration


def test_plain_lines_with_rate_and_eta(capsys):
    with Progress(4, "img", "evaluate x", every=0.0) as bar:
        bar.update(1)
        bar.update(3)
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"evaluate x: 1/4 img \(25%\), [0-9.]+ img/s, ETA \d+ s", lines[0]), lines
    assert re.fullmatch(r"evaluate x: 4/4 img \(100%\), [0-9.]+ img/s, \d+ s elapsed", lines[-1]), lines
    assert "\r" not in "".join(lines)


def test_first_estimate_at_once_then_quiet_between_intervals_and_on_error(capsys):
    try:
        with Progress(10, "pair", "generate", every=3600.0) as bar:
            bar.update(2)
            bar.update(2)
            raise KeyError("boom")
    except KeyError:
        pass
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and re.fullmatch(r"generate: 2/10 pair \(20%\), [0-9.]+ pair/s, ETA \d+ s", lines[0]), lines


def test_postfix_values_follow_the_rate(capsys):
    with Progress(3, "step", "train x", every=0.0) as bar:
        bar.postfix(loss="0.0412", lr="2.00e-03")
        bar.update(3)
    assert re.search(r"train x: 3/3 step \(100%\), [0-9.]+ step/s, loss 0.0412, lr 2.00e-03, \d+ s elapsed",
                     capsys.readouterr().err)


def test_durations_read_naturally():
    assert [_duration(s) for s in (4.4, 61, 3725)] == ["4 s", "1 min 01 s", "1 h 02 min"]


def test_evaluate_reports_progress_on_a_non_terminal(tiny_dataset, tmp_path, capsys):
    assert main(["evaluate", "--model", "identity", "--data", str(tiny_dataset), "--out", str(tmp_path / "e")]) == 0
    assert re.search(r"evaluate identity: (\d+)/\1 img \(100%\)", capsys.readouterr().err)


def test_training_reports_steps_loss_and_eta_on_a_non_terminal(tiny_dataset, tmp_path, capsys):
    args = ["train", "--model", "nafnet", "--data", str(tiny_dataset), "--out", str(tmp_path / "run"), "--steps", "3",
            "--batch-size", "2", "--patch", "32"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert re.search(r"train nafnet: 1/3 step \(33%\), [0-9.]+ step/s, loss [0-9.]+, lr [0-9.e+-]+, ETA \d+ s", err), err
    assert re.search(r"train nafnet: 3/3 step \(100%\)", err), err
