"""Dataset generation throughput: pairs/s of ``uirbench.generate.generate`` vs the PNG read+write floor, same run.

For each source (the built-in samples, and ../shared/data/CBSD68 when present) and each worker
count (1 and 2), two measurements over the same planned images (first ``--limit`` image ids):

* end-to-end: ``generate(GenerateConfig(source, out=<fresh temp dir>, workers=W, limit=N))``, wall
  time of the whole call (planning, workers, journal, manifests, dataset card with samples.png);
* I/O floor: the same number of PNG reads and writes with no degradation and no metrics. Per clean
  image: read it (``read_item``, as generate does), encode + sha256 + atomically write the target
  PNG, then for every planned pair encode + sha256 + write a PNG of the same size (the clean image
  itself, with ``uirbench.io.encode_png``: the encoder and settings generate uses, so a cheaper
  encoder setting lowers the floor too) under the pair's file name. One worker runs in-process;
  more use a spawn-context process pool with one task per image.

Each measurement runs ``--repeats`` times (floor and end-to-end alternating) and the MEDIAN is
printed. Ratios: end-to-end pairs/s / floor pairs/s at the same worker count (issue target >= 0.7)
and W workers / 1 worker (target >= 1.8 when W cores are free). Because the machine may be shared,
the header prints the cores this process may run on (``os.sched_getaffinity``) and every row the
1-min load before it and ``cores used`` = CPU s / wall s (this process + its workers): a 2-worker
run that used ~1 core was starved by other work, and its scaling ratio says nothing about the code.
``machine ceiling`` runs the same fixed CPU work (PNG encodes) in 1 and in W processes at once,
before and after the table: what W processes can reach on this machine at that moment (about W
when W cores are idle; less when other work holds them).
``MB`` is what the run wrote (every file under its output folder). ``finalize s`` is the part of the
end-to-end time spent writing manifests + card + samples.png, measured by running ``finalize`` once
more on the finished output.

Then the per-stage split: one 1-worker run on the built-in source, in a fresh process (so imports
count) under ``cProfile`` timed by CPU time (so other work on a shared machine does not inflate a
stage), attributed to the stages of a pair (decode, degradation, PNG encode, input PSNR/SSIM,
hashing, writes, journal, finalize, imports). cProfile slows Python-heavy code more than
numpy/OpenCV/torch calls, and time spent waiting (fsync) is not CPU time: read it as shares.

    OMP_NUM_THREADS=1 python benchmarks/generate.py [--limit 6] [--repeats 3] [--workers 1 2] [--no-profile]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import cProfile
import hashlib
import pstats
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
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


def megabytes(folder: Path) -> float:
    """Size of every file below ``folder``, in MB (10^6 bytes)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def run_floor(source: str, limit: int, workers: int, out: Path) -> dict[str, float]:
    """Wall and CPU seconds, pairs and MB of the I/O floor over the images generate would process."""
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
    return {"seconds": time.perf_counter() - start, "cpu": cpu_seconds() - cpu, "pairs": pairs, "mb": megabytes(out)}


def run_generate(source: str, limit: int, workers: int, out: Path) -> dict[str, float]:
    """Wall and CPU seconds, pairs and MB of one full generate() call, and the seconds a second finalize() takes."""
    from uirbench.generate import GenerateConfig, finalize, generate
    from uirbench.journal import read_journals

    start, cpu = time.perf_counter(), cpu_seconds()
    summary = generate(GenerateConfig(source=source, suite=SUITE, out=str(out), workers=workers, limit=limit))
    result = {"seconds": time.perf_counter() - start, "cpu": cpu_seconds() - cpu, "pairs": summary["pairs_written"],
              "mb": megabytes(out)}
    if not summary["complete"]:
        raise RuntimeError(f"generate on {source} did not complete: {summary}")
    planned: dict[str, list[str]] = {}
    for row in read_journals(out).values():
        planned.setdefault(row["split"], []).append(row["input_file_name"])
    start = time.perf_counter()
    finalize(out, planned, SUITE, 0)  # the seed GenerateConfig used above (its default)
    return {**result, "finalize": time.perf_counter() - start}


def in_temp_dir(fn: Callable[..., dict[str, float]], *args: object) -> dict[str, float]:
    """``fn(*args, out)`` in a fresh temp dir (removed after), with the 1-min load before it."""
    load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="uirbench-bench-"))
    try:
        return {**fn(*args, tmp / "out"), "load": load}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fixed_work(barrier: object, results: object, repeats: int) -> None:
    """PNG-encode the astronaut photograph ``repeats`` times once every process is ready; put the seconds taken."""
    from uirbench.io import encode_png
    from uirbench.sources import builtin_items, read_item

    image = read_item(next(it for it in builtin_items() if it.image_id == "astronaut"))[0]
    encode_png(image)
    barrier.wait()
    start = time.perf_counter()
    for _ in range(repeats):
        encode_png(image)
    results.put(time.perf_counter() - start)


def machine_scaling(workers: int, repeats: int = 150) -> float:
    """How many times one process's rate ``workers`` processes of the same fixed CPU work reach together, on this
    machine now: the ceiling of any ``workers``-vs-1 ratio measured beside it."""
    context = get_context("spawn")
    seconds = {}
    for count in (1, workers):
        barrier, results = context.Barrier(count), context.Queue()
        processes = [context.Process(target=_fixed_work, args=(barrier, results, repeats)) for _ in range(count)]
        for process in processes:
            process.start()
        seconds[count] = statistics.mean(results.get() for _ in processes)
        for process in processes:
            process.join()
    return workers * seconds[1] / seconds[workers]


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per-key median of several runs (pairs must agree)."""
    if len({r["pairs"] for r in runs}) != 1:
        raise RuntimeError(f"runs wrote different numbers of pairs: {[r['pairs'] for r in runs]}")
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


# -- per-stage split --------------------------------------------------------------------------
# (stage, [(function name, file suffix or "" for a builtin, caller names or None for every caller)]):
# a function's time is its cumulative time when called from one of those callers, so nothing counts twice.
_WORKER_SIDE = ("process_image", "_write_once")
STAGES = (
    ("imports + worker setup (torch, OpenCV)", [("_init_worker", "generate.py", None)]),
    ("source identity: read + pixel-hash every source image (main side)", [("source_images", "generate.py", None)]),
    ("read clean image + depth map (per task)", [("read_item", "sources.py", ("process_image",)),
                                                  ("encode_depth_png", "io.py", _WORKER_SIDE),
                                                  ("read_depth", "io.py", _WORKER_SIDE)]),
    ("degradation (sample + replay)", [("create", "degradations/__init__.py", ("process_image",)),
                                       ("sample", "", ("process_image",)), ("replay", "", ("process_image",))]),
    ("PNG encode (inputs + targets)", [("encode_png", "io.py", _WORKER_SIDE)]),
    ("input PSNR/SSIM (manifest columns)", [("input_quality", "generate.py", ("process_image",)),
                                           ("__init__", "generate.py", ("process_image",)),
                                           ("__call__", "generate.py", ("process_image",))]),
    ("hashing (file sha256 + pixel sha256)", [("pixel_sha256", "manifest.py", _WORKER_SIDE),
                                              ("sha256_file", "io.py", _WORKER_SIDE),
                                              ("<built-in method _hashlib.openssl_sha256>", "~", _WORKER_SIDE)]),
    ("file writes (temp file + rename)", [("write_bytes", "io.py", _WORKER_SIDE)]),
    ("journal appends (+ fsync)", [("append", "journal.py", None)]),
    ("finalize: manifests, fingerprint, card + samples.png", [("finalize", "generate.py", None)]),
)


def _stage_seconds(stats: pstats.Stats, parts: list[tuple[str, str, tuple[str, ...] | None]]) -> float:
    total = 0.0
    for (filename, _, name), (_, _, _, cumulative, callers) in stats.stats.items():
        for want, suffix, from_callers in parts:
            if name != want or (suffix and not filename.endswith(suffix)) or (not suffix and "degradations" not in filename):
                continue
            if from_callers is None:
                total += cumulative
            else:
                total += sum(c[3] for (_, _, caller), c in callers.items() if caller in from_callers)
    return total


def profiled_run(limit: int) -> tuple[int, float, float, list[tuple[str, float]]]:
    """(pairs, wall s, CPU s, CPU seconds per stage) of a 1-worker generate on the built-in source under cProfile."""
    from uirbench.generate import GenerateConfig, generate

    tmp = Path(tempfile.mkdtemp(prefix="uirbench-bench-"))
    profile = cProfile.Profile(time.process_time)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        profile.enable()
        summary = generate(GenerateConfig(source="builtin", suite=SUITE, out=str(tmp / "out"), workers=1, limit=limit))
        profile.disable()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    stats = pstats.Stats(profile)
    return summary["pairs_written"], wall, cpu, [(name, _stage_seconds(stats, parts)) for name, parts in STAGES]


def stage_split(limit: int) -> None:
    """Print where the time of a profiled 1-worker run goes, stage by stage (in a fresh process, so imports count)."""
    load = os.getloadavg()[0]
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        pairs, wall, cpu, stages = pool.submit(profiled_run, limit).result()
    print(f"\nper-stage split: builtin, 1 worker, {pairs} pairs under cProfile in a fresh process: {cpu:.2f} CPU s, "
          f"{wall:.2f} s wall (1-min load {load:.2f})\n")
    print("| stage | CPU s | CPU ms/pair | share |")
    print("|---|---|---|---|")
    for name, seconds in [*stages, ("other (planning, resume scan, rows, progress)", cpu - sum(s for _, s in stages))]:
        print(f"| {name} | {seconds:.2f} | {1e3 * seconds / pairs:.1f} | {100 * seconds / cpu:.0f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=6, help="clean images per source (default 6)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is printed (default 3)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled per-stage split")
    args = parser.parse_args()
    sources = ["builtin"]
    if CBSD68.is_dir():
        sources.append(str(CBSD68))
    else:
        print(f"{CBSD68} not found: CBSD68 rows skipped")
    cores = len(os.sched_getaffinity(0))
    print(f"suite {SUITE}, first {args.limit} images per source, median of {args.repeats}, {cores} cores available to "
          f"this process (sched_getaffinity; {os.cpu_count()} in the machine), 1-min load {os.getloadavg()[0]:.2f}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}\n")
    ceiling = machine_scaling(max(args.workers)) if len(args.workers) > 1 else 1.0
    print("| source | workers | pairs | end-to-end s | pairs/s | MB | CPU ms/pair | cores used | finalize s | floor s "
          "| floor pairs/s | floor MB | floor CPU ms/pair | e2e/floor | load 1-min e2e/floor |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rates: dict[tuple[str, str, int], float] = {}
    used: dict[tuple[str, int], float] = {}
    for source in sources:
        name = "builtin" if source == "builtin" else Path(source).name
        for workers in args.workers:
            floors, e2es = [], []
            for _ in range(args.repeats):
                floors.append(in_temp_dir(run_floor, source, args.limit, workers))
                e2es.append(in_temp_dir(run_generate, source, args.limit, workers))
            floor, e2e = median_of(floors), median_of(e2es)
            pairs = e2e["pairs"]
            if floor["pairs"] != pairs:
                raise RuntimeError(f"the floor wrote {floor['pairs']} pairs, generate {pairs}")
            rates[(name, "e2e", workers)], rates[(name, "floor", workers)] = pairs / e2e["seconds"], pairs / floor["seconds"]
            used[(name, workers)] = e2e["cpu"] / e2e["seconds"]
            ratio = floor["seconds"] / e2e["seconds"]
            verdict = "ok" if ratio >= TARGET_FLOOR_RATIO else "MISSED"
            print(f"| {name} | {workers} | {pairs} | {e2e['seconds']:.2f} | {pairs / e2e['seconds']:.1f} | {e2e['mb']:.1f} | "
                  f"{1e3 * e2e['cpu'] / pairs:.1f} | {used[(name, workers)]:.2f} | {e2e['finalize']:.2f} | {floor['seconds']:.2f} | "
                  f"{pairs / floor['seconds']:.1f} | {floor['mb']:.1f} | {1e3 * floor['cpu'] / pairs:.1f} | "
                  f"{ratio:.2f} {verdict} | {e2e['load']:.2f} / {floor['load']:.2f} |", flush=True)
    if len(args.workers) > 1:
        lo, hi = min(args.workers), max(args.workers)
        print(f"\nmachine ceiling: {hi} processes of fixed CPU work (PNG encode) reach {ceiling:.2f} x one process's rate "
              f"before the runs, {machine_scaling(hi):.2f} x after (1-min load {os.getloadavg()[0]:.2f})")
        print(f"\n| source | kind | {hi} workers / {lo} worker (target >= {TARGET_SCALING} for end-to-end) | cores used at {hi} |")
        print("|---|---|---|---|")
        for source in sources:
            name = "builtin" if source == "builtin" else Path(source).name
            for kind in ("e2e", "floor"):
                scaling = rates[(name, kind, hi)] / rates[(name, kind, lo)]
                verdict = ""
                if kind == "e2e":
                    verdict = " ok" if scaling >= TARGET_SCALING else " MISSED"
                    if used[(name, hi)] < hi - 0.5:
                        verdict += f" (only {used[(name, hi)]:.2f} cores used: {hi} were not free, no verdict on the code)"
                print(f"| {name} | {kind} | {scaling:.2f}{verdict} | {used[(name, hi)]:.2f} |")
    print(f"\ntargets: end-to-end >= {TARGET_FLOOR_RATIO} x floor at the same worker count; {max(args.workers)} workers >= "
          f"{TARGET_SCALING} x 1 worker when that many cores are free. Floor PNGs hold the clean image (degraded content "
          "encodes at a different speed). CPU ms/pair: user+system CPU of this process and its workers per pair; "
          "cores used = CPU s / wall s: below the worker count when the machine's cores are busy with other work.")
    if not args.no_profile:
        stage_split(args.limit)


if __name__ == "__main__":
    main()
