"""Validation crops shared by the trainers: a few val pairs, centre-cropped, read once per run.

Validation during training scores centre crops (whole images cost minutes per validation on a
CPU); ``uirbench evaluate`` scores whole images.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from uirbench.io import read_image, to_tensor
from uirbench.manifest import load_manifest


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` window of an HxWxC image (the whole side where the image is smaller).

    >>> centre_crop(np.zeros((100, 60, 3), np.uint8), 50).shape
    (50, 50, 3)
    """
    h, w = image.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[top:top + size, left:left + size]


def stratified(rows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` rows taken round-robin over the degradations (sorted; with fewer picks than degradations,
    evenly spaced ones), so every degradation is picked before one repeats. Within a degradation its rows are
    ordered image by image (each image's first row, then each one's second, ...) and the g-th degradation starts
    at row g, so the picks also spread over the images.

    >>> rows = [{"degradation": d, "image_id": i} for i in "ab" for d in ("haze", "noise", "noise")]
    >>> [(r["degradation"], r["image_id"]) for r in stratified(rows, 4)]
    [('haze', 'a'), ('noise', 'b'), ('haze', 'b'), ('noise', 'a')]
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["degradation"], []).append(row)
    names = sorted(groups)
    if limit < len(names):  # fewer picks than degradations: evenly spaced ones, not the alphabetically first
        names = [names[i * len(names) // limit] for i in range(limit)]
    order = []
    for name in names:
        seen: dict[str, int] = {}
        keyed = []
        for i, row in enumerate(groups[name]):
            seen[row["image_id"]] = seen.get(row["image_id"], -1) + 1
            keyed.append((seen[row["image_id"]], i, row))
        order.append([row for _, _, row in sorted(keyed, key=lambda t: t[:2])])
    picked: list[dict[str, Any]] = []
    for k in range(max((len(g) for g in order), default=0)):
        picked += [g[(k + i) % len(g)] for i, g in enumerate(order) if k < len(g)]
    return picked[:limit]


def val_pairs(data: str | Path, crop: int, limit: int, multiple: int = 1, keep: Callable[[dict[str, Any]], bool] | None = None,
              spread: bool = True) -> list[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]]:
    """Up to ``limit`` val pairs of dataset ``data`` whose rows pass ``keep``: (degraded, clean, row), each a
    1x3xSxS tensor in [0, 1], S = min(crop, image sides) rounded down to a multiple of ``multiple``.

    ``spread``: :func:`stratified` rows (every degradation, different images), else the manifest's first rows.
    A dataset without a val split gives no pairs (training runs without validation).
    """
    root = Path(data)
    if not (root / "val" / "metadata.jsonl").exists():
        print(f"note: {data} has no val split (a source, or a dataset generated without one): training runs without "
              "validation", file=sys.stderr)
        return []
    rows = [r for r in load_manifest(root, "val") if keep is None or keep(r)]
    rows = stratified(rows, limit) if spread else rows[:limit]
    pairs = []
    for row in rows:
        x, y = (read_image(root / "val" / row[k]) for k in ("input_file_name", "target_file_name"))
        side = min(crop, *x.shape[:2]) // multiple * multiple
        pairs.append((to_tensor(centre_crop(x, side)), to_tensor(centre_crop(y, side)), row))
    return pairs
