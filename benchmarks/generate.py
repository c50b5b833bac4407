"""Dataset generation throughput: pairs/s of ``uirbench.generate.generate`` vs the PNG read+write floor, same run.

For each source (the built-in samples, and ../shared/data/CBSD68 when present) and each worker
count (1 and 2), two measurements over the same planned images (first ``--limit`` image ids):

* end-to-end: ``generate(GenerateConfig(source, out=<fresh temp dir>, workers=W, limit=N))``, wall
  time of the whole call (planning, workers, journal, manifests, dataset card with samples.png);
* I/O floor: the same number of PNG reads and writes with no degradation. Per clean image: read
  it (``read_item``, as generate does), encode + sha256 + atomically write the target PNG, then
  for every planned pair encode + sha256 + write a PNG of the same size (the clean image itself,
  with ``uirbench.io.encode_png``, the encoder generate uses) under the pair's file name. One
  worker runs in-process; more use a spawn-context process pool with one task per image, like
  generate.

Ratios printed: end-to-end pairs/s / floor pairs/s at the same worker count (issue target >= 0.7)
and 2 workers / 1 worker (target >= 1.8). The ``finalize s`` column is the part of the end-to-end
time spent writing manifests + card + samples.png, measured by running ``finalize`` once more on the
finished output. Each measurement is the best of ``--repeats`` runs (min wall time). Because the
machine's cores may be shared, each row also prints the 1-min load, the CPU time per pair (this
process + its workers) and ``cores used`` = CPU s / wall s: a 2-worker run that used ~1 core was
starved by other work, and its scaling ratio says nothing about the code.

    OMP_NUM_THREADS=1 python benchmarks/generate.py [--limit 6] [--repeats 1] [--workers 1 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import hashlib
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

CBSD68 = Path(__file__).resolve().parents[2] / "shared" / "data" / "CBSD68"
SUITE = "uir-v2"  # the default suite (uirbench.suites.DEFAULT_SUITE)
TARGET_FLOOR_RATIO = 0.7
TARGET_SCALING = 1.8


def floor_image(job: tuple[object, str, tuple[str, ...], str]) -> int:
    """Read one clean image, write its target and one PNG per planned pair (no degradation); returns pairs."""
    from uirbench.io import encode_png, write_bytes
    from uirbench.sources import read_item

    item, split, pair_ids, out = job
    image, _ = read_item(item)
    split_dir = Path(out) / split
    data = encode_png(image)
    hashlib.sha256(data).hexdigest()
    write_bytes(split_dir / "target" / f"{item.image_id}.png", data)
    for pair_id in pair_ids:
        data = encode_png(image)
        hashlib.sha256(data).hexdigest()
        write_bytes(split_dir / "input" / f"{pair_id}.png", data)
    return len(pair_ids)


def _init_floor_worker() -> None:
    """The process settings of generate's workers: one OpenCV thread, glibc keeping freed memory."""
    import cv2

    from uirbench.runtime import keep_freed_memory

    cv2.setNumThreads(1)
    keep_freed_memory()


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished (joined) worker processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_floor(source: str, limit: int, workers: int, out: Path) -> dict[str, float]:
    """Wall and CPU seconds and pairs of the I/O floor over the images generate would process."""
    from uirbench.generate import choose_images, plan
    from uirbench.sources import resolve
    from uirbench.suites import get_suite

    start, cpu = time.perf_counter(), cpu_seconds()
    tasks = plan(get_suite(SUITE), choose_images(get_suite(SUITE), resolve(source), None, limit), (0, 1))
    jobs = [(t.item, t.split, tuple(p.pair_id for p in t.pairs), str(out)) for t in tasks]
    if workers == 1:
        _init_floor_worker()
        pairs = sum(floor_image(job) for job in jobs)
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_floor_worker) as pool:
            pairs = sum(pool.map(floor_image, jobs))
    return {"seconds": time.perf_counter() - start, "cpu": cpu_seconds() - cpu, "pairs": pairs}


def run_generate(source: str, limit: int, workers: int, out: Path) -> dict[str, float]:
    """Wall and CPU seconds and pairs of one full generate() call, and the seconds a second finalize() takes."""
    from uirbench.generate import GenerateConfig, finalize, generate
    from uirbench.journal import read_journals

    start, cpu = time.perf_counter(), cpu_seconds()
    summary = generate(GenerateConfig(source=source, suite=SUITE, out=str(out), workers=workers, limit=limit))
    result = {"seconds": time.perf_counter() - start, "cpu": cpu_seconds() - cpu, "pairs": summary["pairs_written"]}
    if not summary["complete"]:
        raise RuntimeError(f"generate on {source} did not complete: {summary}")
    planned: dict[str, list[str]] = {}
    for row in read_journals(out).values():
        planned.setdefault(row["split"], []).append(row["input_file_name"])
    start = time.perf_counter()
    finalize(out, planned, SUITE, 0)  # the seed GenerateConfig used above (its default)
    return {**result, "finalize": time.perf_counter() - start}


def best_of(repeats: int, fn, *args) -> dict[str, float]:
    """Run ``fn(*args, out)`` ``repeats`` times in fresh temp dirs; the fastest result, with the 1-min load before it."""
    best = None
    for _ in range(repeats):
        load = os.getloadavg()[0]
        tmp = Path(tempfile.mkdtemp(prefix="uirbench-bench-"))
        try:
            result = {**fn(*args, tmp / "out"), "load": load}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=6, help="clean images per source (default 6: about 2 min in all)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per measurement; the fastest is kept (default 1)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    args = parser.parse_args()
    sources = ["builtin"]
    if CBSD68.is_dir():
        sources.append(str(CBSD68))
    else:
        print(f"{CBSD68} not found: CBSD68 rows skipped")
    print(f"suite {SUITE}, first {args.limit} images per source, best of {args.repeats}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}\n")
    print("| source | workers | pairs | end-to-end s | pairs/s | CPU ms/pair | cores used | finalize s | floor s | floor pairs/s "
          "| floor CPU ms/pair | e2e/floor | load 1-min e2e/floor |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rates: dict[tuple[str, str, int], float] = {}
    for source in sources:
        name = "builtin" if source == "builtin" else Path(source).name
        for workers in args.workers:
            e2e = best_of(args.repeats, run_generate, source, args.limit, workers)
            floor = best_of(args.repeats, run_floor, source, args.limit, workers)
            pairs = e2e["pairs"]
            if floor["pairs"] != pairs:
                raise RuntimeError(f"the floor wrote {floor['pairs']} pairs, generate {pairs}")
            rates[(name, "e2e", workers)], rates[(name, "floor", workers)] = pairs / e2e["seconds"], pairs / floor["seconds"]
            ratio = floor["seconds"] / e2e["seconds"]
            verdict = "ok" if ratio >= TARGET_FLOOR_RATIO else "MISSED"
            print(f"| {name} | {workers} | {pairs} | {e2e['seconds']:.2f} | {pairs / e2e['seconds']:.1f} | "
                  f"{1e3 * e2e['cpu'] / pairs:.1f} | {e2e['cpu'] / e2e['seconds']:.2f} | {e2e['finalize']:.2f} | "
                  f"{floor['seconds']:.2f} | {pairs / floor['seconds']:.1f} | {1e3 * floor['cpu'] / pairs:.1f} | "
                  f"{ratio:.2f} {verdict} | {e2e['load']:.2f} / {floor['load']:.2f} |", flush=True)
    if len(args.workers) > 1:
        lo, hi = min(args.workers), max(args.workers)
        print(f"\n| source | kind | {hi} workers / {lo} worker (target >= {TARGET_SCALING} for end-to-end) |")
        print("|---|---|---|")
        for source in sources:
            name = "builtin" if source == "builtin" else Path(source).name
            for kind in ("e2e", "floor"):
                scaling = rates[(name, kind, hi)] / rates[(name, kind, lo)]
                verdict = "" if kind == "floor" else (" ok" if scaling >= TARGET_SCALING else " MISSED")
                print(f"| {name} | {kind} | {scaling:.2f}{verdict} |")
    print(f"\ntargets: end-to-end >= {TARGET_FLOOR_RATIO} x floor at the same worker count; 2 workers >= "
          f"{TARGET_SCALING} x 1 worker. Floor PNGs hold the clean image (degraded content encodes at a different speed).\n"
          "CPU ms/pair: user+system CPU of this process and its workers (the finalize re-run excluded) per pair; "
          "cores used = CPU s / wall s: below the worker count when the machine's cores are busy with other work.")


if __name__ == "__main__":
    main()
