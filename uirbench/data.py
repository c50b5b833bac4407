"""Paired training patches from a generated dataset (``uirbench.online`` degrades them on the fly instead).

Every sample is a pure function of ``(seed, step, index)``: which degradation (balanced across the
split's degradations, or a user-set mix), which pair of it, and the crop/flip/rotation (albumentations,
applied identically to input and target through ``additional_targets``) are drawn from
``rng.child_rng(seed, step, index)``, a ``SeedSequence(seed, spawn_key=(step, index))`` child. A
resumed run therefore sees exactly the batches an uninterrupted run would, with no data-loader state
to save, and DDP ranks take disjoint indices.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from uirbench.errors import UserError
from uirbench.io import read_image
from uirbench.manifest import load_manifest
from uirbench.rng import child_rng


class ImageCache:
    """Decoded images kept in memory up to ``max_bytes`` (least recently used evicted)."""

    def __init__(self, max_bytes: int = 2 << 30) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0

    def get(self, path: str | Path, load: Callable[[], np.ndarray] | None = None) -> np.ndarray:
        """The image at ``path`` (or under key ``path``, made by ``load``), decoded once."""
        key = str(path)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        image = read_image(path) if load is None else load()
        self._items[key] = image
        self._bytes += image.nbytes
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes
        return image


def parse_mix(text: str | None) -> dict[str, float] | None:
    """``"noise=2,haze=1"`` -> {"noise": 2.0, "haze": 1.0}; None keeps the balanced default."""
    if text is None:
        return None
    mix = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if not name.strip():
            raise UserError(f"--mix {text!r}: an empty degradation name; expected name=weight pairs, e.g. noise=2,haze=1 "
                             "(leave --mix out for balanced sampling)")
        try:
            mix[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise UserError(f"--mix {text!r}: expected name=weight pairs, e.g. noise=2,haze=1") from None
    if any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
        raise UserError(f"--mix {text!r}: weights must be >= 0 with a positive sum")
    return mix


def augmenter(patch: int) -> Any:
    """The crop (``patch`` px), horizontal flip and 90-degree rotation applied alike to an input and its
    ``target`` (albumentations; seeded per sample with ``set_random_seed``)."""
    import albumentations as A

    return A.Compose([A.RandomCrop(patch, patch), A.HorizontalFlip(p=0.5), A.RandomRotate90(p=1.0)],
                     additional_targets={"target": "image"})


class PatchSource:
    """What the trainers read: ``sample(step, index)`` -> (input, target, row), pure in (seed, step, index)."""

    def sample(self, step: int, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:  # pragma: no cover
        raise NotImplementedError

    def batch(self, step: int, size: int, offset: int = 0) -> tuple[Any, Any, list[dict[str, Any]]]:
        """NCHW float32 tensors in [0, 1] of samples ``offset .. offset + size - 1`` of ``step``, and their rows."""
        from uirbench.io import to_tensor

        samples = [self.sample(step, offset + i) for i in range(size)]
        return to_tensor([s[0] for s in samples]), to_tensor([s[1] for s in samples]), [s[2] for s in samples]

    def clean_batch(self, step: int, size: int, offset: int = 0) -> Any:
        """The clean targets alone (backbone pre-training), NCHW float32 in [0, 1]."""
        return self.batch(step, size, offset)[1]

    def label_sets(self) -> list[tuple[str, ...]]:  # pragma: no cover
        """The distinct label sets (families) the source draws, e.g. ("noise",), ("blur", "noise")."""
        raise NotImplementedError


class PairedPatches(PatchSource):
    """Random aligned (input, target) patches of ``patch`` px from one split of a generated dataset.

    ``degradations`` / ``labels`` restrict the pool (UIR-LoRA trains one adapter per family), ``singles`` to
    single-degradation pairs (its multi-task control); ``mix``
    weights the degradations (default: uniform over those present, so rare ones are not starved).
    """

    def __init__(self, data: str | Path, split: str, patch: int, *, seed: int = 0, mix: dict[str, float] | None = None,
                 degradations: list[str] | None = None, labels: list[str] | None = None, singles: bool = False) -> None:
        self.root = Path(data)
        if not (self.root / "suite.json").exists():
            raise UserError(f"--data {self.root}: not a uirbench dataset (no suite.json); run `uirbench generate --out {self.root}`")
        if not (self.root / split / "metadata.jsonl").exists():
            raise UserError(f"--data {self.root}: no finished {split!r} split (metadata.jsonl missing)")
        rows = load_manifest(self.root, split)
        if degradations is not None:
            rows = [r for r in rows if r["degradation"] in degradations]
        if labels is not None:
            rows = [r for r in rows if set(r["labels"]) <= set(labels)]
        if singles:
            rows = [r for r in rows if len(r["labels"]) == 1]
        self.by_degradation: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            self.by_degradation.setdefault(row["degradation"], []).append(row)
        if not self.by_degradation:
            raise UserError(f"--data {self.root}: split {split!r} has no pairs for {degradations or labels}")
        self.names = sorted(self.by_degradation)
        weights = np.ones(len(self.names)) if mix is None else np.array([mix.get(n, 0.0) for n in self.names])
        if mix is not None:
            unknown = sorted(set(mix) - set(self.names))
            if unknown:
                raise UserError(f"--mix: no {', '.join(unknown)} in split {split!r}; degradations: {', '.join(self.names)}")
        self.probs = weights / weights.sum()
        smallest = min(min(r["height"], r["width"]) for rs in self.by_degradation.values() for r in rs)
        if patch > smallest:
            raise UserError(f"--patch {patch}: larger than the smallest image side ({smallest} px) in {self.root}/{split}")
        self.patch, self.seed, self.split = patch, seed, split
        self.cache = ImageCache()
        self.augment = augmenter(patch)

    def rows(self) -> list[dict[str, Any]]:
        return [r for name in self.names for r in self.by_degradation[name]]

    def label_sets(self) -> list[tuple[str, ...]]:
        drawn = {n for n, p in zip(self.names, self.probs, strict=True) if p > 0}
        return sorted({tuple(r["labels"]) for r in self.rows() if r["degradation"] in drawn})

    def sample(self, step: int, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """One (input, target) patch pair, HxWx3 uint8, and its manifest row; pure in (seed, step, index)."""
        rng = child_rng(self.seed, step, index)
        name = self.names[int(rng.choice(len(self.names), p=self.probs))]
        group = self.by_degradation[name]
        row = group[int(rng.integers(len(group)))]
        split_dir = self.root / self.split
        self.augment.set_random_seed(int(rng.integers(2**32)))
        out = self.augment(image=self.cache.get(split_dir / row["input_file_name"]),
                           target=self.cache.get(split_dir / row["target_file_name"]))
        return np.ascontiguousarray(out["image"]), np.ascontiguousarray(out["target"]), row

