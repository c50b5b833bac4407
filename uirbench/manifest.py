"""The dataset schema read by every stage: manifest rows, pixel hashes and the fingerprint recipe.

A dataset's identity is its *content*, never its encoding. PNG encoders (OpenCV, Pillow, zlib
versions and settings) write different bytes for the same pixels, so the file hashes
(``input_sha256``/``target_sha256``) only tell whether a file was re-encoded; the identity comes
from the **pixel hashes** and the semantic fields of each row.

The exact recipe is :data:`RECIPE_TEXT` (printed in every dataset card and the README), so anyone
can recompute a fingerprint with numpy and Pillow alone. Floats in ``params`` are rounded to
``PARAM_DIGITS`` significant digits so that a last-bit difference of a transcendental function
between CPUs cannot move the fingerprint.

>>> import numpy as np
>>> pixel_sha256(np.zeros((1, 2, 3), np.uint8))[:16]
'0c30bbcda1b776c7'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from uirbench.errors import UserError

MANIFEST = "metadata.jsonl"
FINGERPRINT_RECIPE = "uirbench-pixels-1"
PARAM_DIGITS = 10
SEMANTIC_FIELDS = ("input_file_name", "target_file_name", "image_id", "degradation", "labels", "severity", "range",
                   "track", "copy", "params", "input_pixels", "target_pixels")
"""Row fields that define a pair. Everything else in a row (file hashes, sizes, input PSNR/SSIM,
source, licence, depth-map name) describes it and may be recomputed without changing the dataset."""
REQUIRED_FIELDS = (*SEMANTIC_FIELDS, "height", "width")
"""Fields every manifest row must have (the stages read them)."""

RECIPE_TEXT = """\
The fingerprint identifies the pixels, not the PNG bytes: re-encoding the files (another encoder or
compression level) changes `input_sha256`/`target_sha256` but not the fingerprint, and
`uirbench verify THIS_FOLDER --fingerprint HEX` checks both. To recompute it without uirbench:

- pixel hash of an image: `sha256(b"uint8 {H}x{W}x3\\n" + rgb.tobytes())`, where `rgb` is the decoded
  HxWx3 uint8 RGB array, row-major (`np.asarray(PIL.Image.open(path).convert("RGB"))`); the manifests
  record it as `input_pixels` and `target_pixels`;
- fingerprint: sha256 of the header line `{"recipe":"uirbench-pixels-1","seed":SEED,"suite":"NAME"}`
  (from `suite.json`), then for each split in sorted order and each row sorted by `input_file_name`
  one line with the fields `input_file_name, target_file_name, image_id, degradation, labels, severity,
  range, track, copy, params, input_pixels, target_pixels` plus `split`, where `params` is the parsed
  JSON with every float rounded to 10 significant digits (`float(f"{x:.10g}")`); every line is
  `json.dumps(obj, sort_keys=True, separators=(",", ":"))` followed by a newline.
"""
"""The recipe of pixel hashes and fingerprints, in words (markdown)."""


class ManifestError(UserError):
    """A manifest, suite.json or fingerprint.json that cannot be read; the message names the file and line."""


def pixel_sha256(image: np.ndarray) -> str:
    """Pixel hash of an HxWx3 uint8 RGB array (recipe: :data:`RECIPE_TEXT`)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise UserError(f"pixel_sha256: expected an HxWx3 uint8 array, got {image.dtype} {image.shape}")
    digest = hashlib.sha256(f"uint8 {image.shape[0]}x{image.shape[1]}x3\n".encode())
    digest.update(np.ascontiguousarray(image))  # the array's buffer itself: no copy to bytes
    return digest.hexdigest()


def _round_floats(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{PARAM_DIGITS}g}")
    if isinstance(value, list):
        return [_round_floats(v) for v in value]
    if isinstance(value, dict):
        return {k: _round_floats(v) for k, v in value.items()}
    return value


def _line(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n").encode()


def semantic_row(row: Mapping[str, Any], split: str) -> dict[str, Any]:
    """The part of a manifest row that enters the fingerprint (``params`` parsed, floats rounded)."""
    fields = {key: row[key] for key in SEMANTIC_FIELDS}
    fields["params"] = _round_floats(json.loads(row["params"]))
    return {**fields, "split": split}


def source_fingerprint(images: Mapping[str, str | None]) -> str:
    """Fingerprint of the clean source images (suite.json's ``images``: image id -> pixel hash): sha256 of one line
    ``"{image_id} {pixel_sha256}\\n"`` per image, sorted by id (an unreadable image's hash is ``None``). It checks a
    local copy of a published source (e.g. CBSD68): the same images, whatever their file format, give the same value.
    It covers the images a run chose (all of them unless ``--limit`` or ``--splits`` narrowed the choice).

    >>> source_fingerprint({"b": "22", "a": "11"})[:12]
    '286ac3fb2fd8'
    """
    return hashlib.sha256("".join(f"{k} {images[k]}\n" for k in sorted(images)).encode()).hexdigest()


def fingerprint(suite: str, seed: int, manifests: Mapping[str, Iterable[Mapping[str, Any]]]) -> str:
    """Fingerprint of a dataset from its suite name, seed and per-split manifest rows (any order)."""
    digest = hashlib.sha256(_line({"recipe": FINGERPRINT_RECIPE, "seed": seed, "suite": suite}))
    for split in sorted(manifests):
        for row in sorted(manifests[split], key=lambda r: r["input_file_name"]):
            digest.update(_line(semantic_row(row, split)))
    return digest.hexdigest()


def read_json(path: Path) -> Any:
    """Parse a JSON file; a missing, unreadable or malformed file is a :class:`ManifestError` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: missing") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc


def read_fingerprint(out: Path) -> dict[str, Any]:
    """``out/fingerprint.json``: ``fingerprint`` (hex) and ``pairs`` (split -> count); refused when it was
    made by another recipe (an older uirbench) or lacks either field."""
    path = Path(out) / "fingerprint.json"
    record = read_json(path)
    if not isinstance(record, dict) or record.get("recipe") != FINGERPRINT_RECIPE or not isinstance(record.get("fingerprint"), str) \
            or not isinstance(record.get("pairs"), dict):
        raise ManifestError(f"{path}: not a {FINGERPRINT_RECIPE} fingerprint (made by an older uirbench, whose fingerprint "
                            "hashed encoded PNG bytes); regenerate the dataset with this version")
    return record


def suite_identity(out: Path) -> tuple[str, int]:
    """(suite name, seed) recorded in ``out/suite.json``, the part of it that enters the fingerprint."""
    path = Path(out) / "suite.json"
    meta = read_json(path)
    try:
        name, seed = meta["suite"]["name"], meta["seed"]
    except (KeyError, TypeError) as exc:
        raise ManifestError(f"{path}: no suite name or seed ({exc!r} missing)") from exc
    if not isinstance(name, str) or not isinstance(seed, int) or isinstance(seed, bool):
        raise ManifestError(f"{path}: suite name must be a string and seed an integer, got {name!r}, {seed!r}")
    return name, seed


def source_identity(out: Path) -> dict[str, str]:
    """Where a dataset's clean images came from, as ``out/suite.json`` records it: ``source`` (as given to generate
    or import) and ``source_fingerprint`` (:func:`source_fingerprint` of its images); absent fields are left out."""
    meta = read_json(Path(out) / "suite.json")
    identity = {"source": meta["source"]} if isinstance(meta.get("source"), str) else {}
    if isinstance(meta.get("images"), dict) and meta["images"]:
        identity["source_fingerprint"] = source_fingerprint(meta["images"])
    return identity


def load_manifest(out: Path, split: str) -> list[dict[str, Any]]:
    """Rows of ``out/split/metadata.jsonl``; an unparsable line is a :class:`ManifestError` naming file and line."""
    path = Path(out) / split / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read ({exc})") from exc
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}, line {number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise ManifestError(f"{path}, line {number}: not a manifest row (a JSON object)")
        missing = [key for key in REQUIRED_FIELDS if key not in row]
        if missing:
            raise ManifestError(f"{path}, line {number}: missing {', '.join(missing)} (a dataset from an older uirbench, "
                                "without pixel hashes? regenerate it)")
        bad = [key for key in ("input_file_name", "target_file_name", "params") if not isinstance(row[key], str)]
        bad += [key for key in ("height", "width") if not isinstance(row[key], int) or isinstance(row[key], bool)]
        if bad:
            raise ManifestError(f"{path}, line {number}: wrong type for {', '.join(bad)}")
        try:
            json.loads(row["params"])
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}, line {number}: params is not valid JSON ({exc.msg})") from exc
        rows.append(row)
    return rows
