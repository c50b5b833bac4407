"""``uirbench verify``: check a dataset folder against its manifests and its fingerprint.

Every input and target is decoded and its pixel hash compared with the manifest (a mismatch or a
missing/undecodable file is a problem). A file whose bytes differ from the recorded file hash but
whose pixels match was re-encoded (another PNG encoder or compression level): that is reported
apart and is not a problem, because the dataset's identity is its pixels (``manifest.py``). The
fingerprint is recomputed from the manifests and ``suite.json`` (suite name and seed) and compared
with ``fingerprint.json`` and, when given, with the published value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from uirbench.errors import UserError
from uirbench.io import ImageError, read_image, sha256_file
from uirbench.manifest import (
    MANIFEST,
    ManifestError,
    fingerprint,
    load_manifest,
    pixel_sha256,
    read_fingerprint,
    suite_identity,
)


def check_fingerprint_arg(text: str) -> str:
    """A published fingerprint as given on the command line: 8-64 hex digits (a prefix is allowed)."""
    value = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{8,64}", value):
        raise UserError(f"--fingerprint {text!r}: expected 8 to 64 hexadecimal digits (a prefix of the published fingerprint)")
    return value


def _count_problems(listed: dict[str, Any], manifests: dict[str, list[dict[str, Any]]], unreadable: set[str]) -> list[str]:
    """Splits whose manifest is missing or holds another number of rows than fingerprint.json lists
    (an ``unreadable`` manifest is reported where it is read)."""
    problems = []
    for split, count in listed.items():
        found = len(manifests[split]) if split in manifests else None
        if found != count and split not in unreadable:
            shown = "missing" if found is None else f"{found} rows"
            problems.append(f"{split}/{MANIFEST}: {shown}, but fingerprint.json lists {count} {split} pairs")
    return problems


def checked_manifests(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Every split's manifest rows, after checking that they and ``suite.json`` give ``fingerprint.json``'s
    fingerprint (no decoding: a fast guard for evaluate); a mismatch is a :class:`ManifestError`."""
    manifests = {p.parent.name: load_manifest(out, p.parent.name) for p in sorted(out.glob(f"*/{MANIFEST}"))}
    recomputed = fingerprint(*suite_identity(out), manifests)
    record = read_fingerprint(out)
    for problem in _count_problems(record["pairs"], manifests, set()):
        raise ManifestError(f"{out}/{problem}")
    recorded = record["fingerprint"]
    if recorded != recomputed:
        raise ManifestError(f"{out / 'fingerprint.json'}: records {recorded[:12]}... but the manifests and suite.json give "
                            f"{recomputed[:12]}...: the dataset was edited; `uirbench verify {out}` lists what differs")
    return manifests


def _check_file(path: Path, label: str, row: dict[str, Any], key: str, problems: list[str], reencoded: list[str]) -> None:
    if not path.is_file():
        problems.append(f"{label}: missing")
        return
    try:
        pixels = pixel_sha256(read_image(path))
    except ImageError as exc:
        problems.append(f"{label}: cannot be decoded ({exc})")
        return
    if pixels != row.get(f"{key}_pixels"):
        problems.append(f"{label}: pixels {pixels[:12]}... != manifest {str(row.get(f'{key}_pixels'))[:12]}...")
    elif sha256_file(path) != row.get(f"{key}_sha256"):
        reencoded.append(label)


def verify(out: str | os.PathLike[str], expected: str | None = None) -> dict[str, Any]:
    """Check pixels, manifests and fingerprint of a dataset folder.

    Returns ``files_checked``, ``problems`` (each names a file), ``reencoded`` (files whose bytes
    changed but whose pixels did not), ``fingerprint`` (recomputed; None if it cannot be) and
    ``recorded`` (``fingerprint.json``'s). ``expected``: a published fingerprint (or a prefix of
    at least 8 hex digits) the folder must match. Raises :class:`ManifestError` when ``out`` is not
    a dataset folder.
    """
    out = Path(out)
    if not (out / "suite.json").exists():
        raise ManifestError(f"{out}: not a uirbench dataset (no suite.json)")
    problems: list[str] = []
    reencoded: list[str] = []
    manifests: dict[str, list[dict[str, Any]]] = {}
    unreadable: set[str] = set()
    for path in sorted(out.glob(f"*/{MANIFEST}")):
        try:
            manifests[path.parent.name] = load_manifest(out, path.parent.name)
        except ManifestError as exc:
            problems.append(str(exc))
            unreadable.add(path.parent.name)
    checked = 0
    for split, rows in manifests.items():
        seen: set[str] = set()
        for row in rows:
            for key in ("input", "target"):
                rel = row[f"{key}_file_name"]
                if key == "target" and rel in seen:
                    continue  # each clean image once, however many pairs use it
                seen.add(rel)
                _check_file(out / split / rel, f"{split}/{rel}", row, key, problems, reencoded)
                checked += 1
    recomputed = recorded = None
    try:
        record = read_fingerprint(out)
        recorded = record["fingerprint"]
        problems += _count_problems(record["pairs"], manifests, unreadable)
    except ManifestError as exc:
        problems.append(str(exc))
    try:
        recomputed = fingerprint(*suite_identity(out), manifests)
    except ManifestError as exc:
        problems.append(f"fingerprint cannot be recomputed: {exc}")
    if recomputed is not None and recorded is not None and recorded != recomputed:
        problems.append(f"fingerprint.json: recorded {recorded} != recomputed {recomputed} (a manifest or suite.json was edited)")
    if expected is not None and recomputed is not None and not recomputed.startswith(expected):
        problems.append(f"--fingerprint {expected}: this folder's fingerprint is {recomputed}; it is not that dataset")
    return {"files_checked": checked, "problems": problems, "reencoded": reencoded, "fingerprint": recomputed,
            "recorded": recorded}
