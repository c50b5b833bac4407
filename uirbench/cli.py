"""Command line: parses arguments, builds a config, calls one function per command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from uirbench import __version__
from uirbench.errors import UserError
from uirbench.options import split_pairs
from uirbench.provenance import command_line


class CLIError(UserError):
    """A user error found by the CLI itself: printed as one line, exit status 2."""


def _parse_param(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise CLIError(f"--param {text!r}: expected key=value (e.g. --param sigma=25)")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def _override(name: str, params: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` (or ``stage.key`` for mixed chains) in sampled params, refusing unknown keys."""
    if "stages" in params and "." in key:
        stage_name, sub = key.split(".", 1)
        from uirbench.degradations import canonical

        for record in params["stages"]:
            if record["name"] == canonical(stage_name):
                return _override(record["name"], record["params"], sub, value)
        raise CLIError(f"--param {key}: {name} has no stage {stage_name!r}; stages: "
                       f"{', '.join(r['name'] for r in params['stages'])}")
    if key not in params:
        hint = " (use stage.key for mixed chains, e.g. jpeg.quality=10)" if "stages" in params else ""
        raise CLIError(f"--param {key}: {name} has no parameter {key!r}; valid: {', '.join(params)}{hint}")
    params[key] = value
    return None


def cmd_list(args: argparse.Namespace) -> None:
    what = args.what
    if what == "degradations":
        from uirbench.degradations import describe

        rows = describe()
    elif what == "suites":
        from uirbench.suites import describe_suites

        rows = describe_suites()
    else:
        from uirbench.registry import METRICS, MODELS

        reg = MODELS if what == "models" else METRICS
        rows = [(n, (reg.get(n).__doc__ or "").strip().splitlines()[0] if reg.get(n).__doc__ else "") for n in reg.names()]
    width = max((len(n) for n, _ in rows), default=0)
    for name, text in rows:
        print(f"{name:<{width}}  {text}".rstrip())


def cmd_degrade(args: argparse.Namespace) -> None:
    import numpy as np

    from uirbench.degradations import create
    from uirbench.degradations.depth import load_depth
    from uirbench.io import read_image, write_image, write_json

    record: dict[str, Any] | None = None
    if args.params_in:
        try:
            record = json.loads(Path(args.params_in).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CLIError(f"--params-in {args.params_in}: cannot read JSON ({exc})") from exc
        if not isinstance(record, dict) or not {"degradation", "params"} <= set(record):
            raise CLIError(f"--params-in {args.params_in}: expected a file written by --params-out "
                           "(keys 'degradation' and 'params')")
        if args.degradation and canonical_name(args.degradation) != canonical_name(record["degradation"]):
            raise CLIError(f"--degradation {args.degradation} differs from {record['degradation']!r} in {args.params_in}")
        if args.param:
            raise CLIError("--param cannot be combined with --params-in (edit the JSON file instead)")
    elif not args.degradation:
        raise CLIError("--degradation is required (or give --params-in); see `uirbench list degradations`")
    name = record["degradation"] if record else args.degradation
    severity = record.get("severity", args.severity) if record else args.severity
    degradation = create(name, severity=severity)
    image = read_image(args.input)
    depth = load_depth(args.depth) if args.depth else None
    if record:
        params = record["params"]
    else:
        params = degradation.sample(np.random.default_rng(args.seed), image, depth)
        for key, value in map(_parse_param, args.param or []):
            _override(name, params, key, value)
    out = type(degradation).replay(image, params, depth)
    write_image(args.output, out)
    params_out = Path(args.params_out) if args.params_out else Path(args.output).with_suffix(".json")
    write_json(params_out, {
        "degradation": canonical_name(name),
        "severity": severity,
        "seed": None if record else args.seed,
        "input": str(args.input),
        "depth": str(args.depth) if args.depth else None,
        "params": params,
        "uirbench_version": __version__,
    })
    print(f"wrote {args.output} and {params_out}")


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N (e.g. 0/2), got {text!r}") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}")
    return index, count


def cmd_generate(args: argparse.Namespace) -> None:
    from uirbench.generate import GenerateConfig, generate

    config = GenerateConfig(source=args.source, suite=args.suite, out=args.out, seed=args.seed, workers=args.workers,
                            shard=args.shard, limit=args.limit, splits=tuple(args.splits) if args.splits else None,
                            skip_bad=args.skip_bad, depth_dir=args.depth_dir, format=args.format,
                            command=command_line(args.argv))
    summary = generate(config)
    print(f"pairs written: {summary['pairs_written']}, already present: {summary['pairs_already_present']}, "
          f"images skipped: {len(summary['images_skipped'])}, time: {summary['seconds']:.1f} s")
    for split, ids in summary["images_per_split"].items():
        print(f"  {split}: {len(ids)} image(s){': ' + ', '.join(ids) if ids else ''}")
    if summary["images_skipped"]:
        print(f"skipped images (see {summary['out']}/skipped.jsonl): {', '.join(summary['images_skipped'])}")
    if summary["complete"]:
        per_split = ", ".join(f"{k} {v}" for k, v in summary["pairs_per_split"].items())
        print(f"dataset complete in {summary['out']} ({per_split}); fingerprint {summary['fingerprint']}")
        print(f"source fingerprint {summary['source_fingerprint']} (the clean images' pixels)")
        print(f"card: {summary['out']}/README.md")
    else:
        print(f"shard done; the manifest is written when every shard has finished (run the others into {summary['out']})")


def cmd_verify(args: argparse.Namespace) -> None:
    from uirbench.verify import check_fingerprint_arg, verify

    expected = check_fingerprint_arg(args.fingerprint) if args.fingerprint else None
    result = verify(args.dir, expected)
    for problem in result["problems"]:
        print(problem)
    if result["reencoded"]:
        shown = ", ".join(result["reencoded"][:3]) + (", ..." if len(result["reencoded"]) > 3 else "")
        print(f"{len(result['reencoded'])} file(s) re-encoded: bytes differ from the manifest's file hash but the pixels "
              f"match (not corruption): {shown}")
    print(f"checked {result['files_checked']} files; {len(result['problems'])} problem(s); fingerprint {result['fingerprint']}")
    if expected and not result["problems"]:
        print(f"matches the published fingerprint {expected}")
    if result["problems"]:
        raise SystemExit(1)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from uirbench.evaluate import EvaluateConfig, evaluate, format_table

    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    config = EvaluateConfig(model=args.model, checkpoint=args.checkpoint, data=args.data, split=args.split, metrics=metrics,
                            color_space=args.color_space, crop_border=args.crop_border, out=args.out,
                            save_images=args.save_images, device=args.device, batch_size=args.batch_size, tile=args.tile,
                            weights_dir=args.weights_dir, model_args=split_pairs(args.model_arg or []),
                            command=command_line(args.argv))
    result = evaluate(config)
    for note in result["notes"]:
        print(f"note: {note}")
    print(format_table(result["summary"]))
    print(f"wrote {result['out']}/per_image.parquet, summary.json, entry.json")


def cmd_train(args: argparse.Namespace) -> None:
    from uirbench.train import TrainConfig, train

    config = TrainConfig(model=args.model, preset=args.preset, data=args.data, out=args.out, steps=args.steps,
                         batch_size=args.batch_size, patch=args.patch, lr=args.lr, mix=args.mix, online=args.online,
                         resume=args.resume, seed=args.seed,
                         save_every=args.save_every, val_every=args.val_every, amp=args.amp, device=args.device,
                         model_args=split_pairs(args.model_arg or []), command=command_line(args.argv))
    summary = train(config)
    if int(os.environ.get("RANK", "0")) != 0:  # one report per distributed run
        return
    print(f"trained {args.model} ({args.preset}) to step {summary['steps']} in {summary['seconds']:.1f} s; final loss "
          f"{summary['loss']:.4f}; checkpoint: {summary['out']} (evaluate with --checkpoint {summary['out']})")


def canonical_name(name: str) -> str:
    from uirbench.degradations import canonical
    from uirbench.registry import DEGRADATIONS

    return canonical(name) if name in DEGRADATIONS else name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="uirbench", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"uirbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an unexpected error (also UIRBENCH_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list registered degradations, suites, models or metrics")
    p.add_argument("what", choices=["degradations", "suites", "models", "metrics"])
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("degrade", help="degrade one image and record (or replay) its parameters",
                       description="Degrade INPUT into OUTPUT (lossless PNG unless OUTPUT ends in .jpg) and write the "
                                   "applied physical parameters as JSON; --params-in replays such a file exactly.")
    p.add_argument("input", help="clean image file (png/jpg/tif/webp/bmp)")
    p.add_argument("output", help="degraded image to write (.png lossless, or .jpg)")
    p.add_argument("--degradation", help="name from `uirbench list degradations` (variant, family, recipe or a+b chain)")
    p.add_argument("--severity", type=int, default=3, choices=range(6), metavar="0-5",
                   help="fixed severity level 1-5 (0 = neutral, returns the input unchanged); default 3")
    p.add_argument("--seed", type=int, default=0, help="seed of the parameter draw (default 0)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="override one sampled parameter by its physical name, e.g. sigma=25 or quality=30 "
                        "(mixed chains: stage.key, e.g. jpeg.quality=10); repeatable")
    p.add_argument("--params-out", help="where to write the parameters JSON (default: OUTPUT with .json suffix)")
    p.add_argument("--params-in", help="replay parameters from a JSON file written by --params-out")
    p.add_argument("--depth", help="depth map for haze/rain (16-bit PNG or .npy); without it a documented depth prior is used")
    p.set_defaults(func=cmd_degrade)

    from uirbench.suites import DEFAULT_SUITE

    p = sub.add_parser("generate", help="generate a paired dataset (degraded input, clean target) with a manifest",
                       description="Generate lossless PNG pairs, per-split metadata.jsonl (Hugging Face imagefolder), "
                                   "suite.json, fingerprint.json and a dataset card. Re-running the same command resumes.")
    p.add_argument("--source", default="builtin", help="builtin (default; offline sample photos), a folder of images, "
                                                      "or hf:<dataset-id or local path>[:split]")
    p.add_argument("--suite", default=DEFAULT_SUITE, help=f"suite name (default {DEFAULT_SUITE}); see `uirbench list suites`")
    p.add_argument("--out", default="uirbench-data", help="output folder (default ./uirbench-data)")
    p.add_argument("--seed", type=int, default=0, help="suite seed (default 0)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--shard", type=_shard, default=(0, 1), metavar="I/N", help="generate only shard I of N (images i with i %% N == I)")
    p.add_argument("--limit", type=int, help="use at most N clean source images: the first image (by id) of each split, "
                   "then the next ones by id, so N >= the number of splits gives every split at least one image")
    p.add_argument("--splits", nargs="+", metavar="SPLIT", help="only these splits (e.g. test)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable/invalid images (listed in skipped.jsonl) "
                                                           "instead of stopping with an error")
    p.add_argument("--depth-dir", help="folder of depth maps (<relative path stem>.png 16-bit or .npy) for a folder source "
                                       "(default: <source>_depth next to it, when present)")
    p.add_argument("--format", default="png", choices=["png", "parquet"],
                   help="png (default): the PNG layout only; parquet: also OUT/parquet/<split>-*.parquet with embedded image bytes")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("evaluate", help="score a model on a generated dataset (per-image metrics, CIs, leaderboard entry)",
                       description="Restore every pair of a split, score each image under explicit conventions, and write "
                                   "per_image.parquet, summary.json and entry.json. Restored images are rounded to 8-bit "
                                   "before scoring, as submitted PNGs are.")
    p.add_argument("--model", required=True, help="model name (see `uirbench list models`)")
    p.add_argument("--checkpoint", help="checkpoint folder written by `uirbench train` (trained models)")
    p.add_argument("--data", default="uirbench-data", help="dataset folder from `uirbench generate` (default ./uirbench-data)")
    p.add_argument("--split", default="test", help="split to score (default test)")
    p.add_argument("--metrics", default="psnr,ssim",
                   help="comma-separated metrics (default psnr,ssim; lpips, fid, kid need pretrained weights, see --weights-dir)")
    p.add_argument("--color-space", default="rgb", choices=["rgb", "y"], help="rgb (default) or y = BT.601 luma (MATLAB rgb2ycbcr)")
    p.add_argument("--crop-border", type=int, default=0, help="pixels removed from each border before scoring (default 0)")
    p.add_argument("--out", help="output folder (default eval/<model>-<split>)")
    p.add_argument("--save-images", action="store_true", help="also write the restored images (PNG) under OUT/images/")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda (bf16 autocast)")
    p.add_argument("--batch-size", type=int, help="images per forward pass, grouped by size (default: 1 on cpu, the fastest "
                                                  "there; 4 on cuda)")
    p.add_argument("--tile", type=int, help="restore images larger than this many px in overlapping tiles (default: whole images)")
    p.add_argument("--weights-dir", help="folder used as TORCH_HOME for pretrained metric weights (LPIPS AlexNet, FID Inception)")
    p.add_argument("--model-arg", action="append", metavar="KEY=VALUE",
                   help="an inference option of the model, checked against its config; repeatable (uir-lora: top_k=N LoRAs "
                        "per image, router=learned|oracle|clip; `uirbench list models` names the models)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="train a model on a generated dataset (accelerate: CPU, one GPU or many)",
                       description="Train a model with its recipe (see uirbench/recipes.py). Checkpoints go to --out; "
                                   "re-run with --resume after an interruption to continue exactly. Multi-GPU: "
                                   "`accelerate launch -m uirbench.cli train ...` (CPU DDP: set ACCELERATE_USE_CPU=1).")
    p.add_argument("--model", required=True, help="model name (nafnet, restormer, promptir, airnet, uir-lora)")
    p.add_argument("--preset", default="tiny", help="tiny (CPU, minutes; tests; default), small (CPU, about 45 min per model, "
                                                    "UIR-LoRA twice: backbone, then adapters and router) or paper (published "
                                                    "settings, GPU)")
    p.add_argument("--data", default="uirbench-data", help="dataset folder from `uirbench generate` (default ./uirbench-data); "
                                                           "with --online also a source: an image folder or builtin")
    p.add_argument("--online", action="store_true",
                   help="degrade training pairs on the fly from the clean train-split images of --data (the suite's training "
                        "ranges and proportions; every pair a pure function of seed, step and index) instead of reading its "
                        "pre-generated pairs; validation reads the dataset's val split (a source has none: no validation)")
    p.add_argument("--out", help="run/checkpoint folder (default runs/<model>-<preset>)")
    p.add_argument("--steps", type=int, help="optimisation steps (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="global batch size (default: the preset's)")
    p.add_argument("--patch", type=int, help="training patch size in px (default: the preset's)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the preset's)")
    p.add_argument("--mix", help="degradation sampling weights, e.g. noise=2,haze=1 (default: balanced over the pre-generated pairs' "
                                  "degradations; with --online the suite's proportions)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and batches (default 0)")
    p.add_argument("--save-every", type=int, help="checkpoint every N steps (default: steps/3)")
    p.add_argument("--val-every", type=int, help="validation PSNR every N steps (default: steps/4)")
    p.add_argument("--amp", default="no", choices=["no", "bf16", "fp16"], help="mixed precision on GPU (default no)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cpu (default) or cuda")
    p.add_argument("--model-arg", action="append", metavar="KEY=VALUE",
                   help="a model-specific training option, checked by the model's trainer; repeatable. Baselines: a field of "
                        "the model's config (e.g. width=32). uir-lora: stage=backbone|lora|router|all (default all), "
                        "degradation=FAMILY (stage=lora: that adapter only), backbone=HUB_ID_OR_DIR (default "
                        "stabilityai/sd-turbo for --preset paper; offline: `huggingface-cli download stabilityai/sd-turbo "
                        "--local-dir DIR` elsewhere, then DIR)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("verify", help="check a dataset's pixels, manifests and fingerprint",
                       description="Decode every input and target and compare its pixel hash with the manifest, then "
                                   "recompute the fingerprint from the manifests and suite.json. Files re-encoded with "
                                   "identical pixels are reported apart and are not problems. Exit status 1 on any problem.")
    p.add_argument("dir", help="dataset folder written by `uirbench generate`")
    p.add_argument("--fingerprint", metavar="HEX", help="the published fingerprint (or a prefix of >= 8 hex digits) "
                                                        "the folder must match, e.g. the one a leaderboard board lists")
    p.set_defaults(func=cmd_verify)

    from uirbench.external.commands import add_commands as add_external_commands
    from uirbench.leaderboard.commands import add_commands

    add_commands(sub)
    add_external_commands(sub)  # import, protocol
    return parser


BUG_REPORT = "https://github.com/uirbench/uirbench/issues"


def main(argv: list[str] | None = None) -> int:
    """Run one command. User errors: one line, exit 2. Anything else is a bug: one line asking for a
    report, exit 1; ``--debug`` (or ``UIRBENCH_DEBUG=1``) re-raises it with its traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = [a for a in argv if a != "--debug"]  # recorded as provenance (command_line)
    from uirbench.runtime import keep_freed_memory

    keep_freed_memory()
    debug = args.debug or os.environ.get("UIRBENCH_DEBUG", "") not in ("", "0")
    try:
        args.func(args)
    except UserError as exc:
        if debug:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"uirbench {args.command}: error: {message}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the user named cannot be read or written (permissions, disk full, ...)
        if debug:
            raise
        print(f"uirbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"uirbench {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        report_bug(args.command, exc)
        return 1
    return 0


def report_bug(command: str, exc: Exception) -> None:
    """The one line printed for an unexpected exception (a bug, not a user error)."""
    print(f"uirbench {command}: internal error ({type(exc).__name__}: {exc}). This is a bug in uirbench "
          f"{__version__}: please report it at {BUG_REPORT} with the output of the same command run with --debug",
          file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
