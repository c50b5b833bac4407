"""``uirbench import`` on stand-in folders laid out exactly like the public sets (tiny crops of real photos).

The real sets are not available offline; each stand-in reproduces its set's names and folders
(Rain100L both ways, SOTS outdoor's NNNN_A_beta hazy names, LOL-v1 eval15/low|high, GoPro's scene
folders with blur/ and blur_gamma/, CDD-11's clear/ plus degradation folders) with 40x56-px crops of
scikit-image's photographs and simple stand-in degradations. The builders are imported by
``test_protocols.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from uirbench.cli import main
from uirbench.errors import UserError
from uirbench.external.importer import ImportConfig, PairingError, import_dataset
from uirbench.external.layouts import LAYOUTS, LayoutOptions
from uirbench.manifest import load_manifest
from uirbench.verify import verify

SIZE = (41, 57)  # rows, columns: neither a multiple of 16, so the paper convention's crop matters


def photo(index: int, shape: tuple[int, int] = SIZE) -> np.ndarray:
    """A crop of a real photograph (scikit-image's public-domain samples), different for each index."""
    import skimage.data

    source = (skimage.data.astronaut, skimage.data.coffee, skimage.data.chelsea, skimage.data.rocket)[index % 4]()
    y, x = (37 * index) % (source.shape[0] - shape[0]), (53 * index) % (source.shape[1] - shape[1])
    return np.ascontiguousarray(source[y:y + shape[0], x:x + shape[1]])


def rainy(clean: np.ndarray) -> np.ndarray:
    streaks = (np.add.outer(np.arange(clean.shape[0]), 2 * np.arange(clean.shape[1])) % 9 == 0)[..., None] * 90
    return np.clip(clean.astype(int) + streaks, 0, 255).astype(np.uint8)


def hazy(clean: np.ndarray, airlight: float = 0.8, beta: float = 0.2) -> np.ndarray:
    t = np.exp(-beta * 3)
    return np.rint(clean * t + 255 * airlight * (1 - t)).astype(np.uint8)


def dark(clean: np.ndarray) -> np.ndarray:
    return (clean // 5).astype(np.uint8)


def blurred(clean: np.ndarray) -> np.ndarray:
    return np.mean([np.roll(clean, s, axis=1) for s in range(-2, 3)], axis=0).round().astype(np.uint8)


def snowy(clean: np.ndarray) -> np.ndarray:
    out = clean.copy()
    out[::5, ::7] = 250
    return out


def save(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def make_rain100l(root: Path, repackaged: bool = False, count: int = 3) -> Path:
    """``rain-NNN.png`` + ``norain-NNN.png`` (or the ``input/`` + ``target/`` repackaging, identical names)."""
    for i in range(1, count + 1):
        clean = photo(i)
        if repackaged:
            save(root / "input" / f"{i}.png", rainy(clean))
            save(root / "target" / f"{i}.png", clean)
        else:
            save(root / f"rain-{i:03d}.png", rainy(clean))
            save(root / f"norain-{i:03d}.png", clean)
    return root


def make_sots(root: Path, count: int = 2) -> Path:
    """RESIDE SOTS outdoor: ``hazy/NNNN_A_beta.jpg`` + ``gt/NNNN.png`` (the first image hazed twice)."""
    for i in range(1, count + 1):
        clean = photo(10 + i)
        save(root / "gt" / f"{i:04d}.png", clean)
        save(root / "hazy" / f"{i:04d}_0.8_0.2.png", hazy(clean))
    save(root / "hazy" / "0001_1_0.16.png", hazy(photo(11), 1.0, 0.16))
    return root


def make_lol(root: Path, count: int = 2) -> Path:
    """LOLdataset: ``eval15/low/N.png`` + ``eval15/high/N.png`` (and a training folder our485/ to ignore)."""
    for i in range(1, count + 1):
        save(root / "eval15" / "high" / f"{i}.png", photo(20 + i))
        save(root / "eval15" / "low" / f"{i}.png", dark(photo(20 + i)))
    save(root / "our485" / "low" / "9.png", dark(photo(29)))
    return root


def make_gopro(root: Path) -> Path:
    """GOPRO_Large/test/<scene>/{blur,blur_gamma,sharp}/NNNNNN.png, two scenes sharing frame names."""
    for s, scene in enumerate(("GOPR0384_11_00", "GOPR0385_11_01")):
        for frame in ("000001", "000002"):
            clean = photo(30 + 2 * s + int(frame))
            save(root / "test" / scene / "sharp" / f"{frame}.png", clean)
            save(root / "test" / scene / "blur" / f"{frame}.png", blurred(clean))
            save(root / "test" / scene / "blur_gamma" / f"{frame}.png", (blurred(clean) // 2 + 60).astype(np.uint8))
    return root


CDD11_MAKERS = {"low": dark, "haze": hazy, "rain": rainy, "snow": snowy}


def make_cdd11(root: Path, folders: tuple[str, ...] = ("low", "haze", "rain", "snow", "low_haze", "haze_snow", "low_haze_rain")) -> Path:
    """CDD-11 test: ``clear/`` plus one folder per degradation with the same names."""
    for i in range(1, 3):
        clean = photo(40 + i)
        save(root / "clear" / f"{i:03d}.png", clean)
        for name in folders:
            degraded = clean
            for part in name.split("_"):
                degraded = CDD11_MAKERS[part](degraded)
            save(root / name / f"{i:03d}.png", degraded)
    return root


def rows(out: Path) -> list[dict]:
    return load_manifest(out, "test")


def test_rain100l_both_repackagings_give_one_dataset(tmp_path):
    a = import_dataset(ImportConfig("rain100l", str(make_rain100l(tmp_path / "Rain100L")), out=str(tmp_path / "a")))
    b = import_dataset(ImportConfig("rain100l", str(make_rain100l(tmp_path / "Restormer", repackaged=True)), out=str(tmp_path / "b")))
    assert a["pairs"] == b["pairs"] == 3 and a["fingerprint"] == b["fingerprint"]  # same pixels, ids, labels
    row = rows(tmp_path / "a")[0]
    assert (row["image_id"], row["degradation"], row["labels"], row["track"], row["severity"], row["range"]) == \
        ("rain100l-001", "rain", ["rain"], "rain100l", -1, "external")
    assert row["source"] == "rain100l:rain-001.png" and "research use" in row["license"]
    assert verify(tmp_path / "a")["problems"] == []
    card = (tmp_path / "a" / "README.md").read_text()
    assert "suite `rain100l`" in card and "Yang et al." in card


def test_sots_names_give_parameters_and_share_targets(tmp_path):
    import_dataset(ImportConfig("sots-outdoor", str(make_sots(tmp_path / "outdoor")), out=str(tmp_path / "out")))
    manifest = rows(tmp_path / "out")
    assert [(r["image_id"], r["copy"], json.loads(r["params"])) for r in manifest] == [
        ("sots-outdoor-0001", 0, {"A": 0.8, "beta": 0.2}), ("sots-outdoor-0001", 1, {"A": 1.0, "beta": 0.16}),
        ("sots-outdoor-0002", 0, {"A": 0.8, "beta": 0.2})]
    assert manifest[0]["target_file_name"] == manifest[1]["target_file_name"] == "target/sots-outdoor-0001.png"


def test_gopro_uses_blur_by_default_and_says_so(tmp_path):
    source = make_gopro(tmp_path / "GOPRO_Large")
    plain = import_dataset(ImportConfig("gopro", str(source), out=str(tmp_path / "blur")))
    gamma = import_dataset(ImportConfig("gopro", str(source), out=str(tmp_path / "gamma"), options=LayoutOptions(blur_folder="blur_gamma")))
    assert plain["pairs"] == gamma["pairs"] == 4 and plain["fingerprint"] != gamma["fingerprint"]
    assert any("inputs from blur/" in n and "blur_gamma" in n for n in plain["notes"])
    assert {r["image_id"] for r in rows(tmp_path / "blur")} == {f"gopro-GOPR038{s}-00000{f}" for s, f in
                                                                  (("4_11_00", 1), ("4_11_00", 2), ("5_11_01", 1), ("5_11_01", 2))}
    with pytest.raises(UserError, match="--blur-folder 'sharp': valid folders are blur, blur_gamma"):
        import_dataset(ImportConfig("gopro", str(source), out=str(tmp_path / "x"), options=LayoutOptions(blur_folder="sharp")))


def test_lol_reads_eval15_only(tmp_path):
    summary = import_dataset(ImportConfig("lol-v1", str(make_lol(tmp_path / "LOLdataset")), out=str(tmp_path / "out")))
    assert summary["pairs"] == 2 and [r["image_id"] for r in rows(tmp_path / "out")] == ["lol-v1-1", "lol-v1-2"]
    assert {r["degradation"] for r in rows(tmp_path / "out")} == {"lowlight"}


def test_cdd11_labels_and_unseen_snow(tmp_path):
    summary = import_dataset(ImportConfig("cdd11", str(make_cdd11(tmp_path / "CDD-11_test")), out=str(tmp_path / "out")))
    by_label = {r["degradation"]: (r["labels"], r["track"]) for r in rows(tmp_path / "out")}
    assert summary["pairs"] == 14 and by_label == {
        "lowlight": (["lowlight"], "single"), "haze": (["haze"], "single"), "rain": (["rain"], "single"),
        "snow": (["snow"], "unseen"), "lowlight+haze": (["haze", "lowlight"], "mixed"), "haze+snow": (["haze", "snow"], "unseen"),
        "lowlight+haze+rain": (["haze", "lowlight", "rain"], "mixed")}
    assert any("snow" in n and n.endswith("absent: low_rain, low_snow, haze_rain, low_haze_snow") for n in summary["notes"])


def test_generic_and_csv_layouts(tmp_path):
    root = tmp_path / "mine"
    for i in range(2):
        save(root / "noisy" / f"im{i}.png", snowy(photo(50 + i)))
        save(root / "clean" / f"im{i}.png", photo(50 + i))
    options = LayoutOptions(degradation="awgn", input_dir="noisy", target_dir="clean")
    generic = import_dataset(ImportConfig("generic", str(root), out=str(tmp_path / "g"), options=options, license="CC0"))
    assert [(r["image_id"], r["labels"], r["track"], r["license"]) for r in rows(tmp_path / "g")] == [
        ("im0", ["noise"], "single", "CC0"), ("im1", ["noise"], "single", "CC0")]
    (root / "pairs.csv").write_text("input,target,degradation\nnoisy/im0.png,clean/im0.png,awgn\nnoisy/im1.png,clean/im1.png,\n")
    with pytest.raises(UserError, match=r"pairs\.csv, line 3: degradation None: the label of the pairs"):
        import_dataset(ImportConfig("csv", str(root / "pairs.csv"), out=str(tmp_path / "c")))
    listed = import_dataset(ImportConfig("csv", str(root / "pairs.csv"), out=str(tmp_path / "c"), options=LayoutOptions(degradation="awgn"),
                                         license="CC0"))
    assert listed["pairs"] == 2 and listed["fingerprint"] != generic["fingerprint"]  # the suite (layout name) is part of it
    strip = ("source", "input_sha256", "target_sha256")
    assert [{k: v for k, v in r.items() if k not in strip} for r in rows(tmp_path / "c")] == \
        [{k: v for k, v in r.items() if k not in strip} for r in rows(tmp_path / "g")]
    with pytest.raises(UserError, match="--blur-folder: layout csv does not read it"):
        import_dataset(ImportConfig("csv", str(root / "pairs.csv"), options=LayoutOptions(blur_folder="blur_gamma")))


def test_mismatches_are_listed_or_skipped(tmp_path):
    source = make_rain100l(tmp_path / "Rain100L", count=4)
    (source / "norain-002.png").unlink()                                  # missing GT
    save(source / "norain-003.png", photo(3, (40, 56)))                   # size mismatch
    shutil.copy(source / "rain-004.png", source / "rain-4.png")           # two files for one image
    save(source / "norain-005.png", photo(5))                             # target without input
    with pytest.raises(PairingError) as refused:
        import_dataset(ImportConfig("rain100l", str(source), out=str(tmp_path / "out")))
    message = str(refused.value)
    for expected in ("4 problem(s)", "rain-002.png: no target image", "rain-003.png is 57x41 px but its target norain-003.png is 56x40 px",
                     "rain-004.png and rain-4.png: two files for image '004'", "norain-005.png: target without an input", "--skip-bad"):
        assert expected in message
    assert not (tmp_path / "out").exists()  # nothing written
    summary = import_dataset(ImportConfig("rain100l", str(source), out=str(tmp_path / "out"), skip_bad=True))
    assert summary["pairs"] == 1 and len(summary["skipped"]) == 4
    assert len((tmp_path / "out" / "skipped.jsonl").read_text().splitlines()) == 4
    assert verify(tmp_path / "out")["problems"] == []


def test_an_undecodable_file_is_named_and_the_import_resumes(tmp_path, capsys):
    source = make_lol(tmp_path / "LOL", count=3)
    (source / "eval15" / "low" / "2.png").write_bytes((source / "eval15" / "low" / "2.png").read_bytes()[:300])  # truncated
    out = tmp_path / "out"
    assert main(["import", "lol-v1", str(source), "--out", str(out)]) == 2
    assert "eval15/low/2.png" in capsys.readouterr().err and not (out / "fingerprint.json").exists()
    assert main(["import", "lol-v1", str(source), "--out", str(out), "--skip-bad"]) == 0
    printed = capsys.readouterr().out
    assert "2 pairs (1 written, 1 already present, 1 left out" in printed
    assert main(["import", "rain100l", str(make_rain100l(tmp_path / "r")), "--out", str(out)]) == 2
    assert "holds another dataset" in capsys.readouterr().err


def test_unknown_layout_and_missing_folders_are_one_line_errors(tmp_path, capsys):
    assert main(["import", "rain100", str(tmp_path)]) == 2
    assert "unknown layout 'rain100'. Did you mean 'rain100l'" in capsys.readouterr().err
    assert main(["import", "sots-outdoor", str(tmp_path)]) == 2
    assert "no hazy/ + gt/ (or input/ + target/) folders" in capsys.readouterr().err
    assert main(["import", "cdd11", str(tmp_path / "nothing")]) == 2
    assert "no such folder; layout cdd11 expects" in capsys.readouterr().err


def test_every_layout_is_documented():
    for name in LAYOUTS.names():
        spec = LAYOUTS.spec(name)
        assert spec.expects and spec.license and (spec.url.startswith("https://") or name in ("generic", "csv"))


@pytest.fixture(scope="module")
def scored_sets(tmp_path_factory):
    """Every public layout imported and scored by ``uirbench evaluate --model identity`` (entries in ``root/entries``)."""
    import pandas as pd

    from uirbench.io import write_json

    root = tmp_path_factory.mktemp("scored")
    makers = {"rain100l": make_rain100l, "sots-outdoor": make_sots, "lol-v1": make_lol, "gopro": make_gopro, "cdd11": make_cdd11}
    for layout, make in makers.items():
        data, scored = root / "data" / layout, root / "eval" / layout
        assert main(["import", layout, str(make(root / "sets" / layout)), "--out", str(data)]) == 0
        assert main(["verify", str(data)]) == 0
        assert main(["evaluate", "--model", "identity", "--data", str(data), "--out", str(scored), "--save-images"]) == 0
        per_image = pd.read_parquet(scored / "per_image.parquet").set_index("input_file_name")
        for row in rows(data):  # identity scores the degraded inputs: the card's difficulty numbers
            assert per_image.loc[row["input_file_name"], "psnr"] == pytest.approx(row["input_psnr"], abs=1e-9)
        entry = json.loads((scored / "entry.json").read_text())
        write_json(root / "entries" / f"identity-{layout}.json", {**entry, "name": f"identity-{layout}"})
    return root, list(makers)


def test_evaluate_submit_and_boards_work_unchanged_on_every_imported_set(scored_sets, tmp_path):
    from uirbench.leaderboard.entry import load_entries
    from uirbench.leaderboard.ranking import boards
    from uirbench.leaderboard.tables import board_tables

    root, layouts = scored_sets
    entries = tmp_path / "entries"
    shutil.copytree(root / "entries", entries)
    assert main(["submit", str(root / "eval" / "gopro" / "images" / "test"), "--data", str(root / "data" / "gopro"),
                 "--name", "identity-gopro-submitted", "--entries", str(entries)]) == 0
    ranked, apart = boards(load_entries(entries))
    assert sorted(b.suite for b in ranked) == sorted(layouts) and apart == []
    assert [len(b.entries) for b in ranked if b.suite == "gopro"] == [2]  # the submitted images score like the run
    cdd11 = next(b for b in ranked if b.suite == "cdd11")
    assert cdd11.keys("per_track") == ["mixed", "single", "unseen"]  # snow pairs form their own track
    assert board_tables(cdd11)[0].rows


@pytest.mark.slow
def test_leaderboard_build_renders_every_imported_board(scored_sets, tmp_path):
    root, layouts = scored_sets
    assert main(["leaderboard", "build", "--entries", str(root / "entries"), "--out", str(tmp_path / "board")]) == 0
    readme = (tmp_path / "board" / "README.md").read_text()
    assert all(f"## Board {layout}/test" in readme for layout in layouts)


def test_the_card_groups_many_source_files_by_their_prefix():
    from uirbench.card import MAX_SOURCE_ROWS, _sources

    few = {"test": [{"source": "skimage: cat", "license": "CC0"}] * 3}
    assert _sources(few) == [["skimage: cat", "CC0", 3]]
    many = {"test": [{"source": f"gopro:GOPR0384_11_00/blur/{i:06d}.png", "license": "CC BY 4.0"}
                     for i in range(MAX_SOURCE_ROWS + 5)]}
    assert _sources(many) == [["gopro:*", "CC BY 4.0", MAX_SOURCE_ROWS + 5]]
