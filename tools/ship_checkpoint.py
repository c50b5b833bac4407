"""Copy a finished training run into the package as a shipped checkpoint, with its model card.

    python tools/ship_checkpoint.py --run runs/nafnet-small --dest uirbench/checkpoints/nafnet --data cbsd68 \
        --eval eval/cbsd68/nafnet-small --identity eval/cbsd68/identity \
        [--builtin-eval eval/builtin/nafnet-small --builtin-identity eval/builtin/identity] [--note "..."]

Copies the checkpoint files (``model.json``, weights; UIR-LoRA: ``backbone/``, ``adapters/``, ``router.safetensors``)
but no run state, writes each training log as ``logs/<run>.csv`` and a ``README.md`` model card (command, data
and source fingerprints, wall time, validation curve, parameters, scores per family against identity with 95% CIs),
then seals the folder's ``checksums.json`` over every file. Every number in the card is read from the run folder and
the ``uirbench evaluate`` outputs named on the command line.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from uirbench import checksums
from uirbench.manifest import source_fingerprint
from uirbench.models import checkpoint_sha256
from uirbench.runs import training_seconds
from uirbench.suites import FAMILIES

SKIP = {"state", "logs", "stages", "train.json", checksums.MANIFEST, "README.md"}


def logs_of(run: Path) -> dict[str, Path]:
    """Each training log of a run: ``train`` for a one-task run, the stage name for UIR-LoRA's stage runs, in the
    order the stages finished (a log's last write), so the card reads backbone, adapters, router."""
    if (run / "logs" / "train.csv").is_file():
        return {"train": run / "logs" / "train.csv"}
    logs = sorted((run / "stages").glob("*/logs/train.csv"), key=lambda p: (p.stat().st_mtime, str(p)))
    return {p.parents[1].name: p for p in logs}


def command_line(command: str | None, dataset: str) -> str:
    """The training command as a user runs it: a session that continued the run with ``--resume`` recorded that flag;
    the card gives the command without it and says the run was resumed (resume is exact: same pairs, same log)."""
    if not command:
        return "see logs"
    words = command.split()
    plain = " ".join(w for w in words if w != "--resume")
    resumed = " (interrupted and continued with `--resume`)" if "--resume" in words else ""
    return f"`{plain}`{resumed} (in the folder holding the dataset `{dataset}`)"


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def curve(rows: list[dict[str, str]]) -> tuple[list[str], float, int]:
    """Markdown lines of the validation curve (step, last train loss, validation values), wall seconds (summed over the
    run's sessions), last step."""
    loss, lines, step = {}, [], 0
    seconds = training_seconds(rows)[0]
    for row in rows:
        if row.get("loss"):
            loss[int(row["step"])] = float(row["loss"])
            step = int(row["step"])
        values = {k: v for k, v in row.items() if k.startswith("val") and v}
        if values:
            at = int(row["step"])
            last = max((s for s in loss if s <= at), default=None)
            shown = ", ".join(f"{k} {float(v):.3f}" for k, v in values.items())
            lines.append(f"| {at} | {loss[last]:.4f} | {shown} |" if last is not None else f"| {at} | | {shown} |")
    return lines, seconds, step


def cell(stats: dict, digits: int) -> str:
    return f"{stats['mean']:.{digits}f} [{stats['ci95'][0]:.{digits}f}, {stats['ci95'][1]:.{digits}f}]"


def score_table(model: dict, identity: dict, title: str) -> list[str]:
    """Overall, per-track and per-family PSNR/SSIM of the model and of identity, with the PSNR gain."""
    rows = [("overall", model["overall"], identity["overall"])]
    rows += [(f"[{t}]", model["per_track"][t], identity["per_track"][t]) for t in sorted(model["per_track"])]
    rows += [(f, model["per_degradation"][f], identity["per_degradation"][f]) for f in FAMILIES if f in model["per_degradation"]]
    lines = [f"### {title}", "", f"{model['dataset']['pairs']} pairs, dataset fingerprint `{model['dataset']['fingerprint'][:12]}`; "
             f"model: `{model['command']}`; identity: `{identity['command']}`. RGB, mean of per-image values, 95% bootstrap CI.",
             "", "| | PSNR | identity PSNR | gain (dB) | SSIM | identity SSIM |", "|---|---:|---:|---:|---:|---:|"]
    for name, m, i in rows:
        gain = m["psnr"]["mean"] - i["psnr"]["mean"]
        lines.append(f"| {name} | {cell(m['psnr'], 2)} | {cell(i['psnr'], 2)} | {gain:+.2f} | {cell(m['ssim'], 4)} | "
                     f"{cell(i['ssim'], 4)} |")
    runtime = model.get("runtime", {})
    if runtime.get("mean_ms_per_image"):
        lines += ["", f"Restore time: {runtime['mean_ms_per_image']:.0f} ms per image on {runtime.get('device', '?')}."]
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--dest", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path, help="the dataset the run trained on (its fingerprints)")
    parser.add_argument("--eval", type=Path, help="uirbench evaluate output of the shipped checkpoint on --data's test split "
                                                  "(first ship without it, evaluate the shipped default, then ship again with it)")
    parser.add_argument("--identity", type=Path, help="uirbench evaluate --model identity on the same split")
    parser.add_argument("--builtin-eval", type=Path)
    parser.add_argument("--builtin-identity", type=Path)
    parser.add_argument("--note", default="", help="how the machine was shared during training (stated in the card)")
    parser.add_argument("--remark", action="append", default=[], help="a paragraph for the card's Notes section; repeatable")
    args = parser.parse_args()

    model_json = json.loads((args.run / "model.json").read_text())
    name = model_json["model"]
    if args.dest.exists():
        previous = args.dest / "model.json"
        if any(args.dest.iterdir()) and not (previous.is_file() and json.loads(previous.read_text()).get("model") == name):
            raise SystemExit(f"--dest {args.dest}: not empty and not a {name} checkpoint; refusing to replace it")
    final, args.dest = args.dest, args.dest.with_name(f".{args.dest.name}.staged")  # built aside, swapped in when complete
    shutil.rmtree(args.dest, ignore_errors=True)
    args.dest.mkdir(parents=True)
    for path in sorted(args.run.iterdir()):
        if path.name in SKIP:
            continue
        (shutil.copytree if path.is_dir() else shutil.copy2)(path, args.dest / path.name)
    suite = json.loads((args.data / "suite.json").read_text())
    fingerprint = json.loads((args.data / "fingerprint.json").read_text())["fingerprint"]
    card = [f"# {name} small checkpoint (shipped with uirbench)", "",
            f"The default model of `uirbench evaluate --model {name}`: the `small` preset, trained on CPU with on-the-fly "
            "degradations (`--online`) from the train split of the CBSD68 board. The checkpoint is the run's last (a run "
            "keeps its last model; the learning rate has decayed to its minimum there); the validation curve below, on "
            "the board's val split, shows how it got there.", "",
            "## How it was made", "",
            f"- command: {command_line(model_json.get('command'), args.data.name)}",
            f"- data: `{suite.get('command')}`; suite `{suite['suite']['name']}`, seed {suite['seed']}; dataset fingerprint "
            f"`{fingerprint}`; source fingerprint `{source_fingerprint(suite['images'])}` ({len(suite['images'])} clean images)",
            f"- versions: {', '.join(f'{k} {v}' for k, v in suite['versions'].items())}"]
    if args.note:
        card.append(f"- machine: {args.note}")
    total = 0.0
    (args.dest / "logs").mkdir()
    for run_name, path in logs_of(args.run).items():
        shutil.copy2(path, args.dest / "logs" / f"{run_name}.csv")
        lines, seconds, step = curve(read_rows(path))
        total += seconds
        card += ["", f"### {run_name}: {step} steps, {seconds / 60:.1f} min of training (log: `logs/{run_name}.csv`)", "",
                 "| step | train loss | validation |", "|---:|---:|---|", *lines]
    card += ["", f"Total training wall time: {total / 60:.1f} min.", "", "## Scores", ""]
    for scored in (args.eval, args.builtin_eval):
        if scored is not None:
            recorded = json.loads((scored / "summary.json").read_text())["model"].get("checkpoint_sha256")
            if recorded != checkpoint_sha256(args.dest):
                shutil.rmtree(args.dest)
                raise SystemExit(f"{scored}: scored checkpoint {recorded}, not the one shipped ({checkpoint_sha256(args.dest)})")
    if args.eval and args.identity:
        card += score_table(json.loads((args.eval / "summary.json").read_text()),
                            json.loads((args.identity / "summary.json").read_text()), "CBSD68 board (test split)")
    else:
        card += ["Not scored yet.", ""]
    if args.builtin_eval and args.builtin_identity:
        card += score_table(json.loads((args.builtin_eval / "summary.json").read_text()),
                            json.loads((args.builtin_identity / "summary.json").read_text()), "Built-in default board (test split)")
    card += ["## What is inside", "", f"- config: `{json.dumps(model_json.get('config', {}), sort_keys=True)}`"]
    if args.eval:
        card.append(f"- parameters: {json.loads((args.eval / 'summary.json').read_text())['model']['parameters']:,}")
    if args.remark:
        card += ["", "## Notes", "", *(f"{r}\n" for r in args.remark)]
    (args.dest / "README.md").write_text("\n".join(card) + "\n")
    checksums.seal(args.dest)
    size = sum(p.stat().st_size for p in args.dest.rglob("*") if p.is_file())
    old = final.with_name(f".{final.name}.old")
    if final.exists():
        final.rename(old)
    args.dest.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    print(f"shipped {name} to {final}: {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
