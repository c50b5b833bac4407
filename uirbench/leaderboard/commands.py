"""The ``submit`` and ``leaderboard build`` commands, added to ``uirbench``'s parser by :func:`add_commands`."""

from __future__ import annotations

import argparse
from typing import Any

from uirbench.leaderboard.entry import ENTRIES_DIR, LEADERBOARD_DIR
from uirbench.provenance import command_line


def cmd_submit(args: argparse.Namespace) -> None:
    from uirbench.leaderboard.submit import SubmitConfig, submit

    # the entry records the command that reproduces its scores: where it was written (--entries, --replace) is not part of it
    words = ["submit", args.restored, "--data", args.data, "--name", args.name]
    if args.split != "test":
        words += ["--split", args.split]
    config = SubmitConfig(restored=args.restored, data=args.data, name=args.name, split=args.split, entries=args.entries,
                          replace=args.replace, command=command_line(words))
    result = submit(config)
    overall = result["entry"]["results"]["overall"]
    scores = ", ".join(f"{m} {s['mean']:.4f} [{s['ci95'][0]:.4f}, {s['ci95'][1]:.4f}]" for m, s in overall.items())
    print(f"verified {result['entry']['submission']['images']} restored images; {scores}")
    print(f"wrote {result['path']} (provenance: recomputed)")


def cmd_leaderboard_build(args: argparse.Namespace) -> None:
    from uirbench.leaderboard.build import build

    written = build(args.entries, args.out)
    print(f"wrote {len(written)} files to {args.out} (README.md, index.html, tables/, figures/)")


def add_commands(sub: Any) -> None:
    """Add ``submit`` and ``leaderboard build`` to the subparsers object of ``uirbench``'s parser."""
    p = sub.add_parser("submit", help="verify a folder/zip of restored PNGs against a dataset and add a recomputed entry",
                       description="Check a restored set (one PNG per pair, named like the manifest's input_file_name, "
                                   "e.g. input/<pair id>.png; no symlinks, zip bombs or stray files) against the dataset's "
                                   "manifest and fingerprint, rescore it with evaluate's code, and write ENTRIES/NAME.json "
                                   "atomically. Nothing is written when any check fails.")
    p.add_argument("restored", help="folder or .zip of restored PNGs (e.g. OUT/images/test of `evaluate --save-images`)")
    p.add_argument("--data", required=True, help="dataset folder from `uirbench generate` that the images restore")
    p.add_argument("--name", required=True, help="entry name: letters, digits, . _ + - (the file ENTRIES/NAME.json)")
    p.add_argument("--split", default="test", help="split the images restore (default test)")
    p.add_argument("--entries", default=ENTRIES_DIR, help=f"entries folder (default ./{ENTRIES_DIR})")
    p.add_argument("--replace", action="store_true", help="replace an existing entry of the same name")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("leaderboard", help="render the leaderboard (tables, figures, static page) from its entries")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    b = actions.add_parser("build", help="render README.md, CSV/LaTeX tables, figures and index.html from the entries",
                           description="Rank recomputed entries per dataset and metric spec with tied-rank groups from "
                                       "95%% CIs; list self-reported entries apart. Output is deterministic.")
    b.add_argument("--entries", default=ENTRIES_DIR, help=f"entries folder (default ./{ENTRIES_DIR})")
    b.add_argument("--out", default=LEADERBOARD_DIR, help=f"output folder (default ./{LEADERBOARD_DIR})")
    b.set_defaults(func=cmd_leaderboard_build)
