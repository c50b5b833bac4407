"""``uirbench verify``: recompute every file hash and the fingerprint of a generated dataset."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from uirbench.generate import MANIFEST
from uirbench.io import sha256_file


def verify(out: str | os.PathLike[str]) -> dict[str, Any]:
    """Recompute every file hash and the fingerprint of a generated dataset; returns mismatches."""
    out = Path(out)
    if not (out / "suite.json").exists():
        raise ValueError(f"{out}: not a uirbench dataset (no suite.json)")
    manifest_hash = hashlib.sha256()
    problems, checked = [], 0
    for manifest in sorted(out.glob(f"*/{MANIFEST}")):
        split = manifest.parent.name
        text = manifest.read_text(encoding="utf-8")
        manifest_hash.update(split.encode() + b"\n" + text.encode())
        target_cache: dict[str, str] = {}
        for line in text.splitlines():
            row = json.loads(line)
            for key in ("input", "target"):
                rel = row[f"{key}_file_name"]
                path = manifest.parent / rel
                if not path.exists():
                    problems.append(f"{split}/{rel}: missing")
                    continue
                digest = target_cache.get(rel) or sha256_file(path)
                if key == "target":
                    target_cache[rel] = digest
                if digest != row[f"{key}_sha256"]:
                    problems.append(f"{split}/{rel}: sha256 {digest[:12]}... != manifest {row[f'{key}_sha256'][:12]}...")
                checked += 1
    recorded = json.loads((out / "fingerprint.json").read_text())["fingerprint"] if (out / "fingerprint.json").exists() else None
    if recorded != manifest_hash.hexdigest():
        problems.append(f"fingerprint.json: recorded {recorded} != recomputed {manifest_hash.hexdigest()}")
    return {"files_checked": checked, "problems": problems, "fingerprint": manifest_hash.hexdigest()}
