"""Training pairs degraded on the fly (``uirbench train --online``): pure in (seed, step, index), the suite's
train degradations in its proportions, train-split images only, and the same physics as ``generate``."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest
import torch

from uirbench.degradations import create, families
from uirbench.errors import UserError
from uirbench.manifest import load_manifest
from uirbench.online import OnlinePairs, suite_pool, training_pairs
from uirbench.suites import get_suite

PATCH = 32


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def test_the_pool_is_the_suites_train_split_in_its_proportions():
    pool = suite_pool(get_suite("uir-v2").to_json())
    weights = {d.name: d.weight for d in pool}
    assert weights == {**dict.fromkeys(("noise", "blur", "rain", "haze", "lowlight", "jpeg"), 4.0),
                       **dict.fromkeys(("blur+noise", "blur+jpeg", "noise+jpeg", "lowlight+blur", "blur+noise+jpeg", "haze+rain",
                                        "lowlight+haze", "lowlight+rain", "lowlight+haze+rain"), 2.0)}
    assert all(d.severity is None and d.range == "train" for d in pool)  # continuous draws from the training ranges


def test_samples_are_pure_in_seed_step_and_index(tiny_dataset):
    a = OnlinePairs(tiny_dataset, "train", PATCH, seed=3)
    b = OnlinePairs(tiny_dataset, "train", PATCH, seed=3)  # a fresh instance, as after --resume
    x1, y1, rows1 = a.batch(5, 4)
    x2, y2, rows2 = b.batch(5, 4)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and rows1 == rows2
    # a DDP rank's samples (offset 2) are the same draws as the single-process batch's last two
    x3, _, _ = b.batch(5, 2, offset=2)
    assert torch.equal(x3, x1[2:])
    assert not torch.equal(a.batch(6, 4)[0], x1)  # another step, other pairs
    assert not torch.equal(OnlinePairs(tiny_dataset, "train", PATCH, seed=4).batch(5, 4)[0], x1)  # another seed
    assert x1.shape == (4, 3, PATCH, PATCH) and x1.dtype == torch.float32 and 0 <= float(x1.min()) <= float(x1.max()) <= 1


def test_online_batches_are_pinned(tiny_dataset):
    x, y, rows = OnlinePairs(tiny_dataset, "train", PATCH, seed=0).batch(0, 3)
    assert [r["degradation"] for r in rows] == ["jpeg", "haze", "blur"]
    assert _digest(x.numpy(), y.numpy()) == "e515953cab5e25be"


def test_only_train_split_images_are_degraded(tiny_dataset, photo_dir):
    train_ids = sorted({r["image_id"] for r in load_manifest(tiny_dataset, "train")})
    assert [i.image_id for i in OnlinePairs(tiny_dataset, "train", PATCH).images] == train_ids
    suite = get_suite("uir-v2")
    from_source = OnlinePairs(str(photo_dir), "train", PATCH)
    assert [i.image_id for i in from_source.images] == train_ids
    assert all(suite.split_of(i.image_id) == "train" for i in from_source.images)
    # the same clean images, the same pairs: a source folder and the dataset generated from it agree
    assert torch.equal(from_source.batch(2, 3)[0], OnlinePairs(tiny_dataset, "train", PATCH).batch(2, 3)[0])


def _locate(patch: np.ndarray, image: np.ndarray) -> tuple[int, int, int, bool]:
    """Where ``patch`` (a crop of ``image`` rotated by k*90 degrees and maybe flipped) came from: (top, left, k, flip)."""
    for flip in (False, True):
        for k in range(4):
            undone = np.rot90(patch, -k)
            undone = undone[:, ::-1] if flip else undone
            score = cv2.matchTemplate(image, np.ascontiguousarray(undone), cv2.TM_SQDIFF)
            _, _, (left, top), _ = cv2.minMaxLoc(score)
            if np.array_equal(image[top:top + len(undone), left:left + len(undone)], undone):
                return top, left, k, flip
    raise AssertionError("the patch is not a crop of the image")


def test_pairs_are_generates_physics_on_the_whole_image(tiny_dataset):
    """The degraded patch is the crop of the whole clean image degraded by replaying the row's parameters (spatial
    sizes scale with the whole image, not the patch), taken at the clean patch's place and orientation."""
    source = OnlinePairs(tiny_dataset, "train", PATCH, seed=1)
    for index in range(6):
        degraded, clean, row = source.sample(0, index)
        image, depth = source.clean([i.image_id for i in source.images].index(row["image_id"]))
        assert row["labels"] == families(row["degradation"])
        full = type(create(row["degradation"], None)).replay(image, row["params"], depth)
        top, left, k, flip = _locate(clean, image)
        window = full[top:top + PATCH, left:left + PATCH]
        window = window[:, ::-1] if flip else window
        assert np.array_equal(np.rot90(window, k), degraded), row["degradation"]


def test_clean_batches_and_label_sets(tiny_dataset):
    source = OnlinePairs(tiny_dataset, "train", PATCH, seed=0)
    clean = source.clean_batch(0, 2)
    assert clean.shape == (2, 3, PATCH, PATCH) and torch.equal(clean, source.clean_batch(0, 2))
    assert ("noise",) in source.label_sets() and ("blur", "jpeg", "noise") in source.label_sets()
    rain = OnlinePairs(tiny_dataset, "train", PATCH, labels=["rain"])
    assert rain.label_sets() == [("rain",)] and {r["degradation"] for r in rain.batch(0, 4)[2]} == {"rain"}
    mixed = OnlinePairs(tiny_dataset, "train", PATCH, mix={"haze": 1.0, "jpeg": 0.0})
    assert {r["degradation"] for r in mixed.batch(0, 4)[2]} == {"haze"} and mixed.label_sets() == [("haze",)]


def test_training_pairs_chooses_the_source(tiny_dataset):
    assert type(training_pairs(tiny_dataset, PATCH, seed=0)).__name__ == "PairedPatches"
    assert type(training_pairs(tiny_dataset, PATCH, seed=0, online=True)).__name__ == "OnlinePairs"


def test_bad_online_sources_are_refused(tiny_dataset, tmp_path):
    with pytest.raises(UserError, match=r"--mix: no fog among suite uir-v2's train degradations"):
        OnlinePairs(tiny_dataset, "train", PATCH, mix={"fog": 1.0})
    with pytest.raises(UserError, match=r"--patch 70: larger than the short side of clean image"):
        OnlinePairs(tiny_dataset, "train", 70).sample(0, 0)
    with pytest.raises(UserError, match=r"--data .*: neither a uirbench dataset \(no suite.json\) nor a usable source: no image files"):
        OnlinePairs(str(tmp_path), "train", PATCH)  # an empty folder
    lone = tmp_path / "lone"
    lone.mkdir()
    cv2.imwrite(str(lone / "img8.png"), np.zeros((64, 64, 3), np.uint8))  # the default suite puts img8 outside train
    with pytest.raises(UserError, match=r"--data .*lone: no clean train-split images to degrade \(suite uir-v2\)"):
        OnlinePairs(str(lone), "train", PATCH)
    imported = tmp_path / "imported"
    (imported / "train").mkdir(parents=True)
    (imported / "suite.json").write_text('{"suite": {"name": "sots-outdoor", "splits": {"test": 1.0}}}')
    (imported / "train" / "metadata.jsonl").write_text("")
    with pytest.raises(UserError, match=r"records no generated suite .*\(leave out --online\)"):
        OnlinePairs(imported, "train", PATCH)


def test_cli_trains_on_online_pairs(tiny_dataset, tmp_path):
    from uirbench.cli import main
    from uirbench.runs import read_log

    out = tmp_path / "run"
    args = ["train", "--model", "nafnet", "--data", str(tiny_dataset), "--online", "--steps", "4", "--batch-size", "2",
            "--patch", str(PATCH), "--out", str(out), "--save-every", "2"]
    assert main(args) == 0
    again = tmp_path / "again"
    assert main([*args[:-3], str(again), "--save-every", "2"]) == 0
    losses = [[r["loss"] for r in read_log(d) if r.get("loss")] for d in (out, again)]
    assert losses[0] == losses[1] and len(losses[0]) >= 1


def test_clean_batches_are_crops_of_the_clean_images(tiny_dataset):
    source = OnlinePairs(tiny_dataset, "train", PATCH, seed=2)
    for patch in source.clean_batch(3, 3):
        crop = (patch.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        assert any(_is_crop(crop, source.clean(i)[0]) for i in range(len(source.images)))


def _is_crop(patch: np.ndarray, image: np.ndarray) -> bool:
    try:
        _locate(patch, image)
        return True
    except AssertionError:
        return False


def test_singles_and_mix_restrict_the_pool(tiny_dataset):
    singles = OnlinePairs(tiny_dataset, "train", PATCH, singles=True)
    assert all(len(labels) == 1 for labels in singles.label_sets()) and len(singles.label_sets()) == 6
    assert all(len(labels) == 1 for labels in training_pairs(tiny_dataset, PATCH, seed=0, singles=True).label_sets())
    # --mix weighs a degradation by name, whatever the number of its entries in the suite's tracks
    mixed = OnlinePairs(tiny_dataset, "train", PATCH, mix={"noise": 1.0, "haze": 1.0})
    by_name: dict[str, float] = {}
    for draw, p in zip(mixed.pool, mixed.probs, strict=True):
        by_name[draw.name] = by_name.get(draw.name, 0.0) + p
    assert by_name["noise"] == pytest.approx(0.5) and by_name["haze"] == pytest.approx(0.5)


def test_a_split_folder_is_not_taken_for_a_source(tiny_dataset):
    with pytest.raises(UserError, match=r"a split of a generated dataset, whose images include degraded inputs"):
        OnlinePairs(str(tiny_dataset / "train"), "train", PATCH)


def test_resume_continues_online_training_exactly_and_refuses_other_data_settings(tiny_dataset, tmp_path, capsys):
    import shutil

    from uirbench.cli import main
    from uirbench.runs import read_log

    def args(out, *extra):
        return ["train", "--model", "nafnet", "--data", str(tiny_dataset), "--online", "--steps", "4", "--batch-size", "2",
                "--patch", str(PATCH), "--out", str(out), "--save-every", "2", *extra]

    assert main(args(tmp_path / "whole")) == 0
    assert main(args(tmp_path / "cut")) == 0
    shutil.rmtree(tmp_path / "cut" / "state" / "step-0000004")  # as if killed after the step-2 save
    assert main(args(tmp_path / "cut", "--resume")) == 0
    assert [r["loss"] for r in read_log(tmp_path / "cut")] == [r["loss"] for r in read_log(tmp_path / "whole")]
    shutil.rmtree(tmp_path / "cut" / "state" / "step-0000004")
    resumed_offline = [a for a in args(tmp_path / "cut", "--resume") if a != "--online"]
    capsys.readouterr()
    assert main(resumed_offline) == 2  # the batches would come from the pre-generated pairs: refused, named
    assert "the run was trained with other settings (online 'True' -> 'False')" in capsys.readouterr().err


def test_the_router_stage_trains_on_online_pairs(tiny_dataset, tmp_path):
    from uirbench.cli import main
    from uirbench.uir_lora.router import load_router

    out = tmp_path / "uir"
    assert main(["train", "--model", "uir-lora", "--data", str(tiny_dataset), "--online", "--out", str(out),
                 "--model-arg", "stage=router", "--steps", "1", "--batch-size", "2", "--patch", str(PATCH)]) == 0
    assert load_router(out / "router.safetensors").families == ("blur", "haze", "jpeg", "lowlight", "noise", "rain")
