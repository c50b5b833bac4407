"""Install time and size of the README's main-job install, from an empty virtual environment.

Creates a new venv, runs the README's two pip commands (torch first, then uirbench with ``-c constraints.txt``)
from a checkout, and prints the wall time of each, the venv's size on disk, the number of installed packages
and the OpenCV packages among them. The README's install figures come from this script.

    python benchmarks/install.py [--checkout DIR] [--keep VENV]
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

TORCH = ["torch==2.14.1", "torchvision==0.29.1"]


def timed(cmd: list[str], cwd: Path) -> float:
    """Wall seconds of ``cmd``; stops with its output if it fails."""
    t0 = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.perf_counter() - t0


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", default=str(Path(__file__).resolve().parents[1]), help="uirbench checkout (default: this one)")
    parser.add_argument("--keep", help="create the venv here (new folder) and keep it, instead of a temporary one")
    args = parser.parse_args()
    checkout = Path(args.checkout).resolve()
    venv = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="uirbench-install-")) / "venv"
    if venv.exists():
        sys.exit(f"--keep {venv}: exists; the install is timed into a new venv")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", "constraints.txt"]
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        torch_s = timed([*pip, *TORCH], checkout)
        rest_s = timed([*pip, "-e", "."], checkout)
        listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"], capture_output=True,
                                text=True, check=True)
        packages = json.loads(listed.stdout)
        megabytes = size_mb(venv)
    finally:
        if not args.keep:
            shutil.rmtree(venv.parent, ignore_errors=True)
    opencv = sorted(p["name"] for p in packages if p["name"].lower().startswith("opencv"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"## README install from an empty venv ({checkout.name}; load average {load:.1f} at the end)\n")
    print("| torch (s) | uirbench and the rest (s) | total (s) | size (MB) | packages | OpenCV packages |")
    print("|---:|---:|---:|---:|---:|---|")
    print(f"| {torch_s:.0f} | {rest_s:.0f} | {torch_s + rest_s:.0f} | {megabytes:.0f} | {len(packages)} | {', '.join(opencv)} |")


if __name__ == "__main__":
    main()
