"""Dataset identity: pixel hashes and a fingerprint that ignore the PNG encoding, checked by `verify`."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from uirbench.cli import main
from uirbench.generate import choose_images
from uirbench.manifest import ManifestError, load_manifest
from uirbench.sources import SourceItem
from uirbench.suites import DEFAULT_SUITE, get_suite
from uirbench.verify import verify


def _pngs(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*.png") if p.parent.name in ("input", "target"))


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_fingerprint_recomputed_from_the_written_recipe_alone(tiny_dataset):
    """Follows the dataset card's recipe with hashlib, json, numpy and Pillow only (no uirbench code)."""
    suite = json.loads((tiny_dataset / "suite.json").read_text())
    digest = hashlib.sha256((json.dumps({"recipe": "uirbench-pixels-1", "seed": suite["seed"], "suite": suite["suite"]["name"]},
                                        sort_keys=True, separators=(",", ":")) + "\n").encode())
    fields = ("input_file_name", "target_file_name", "image_id", "degradation", "labels", "severity", "range", "track",
              "copy", "params", "input_pixels", "target_pixels")

    def rounded(v):
        return float(f"{v:.10g}") if isinstance(v, float) else [rounded(x) for x in v] if isinstance(v, list) else \
            {k: rounded(x) for k, x in v.items()} if isinstance(v, dict) else v

    for split in sorted(p.parent.name for p in tiny_dataset.glob("*/metadata.jsonl")):
        rows = [json.loads(line) for line in (tiny_dataset / split / "metadata.jsonl").read_text().splitlines()]
        for row in sorted(rows, key=lambda r: r["input_file_name"]):
            for key in ("input", "target"):
                rgb = np.asarray(Image.open(tiny_dataset / split / row[f"{key}_file_name"]).convert("RGB"))
                pixels = hashlib.sha256(f"uint8 {rgb.shape[0]}x{rgb.shape[1]}x3\n".encode() + rgb.tobytes()).hexdigest()
                assert pixels == row[f"{key}_pixels"]
            line = {**{k: row[k] for k in fields}, "params": rounded(json.loads(row["params"])), "split": split}
            digest.update((json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n").encode())
    assert digest.hexdigest() == json.loads((tiny_dataset / "fingerprint.json").read_text())["fingerprint"]


def test_reencoding_every_png_keeps_the_fingerprint(tiny_dataset, tmp_path, capsys):
    out = _copy(tiny_dataset, tmp_path / "reencoded")
    before = verify(out)
    for i, path in enumerate(_pngs(out)):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        if i % 2:  # Pillow at the highest compression, OpenCV at the lowest
            Image.fromarray(rgb).save(path, compress_level=9, optimize=True)
        else:
            assert cv2.imwrite(str(path), rgb[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
    after = verify(out)
    assert after["problems"] == [] and after["fingerprint"] == before["fingerprint"] == after["recorded"]
    assert len(after["reencoded"]) == after["files_checked"] == len(_pngs(out))
    assert main(["verify", str(out), "--fingerprint", before["fingerprint"][:12]]) == 0
    text = capsys.readouterr().out
    assert "re-encoded" in text and f"matches the published fingerprint {before['fingerprint'][:12]}" in text


def test_changed_pixels_are_a_problem_naming_the_file(tiny_dataset, tmp_path):
    out = _copy(tiny_dataset, tmp_path / "edited")
    victim = _pngs(out)[0]
    rgb = np.array(Image.open(victim).convert("RGB"))
    rgb[0, 0, 0] ^= 1
    Image.fromarray(rgb).save(victim)
    problems = verify(out)["problems"]
    assert len(problems) == 1 and victim.relative_to(out).as_posix() in problems[0] and "pixels" in problems[0]


@pytest.mark.parametrize("edit", ["seed", "name"])
def test_edited_suite_json_changes_the_fingerprint(tiny_dataset, tmp_path, edit):
    out = _copy(tiny_dataset, tmp_path / "suite")
    meta = json.loads((out / "suite.json").read_text())
    if edit == "seed":
        meta["seed"] = 7
    else:
        meta["suite"]["name"] = "daclip-synthetic-v1"
    (out / "suite.json").write_text(json.dumps(meta))
    assert any("fingerprint.json: recorded" in p for p in verify(out)["problems"])


def test_verify_cli_wrong_or_malformed_fingerprint(tiny_dataset, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["verify", str(tiny_dataset), "--fingerprint", "0" * 16])
    assert exc.value.code == 1 and "it is not that dataset" in capsys.readouterr().out
    assert main(["verify", str(tiny_dataset), "--fingerprint", "xyz"]) == 2
    assert "--fingerprint 'xyz': expected 8 to 64 hexadecimal digits" in capsys.readouterr().err


def test_unparsable_manifest_line_names_file_and_line(tiny_dataset, tmp_path, capsys):
    out = _copy(tiny_dataset, tmp_path / "garbage")
    with open(out / "test" / "metadata.jsonl", "a") as fh:
        fh.write("garbage line\n")
    lines = len((out / "test" / "metadata.jsonl").read_text().splitlines())
    with pytest.raises(ManifestError, match=rf"test/metadata.jsonl, line {lines}: not valid JSON"):
        load_manifest(out, "test")
    problems = verify(out)["problems"]
    assert any(f"line {lines}" in p for p in problems)


def test_dataset_without_pixel_hashes_is_refused_clearly(tiny_dataset, tmp_path):
    out = _copy(tiny_dataset, tmp_path / "old")
    path = out / "test" / "metadata.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if not k.endswith("_pixels")}) + "\n" for r in rows))
    problems = verify(out)["problems"]
    assert any("without pixel hashes" in p for p in problems)


def test_limit_gives_every_split_an_image():
    suite = get_suite(DEFAULT_SUITE)
    items = [SourceItem(image_id=f"img{i:03d}") for i in range(40)]
    by_split = {s: sorted(it.image_id for it in items if suite.split_of(it.image_id) == s) for s, _ in suite.splits}
    chosen = choose_images(suite, items, None, 3)
    assert {suite.split_of(it.image_id) for it in chosen} == {"test", "val", "train"}
    assert [it.image_id for it in chosen] == sorted(by_split[s][0] for s in ("test", "val", "train"))
    assert len(choose_images(suite, items, None, 5)) == 5
    assert [it.image_id for it in choose_images(suite, items, None, 1)] == [by_split["test"][0]]  # the suite's first split
    assert [it.image_id for it in choose_images(suite, items, ("train",), 2)] == by_split["train"][:2]
    assert len(choose_images(suite, items, None, None)) == 40
