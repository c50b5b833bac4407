"""Golden pins: a silent change of physics or of a pixel-changing dependency fails here.

``tests/golden/<suite>.json`` pins, for the current suite version:

* ``sources``: the pixel hash of every built-in clean image (catches a changed sample file or JPEG decoder);
* ``degradations``: the pixel hash of every registered degradation variant and mixed recipe applied to
  one fixed built-in crop (the motorcycle scene, which carries stereo depth) at severity 3 and a fixed seed;
* ``generate_limit_2``: the fingerprint of ``uirbench generate --limit 2`` on the built-in source.

When a change is intended, the suite version goes up (a new name in ``uirbench/suites.py``), the new
pins go into a new ``tests/golden/<new suite>.json``, and the README's "Reproducibility" table keeps the
old fingerprint with the library versions that produced it. A failure prints the new values.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from uirbench.degradations import RECIPES, create
from uirbench.manifest import pixel_sha256
from uirbench.registry import DEGRADATIONS
from uirbench.sources import builtin_items, motorcycle_depth, read_item
from uirbench.suites import DEFAULT_SUITE

PINS = json.loads((Path(__file__).parent / "golden" / f"{DEFAULT_SUITE}.json").read_text())
VARIANTS = [n for n in DEGRADATIONS.names() if DEGRADATIONS.spec(n).alias_of is None]
CROP = (slice(150, 278), slice(300, 460))  # 128x160 px of the motorcycle scene: bike, floor and background
SEED = 2024


def _changed(kind: str, got: dict[str, str]) -> str:
    return (f"{kind} moved: if intended, bump the suite version and pin these in tests/golden/ "
            f"(see this module's docstring):\n{json.dumps(got, indent=1, sort_keys=True)}")


def degradation_digests() -> dict[str, str]:
    """Pixel hash of every non-alias variant and every mixed recipe on the pinned crop."""
    item = next(it for it in builtin_items() if it.image_id == "motorcycle")
    image = np.ascontiguousarray(read_item(item)[0][CROP])
    depth = np.ascontiguousarray(motorcycle_depth()[CROP])
    digests = {}
    for name in [*VARIANTS, *RECIPES]:
        out, _ = create(name, severity=3)(image, np.random.default_rng(SEED), depth=depth)
        digests[name] = pixel_sha256(out)
    return digests


def test_pins_cover_every_registered_degradation():
    assert sorted(PINS["degradations"]) == sorted([*VARIANTS, *RECIPES])


def test_builtin_source_pixels_are_pinned():
    got = {it.image_id: pixel_sha256(read_item(it)[0]) for it in builtin_items()}
    assert got == PINS["sources"], _changed("built-in source pixels", got)


def test_every_degradation_output_is_pinned():
    got = degradation_digests()
    assert got == PINS["degradations"], _changed("degradation outputs", got)


def test_generate_limit_2_fingerprint_is_pinned(tmp_path):
    from uirbench.generate import GenerateConfig, generate

    summary = generate(GenerateConfig(out=str(tmp_path / "data"), limit=2))
    assert summary["complete"] and all(summary["images_per_split"][s] for s in ("test", "val"))
    assert summary["fingerprint"] == PINS["generate_limit_2"], _changed("generate --limit 2 fingerprint",
                                                                         {"generate_limit_2": summary["fingerprint"]})


@pytest.mark.slow
def test_default_generate_fingerprint_is_pinned(tmp_path):
    from uirbench.generate import GenerateConfig, generate

    summary = generate(GenerateConfig(out=str(tmp_path / "data"), workers=2))
    assert summary["fingerprint"] == PINS["generate_default"], _changed("generate fingerprint",
                                                                         {"generate_default": summary["fingerprint"]})
