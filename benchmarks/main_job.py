"""The README's main job, timed end to end from an empty folder: ``uirbench generate && uirbench evaluate --model uir-lora``.

Runs both commands as a new user would (subprocesses, default arguments, the current working directory an
empty temporary folder) and prints the per-stage wall time, the evaluation's own per-image figures from its
``summary.json``, and the CPUs the run could use. The README's main-job figure comes from this script.

    python benchmarks/main_job.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = (("generate", ["generate"]), ("evaluate uir-lora", ["evaluate", "--model", "uir-lora"]))


def run_stage(args: list[str], cwd: Path) -> float:
    """Wall seconds of ``uirbench ARGS`` in ``cwd``; stops with its output if it fails."""
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "uirbench.cli", *args], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if result.returncode != 0:
        sys.exit(f"uirbench {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="run in this (new) folder and keep it, instead of a temporary one")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="uirbench-main-job-"))
    work.mkdir(parents=True, exist_ok=True)
    if any(work.iterdir()):
        sys.exit(f"--keep {work}: not empty; the main job is timed from an empty folder")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    try:
        times = {name: run_stage(stage, work) for name, stage in STAGES}
        summary = json.loads((work / "eval" / "uir-lora-test" / "summary.json").read_text())
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = sum(times.values())
    runtime = summary["runtime"]
    print(f"## README main job, from an empty folder ({cpus} CPUs available, load average {load:.1f} at start, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})\n")
    print("| stage | wall time (s) | share |")
    print("|---|---:|---:|")
    for name, seconds in times.items():
        print(f"| `uirbench {name}` | {seconds:.1f} | {100 * seconds / total:.0f}% |")
    print(f"| **total** | **{total:.1f}** | |\n")
    print(f"evaluate: {summary['overall']['psnr']['n']} pairs, {runtime['mean_ms_per_image']:.0f} ms per image "
          f"in the model, {runtime['images_per_second']:.2f} images/s overall; RGB PSNR "
          f"{summary['overall']['psnr']['mean']:.2f} dB")


if __name__ == "__main__":
    main()
