"""The append-only journals of ``uirbench generate``: finished rows per shard, and skipped images.

A row is appended (and fsynced) only after its files exist under their final names, so a run killed
at any moment resumes from its journal; a torn last line (kill -9 mid-write) is dropped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from uirbench.io import write_bytes

ROWS_DIR = ".rows"


class Journal:
    """Append-only JSONL of finished rows for one shard; a torn last line (kill -9) is dropped."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                with open(path, "r+b") as fh:
                    fh.truncate(data.rfind(b"\n") + 1)
        self._fh = open(path, "a", encoding="utf-8")

    def append(self, records: list[dict[str, Any]]) -> None:
        for rec in records:
            self._fh.write(json.dumps(rec, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def read_journals(out: Path) -> dict[str, dict[str, Any]]:
    """Rows of every shard journal, keyed by ``split/input_file_name`` (later duplicates agree)."""
    rows: dict[str, dict[str, Any]] = {}
    for path in sorted((out / ROWS_DIR).glob("shard-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn final line of a killed run
            if "input_file_name" in row:
                rows[f"{row['split']}/{row['input_file_name']}"] = row
    return rows


def read_skipped(out: Path) -> set[str]:
    path = out / "skipped.jsonl"
    if not path.exists():
        return set()
    return {json.loads(line)["image_id"] for line in path.read_text().splitlines() if line.strip()}


def append_skipped(out: Path, result: dict[str, Any]) -> None:
    path = out / "skipped.jsonl"
    existing = path.read_bytes() if path.exists() else b""
    write_bytes(path, existing + (json.dumps(result, sort_keys=True) + "\n").encode())
