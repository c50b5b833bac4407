"""The layout of a training run folder, read by the engine (resume), the trainers and checkpoint recovery hints.

A run folder ``OUT`` holds the model checkpoint at its top (``model.json`` + weights + ``checksums.json``),
``train.json`` (the run's settings), ``logs/train.csv`` and the full training states under
``state/step-NNNNNNN`` (each with its own ``checksums.json``; the engine keeps the last two).
"""

from __future__ import annotations

import csv
from pathlib import Path

STATE_DIR = "state"


def saved_states(out: Path) -> list[Path]:
    """The run's saved states, oldest first."""
    return sorted((Path(out) / STATE_DIR).glob("step-*"), key=state_step)


def state_step(state: Path) -> int:
    """The step a state folder ``step-NNNNNNN`` was saved at."""
    return int(state.name.split("-")[1])


def finished_step(out: Path) -> int | None:
    """The step of the run's newest saved state (None: nothing saved yet)."""
    states = saved_states(out)
    return state_step(states[-1]) if states else None


def rewrite_hint(out: Path) -> str:
    """How to write the final checkpoint of the run in ``out`` again (exact on CPU: batches depend only on seed and step)."""
    states = saved_states(out)
    if len(states) < 2:
        return "Train it again (`uirbench train` with a new --out)."
    return (f"To write it again, delete the newest training state {states[-1]} and run the same `uirbench train` command with "
            f"--resume: it repeats the steps after {states[-2].name} and saves the checkpoint again (or train again with a new --out).")


def read_log(out: str | Path) -> list[dict[str, str]]:
    """Rows of ``logs/train.csv`` (step, loss, lr, seconds, and validation columns when logged)."""
    with open(Path(out) / "logs" / "train.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def training_seconds(rows: list[dict[str, str]]) -> tuple[float, int]:
    """(wall seconds of training, steps they cover) from a log's rows. The ``seconds`` column counts from the start of
    each process, so it restarts when a run is resumed: the time of each session is added up, and the steps are those
    trained in the sessions (a resumed session's first logged step counts from the step it resumed at, the last
    logged step before it).

    >>> rows = [{"step": "10", "seconds": "5"}, {"step": "20", "seconds": "10"}, {"step": "30", "seconds": "4"}]
    >>> training_seconds(rows)
    (14.0, 30)
    """
    total, steps, last_step, last_seconds = 0.0, 0, 0, 0.0
    start = 0
    for row in rows:
        if not row.get("seconds"):
            continue
        step, seconds = int(row["step"]), float(row["seconds"])
        if seconds < last_seconds:  # a new session: close the previous one
            total, steps, start = total + last_seconds, steps + (last_step - start), last_step
        last_step, last_seconds = step, seconds
    return total + last_seconds, steps + (last_step - start)
