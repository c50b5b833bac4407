"""Training pairs degraded on the fly from clean images (``uirbench train --online``).

A fixed set of pre-generated pairs is a few thousand draws of the suite's training distribution; the
field's training pipelines degrade clean crops as they go, so every step sees new parameters. Here every
sample is a pure function of ``(seed, step, index)``, as with pre-generated pairs (``uirbench.data``):

1. ``rng = child_rng(seed, step, index)`` picks a degradation of the suite's train split, in the suite's
   proportions (each track contributes ``copies`` x its severities per degradation; uir-v2: 4 per single
   family, 2 per mixed recipe) or the user's ``--mix``, then a clean image (uniformly);
2. the degradation draws its parameters from a child generator of ``rng`` on the *whole* image (spatial
   sizes scale with the image's short side, haze and rain use its depth map or the ground-plane prior),
   exactly as ``uirbench generate`` makes a train pair, track overrides included;
3. the same crop, flip and rotation are taken from the degraded image and its clean target.

A resumed run therefore draws exactly the pairs an uninterrupted one would, and DDP ranks (disjoint
indices) never share a pair. The clean images are a generated dataset's train-split targets (with their
depth maps), or the train-split images of a source (a folder or ``builtin``) under the default suite's
split-by-hash, so no val or test image is ever trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from uirbench.data import ImageCache, PairedPatches, PatchSource, augmenter
from uirbench.errors import UserError
from uirbench.rng import child_rng


@dataclass(frozen=True)
class Draw:
    """One entry of the degradation pool: a suite track's degradation at a severity (None: continuous)."""

    name: str
    severity: int | None
    range: str
    overrides: tuple[tuple[str, Any], ...]
    weight: float


def suite_pool(suite: dict[str, Any], split: str = "train") -> list[Draw]:
    """The degradations of ``split`` in ``suite`` (``Suite.to_json()``, as a dataset's suite.json records it), each
    weighted by how many pairs per image the suite makes of it."""
    return [Draw(name, severity, track["range"], tuple(sorted(track["overrides"].items())), float(track["copies"]))
            for track in suite["tracks"].get(split, ()) for name in track["degradations"] for severity in track["severities"]]


@dataclass(frozen=True)
class CleanImage:
    image_id: str
    path: str | None
    item: Any = None          # a SourceItem when the image comes from a source, not a dataset
    depth_path: str | None = None
    short_side: int | None = None  # known from a dataset's manifest; a source's is read with the image


def dataset_images(root: Path, split: str) -> tuple[dict[str, Any], list[CleanImage]]:
    """The suite (as recorded) and the clean targets (with depth maps) of ``split`` of the generated dataset ``root``."""
    from uirbench.manifest import load_manifest, read_json

    if not (root / split / "metadata.jsonl").exists():
        raise UserError(f"--data {root}: no finished {split!r} split (metadata.jsonl missing)")
    images = {}
    for row in load_manifest(root, split):
        depth = str(root / split / row["depth_map"]) if row.get("depth_map") else None
        images.setdefault(row["image_id"], CleanImage(row["image_id"], str(root / split / row["target_file_name"]), None, depth,
                                                      min(row["height"], row["width"])))
    return read_json(root / "suite.json")["suite"], [images[k] for k in sorted(images)]


def source_images(source: str, suite: Any, split: str) -> list[CleanImage]:
    """The images of a source (``builtin`` or a folder) that ``suite`` assigns to ``split``."""
    from uirbench.io import ImageError
    from uirbench.sources import resolve

    folder = Path(source)
    if folder.is_dir() and (any(folder.glob("metadata.jsonl")) or (folder.parent / "suite.json").is_file()):
        raise UserError(f"--data {source}: a split of a generated dataset, whose images include degraded inputs; pass the "
                        f"dataset folder itself ({folder.parent}) to draw from its clean targets")
    try:
        items = resolve(source)
    except ImageError as exc:  # the source's own message names --source: here it came as --data
        message = str(exc).removeprefix(f"--source {source}: ")
        raise UserError(f"--data {source}: neither a uirbench dataset (no suite.json) nor a usable source: {message}") from None
    return [CleanImage(item.image_id, None, item) for item in items if suite.split_of(item.image_id) == split]


class OnlinePairs(PatchSource):
    """Aligned (degraded, clean) patches of ``patch`` px, degraded on the fly; same interface as ``PairedPatches``.

    ``data``: a generated dataset (its ``split`` targets and suite), or a source (``builtin`` or a folder:
    the images the default suite assigns to ``split``). ``mix`` weights degradations by name instead of the
    suite's proportions; ``degradations`` / ``labels`` restrict the pool (UIR-LoRA: one family per adapter), ``singles``
    to single-degradation draws (UIR-LoRA's multi-task control: the data of all family adapters together).
    """

    def __init__(self, data: str | Path, split: str, patch: int, *, seed: int = 0, mix: dict[str, float] | None = None,
                 degradations: list[str] | None = None, labels: list[str] | None = None, singles: bool = False) -> None:
        from uirbench.degradations import families
        from uirbench.suites import DEFAULT_SUITE, get_suite

        root = Path(data)
        if (root / "suite.json").is_file():
            suite, self.images = dataset_images(root, split)
            if not isinstance(suite, dict) or "tracks" not in suite:
                raise UserError(f"--data {root}: its suite.json records no generated suite (an imported set?), so there are "
                                "no training ranges to draw from; train on its pre-generated pairs (leave out --online)")
        else:
            default = get_suite(DEFAULT_SUITE)
            suite, self.images = default.to_json(), source_images(str(data), default, split)
        if not self.images:
            raise UserError(f"--data {data}: no clean {split}-split images to degrade (suite {suite['name']})")
        pool = suite_pool(suite, split)
        if degradations is not None:
            pool = [d for d in pool if d.name in degradations]
        if labels is not None:
            pool = [d for d in pool if set(families(d.name)) <= set(labels)]
        if singles:
            pool = [d for d in pool if len(families(d.name)) == 1]
        if not pool:
            raise UserError(f"--data {data}: suite {suite['name']} has no {split} degradations for {degradations or labels}")
        names = sorted({d.name for d in pool})
        if mix is not None:
            unknown = sorted(set(mix) - set(names))
            if unknown:
                raise UserError(f"--mix: no {', '.join(unknown)} among suite {suite['name']}'s {split} degradations: {', '.join(names)}")
            entries = {name: sum(d.name == name for d in pool) for name in names}  # a name's weight is shared by its entries
            pool = [Draw(d.name, d.severity, d.range, d.overrides, mix.get(d.name, 0.0) / entries[d.name]) for d in pool]
        weights = np.array([d.weight for d in pool])
        self.pool, self.probs = pool, weights / weights.sum()
        self.suite, self.patch, self.seed, self.split = suite["name"], patch, seed, split
        self.cache = ImageCache()
        self.augment = augmenter(patch)
        small = [i for i in self.images if i.short_side is not None and i.short_side < patch]
        if small:
            raise UserError(f"--patch {patch}: larger than the short side of clean image {small[0].image_id!r} "
                            f"({small[0].short_side} px) in {data}")

    def label_sets(self) -> list[tuple[str, ...]]:
        from uirbench.degradations import families

        return sorted({tuple(families(d.name)) for d, p in zip(self.pool, self.probs, strict=True) if p > 0})

    def clean(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Clean image ``index`` (HxWx3 uint8) and its depth map (HxW float32) or None, both kept in the cache.

        A source's depth map is stored and read back as ``generate`` does (16-bit PNG, ``io.stored_depth``), so the
        pairs are those ``generate`` would make from the same source."""
        from uirbench.io import read_depth, stored_depth
        from uirbench.sources import read_item

        image = self.images[index]
        if image.item is None:
            picture = self.cache.get(image.path)
            depth = self.cache.get(f"depth:{image.depth_path}", lambda: read_depth(image.depth_path)) if image.depth_path else None
        else:  # a source: its depth is read again with it on first use (cached apart, so both count in the cache's budget)
            picture = self.cache.get(f"source:{image.image_id}", lambda: read_item(image.item)[0])
            has_depth = image.item.depth_path is not None or image.item.depth_builtin is not None
            depth = self.cache.get(f"depth:{image.image_id}", lambda: stored_depth(read_item(image.item)[1])) if has_depth else None
            if min(picture.shape[:2]) < self.patch:
                raise UserError(f"--patch {self.patch}: larger than the short side of clean image {image.image_id!r} "
                                f"({picture.shape[1]}x{picture.shape[0]} px)")
        return picture, depth

    def sample(self, step: int, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """One (degraded, clean) patch pair, HxWx3 uint8, and a row describing it; pure in (seed, step, index)."""
        from uirbench.degradations import create, families

        rng = child_rng(self.seed, step, index)
        draw = self.pool[int(rng.choice(len(self.pool), p=self.probs))]
        image_index = int(rng.integers(len(self.images)))
        image, depth = self.clean(image_index)
        degradation = create(draw.name, severity=draw.severity, track=draw.range)
        params = degradation.sample(np.random.default_rng(rng.integers(2**63)), image, depth)
        params.update(dict(draw.overrides))
        degraded = type(degradation).replay(image, params, depth)
        self.augment.set_random_seed(int(rng.integers(2**32)))
        out = self.augment(image=degraded, target=image)
        row = {"image_id": self.images[image_index].image_id, "degradation": draw.name, "labels": families(draw.name),
               "range": draw.range, "params": params}
        return np.ascontiguousarray(out["image"]), np.ascontiguousarray(out["target"]), row

    def clean_batch(self, step: int, size: int, offset: int = 0) -> Any:
        """NCHW float32 clean patches in [0, 1] (backbone pre-training): crops of the clean images, nothing degraded."""
        from uirbench.io import to_tensor

        patches = []
        for index in range(offset, offset + size):
            rng = child_rng(self.seed, step, index)
            image, _ = self.clean(int(rng.integers(len(self.images))))
            self.augment.set_random_seed(int(rng.integers(2**32)))
            patches.append(np.ascontiguousarray(self.augment(image=image, target=image)["target"]))
        return to_tensor(patches)


def training_pairs(data: str | Path, patch: int, *, seed: int, online: bool = False, mix: dict[str, float] | None = None,
                   labels: list[str] | None = None, singles: bool = False) -> PatchSource:
    """The train-split patches of ``uirbench train``: pre-generated pairs of the dataset ``data``, or with
    ``online`` pairs degraded on the fly from its clean images (:class:`OnlinePairs`)."""
    if online:
        return OnlinePairs(data, "train", patch, seed=seed, mix=mix, labels=labels, singles=singles)
    return PairedPatches(data, "train", patch, seed=seed, mix=mix, labels=labels, singles=singles)
