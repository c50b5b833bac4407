"""Fault injection on every dataset artefact uirbench reads, and the CLI's user-error contract.

Each artefact (an input PNG, a target PNG, a manifest, suite.json, fingerprint.json, a leaderboard
entry) is truncated, bit-flipped, replaced by garbage, emptied or removed; `verify`, `evaluate` and
`leaderboard build` must then answer with a clear error naming the file (exit 1 for verify's
findings, 2 for a refused command), never a traceback, and never change what was already written.
Checkpoints and training states have their own suite (test_checkpoint_integrity.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from uirbench.cli import main

FAULTS = {
    "truncate": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "flip": lambda p: p.write_bytes(_flipped(p.read_bytes())),
    "garbage": lambda p: p.write_bytes(b"garbage \x00\xff\xfe not what was written"),
    "empty": lambda p: p.write_bytes(b""),
    "remove": lambda p: p.unlink(),
}


def _flipped(data: bytes) -> bytes:
    at = len(data) // 2
    return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1:]


def _artefact(out: Path, kind: str) -> Path:
    rows = [json.loads(line) for line in (out / "test" / "metadata.jsonl").read_text().splitlines()]
    return {"input": out / "test" / rows[0]["input_file_name"], "target": out / "test" / rows[0]["target_file_name"],
            "manifest": out / "test" / "metadata.jsonl", "suite": out / "suite.json",
            "fingerprint": out / "fingerprint.json"}[kind]


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # verify exits 1 when it finds problems
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def damaged(request, tiny_dataset, tmp_path):
    kind, fault = request.param
    out = tmp_path / "data"
    shutil.copytree(tiny_dataset, out)
    path = _artefact(out, kind)
    FAULTS[fault](path)
    return out, path


CASES = [(kind, fault) for kind in ("input", "target", "manifest", "suite", "fingerprint") for fault in FAULTS]


@pytest.mark.parametrize("damaged", CASES, indirect=True, ids=[f"{k}-{f}" for k, f in CASES])
def test_verify_names_the_damaged_file(damaged, capsys):
    out, path = damaged
    before = _digest(out)
    code, text = _run(["verify", str(out)], capsys)
    assert code in (1, 2) and "Traceback" not in text
    assert path.name in text, text
    assert _digest(out) == before


@pytest.mark.parametrize("damaged", CASES, indirect=True, ids=[f"{k}-{f}" for k, f in CASES])
def test_evaluate_refuses_a_damaged_dataset_before_writing(damaged, tmp_path, capsys):
    out, path = damaged
    before = _digest(out)
    code, text = _run(["evaluate", "--model", "identity", "--data", str(out), "--out", str(tmp_path / "eval")], capsys)
    assert code == 2 and "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    assert path.name in text or (path.name == "metadata.jsonl" and "test/metadata.jsonl" in text), text
    assert not (tmp_path / "eval" / "entry.json").exists()
    assert _digest(out) == before


def test_reencoded_dataset_still_evaluates(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "data"
    shutil.copytree(tiny_dataset, out)
    for path in out.rglob("*.png"):
        if path.parent.name in ("input", "target"):
            Image.open(path).save(path, compress_level=9)
    code, text = _run(["evaluate", "--model", "identity", "--data", str(out), "--out", str(tmp_path / "eval")], capsys)
    assert code == 0, text


@pytest.mark.parametrize("fault", list(FAULTS))
def test_leaderboard_build_names_a_damaged_entry(fault, tmp_path, capsys):
    entries = tmp_path / "entries"
    shutil.copytree(Path(__file__).resolve().parents[1] / "leaderboard" / "entries", entries)
    victim = entries / "identity.json"
    FAULTS[fault](victim)
    before = _digest(entries)
    code, text = _run(["leaderboard", "build", "--entries", str(entries), "--out", str(tmp_path / "board")], capsys)
    if fault == "remove":
        assert code == 0  # one entry fewer is a valid leaderboard
    else:
        assert code == 2 and "identity.json" in text and "Traceback" not in text, text
        assert not (tmp_path / "board").exists()
    assert _digest(entries) == before


# -- reproductions of the reliability review (../shared/reviews/reliability.md) -----------------------------
def _photos(folder: Path, small_image: np.ndarray, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.ascontiguousarray(np.roll(small_image, 7 * i, axis=1))).save(folder / name)
    return folder


@pytest.mark.parametrize("link", ["dangling", "loop"])
def test_unfollowable_symlinks_are_named_or_listed_not_dropped(link, tmp_path, small_image, capsys):
    src = _photos(tmp_path / "src", small_image, ["good.png"])
    if link == "dangling":
        (src / "a.png").symlink_to(src / "nowhere.png")
    else:
        (src / "a.png").symlink_to(src / "b.png")
        (src / "b.png").symlink_to(src / "a.png")
    code, text = _run(["generate", "--source", str(src), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "a.png" in text and "Traceback" not in text
    code, text = _run(["generate", "--source", str(src), "--out", str(tmp_path / "o"), "--skip-bad"], capsys)
    assert code == 0
    skipped = (tmp_path / "o" / "skipped.jsonl").read_text()
    assert "a.png" in skipped


def test_non_utf8_file_name_is_shown_escaped_and_the_card_is_written(tmp_path, small_image, capsys):
    import os

    src = _photos(tmp_path / "src", small_image, ["good.png"])
    os.rename(src / "good.png", os.fsencode(src) + b"/\xff\xfebad.png")
    code, text = _run(["generate", "--source", str(src), "--out", str(tmp_path / "o"), "--limit", "1"], capsys)
    assert code == 0, text
    assert "\\xff\\xfebad.png" in (tmp_path / "o" / "README.md").read_text()


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_applies_to_16_bit_images_too(orientation, tmp_path, small_image):
    from uirbench.io import read_image

    grey8 = np.ascontiguousarray(small_image[:, :, 1])
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(grey8).save(tmp_path / "g8.png", exif=exif.tobytes())
    Image.fromarray(grey8.astype(np.uint16) * 257).save(tmp_path / "g16.png", exif=exif.tobytes())
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")  # really the 16-bit path
    eight, sixteen = read_image(tmp_path / "g8.png"), read_image(tmp_path / "g16.png")
    assert eight.shape != small_image.shape or orientation == 3
    assert np.array_equal(eight, sixteen)


@pytest.mark.parametrize("change", ["added", "removed", "pixels changed"])
def test_generate_refuses_a_changed_source_naming_the_images(change, tmp_path, small_image, capsys):
    src = _photos(tmp_path / "src", small_image, ["a.png", "b.png"])
    out = tmp_path / "o"
    assert _run(["generate", "--source", str(src), "--out", str(out), "--splits", "test", "val", "train"], capsys)[0] == 0
    before = _digest(out)
    if change == "added":
        _photos(tmp_path / "extra", small_image[::-1], ["c.png"])
        shutil.copy(tmp_path / "extra" / "c.png", src / "c.png")
    elif change == "removed":
        (src / "b.png").unlink()
    else:
        Image.fromarray(np.ascontiguousarray(small_image[::-1])).save(src / "b.png")
    code, text = _run(["generate", "--source", str(src), "--out", str(out), "--splits", "test", "val", "train"], capsys)
    assert code == 2 and f"{change}: " in text and "Traceback" not in text, text
    assert _digest(out) == before


@pytest.mark.parametrize("edit, message", [
    ({"severity": 9}, "severity must be an integer 0-5"), ({"severity": "abc"}, "severity must be an integer 0-5"),
    ({"params": [1, 2]}, "params must be a JSON object"), ({"sigma": "nan"}, "sigma='nan' must be a number"),
])
def test_degrade_params_in_errors_are_one_line(edit, message, tmp_path, small_image, capsys):
    photo = _photos(tmp_path / "src", small_image, ["p.png"]) / "p.png"
    assert main(["degrade", str(photo), str(tmp_path / "o.png"), "--degradation", "awgn"]) == 0
    record = json.loads((tmp_path / "o.json").read_text())
    if "sigma" in edit:
        record["params"].update(edit)
    else:
        record.update(edit)
    (tmp_path / "bad.json").write_text(json.dumps(record))
    capsys.readouterr()
    code, text = _run(["degrade", str(photo), str(tmp_path / "o2.png"), "--params-in", str(tmp_path / "bad.json")], capsys)
    assert code == 2 and message in text and "Traceback" not in text, text
    assert not (tmp_path / "o2.png").exists()


def test_empty_metric_selection_is_refused(tiny_dataset, tmp_path, capsys):
    code, text = _run(["evaluate", "--model", "identity", "--data", str(tiny_dataset), "--metrics", ",",
                       "--out", str(tmp_path / "e")], capsys)
    assert code == 2 and "--metrics: no metric selected" in text and "psnr" in text
    assert not (tmp_path / "e").exists()


@pytest.mark.internal_error
def test_an_internal_error_is_one_line_and_debug_shows_the_traceback(tmp_path, small_image, capsys, monkeypatch):
    import uirbench.io

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")  # fault injection: an internal failure, not a user error

    monkeypatch.setattr(uirbench.io, "encode_png", broken)
    photo = _photos(tmp_path / "src", small_image, ["p.png"]) / "p.png"
    argv = ["degrade", str(photo), str(tmp_path / "o.png"), "--degradation", "awgn"]
    code, text = _run(argv, capsys)
    assert code == 1 and "internal error (RuntimeError: simulated bug)" in text and "--debug" in text
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1
    with pytest.raises(RuntimeError, match="simulated bug"):
        main(["--debug", *argv])


@pytest.mark.parametrize("mix", ["", ",", "=2"])
def test_empty_mix_selection_is_refused(mix, tiny_dataset, tmp_path, capsys):
    code, text = _run(["train", "--model", "nafnet", "--preset", "tiny", "--steps", "1", "--mix", mix,
                       "--data", str(tiny_dataset), "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "--mix" in text and "empty degradation name" in text, text


def test_unknown_split_is_refused_before_anything_is_written(tmp_path, small_image, capsys):
    src = _photos(tmp_path / "src", small_image, ["a.png"])
    code, text = _run(["generate", "--source", str(src), "--out", str(tmp_path / "o"), "--splits", "tset"], capsys)
    assert code == 2 and "--splits: suite" in text and "'tset'" in text and "valid: test, val, train" in text, text
    assert not (tmp_path / "o").exists()
