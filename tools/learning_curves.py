"""Learning curves of training runs, and the budget at which each curve says a gain would be reached.

    python tools/learning_curves.py runs/nafnet-small runs/restormer-small --gain 1.5 [--out curves.md --plot curves.png]

For each run (a one-task run folder, or a UIR-LoRA stage folder) reads ``logs/train.csv``, fits the validation
PSNR against the step with a saturating power law ``v(t) = a - b t^-c`` (scipy ``curve_fit``, b, c > 0), and prints
the curve, the fitted asymptote ``a`` and, for ``--gain G``, the step at which the fit reaches its last value + G dB
and the wall time that takes at the run's measured seconds per step (or "beyond the asymptote"). A fit to a few
noisy points extrapolates loosely: read it as an order of magnitude, together with the curve itself.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np


def read_curve(run: Path) -> tuple[list[int], list[float], float]:
    """(validation steps, val_psnr values, seconds per step) of a run's log."""
    with (run / "logs" / "train.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["step"]) for r in rows if r.get("val_psnr")]
    values = [float(r["val_psnr"]) for r in rows if r.get("val_psnr")]
    timed = [(int(r["step"]), float(r["seconds"])) for r in rows if r.get("seconds")]
    per_step = timed[-1][1] / timed[-1][0] if timed else math.nan
    return steps, values, per_step


def power_law(t: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * np.power(t, -c)


def fit(steps: list[int], values: list[float]) -> tuple[float, float, float] | None:
    """(a, b, c) of ``a - b t^-c`` fitted to the curve, or None with fewer than 4 points or no convergence."""
    from scipy.optimize import curve_fit

    if len(steps) < 4:
        return None
    t, v = np.asarray(steps, float), np.asarray(values, float)
    try:
        params, _ = curve_fit(power_law, t, v, p0=(v[-1] + 1.0, 5.0, 0.5), bounds=([-np.inf, 0, 1e-3], [np.inf, np.inf, 5]),
                              maxfev=20000)
    except RuntimeError:
        return None
    return tuple(float(p) for p in params)


def steps_for(params: tuple[float, float, float], value: float) -> float:
    """The step at which the fitted curve reaches ``value`` (inf at or beyond the asymptote)."""
    a, b, c = params
    return math.inf if value >= a else (b / (a - value)) ** (1 / c)


def report(run: Path, gain: float | None) -> list[str]:
    steps, values, per_step = read_curve(run)
    lines = [f"#### {run.name}", "", "| step | val PSNR (dB) |", "|---:|---:|"]
    lines += [f"| {s} | {v:.2f} |" for s, v in zip(steps, values, strict=True)]
    params = fit(steps, values)
    if params is None:
        return [*lines, "", "(too few points to fit)", ""]
    a, b, c = params
    lines += ["", f"Fit `v(t) = {a:.2f} - {b:.3g} t^-{c:.3f}`: asymptote {a:.2f} dB; {per_step:.2f} s per step measured."]
    if gain is not None:
        need = steps_for(params, values[-1] + gain)
        if math.isinf(need):
            lines.append(f"+{gain:g} dB over the last value is beyond the fitted asymptote.")
        else:
            lines.append(f"+{gain:g} dB over the last value: step {need:,.0f} by the fit, {need * per_step / 3600:.1f} h at this rate.")
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
