"""Learning curves of training runs, and the budget at which each curve says a gain would be reached.

    python tools/learning_curves.py runs/nafnet-small runs/restormer-small --gain 1.5 [--out curves.md --plot curves.png]

For each run (a one-task run folder, or a UIR-LoRA stage folder) reads ``logs/train.csv`` and prints the validation
PSNR curve, the dB gained per doubling of the steps over the last half of the run (a line through (log2 step, value)),
and for ``--gain G`` the budget at which that trend gives G dB more: the factor on the steps and the wall time at the
run's measured seconds per step. The learning rate decays to its minimum by the end of each run, so the last half of
a curve flattens by design: a run with more steps has a slower decay, and the trend is a rough order of magnitude.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from uirbench.runs import training_seconds


def read_curve(run: Path) -> tuple[list[int], list[float], float]:
    """(validation steps, val_psnr values, seconds per step) of a run's log."""
    with (run / "logs" / "train.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["step"]) for r in rows if r.get("val_psnr")]
    values = [float(r["val_psnr"]) for r in rows if r.get("val_psnr")]
    seconds, trained = training_seconds(rows)
    return steps, values, seconds / trained if trained else math.nan


def per_doubling(steps: list[int], values: list[float]) -> float | None:
    """dB gained per doubling of the steps: the slope of a least-squares line through (log2 step, value) over the last
    half of the curve (the early steps, far from the run's end, are left out); None with fewer than 3 points there."""
    half = [(s, v) for s, v in zip(steps, values, strict=True) if s >= steps[-1] / 2]
    if len(half) < 3:
        return None
    x, y = np.log2([s for s, _ in half]), np.array([v for _, v in half])
    return float(np.polyfit(x, y, 1)[0])


def report(run: Path, gain: float | None) -> list[str]:
    steps, values, per_step = read_curve(run)
    lines = [f"#### {run.name}", "", "| step | val PSNR (dB) |", "|---:|---:|"]
    lines += [f"| {s} | {v:.2f} |" for s, v in zip(steps, values, strict=True)]
    slope = per_doubling(steps, values)
    if slope is None:
        return [*lines, "", "(too few validation points in the last half of the run to fit)", ""]
    lines += ["", f"Over the last half of the run: {slope:+.2f} dB per doubling of the steps; {per_step:.2f} s per step measured."]
    if gain is not None:
        if slope <= 0:
            lines.append(f"+{gain:g} dB: the curve has flattened; more steps alone do not reach it.")
        else:
            factor = 2 ** (gain / slope)
            lines.append(f"+{gain:g} dB by this trend: {factor:.1f}x the steps ({factor * steps[-1]:,.0f} steps, "
                         f"{factor * steps[-1] * per_step / 3600:.1f} h at this rate).")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--gain", type=float, help="dB over each run's last validation value to find the budget of")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    text = "\n".join(line for run in args.runs for line in report(run, args.gain))
    if args.out:
        args.out.write_text(text)
    print(text)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        for run in args.runs:
            steps, values, _ = read_curve(run)
            ax.plot(steps, values, marker="o", label=run.name)
        ax.set_xlabel("step")
        ax.set_ylabel("val PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot)


if __name__ == "__main__":
    main()
