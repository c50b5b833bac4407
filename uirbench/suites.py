"""Named, versioned benchmark suites: which pairs a dataset holds. Changing one means a new name.

A suite assigns each clean image to a split by a stable hash of its image id (so a clean image
never appears in two splits) and lists, per split, the *tracks* to generate. A track is a set of
degradations x severities (x copies); the test split is a full factorial, so every model is
scored on exactly the same pairs and can be compared pair by pair.

Pair ids are ``<image_id>__<track>__<degradation>__s<severity|c>__<copy>``; each pair's random
draws come from ``SeedSequence(seed, spawn_key=(suite, image id, pair key))`` hashes, so its bytes
depend only on (suite, seed, image id, pair) and never on order, workers or shards.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from uirbench.degradations.mixed import RECIPES
from uirbench.errors import UnknownNameError

FAMILIES = ("noise", "blur", "rain", "haze", "lowlight", "jpeg")
"""The single-degradation families of the default suite (each at its family-default variant)."""


@dataclass(frozen=True)
class Track:
    """Degradations x severities (x copies) generated for every image of a split.

    ``severities`` holds levels 1-5, or ``None`` for a continuous draw from ``range`` ("train" or
    "ood"). ``overrides`` fixes sampled parameters by name (compat suites, e.g. quality=10).
    """

    name: str
    degradations: tuple[str, ...]
    severities: tuple[int | None, ...]
    range: str = "train"
    copies: int = 1
    overrides: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Suite:
    """A benchmark suite: split fractions (by hash of image id) and the tracks of each split."""

    name: str
    description: str
    splits: tuple[tuple[str, float], ...]
    tracks: dict[str, tuple[Track, ...]] = field(hash=False)
    split_salt: str = "uirbench-v1"
    min_side: int = 64

    def split_of(self, image_id: str) -> str:
        """The split of an image: cumulative fractions over a uniform hash of the id."""
        digest = hashlib.sha256(f"{self.split_salt}:{image_id}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        total = 0.0
        for split, fraction in self.splits:
            total += fraction
            if u < total:
                return split
        return self.splits[-1][0]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description, "splits": dict(self.splits),
            "split_salt": self.split_salt, "min_side": self.min_side,
            "tracks": {split: [{"name": t.name, "degradations": list(t.degradations), "severities": list(t.severities),
                                "range": t.range, "copies": t.copies, "overrides": dict(t.overrides)} for t in tracks]
                       for split, tracks in self.tracks.items()},
        }


_SINGLE_TEST = Track("single", FAMILIES, (1, 2, 3, 4, 5))
_MIXED_TEST = Track("mixed", tuple(RECIPES), (2, 4))
_OOD_TEST = Track("ood", FAMILIES, (None,), range="ood", copies=2)

SUITES: dict[str, Suite] = {}


def _add(suite: Suite) -> None:
    SUITES[suite.name] = suite


# uir-v1 (uirbench 0.1) is retired: uirbench 0.2 changed camera-noise (the noise alone), the defocus
# and Gaussian blur kernels (exact pixel integration) and made every float path CPU-independent, which
# moved its pixels. The README's "Dataset identity" table keeps its fingerprints.
_add(Suite(
    name="uir-v2",
    description="default: 6 families x 5 severities + 9 mixed recipes + out-of-distribution track; train/val/test by image hash",
    splits=(("test", 0.25), ("val", 0.15), ("train", 0.60)),
    tracks={
        "train": (Track("single", FAMILIES, (None,), copies=4), Track("mixed", tuple(RECIPES), (None,), copies=2)),
        "val": (Track("single", FAMILIES, (2, 4)), Track("mixed", tuple(RECIPES), (3,))),
        "test": (_SINGLE_TEST, _MIXED_TEST, _OOD_TEST),
    },
))
_add(Suite(
    name="promptir-denoise-v1",
    description="compat: PromptIR/BSD68-style denoising, AWGN sigma 15/25/50 DN on every image (test only)",
    splits=(("test", 1.0),),
    tracks={"test": (Track("awgn", ("awgn",), (2, 3, 5)),)},
))
_add(Suite(
    name="daclip-synthetic-v1",
    description="compat: DA-CLIP synthetic inputs, AWGN sigma 50 DN and JPEG quality 10 on every image (test only)",
    splits=(("test", 1.0),),
    tracks={"test": (Track("noise50", ("awgn",), (5,), overrides=(("sigma", 50.0),)),
                     Track("jpeg10", ("jpeg",), (5,), overrides=(("quality", 10),)))},
))

DEFAULT_SUITE = "uir-v2"


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        import difflib

        close = difflib.get_close_matches(name, SUITES, n=2)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise UnknownNameError(f"unknown suite {name!r}.{hint} Valid suites: {', '.join(SUITES)}")
    return SUITES[name]


def describe_suites() -> list[tuple[str, str]]:
    return [(name, suite.description) for name, suite in SUITES.items()]
