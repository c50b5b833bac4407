"""Checksum manifests: what marks a save complete, and proves its files intact before they are loaded.

A save that writes several files into a folder (a checkpoint, a training state, a backbone) ends by
writing ``checksums.json`` into it: the sha256 and size of each file of the save, and the sha256 of
that list itself, so that a damaged manifest is told apart from a damaged file::

    {"format": "uirbench-checksums", "version": 1,
     "files": {"model.json": {"sha256": "9f00...", "size": 528}, ...},
     "sha256": "<sha256 of the "files" value as canonical JSON (sorted keys, no spaces)>"}

Order of a save: ``unseal`` (remove the manifest) before the first file is written, ``seal`` (write
it, atomically) after the last one. So a folder with a manifest holds a finished save, and one
without holds an interrupted save (or one written by a uirbench without checksums).

Loading: ``verify`` hashes every listed file first and raises a :class:`CheckpointError` naming each
file that is missing, of another size or of another sha256 (or the manifest, when it is missing or
damaged). Files the manifest does not list (logs, a README, later additions) are not checked. A
manifest may list another folder's manifest (a UIR-LoRA checkpoint lists ``backbone/checksums.json``):
that folder is verified when it is loaded, so every file is hashed once. ``loading`` is the second
line of defence: any error of a library reading a file (safetensors, torch.load, pickle, diffusers,
json) becomes a ``CheckpointError`` naming the file. Callers add the way out (``recovery``): it
depends on where the folder came from (a training run, a stage, the installed package).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from uirbench.errors import CheckpointError
from uirbench.io import display_path, sha256_file, write_json

MANIFEST = "checksums.json"
FORMAT = "uirbench-checksums"
VERSION = 1
SHOWN = 3
"""Problems listed in one error message (the rest are counted)."""


def _digest(files: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def unseal(folder: str | Path) -> None:
    """Mark ``folder`` as being written: remove its manifest. Call before the first file of a save is written."""
    (Path(folder) / MANIFEST).unlink(missing_ok=True)


def seal(folder: str | Path, files: Iterable[str] | None = None) -> None:
    """Write ``folder``'s manifest over ``files`` (paths relative to it, ``/``-separated; None: every file
    under it). Call after every one of them is written."""
    folder = Path(folder)
    if files is None:
        files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST]
    entries = {}
    for name in sorted(files):
        path = folder / name
        entries[name] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    write_json(folder / MANIFEST, {"format": FORMAT, "version": VERSION, "files": entries, "sha256": _digest(entries)})


def _entries(folder: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The manifest's file entries, or None and what is wrong with the manifest."""
    try:
        data = json.loads((folder / MANIFEST).read_bytes())
    except FileNotFoundError:
        return None, (f"{MANIFEST} is missing: the save was interrupted before it finished, "
                      "or the folder was written by a uirbench without checksums")
    except (OSError, ValueError) as exc:
        return None, f"{MANIFEST} is unreadable ({' '.join(str(exc).split())})"
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or data.get("format") != FORMAT or data.get("sha256") != _digest(files):
        return None, f"{MANIFEST} is corrupt (not a {FORMAT} file, or its content does not match its own sha256)"
    if data.get("version") != VERSION:
        return None, f"{MANIFEST} is a {FORMAT} version {data.get('version')!r} file; this uirbench reads version {VERSION}"
    for name, entry in files.items():
        parts = PurePosixPath(name).parts
        if not parts or PurePosixPath(name).is_absolute() or ".." in parts or not isinstance(entry, dict) \
                or not isinstance(entry.get("size"), int) or not isinstance(entry.get("sha256"), str):
            return None, f"{MANIFEST} is corrupt (bad entry {name!r})"
    return files, None


def recorded(folder: str | Path) -> dict[str, Any] | None:
    """The manifest's entries (file name -> ``{"sha256", "size"}``) when the manifest is intact, else None; the files
    themselves are not read (``problems`` checks them)."""
    return _entries(Path(folder))[0]


def problems(folder: str | Path) -> list[str]:
    """What is wrong with ``folder`` against its manifest, one entry per file (empty: every listed file is intact)."""
    folder = Path(folder)
    files, problem = _entries(folder)
    if files is None:
        return [problem]
    found = []
    for name, entry in files.items():
        path = folder / name
        if not path.is_file():
            found.append(f"{name} is missing")
            continue
        size = path.stat().st_size
        if size != entry["size"]:
            found.append(f"{name} has {size:,} bytes where {MANIFEST} records {entry['size']:,} (truncated or overwritten)")
        elif sha256_file(path) != entry["sha256"]:
            found.append(f"{name} is corrupt (its sha256 differs from the one in {MANIFEST})")
    return found


def verify(folder: str | Path, what: str) -> None:
    """Raise a CheckpointError ``"<what> <folder> is damaged: <file> <problem>; ..."`` (``is incomplete`` without a
    manifest) unless every listed file is intact."""
    found = problems(folder)
    if found:
        state = "incomplete" if found[0].startswith(f"{MANIFEST} is missing") else "damaged"
        more = f"; and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
        raise CheckpointError(f"{what} {display_path(folder)} is {state}: {'; '.join(found[:SHOWN])}{more}.")


def unreadable(path: str | Path, exc: BaseException) -> CheckpointError:
    """The error for a file (or folder) at ``path`` that a library failed to read with ``exc``."""
    detail = " ".join(str(exc).split()).split(". ")[0]  # the first sentence: torch.load goes on with advice that misleads here
    detail = detail if len(detail) <= 400 else detail[:400] + "..."
    return CheckpointError(f"{display_path(path)} cannot be loaded: it is truncated or corrupt, or not the file "
                           f"this model expects ({type(exc).__name__}: {detail}).")


@contextmanager
def loading(path: str | Path) -> Iterator[None]:
    """Turn any error raised while a library reads ``path`` into a CheckpointError naming it."""
    try:
        yield
    except CheckpointError:
        raise
    except Exception as exc:
        raise unreadable(path, exc) from exc


@contextmanager
def recovery(hint: str) -> Iterator[None]:
    """Append ``hint`` (the way out) to a CheckpointError raised inside."""
    try:
        yield
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} {hint}") from exc
