"""Clean-image sources: the built-in samples, a local folder, or a Hugging Face dataset.

A source is a list of :class:`SourceItem` (picklable, so worker processes can read them). Every
item has a stable ``image_id`` (used for seeding and split assignment), an origin, a licence and,
optionally, a depth map (metres or relative, any scale: only its order and ratios matter).

* ``builtin`` (default): natural colour photographs that ship inside installed packages, so it
  works offline; the motorcycle scene carries metric depth from its Middlebury stereo disparity.
* a folder: every png/jpg/jpeg/tif/tiff/webp/bmp below it (recursive, sorted), EXIF orientation
  applied; depth maps from a sibling folder ``<folder>_depth/`` or ``--depth-dir`` holding
  ``<relative path stem>.png`` (16-bit) or ``.npy``.
* ``hf:<dataset-id>[:split]``: ``datasets.load_dataset`` (hub id or local path) with an image
  column; image ids are ``<split>-<row index>`` (or the ``image_id``/``id`` column when present).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from uirbench.io import IMAGE_SUFFIXES, ImageError, decode_image, display_path, read_image


@dataclass(frozen=True)
class SourceItem:
    """One clean image: where it comes from, how to read it, and its licence."""

    image_id: str
    path: str | None = None            # a file on disk
    hf: tuple[str, str, int, str] | None = None   # (dataset id, split, row, image column)
    depth_path: str | None = None
    depth_builtin: str | None = None   # name of a built-in depth derivation
    license: str = "unknown"
    origin: str = ""


# name -> (package, relative path, licence, description)
_BUILTIN = {
    "astronaut": ("skimage", "data/astronaut.png", "public domain (NASA)", "Eileen Collins, NASA Great Images"),
    "chelsea": ("skimage", "data/chelsea.png", "CC0 (Stefan van der Walt)", "Chelsea the cat"),
    "coffee": ("skimage", "data/coffee.png", "CC0 (Rachel Michetti)", "coffee cup, Pikolo Espresso Bar"),
    "rocket": ("skimage", "data/rocket.jpg", "public domain (SpaceX)", "DSCOVR launch on Falcon 9"),
    "motorcycle": ("skimage", "data/motorcycle_left.png", "Middlebury 2014 stereo benchmark (Scharstein et al. 2014), research use",
                   "motorcycle, left view, with stereo depth"),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg", "public domain (NASA)", "Hubble eXtreme Deep Field"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "public domain (US Navy)", "Grace Hopper portrait"),
}

# Middlebury 2014 calibration of scikit-image's 4x down-sampled motorcycle pair (skimage docs):
# depth Z = f * B / (disparity + doffs).
_MOTORCYCLE_F_PX, _MOTORCYCLE_BASELINE_M, _MOTORCYCLE_DOFFS_PX = 994.978, 0.193001, 31.086


def _package_file(package: str, rel: str) -> str:
    import importlib

    module = importlib.import_module(package)
    return os.path.join(os.path.dirname(module.__file__), rel)


def builtin_items() -> list[SourceItem]:
    items = []
    for image_id, (package, rel, licence, description) in _BUILTIN.items():
        items.append(SourceItem(image_id=image_id, path=_package_file(package, rel), license=licence,
                                origin=f"{package}: {description}",
                                depth_builtin="motorcycle_stereo" if image_id == "motorcycle" else None))
    return items


def motorcycle_depth() -> np.ndarray:
    """Metric depth (metres) of the motorcycle scene from its ground-truth disparity; holes filled.

    Pixels without ground truth (NaN/inf disparity) take the depth of the nearest valid pixel
    (OpenCV distance-transform labels), so the map is complete and deterministic.
    """
    import cv2

    disp = np.load(_package_file("skimage", "data/motorcycle_disp.npz"))["arr_0"].astype(np.float64)
    valid = np.isfinite(disp) & (disp > 0)
    depth = np.zeros_like(disp)
    depth[valid] = _MOTORCYCLE_F_PX * _MOTORCYCLE_BASELINE_M / (disp[valid] + _MOTORCYCLE_DOFFS_PX)
    _, labels = cv2.distanceTransformWithLabels((~valid).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(valid)
    lookup = np.zeros(labels.max() + 1, np.float64)
    lookup[labels[ys, xs]] = depth[ys, xs]
    return lookup[labels].astype(np.float32)


def folder_items(root: str | os.PathLike[str], depth_dir: str | os.PathLike[str] | None = None) -> list[SourceItem]:
    """Every image file below ``root`` (recursive, sorted by relative path).

    Symbolic links to files are followed; a link that cannot be followed (dangling, or a loop) is
    kept, so reading it stops the run naming it, or lists it in ``skipped.jsonl`` with ``--skip-bad``,
    rather than vanishing from the dataset. File names that are not UTF-8 are shown escaped.
    """
    root = Path(root)
    if not root.is_dir():
        raise ImageError(f"--source {root}: not a folder (expected 'builtin', a folder of images, or hf:<dataset-id>[:split])")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and (p.is_file() or p.is_symlink()))
    if not files:
        raise ImageError(f"--source {root}: no image files ({', '.join(IMAGE_SUFFIXES)}) found in this folder or below")
    depth_root = Path(depth_dir) if depth_dir else root.with_name(root.name + "_depth")
    items, seen = [], {}
    for path in files:
        rel = path.relative_to(root).with_suffix("")
        image_id = re.sub(r"[^A-Za-z0-9._-]+", "_", rel.as_posix().replace("/", "__"))
        if image_id in seen:
            raise ImageError(f"{display_path(path)}: image id {image_id!r} is also the id of {display_path(seen[image_id])}; "
                             "rename one of them")
        seen[image_id] = path
        depth = next((str(c) for c in (depth_root / rel.with_suffix(".png"), depth_root / rel.with_suffix(".npy")) if c.is_file()),
                     None)
        items.append(SourceItem(image_id=image_id, path=str(path), depth_path=depth, license="see source folder",
                                origin=display_path(path)))
    return items


def hf_items(spec: str) -> list[SourceItem]:
    """``hf:<dataset-id or local path>[:split]`` -> items (split defaults to ``test``, else the first)."""
    from datasets import Image as HFImage
    from datasets import load_dataset

    body = spec[3:]
    dataset_id, _, split = body.partition(":") if not Path(body).exists() else (body, "", "")
    try:
        splits = load_dataset(dataset_id)
    except Exception as exc:
        raise ImageError(f"--source {spec}: could not load the dataset ({type(exc).__name__}: {exc}). Offline, pass a local "
                         "dataset folder (hf:/path/to/dataset) or download it first with `huggingface-cli download`") from exc
    if not split:
        split = "test" if "test" in splits else next(iter(splits))
    if split not in splits:
        raise ImageError(f"--source {spec}: no split {split!r}; available: {', '.join(splits)}")
    ds = splits[split]
    image_cols = [name for name, feature in ds.features.items() if isinstance(feature, HFImage)]
    if not image_cols:
        raise ImageError(f"--source {spec}: split {split!r} has no image column (columns: {', '.join(ds.column_names)})")
    id_col = next((c for c in ("image_id", "id") if c in ds.column_names), None)
    ids = [str(v) for v in ds[id_col]] if id_col else [f"{split}-{i:06d}" for i in range(len(ds))]
    if len(set(ids)) != len(ids):
        raise ImageError(f"--source {spec}: column {id_col!r} has duplicate image ids")
    return [SourceItem(image_id=i, hf=(dataset_id, split, row, image_cols[0]), license="see dataset card",
                       origin=f"{dataset_id}[{split}][{row}]") for row, i in enumerate(ids)]


def resolve(source: str, depth_dir: str | None = None) -> list[SourceItem]:
    """Items of ``builtin``, ``hf:ID[:split]`` or a folder path."""
    if source == "builtin":
        return builtin_items()
    if source.startswith("hf:"):
        return hf_items(source)
    return folder_items(source, depth_dir)


_HF_CACHE: dict[tuple[str, str], object] = {}


def read_item(item: SourceItem) -> tuple[np.ndarray, np.ndarray | None]:
    """(HxWx3 uint8 RGB image, depth map or None) of one item; errors name the file."""
    if item.hf is not None:
        image = _read_hf(item)
    else:
        image = read_image(item.path)
    depth = None
    if item.depth_builtin == "motorcycle_stereo":
        depth = motorcycle_depth()
    elif item.depth_path:
        from uirbench.degradations.depth import load_depth

        depth = load_depth(item.depth_path)
    if depth is not None and depth.shape != image.shape[:2]:
        raise ImageError(f"{item.depth_path or item.image_id}: depth map {depth.shape} does not match image {image.shape[:2]}")
    return image, depth


def _read_hf(item: SourceItem) -> np.ndarray:
    import datasets

    dataset_id, split, row, column = item.hf
    key = (dataset_id, split)
    if key not in _HF_CACHE:  # one undecoded view per split and process: rows give the original encoded bytes
        _HF_CACHE[key] = datasets.load_dataset(dataset_id, split=split).cast_column(column, datasets.Image(decode=False))
    record = _HF_CACHE[key][row][column]
    data = record.get("bytes") or Path(record["path"]).read_bytes()
    return decode_image(data, item.origin)
