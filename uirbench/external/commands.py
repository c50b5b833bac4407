"""The ``import`` and ``protocol`` commands, added to ``uirbench``'s parser by :func:`add_commands`."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from uirbench.leaderboard.entry import ENTRIES_DIR
from uirbench.options import split_pairs
from uirbench.provenance import command_line

SET_FLAGS = (("cbsd68", "folder of CBSD68's 68 clean colour images (e.g. its original_png/); the noise is uirbench's seeded AWGN"),
             ("rain100l", "Rain100L test folder (layout rain100l)"), ("sots", "SOTS outdoor folder (layout sots-outdoor)"),
             ("gopro", "GoPro test folder (layout gopro, blur/ inputs)"), ("lol", "LOL-v1 folder (layout lol-v1)"),
             ("cdd11", "CDD-11 test folder (layout cdd11)"))


def _print_data(summary: dict[str, Any]) -> None:
    for note in summary["notes"]:
        print(f"note: {note}")
    print(f"{summary['out']}: {summary['pairs']} pairs ({summary['pairs_written']} written, {summary['pairs_already_present']} already "
          f"present, {len(summary['skipped'])} left out{', listed in skipped.jsonl' if summary['skipped'] else ''}); "
          f"fingerprint {summary['fingerprint']}")


def cmd_import(args: argparse.Namespace) -> None:
    from uirbench.external.importer import ImportConfig, import_dataset
    from uirbench.external.layouts import LayoutOptions

    options = LayoutOptions(blur_folder=args.blur_folder, degradation=args.degradation, input_dir=args.input_dir,
                            target_dir=args.target_dir)
    config = ImportConfig(layout=args.layout, source=args.source, out=args.out, split=args.split, license=args.license,
                          skip_bad=args.skip_bad, options=options, command=command_line(args.argv))
    _print_data(import_dataset(config))


def cmd_protocol_list(args: argparse.Namespace) -> None:
    from uirbench.external.protocols import PROTOCOLS

    width = max(map(len, PROTOCOLS))
    for name, protocol in PROTOCOLS.items():
        flags = " ".join(dict.fromkeys(f"--{t.flag} DIR" for t in protocol.tasks))
        print(f"{name:<{width}}  {protocol.description}; needs {flags}")


def cmd_protocol_run(args: argparse.Namespace) -> None:
    from uirbench.external.run import RunConfig, run_protocol

    folders = tuple((flag, getattr(args, flag)) for flag, _ in SET_FLAGS if getattr(args, flag))
    config = RunConfig(protocol=args.protocol, folders=folders, model=args.model, out=args.out, name=args.name,
                       conventions=tuple(args.convention or ()), checkpoint=args.checkpoint, device=args.device,
                       model_args=split_pairs(args.model_arg or []), entries=tuple(args.entries or [ENTRIES_DIR]),
                       skip_bad=args.skip_bad, command=command_line(args.argv))
    result = run_protocol(config)
    _print_data(result["data"])
    print(f"wrote {', '.join(result['entries'])}\n")
    print(result["markdown"])


def cmd_protocol_table(args: argparse.Namespace) -> None:
    from pathlib import Path

    from uirbench.external.protocols import get_protocol
    from uirbench.external.run import gather_entries, write_table
    from uirbench.external.table import render_markdown

    protocol = get_protocol(args.protocol)
    entries = gather_entries([Path(p) for p in args.entries or [ENTRIES_DIR]])
    print(write_table(protocol, entries, Path(args.out)) if args.out else render_markdown(protocol, entries))


def add_commands(sub: Any) -> None:
    """Add ``import`` and ``protocol`` (list, run, table) to the subparsers object of ``uirbench``'s parser."""
    from uirbench.external.layouts import LAYOUTS
    from uirbench.external.protocols import PROTOCOLS

    specs = {name: LAYOUTS.spec(name) for name in LAYOUTS.names()}
    layouts = [textwrap.fill(f"{n}: {s.expects}." + (f" Set: {s.paper}; {s.url}; licence: {s.license}." if s.url != "-" else ""),
                             100, initial_indent="  ", subsequent_indent="    ") for n, s in specs.items()]
    intro = textwrap.fill("Read SOURCE with a layout rule, check every pair (missing target, target without input, two files for "
                          "one image, size mismatch: listed, and the import stops unless --skip-bad), then write OUT like "
                          "`uirbench generate` does: <split>/input, <split>/target, metadata.jsonl (degradation label, parameters "
                          "the file names state, source, licence), pixel hashes, fingerprint.json and a card.", 100)
    p = sub.add_parser("import", help="turn an existing paired folder (Rain100L, SOTS, LOL, GoPro, CDD-11, ...) into a uirbench dataset",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description="\n".join([intro, "", "Layouts:", *layouts]))
    p.add_argument("layout", metavar="LAYOUT", help=f"one of {', '.join(specs)}")
    p.add_argument("source", metavar="SOURCE", help="the set's folder (layout csv: the CSV file)")
    p.add_argument("--out", help="dataset folder to write (default ./uirbench-<layout>); re-running the same command resumes")
    p.add_argument("--split", default="test", help="split the pairs go to (default test)")
    p.add_argument("--license", help="licence recorded in every row (default: the layout's, as listed above)")
    p.add_argument("--skip-bad", action="store_true", help="leave problem pairs out and list them in OUT/skipped.jsonl instead of stopping")
    p.add_argument("--blur-folder", default="blur", help="gopro: blur (default; what MPRNet, Restormer and the all-in-one papers use) "
                                                         "or blur_gamma (Nah et al.'s own inputs)")
    p.add_argument("--degradation", help="generic, csv: the label of the pairs, a uirbench degradation or a +-joined chain "
                                         "(another name is imported as an unseen degradation)")
    p.add_argument("--input-dir", default="input", help="generic: the folder of degraded inputs (default input)")
    p.add_argument("--target-dir", default="target", help="generic: the folder of clean targets (default target)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("protocol", help="the all-in-one protocols (3-task, 5-task, CDD-11): dataset, scores, published table")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("list", help="list the protocols and the sets each needs")
    a.set_defaults(func=cmd_protocol_list)
    a = actions.add_parser("run", help="build a protocol's dataset, score a model under its paper's and uirbench's conventions, "
                                       "and render its table",
                           description="Write OUT/data (the sets imported, CBSD68 noise drawn by uirbench's seeded AWGN), score "
                                       "--model under each --convention into OUT/eval/, write "
                                       "OUT/entries/<protocol>.<name>.<convention>.json and the table OUT/<protocol>.md|.csv|.tex "
                                       "with the self-reported rows of --entries.")
    a.add_argument("protocol", metavar="PROTOCOL", help=f"one of {', '.join(PROTOCOLS)}")
    for flag, text in SET_FLAGS:
        a.add_argument(f"--{flag}", metavar="DIR", help=text)
    a.add_argument("--model", required=True, help="model name (see `uirbench list models`)")
    a.add_argument("--checkpoint", help="checkpoint folder written by `uirbench train`")
    a.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="an inference option of the model; repeatable")
    a.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cpu (default) or cuda")
    a.add_argument("--name", help="the row's name in entries and table (default: the model name)")
    a.add_argument("--convention", action="append", choices=["promptir", "uirbench"],
                   help="promptir (the AirNet/PromptIR/AdaIR scripts: crop to a multiple of 16, unquantised output, 7x7 uniform "
                        "SSIM) or uirbench (`uirbench evaluate`'s defaults); repeatable (default: the protocol's paper "
                        "convention and uirbench)")
    a.add_argument("--out", help="output folder (default ./protocols/<protocol>)")
    a.add_argument("--entries", action="append", metavar="DIR", help=f"entries folder whose rows of this protocol join the table "
                                                                     f"(default ./{ENTRIES_DIR}); repeatable")
    a.add_argument("--skip-bad", action="store_true", help="leave problem pairs out (OUT/data/skipped.jsonl) instead of stopping")
    a.set_defaults(func=cmd_protocol_run)
    a = actions.add_parser("table", help="render a protocol's table from entries (self-reported and recomputed rows)")
    a.add_argument("protocol", metavar="PROTOCOL", help=f"one of {', '.join(PROTOCOLS)}")
    a.add_argument("--entries", action="append", metavar="DIR", help=f"entries folder (default ./{ENTRIES_DIR}); repeatable")
    a.add_argument("--out", help="also write <protocol>.md|.csv|.tex into this folder")
    a.set_defaults(func=cmd_protocol_table)
