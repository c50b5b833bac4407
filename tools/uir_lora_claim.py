"""Does per-degradation LoRA composition beat one multi-task model on the mixed track? The account, from evaluations.

    python tools/uir_lora_claim.py --uir eval/cbsd68/uir-lora-small --control eval/cbsd68/uir-lora-multitask \
        --model nafnet-small=eval/cbsd68/nafnet-small ... [--out claim.md]

Reads ``per_image.parquet`` of ``uirbench evaluate`` runs on the same dataset (checked: same pairs) and prints Markdown:

* the mixed track (and the single track, for contrast): mean RGB PSNR per model with 95% percentile-bootstrap CIs over
  pairs, and UIR-LoRA minus each other model as a paired difference (the same pairs resampled together);
* per mixed recipe: each model's mean PSNR and which one wins;
* UIR-LoRA's router, from the ``routing`` column: top-1 family accuracy on single-degradation pairs (per family), and
  the share of mixed pairs whose true families are all among the adapters it composed (top-K), and the share of true
  families covered.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from uirbench.degradations import families

RESAMPLES = 2000


def load(path: Path) -> pd.DataFrame:
    """One evaluation's per-image scores, indexed by input file; a folder without them is named (NAME=DIR: NAME holds
    no '=')."""
    if not (path / "per_image.parquet").is_file():
        raise SystemExit(f"uir_lora_claim: {path} holds no per_image.parquet (the output folder of `uirbench evaluate`)")
    return pd.read_parquet(path / "per_image.parquet").set_index("input_file_name").sort_index()


def bootstrap(values: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap CI of ``values`` (explicit generator)."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(RESAMPLES, len(values)))].mean(axis=1)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def fmt(stats: tuple[float, float, float], sign: bool = False) -> str:
    mean, lo, hi = stats
    return f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}]" if sign else f"{mean:.2f} [{lo:.2f}, {hi:.2f}]"


def track_table(frames: dict[str, pd.DataFrame], track: str, uir: str) -> list[str]:
    rows = frames[uir].index[frames[uir]["track"] == track]
    lines = [f"#### {track} track ({len(rows)} pairs)", "", "| model | PSNR | UIR-LoRA minus model (paired) |", "|---|---:|---:|"]
    base = frames[uir].loc[rows, "psnr"].to_numpy()
    for name, frame in frames.items():
        psnr = frame.loc[rows, "psnr"].to_numpy()
        diff = "" if name == uir else fmt(bootstrap(base - psnr), sign=True)
        lines.append(f"| {name} | {fmt(bootstrap(psnr))} | {diff} |")
    return [*lines, ""]


def recipe_table(frames: dict[str, pd.DataFrame], uir: str) -> list[str]:
    mixed = frames[uir][frames[uir]["track"] == "mixed"]
    names = list(frames)
    lines = ["#### Per mixed recipe (mean PSNR; the best in bold)", "", "| recipe | " + " | ".join(names) + " |",
             "|---|" + "---:|" * len(names)]
    wins = dict.fromkeys(names, 0)
    for recipe in sorted(mixed["degradation"].unique()):
        rows = mixed.index[mixed["degradation"] == recipe]
        means = {n: float(frames[n].loc[rows, "psnr"].mean()) for n in names}
        best = max(means, key=means.get)
        wins[best] += 1
        lines.append(f"| {recipe} | " + " | ".join(f"**{means[n]:.2f}**" if n == best else f"{means[n]:.2f}" for n in names) + " |")
    lines += ["", "Recipes won: " + ", ".join(f"{n} {w}" for n, w in wins.items()), ""]
    return lines


def router_lines(frame: pd.DataFrame) -> list[str]:
    if "routing" not in frame:
        return ["(no routing column: not a UIR-LoRA evaluation)", ""]
    single = frame[frame["track"].isin(["single", "ood"])]
    per_family: dict[str, list[bool]] = {}
    for degradation, text in zip(single["degradation"], single["routing"], strict=True):
        record = json.loads(text)
        scores = record.get("similarity") or record["weights"]
        per_family.setdefault(families(degradation)[0], []).append(max(scores, key=scores.get) == families(degradation)[0])
    hits = [h for v in per_family.values() for h in v]
    lines = [f"- top-1 family on single-degradation pairs (single and ood tracks): {100 * np.mean(hits):.1f}% of {len(hits)} "
             "(" + ", ".join(f"{f} {100 * np.mean(v):.0f}%" for f, v in sorted(per_family.items())) + ")"]
    mixed = frame[frame["track"] == "mixed"]
    complete, covered, total = 0, 0, 0
    for degradation, text in zip(mixed["degradation"], mixed["routing"], strict=True):
        chosen, true = set(json.loads(text)["weights"]), set(families(degradation))
        complete += true <= chosen
        covered += len(true & chosen)
        total += len(true)
    k = json.loads(mixed["routing"].iloc[0])["top_k"] if len(mixed) else "?"
    lines.append(f"- mixed pairs with every true family among the K = {k} composed adapters: {100 * complete / max(1, len(mixed)):.1f}% "
                 f"of {len(mixed)}; true families covered: {100 * covered / max(1, total):.1f}% of {total}")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uir", required=True, type=Path, help="UIR-LoRA's evaluate output")
    parser.add_argument("--control", required=True, type=Path, help="the multi-task single-LoRA control's evaluate output")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=DIR", help="another model's evaluate output")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    frames = {"uir-lora": load(args.uir), "multi-task LoRA": load(args.control)}
    frames.update({name: load(Path(path)) for name, path in (m.split("=", 1) for m in args.model)})
    pairs = frames["uir-lora"].index
    dirs = {"uir-lora": args.uir, "multi-task LoRA": args.control, **{n: Path(d) for n, d in (m.split("=", 1) for m in args.model)}}
    prints = {n: json.loads((d / "summary.json").read_text())["dataset"]["fingerprint"] for n, d in dirs.items()}
    for name, frame in frames.items():
        if not frame.index.equals(pairs) or prints[name] != prints["uir-lora"]:
            raise SystemExit(f"{name}: not evaluated on the same dataset and pairs as --uir (fingerprint {prints[name][:12]} "
                             f"vs {prints['uir-lora'][:12]}, {len(frame)} vs {len(pairs)} pairs)")
    lines = track_table(frames, "mixed", "uir-lora") + track_table(frames, "single", "uir-lora") + recipe_table(frames, "uir-lora")
    lines += ["#### UIR-LoRA's router", "", *router_lines(frames["uir-lora"])]
    text = "\n".join(lines)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
