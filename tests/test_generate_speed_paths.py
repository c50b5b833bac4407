"""The shortcuts that make `uirbench generate` fast give exactly what the plain paths give.

Input PSNR/SSIM from tensors prepared once per image, pixel hashes without a bytes copy, the PNG
settings, and the pool's tasks (images cut into parts, largest first, an image refused in several
parts listed once).
"""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from uirbench.degradations import create
from uirbench.generate import GenerateConfig, ImageTask, InputQuality, generate, plan_pairs, pool_tasks
from uirbench.io import decode_image, encode_png, to_tensor
from uirbench.manifest import pixel_sha256
from uirbench.sources import SourceItem
from uirbench.suites import DEFAULT_SUITE, get_suite


@pytest.fixture(scope="module")
def degraded_pairs(astronaut):
    """A 200x300 crop of a real photograph (width not a multiple of 8) and its degradations at severity 3."""
    clean = np.ascontiguousarray(astronaut[100:300, 150:450])
    pairs = []
    for seed, name in enumerate(("noise", "blur", "jpeg", "lowlight", "rain")):
        degradation = create(name, severity=3)
        params = degradation.sample(np.random.default_rng(seed), clean, None)
        pairs.append(type(degradation).replay(clean, params, None))
    return clean, pairs


def test_input_quality_equals_compute_per_image_to_the_last_bit(degraded_pairs):
    import torch

    from uirbench.metrics.base import compute_per_image

    clean, degraded = degraded_pairs
    quality = InputQuality(clean)
    for image in [*degraded, clean, np.ascontiguousarray(clean[::-1])]:
        with torch.inference_mode():
            plain = compute_per_image(("psnr", "ssim"), to_tensor(image), to_tensor(clean))
        assert quality(image) == {"input_psnr": float(plain["psnr"][0]), "input_ssim": float(plain["ssim"][0])}


def test_channels_last_tensor_has_the_same_values(degraded_pairs):
    import torch

    clean, _ = degraded_pairs
    fast = to_tensor(clean, channels_last=True)
    assert fast.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(fast, to_tensor(clean)) and to_tensor(clean).is_contiguous()


@pytest.mark.parametrize("view", ["contiguous", "flipped", "read_only"])
def test_pixel_hash_follows_the_recipe(degraded_pairs, view):
    clean, _ = degraded_pairs
    image = {"contiguous": clean, "flipped": clean[:, ::-1], "read_only": clean.copy()}[view]
    image.flags.writeable = view != "read_only"
    recipe = hashlib.sha256(f"uint8 {image.shape[0]}x{image.shape[1]}x3\n".encode() + image.tobytes()).hexdigest()
    assert pixel_sha256(image) == recipe


def test_png_settings_are_lossless_and_deterministic(degraded_pairs):
    clean, degraded = degraded_pairs
    for image in [clean, *degraded]:
        data = encode_png(image)
        assert encode_png(image.copy()) == data
        assert np.array_equal(decode_image(data, "encoded"), image)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), image)


def _tasks(sizes: dict[str, int]) -> list[ImageTask]:
    suite = get_suite(DEFAULT_SUITE)
    return [ImageTask(SourceItem(image_id), "train", plan_pairs(suite, "train", image_id)) for image_id in sizes]


@pytest.mark.parametrize("workers", [2, 3, 8])
def test_pool_tasks_cover_every_pair_once_largest_first(workers):
    sizes = {"big": 1000 * 1000, "mid": 512 * 512, "small": 100 * 100, "unreadable": 0}
    tasks = _tasks(sizes)
    cut = pool_tasks(tasks, sizes, workers)
    assert sorted(p.pair_id for t in cut for p in t.pairs) == sorted(p.pair_id for t in tasks for p in t.pairs)
    costs = [len(t.pairs) * max(sizes[t.item.image_id], 1) for t in cut]
    assert costs == sorted(costs, reverse=True)
    total = sum(len(t.pairs) * max(sizes[t.item.image_id], 1) for t in tasks)
    assert max(costs) <= max(total / (4 * workers), max(sizes.values()))  # at most a share of the run, or one pair
    assert len({t.item.image_id for t in cut}) == len(sizes) and all(t.pairs for t in cut)
    parts = [t for t in cut if t.item.image_id == "big"]
    assert len(parts) > 1 and {t.split for t in parts} == {"train"}


@pytest.mark.slow
def test_an_image_refused_in_several_pool_tasks_is_listed_once(tmp_path, small_image):
    """A readable image below the suite's minimum side is refused by the workers, in every task it was cut into
    (here 3: its 3 pairs cost more than 1/8 of the run)."""
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(np.ascontiguousarray(small_image[:64, :80])).save(src / "good.png")
    Image.fromarray(np.ascontiguousarray(small_image[:48, :60])).save(src / "small.png")
    summary = generate(GenerateConfig(source=str(src), suite="promptir-denoise-v1", out=str(tmp_path / "out"), workers=2,
                                      skip_bad=True))
    assert summary["complete"] and summary["images_skipped"] == ["small"] and summary["pairs_per_split"] == {"test": 3}
    skipped = [json.loads(line) for line in (tmp_path / "out" / "skipped.jsonl").read_text().splitlines()]
    assert [s["image_id"] for s in skipped] == ["small"] and "minimum side" in skipped[0]["error"]
