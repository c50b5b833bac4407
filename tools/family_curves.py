"""Per-family learning curves of a one-task run from its training snapshots, and the budget at which each family's
loss to the input would end.

    python tools/family_curves.py --run runs/nafnet-small --data cbsd68 --split val --work curves/nafnet SNAPSHOT...

A SNAPSHOT is the ``model.safetensors`` of a saved training state (``RUN/state/step-N/``, or a copy named
``step-N.safetensors``: the engine keeps the last two states, so copy them as the run goes). Each one is put in the
run's checkpoint (``WORK/step-N/checkpoint``) and scored as ``uirbench evaluate --split SPLIT --metrics psnr`` scores
(``WORK/step-N/eval``; a finished one is reused), and the split once with ``identity`` (``WORK/identity``).

Prints, per snapshot, the mean PSNR minus identity's on each family's single-degradation pairs (single and ood tracks,
the leaderboard's per-family columns) and over all pairs; then per column the dB per doubling of the steps over the
last half of the curve (``learning_curves.per_doubling``) and, where the last gap is below ``--floor`` (the board's
target: no family more than 0.3 dB below identity), the factor on the steps at which that trend reaches it. As in
``learning_curves``, the learning rate anneals by each run's end, so a trend is a rough order of magnitude.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from uirbench.degradations import families
from uirbench.errors import UserError
from uirbench.evaluate import EvaluateConfig, evaluate
from uirbench.models import load_checkpoint, read_model_json, save_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_curves import per_doubling  # tools/ is not a package

PER_IMAGE = "per_image.parquet"


def snapshot_step(path: Path) -> int:
    """N of ``.../step-N/model.safetensors`` or ``.../step-N.safetensors``."""
    found = re.findall(r"step-(\d+)", str(path))
    if not found:
        raise SystemExit(f"family_curves: {path}: no step-N in the path (a RUN/state/step-N/model.safetensors or step-N.safetensors)")
    return int(found[-1])


def snapshot_checkpoint(run: Path, snapshot: Path, out: Path) -> Path:
    """``run``'s checkpoint with the weights of ``snapshot``, saved in ``out`` (model.json: the run's, step N)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    model = load_checkpoint(run)
    try:
        model.load_state_dict(load_file(str(snapshot)), strict=True)
    except (OSError, RuntimeError, SafetensorError) as exc:
        raise SystemExit(f"family_curves: {snapshot} is not a training snapshot of {run}'s model: {exc}") from exc
    extra = {k: v for k, v in read_model_json(run).items() if k not in ("model", "config")}
    extra["step"] = snapshot_step(snapshot)
    save_checkpoint(model, out, **extra)
    return out


def scored(out: Path, model: str, checkpoint: Path | None, data: str, split: str) -> pd.DataFrame:
    """``out``'s per-image table, evaluating first unless a finished evaluation is there."""
    if not (out / PER_IMAGE).exists():
        evaluate(EvaluateConfig(model=model, checkpoint=None if checkpoint is None else str(checkpoint), data=data, split=split,
                                metrics=("psnr",), out=str(out), command=f"tools/family_curves.py ({model}, {split})"))
    return pd.read_parquet(out / PER_IMAGE)


def gaps(rows: pd.DataFrame, identity: pd.DataFrame) -> dict[str, float]:
    """Mean PSNR minus identity's per family (single-degradation pairs) and over all pairs (``overall``)."""
    both = rows.merge(identity, on="input_file_name", suffixes=("", "_identity"), validate="one_to_one")
    if len(both) != len(identity):
        raise SystemExit("family_curves: the snapshot's evaluation and identity's cover different pairs")
    both["gap"] = both["psnr"] - both["psnr_identity"]
    single = both[both["track"] != "mixed"]
    out = {name: float(g.mean()) for name, g in single.groupby(single["degradation"].map(lambda d: families(d)[0]))["gap"]}
    return {**out, "overall": float(both["gap"].mean())}


def table(curve: dict[int, dict[str, float]], floor: float) -> list[str]:
    steps = sorted(curve)
    columns = list(curve[steps[-1]])
    lines = ["| step | " + " | ".join(columns) + " |", "|---:|" + "---:|" * len(columns)]
    lines += [f"| {s} | " + " | ".join(f"{curve[s][c]:+.2f}" for c in columns) + " |" for s in steps]
    lines.append("")
    for c in columns:
        slope, last = per_doubling(steps, [curve[s][c] for s in steps]), curve[steps[-1]][c]
        if slope is None:
            lines.append(f"- {c}: too few snapshots in the last half of the run to fit")
            continue
        text = f"- {c}: {slope:+.2f} dB per doubling of the steps over the last half"
        if last < floor:
            text += (f"; {floor:+.1f} dB reached at {2 ** ((floor - last) / slope):.1f}x the steps by this trend" if slope > 0
                     else f"; the gap does not shrink with steps, so {floor:+.1f} dB is not reached by more steps alone")
        lines.append(text)
    return lines


def main() -> None:
    try:
        run()
    except UserError as exc:  # a bad --run, --data or --split: one line naming it, no traceback
        raise SystemExit(f"family_curves: {exc}") from exc


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("snapshots", nargs="+", type=Path)
    parser.add_argument("--run", type=Path, required=True, help="the run folder (its final checkpoint gives model and config)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="val", help="default val: curves select, the test split reports")
    parser.add_argument("--work", type=Path, required=True, help="folder for the snapshots' checkpoints and evaluations")
    parser.add_argument("--floor", type=float, default=-0.3, help="gap to identity (dB) whose budget is reported")
    args = parser.parse_args()
    if not (args.run / "model.json").is_file():
        raise SystemExit(f"family_curves: --run {args.run}: not a finished run folder (no model.json); give the --out of `uirbench train`")
    model = read_model_json(args.run)["model"]
    identity = scored(args.work / "identity", "identity", None, args.data, args.split)[["input_file_name", "psnr"]]
    curve = {}
    for snapshot in args.snapshots:
        step = snapshot_step(snapshot)
        folder = args.work / f"step-{step}"
        checkpoint = folder / "checkpoint"
        if not (folder / "eval" / PER_IMAGE).exists():
            snapshot_checkpoint(args.run, snapshot, checkpoint)
        curve[step] = gaps(scored(folder / "eval", model, checkpoint, args.data, args.split), identity)
    print(f"#### {args.run.name}: PSNR minus identity's (dB), {args.split} split; families: single-degradation pairs\n")
    print("\n".join(table(curve, args.floor)))


if __name__ == "__main__":
    main()
