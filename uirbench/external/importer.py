"""``uirbench import``: an existing paired folder -> a uirbench dataset that evaluate, submit, verify and the leaderboard read.

Steps: the layout rule (``layouts.py``, ``public.py``) finds the pairs by their names; then, before
anything is written, every pair is checked: input and target sizes from the image headers, one target
per clean image. Every problem (missing target, target without input, two files for one image, a
size mismatch, an unreadable header) is listed, naming the files, and the import stops; with
``--skip-bad`` those pairs are left out and listed in ``OUT/skipped.jsonl``. ``writer.py`` writes
the dataset (manifest rows with the degradation label(s), the severity where the set states one,
the parameters its file names give, source file and licence; pixel hashes; fingerprint; card).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uirbench.errors import UserError
from uirbench.external.layouts import LAYOUTS, Found, LayoutOptions, rel
from uirbench.external.writer import DatasetInfo, PlannedPair, pair_id, write_dataset

SHOWN_PROBLEMS = 8
OPTION_FLAGS = {"blur_folder": "--blur-folder", "degradation": "--degradation", "input_dir": "--input-dir",
                "target_dir": "--target-dir"}


class PairingError(UserError):
    """Pairs of an imported folder that do not match up; the message lists the files."""


@dataclass(frozen=True)
class ImportConfig:
    """Arguments of ``uirbench import`` (see ``--help``)."""

    layout: str
    source: str
    out: str | None = None
    split: str = "test"
    license: str | None = None
    skip_bad: bool = False
    options: LayoutOptions = field(default_factory=LayoutOptions)
    command: str = ""


def _check_options(layout: str, options: LayoutOptions) -> None:
    """Refuse a layout option given to a layout that does not read it (it would be ignored silently)."""
    taken = LAYOUTS.spec(layout).options
    for f in dataclasses.fields(options):
        if f.name not in taken and getattr(options, f.name) != f.default:
            readers = [n for n in LAYOUTS.names() if f.name in LAYOUTS.spec(n).options]
            raise UserError(f"{OPTION_FLAGS[f.name]}: layout {layout} does not read it (it applies to {', '.join(readers)})")


def _header_sizes(found: Found, root: Path) -> None:
    """Drop pairs whose input and target sizes differ or whose header cannot be read (problems naming both files)."""
    from PIL import Image

    sizes: dict[Path, Any] = {}

    def size(path: Path) -> Any:
        if path not in sizes:
            try:
                with Image.open(path) as image:
                    sizes[path] = image.size
            except Exception as exc:  # Pillow raises several types for a bad file; the message says which
                sizes[path] = f"not a readable image ({exc})"
        return sizes[path]

    kept = []
    for pair in found.pairs:
        a, b = size(pair.input), size(pair.target)
        if isinstance(a, str) or isinstance(b, str):
            found.problems += [f"{rel(p, root)}: {s}" for p, s in ((pair.input, a), (pair.target, b)) if isinstance(s, str)]
        elif a != b:
            found.problems.append(f"{rel(pair.input, root)} is {a[0]}x{a[1]} px but its target {rel(pair.target, root)} "
                                  f"is {b[0]}x{b[1]} px")
        else:
            kept.append(pair)
    found.pairs = kept


def _one_target_per_image(found: Found, root: Path) -> None:
    targets: dict[str, set[Path]] = defaultdict(set)
    for pair in found.pairs:
        targets[pair.image_id].add(pair.target)
    clashes = {k for k, v in targets.items() if len(v) > 1}
    found.problems += [f"{', '.join(rel(p, root) for p in sorted(targets[k]))}: several targets for image id {k!r}"
                       for k in sorted(clashes)]
    found.pairs = [p for p in found.pairs if p.image_id not in clashes]


def find_pairs(layout: str, source: str | Path, options: LayoutOptions | None = None,
               license: str | None = None) -> tuple[list[PlannedPair], list[str], list[str]]:
    """(planned pairs, problems, notes) of ``source`` read with ``layout``; problems name files and drop their pairs."""
    rule = LAYOUTS.get(layout)
    options = options or LayoutOptions()
    _check_options(layout, options)
    root = Path(source)
    if not (root.is_file() if layout == "csv" else root.is_dir()):
        raise UserError(f"{source}: no such {'file' if layout == 'csv' else 'folder'}; layout {layout} expects "
                        f"{LAYOUTS.spec(layout).expects}")
    found = rule(root, options)
    if root.is_file():
        root = root.parent
    found.pairs = [p for p in found.pairs if not {p.input, p.target} & found.ambiguous]
    _header_sizes(found, root)
    _one_target_per_image(found, root)
    copies: dict[tuple[str, str], int] = defaultdict(int)
    planned = []
    for pair in sorted(found.pairs, key=lambda p: (p.image_id, p.degradation, str(p.input))):
        copy = copies[(pair.image_id, pair.degradation)]
        copies[(pair.image_id, pair.degradation)] += 1
        planned.append(PlannedPair(pair_id(pair.image_id, pair.track, pair.degradation, "ext", copy), pair.image_id, pair.target,
                                   pair.input, pair.degradation, pair.track, copy=copy, params=pair.params,
                                   source=f"{layout}:{rel(pair.input, root)}", license=license or LAYOUTS.spec(layout).license))
    return planned, found.problems, found.notes


def refuse_problems(problems: list[str], where: str) -> None:
    """Stop with every problem counted and the first ones named (one line), pointing at ``--skip-bad``."""
    if problems:
        more = len(problems) - SHOWN_PROBLEMS
        shown = "; ".join(problems[:SHOWN_PROBLEMS]) + (f"; ... and {more} more" if more > 0 else "")
        raise PairingError(f"{where}: {len(problems)} problem(s): {shown} (fix them, or use --skip-bad to leave those pairs "
                           "out and list them in OUT/skipped.jsonl)")


def import_dataset(config: ImportConfig) -> dict[str, Any]:
    """Import ``config.source`` with ``config.layout`` into ``config.out`` (default ``uirbench-<layout>``); returns a summary."""
    if not config.split or "/" in config.split:
        raise UserError(f"--split {config.split!r}: expected a split name such as test or train")
    planned, problems, notes = find_pairs(config.layout, config.source, config.options, config.license)
    if not config.skip_bad:
        refuse_problems(problems, f"{config.source} (layout {config.layout})")
    spec = LAYOUTS.spec(config.layout)
    description = f"pairs imported with `uirbench import {config.layout}`" + (f": {spec.paper} ({spec.url})" if spec.url != "-" else "")
    info = DatasetInfo(suite=config.layout, split=config.split, source=f"{config.layout}:{config.source}", command=config.command,
                       description=description)
    summary = write_dataset(Path(config.out or f"uirbench-{config.layout}"), info, planned, problems, config.skip_bad)
    return {**summary, "notes": notes}
