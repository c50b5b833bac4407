"""Layout rules: where the pairs of a public paired test set are, and what each pair is.

A rule maps a folder laid out as the set's publisher (or a common repackaging) ships it to
:class:`SourcePair` records (input file, target file, the clean image's id, degradation label,
track, the parameters its file names state) plus *problems* (an input without its target, a target
without input, two files for one image), each naming the files. It reads only names: the importer
(``importer.py``) checks sizes, refuses or skips the problems and writes the dataset.

Rules are registered in :data:`LAYOUTS` (``@LAYOUTS.register("name", ...)``, a :class:`LayoutSpec`);
the built-ins live in ``public.py`` (Rain100L, SOTS outdoor, LOL-v1, GoPro, CDD-11) and here
(``generic``: two folders with the same stems; ``csv``: a table of pairs). A plugin registers more
through the ``uirbench`` entry-point group.

Image ids of the public sets are ``<layout>-<stem>``, so two repackagings of the same set give the
same manifest rows and the same fingerprint; ``track`` is the set for single-task sets and
``single``/``mixed``/``unseen`` (:func:`track_of`) for label-driven ones (CDD-11, generic, csv).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uirbench.errors import UserError
from uirbench.io import IMAGE_SUFFIXES
from uirbench.registry import DEGRADATIONS, Registry


@dataclass(frozen=True)
class LayoutSpec:
    """A layout rule: the files it expects, the set's paper, where to get it, its licence, the options it reads."""

    expects: str
    paper: str
    url: str
    license: str
    options: tuple[str, ...] = ()


LAYOUTS: Registry[LayoutSpec] = Registry("layout", LayoutSpec, ("uirbench.external.public", "uirbench.external.layouts"))


@dataclass(frozen=True)
class LayoutOptions:
    """Settings of the rules that take some (see each :class:`LayoutSpec`'s ``options``)."""

    blur_folder: str = "blur"
    degradation: str | None = None
    input_dir: str = "input"
    target_dir: str = "target"


@dataclass(frozen=True)
class SourcePair:
    """One pair as a rule found it; ``params``: what the file names state (SOTS: airlight A, beta), JSON values."""

    input: Path
    target: Path
    image_id: str
    degradation: str
    track: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass
class Found:
    """What a rule found under a folder: pairs, problems (one line each, naming the files) and notes for the user."""

    pairs: list[SourcePair] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ambiguous: set[Path] = field(default_factory=set)
    """Files that share their image with another file (a problem already): no pair may use them."""


Rule = Callable[[Path, LayoutOptions], Found]


def labels_of(degradation: str) -> list[str]:
    """Family labels of a ``+``-joined label; a part uirbench does not know (snow) is its own, unseen, label.

    >>> labels_of("lowlight+haze+snow")
    ['haze', 'lowlight', 'snow']
    """
    return sorted({DEGRADATIONS.spec(p).family if p in DEGRADATIONS else p for p in degradation.split("+")})


def track_of(degradation: str) -> str:
    """``unseen`` when a part is no uirbench degradation, else ``mixed`` for a chain, else ``single``."""
    parts = degradation.split("+")
    return "unseen" if any(p not in DEGRADATIONS for p in parts) else "mixed" if len(parts) > 1 else "single"


def images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (by suffix, hidden files such as macOS ``._x.png`` left out), sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def index(files: list[Path], key: Callable[[Path], str], root: Path, found: Found) -> dict[str, Path]:
    """``{key(file): file}``; two files with one key are a problem (both named) and ``ambiguous``."""
    table: dict[str, Path] = {}
    for path in files:
        k = key(path)
        if k in table:
            found.problems.append(f"{rel(table[k], root)} and {rel(path, root)}: two files for image {k!r}")
            found.ambiguous.update((table[k], path))
        else:
            table[k] = path
    return table


def rel(path: Path, root: Path) -> str:
    """``path`` relative to the imported folder (messages and the manifest's ``source`` name no machine path)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def match(inputs: dict[str, Path], targets: dict[str, Path], root: Path, found: Found,
          make: Callable[[str, Path, Path], SourcePair], where: str = "") -> None:
    """Pair ``inputs`` with ``targets`` by key; an input without target and a target without input (in ``where``)
    are problems."""
    for k, path in sorted(inputs.items()):
        if k in targets:
            found.pairs.append(make(k, path, targets[k]))
        else:
            found.problems.append(f"{rel(path, root)}: no target image for it")
    for k, path in sorted(targets.items()):
        if k not in inputs:
            found.problems.append(f"{rel(path, root)}: target without an input image{where}")


def folder(root: Path, name: str, flag: str = "") -> Path:
    """``root/name``, which must be a folder (the error says which layout needs it)."""
    path = root / name
    if not path.is_dir():
        raise UserError(f"{root}: no folder {name}/{flag}")
    return path


@LAYOUTS.register("generic", expects="SOURCE/input/*.png and SOURCE/target/*.png, paired by file stem (rename the folders "
                                     "with --input-dir/--target-dir); every pair gets the label --degradation",
                  paper="-", url="-", license="stated by you (--license)", options=("degradation", "input_dir", "target_dir"))
def generic(root: Path, options: LayoutOptions) -> Found:
    label = required_label(options)
    found = Found()
    inputs = index(images(folder(root, options.input_dir, " (--input-dir)")), lambda p: p.stem, root, found)
    targets = index(images(folder(root, options.target_dir, " (--target-dir)")), lambda p: p.stem, root, found)
    match(inputs, targets, root, found, lambda k, i, t: SourcePair(i, t, k, label, track_of(label)))
    return found


@LAYOUTS.register("csv", expects="SOURCE is a CSV file with columns input,target (paths relative to the CSV's folder) and "
                                 "optionally degradation (else --degradation labels every pair)",
                  paper="-", url="-", license="stated by you (--license)", options=("degradation",))
def pairs_csv(path: Path, options: LayoutOptions) -> Found:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            table = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: cannot read the CSV of pairs ({exc})") from exc
    columns = set(table[0]) if table else set()
    if not {"input", "target"} <= columns:
        raise UserError(f"{path}: needs the columns input and target (and optionally degradation); found {sorted(columns) or 'no rows'}")
    found, root, seen = Found(), path.parent, set()
    for line, row in enumerate(table, start=2):
        where = f"{path.name}, line {line}"
        names = [(row.get(key) or "").strip() for key in ("input", "target")]
        missing = [name or "(empty)" for name in names if not name or not (root / name).is_file()]
        if missing:
            found.problems.append(f"{where}: no file {', '.join(missing)}")
        elif tuple(names) in seen:
            found.problems.append(f"{where}: the pair {names[0]}, {names[1]} is listed twice")
        else:
            seen.add(tuple(names))
            label = check_label((row.get("degradation") or "").strip() or options.degradation, f"{where}: degradation")
            found.pairs.append(SourcePair(root / names[0], root / names[1], Path(names[1]).stem, label, track_of(label)))
    return found


def required_label(options: LayoutOptions) -> str:
    return check_label(options.degradation, "--degradation")


def check_label(label: str | None, where: str) -> str:
    """A pair label: a degradation name or a ``+``-joined chain of lowercase names (a name uirbench lacks is unseen)."""
    if not label or not re.fullmatch(r"[a-z0-9_-]+(\+[a-z0-9_-]+)*", label):
        raise UserError(f"{where} {label!r}: the label of the pairs, a degradation name or a +-joined chain (e.g. rain, "
                        "haze+rain; `uirbench list degradations` lists uirbench's, another name is imported as unseen)")
    return label
