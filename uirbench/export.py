"""``generate --format parquet``: the finished dataset as Parquet files with embedded image bytes.

One file per split, ``OUT/parquet/<split>-00000-of-00001.parquet``, holding the manifest columns
plus ``input`` and ``target`` as Hugging Face ``Image`` features whose PNG bytes are embedded (a
Parquet file that only stored paths would be useless once moved). The PNG layout stays the
canonical form (hashes, ``verify``); load with ``datasets.load_dataset("parquet", data_dir=OUT/parquet)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from uirbench.manifest import load_manifest

PARQUET_DIR = "parquet"


def _rows(out: Path, split: str) -> Iterator[dict[str, Any]]:
    split_dir = out / split
    for row in load_manifest(out, split):
        record = dict(row)
        for key in ("input", "target"):
            name = record.pop(f"{key}_file_name")
            record[key] = {"bytes": (split_dir / name).read_bytes(), "path": name}
        yield record


def write_parquet(out: Path, splits: list[str]) -> list[Path]:
    """Write one Parquet file per split (streamed through an on-disk Arrow cache, not held in memory)."""
    import datasets

    written = []
    for split in splits:
        first = next(_rows(out, split))
        features = datasets.Features({
            key: datasets.Image() if key in ("input", "target") else datasets.Dataset.from_list([{key: value}]).features[key]
            for key, value in first.items()
        })
        ds = datasets.Dataset.from_generator(_rows, gen_kwargs={"out": out, "split": split}, features=features,
                                             cache_dir=str(out / PARQUET_DIR / ".cache"))
        path = out / PARQUET_DIR / f"{split}-00000-of-00001.parquet"
        tmp = path.with_name(f".{path.name}.tmp")
        ds.to_parquet(str(tmp))
        tmp.replace(path)
        written.append(path)
    import shutil

    shutil.rmtree(out / PARQUET_DIR / ".cache", ignore_errors=True)
    return written
