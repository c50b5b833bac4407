"""`uirbench generate` / `verify`: determinism across workers and shards, resume, bad input, datasets loading, card."""

from __future__ import annotations

import hashlib
import io as _io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from uirbench.cli import main
from uirbench.generate import GenerateConfig, generate
from uirbench.suites import DEFAULT_SUITE
from uirbench.verify import verify

SUITE = DEFAULT_SUITE


def _write(path: Path, array: np.ndarray, **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **save)
    return path


def _tree(out: Path) -> dict[str, str]:
    """sha256 of every dataset file; journals (rows in completion order) and the recorded command line excluded."""
    digests = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and ".rows" not in p.parts and p.name != "suite.json":
            data = p.read_bytes()
            if p.name == "README.md":
                data = b"\n".join(line for line in data.split(b"\n") if not line.startswith(b"- command:"))
            digests[p.relative_to(out).as_posix()] = hashlib.sha256(data).hexdigest()
    return digests


def _gen(src: Path, out: Path, **kw) -> dict:
    return generate(GenerateConfig(source=str(src), suite=kw.pop("suite", SUITE), out=str(out), limit=kw.pop("limit", 3), **kw))


@pytest.fixture(scope="module")
def reference(photo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "data"
    summary = _gen(photo_dir, out)
    return out, summary


def test_single_run_is_complete_and_verifies(reference):
    out, summary = reference
    assert summary["complete"] and summary["pairs_written"] == sum(summary["pairs_per_split"].values())
    result = verify(out)
    assert result["problems"] == [] and result["fingerprint"] == summary["fingerprint"]


@pytest.mark.slow
def test_bytes_independent_of_workers_and_shards(photo_dir, reference, tmp_path):
    ref_out, _ = reference
    two = tmp_path / "two"
    _gen(photo_dir, two, workers=2)
    sharded = tmp_path / "sharded"
    first = _gen(photo_dir, sharded, shard=(1, 2))
    assert not first["complete"] and not (sharded / "test" / "metadata.jsonl").exists()
    assert _gen(photo_dir, sharded, shard=(0, 2))["complete"]
    expected = _tree(ref_out)
    for out in (two, sharded):
        assert _tree(out) == expected


KILL_AFTER_ROWS = """
import os, signal, sys
import uirbench.journal as journal
append = journal.Journal.append
def killing_append(self, records):  # die right after the Nth image's rows reach the journal
    append(self, records)
    self.appended = getattr(self, "appended", 0) + 1
    if self.appended == int(os.environ["KILL_AFTER_IMAGES"]):
        os.kill(os.getpid(), signal.SIGKILL)
journal.Journal.append = killing_append
from uirbench.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_resume_after_kill_equals_uninterrupted(photo_dir, reference, tmp_path):
    ref_out, _ = reference
    out = tmp_path / "killed"
    args = ["generate", "--source", str(photo_dir), "--out", str(out), "--limit", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KILL_AFTER_IMAGES": "1"}
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_ROWS, *args], capture_output=True, env=env, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / "fingerprint.json").exists()
    for p in out.rglob("*.tmp"):  # a temp file may survive a kill -9, but never under a final name
        assert p.name.startswith(".")
    summary = _gen(photo_dir, out)
    assert summary["complete"] and summary["pairs_already_present"] > 0
    got, expected = _tree(out), _tree(ref_out)
    got = {k: v for k, v in got.items() if not k.endswith(".tmp")}
    assert got == expected


def test_verify_catches_a_flipped_byte(reference, tmp_path):
    out, _ = reference
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
    victim = sorted((copy / "test" / "input").glob("*.png"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    problems = verify(copy)["problems"]
    assert any(victim.name in p for p in problems)
    with pytest.raises(SystemExit) as exc:
        main(["verify", str(copy)])
    assert exc.value.code == 1


def test_datasets_loads_two_image_columns_and_params(reference):
    from datasets import Image as HFImage
    from datasets import load_dataset

    out, summary = reference
    ds = load_dataset("imagefolder", data_dir=str(out))
    split = ds["test"]
    assert len(split) == summary["pairs_per_split"]["test"]
    images = [k for k, f in split.features.items() if isinstance(f, HFImage)]
    assert sorted(images) == ["input", "target"]
    row = split[0]
    params = json.loads(row["params"])
    assert isinstance(params, dict) and row["input"].size == row["target"].size


def test_card_agrees_with_manifest(reference):
    from uirbench.card import difficulty, load_manifest

    out, _ = reference
    card = (out / "README.md").read_text()
    rows = load_manifest(out, "test")
    assert (out / "samples.png").stat().st_size > 1000
    for name, level, count, psnr, ssim in difficulty(rows):
        assert f"| {name} | {level} | {count} | {psnr:.2f} | {ssim:.4f} |" in card
    noise = [r for r in rows if r["degradation"] == "noise" and r["severity"] == 3]
    from uirbench.io import read_image

    for r in noise:  # the recorded input PSNR is the PSNR of the stored files
        x = read_image(out / "test" / r["input_file_name"]).astype(np.float64)
        y = read_image(out / "test" / r["target_file_name"]).astype(np.float64)
        assert r["input_psnr"] == pytest.approx(10 * np.log10(255.0**2 / np.mean((x - y) ** 2)), abs=1e-6)


def test_replay_from_manifest_params_reproduces_inputs(reference):
    from uirbench.degradations import create
    from uirbench.degradations.depth import load_depth
    from uirbench.io import read_image

    out, _ = reference
    for row in load_manifest_rows(out, "test")[::7]:
        clean = read_image(out / "test" / row["target_file_name"])
        depth = load_depth(out / "test" / row["depth_map"]) if row["depth_map"] else None
        replayed = type(create(row["degradation"])).replay(clean, json.loads(row["params"]), depth)
        assert np.array_equal(replayed, read_image(out / "test" / row["input_file_name"]))


def load_manifest_rows(out: Path, split: str) -> list[dict]:
    from uirbench.manifest import load_manifest

    return load_manifest(out, split)


def test_refuses_output_dir_of_another_seed(photo_dir, reference, tmp_path, capsys):
    out, _ = reference
    before = _tree(out)
    code = main(["generate", "--source", str(photo_dir), "--out", str(out), "--limit", "3", "--seed", "1"])
    assert code == 2 and "different seed" in capsys.readouterr().err
    assert _tree(out) == before


# -- bad input ---------------------------------------------------------------------------------
def _png_bytes(array: np.ndarray, **save) -> bytes:
    buf = _io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", **save)
    return buf.getvalue()


def _bad_folder(tmp_path: Path, name: str, data: bytes, good: np.ndarray) -> Path:
    root = tmp_path / "src"
    _write(root / "good.png", good)
    (root / name).write_bytes(data)
    return root


@pytest.mark.parametrize("kind", ["truncated", "not_an_image", "too_small", "translucent_rgba", "bomb"])
def test_bad_images_stop_the_run_naming_the_file_unless_skip_bad(kind, tmp_path, small_image, capsys, monkeypatch):
    good = small_image[:64, :80]
    if kind == "truncated":
        data = _png_bytes(good)[:300]
    elif kind == "not_an_image":
        data = b"this is not an image\n" * 10
    elif kind == "too_small":
        data = _png_bytes(np.ascontiguousarray(good[:40, :40]))
    elif kind == "translucent_rgba":
        rgba = np.dstack([good, np.full(good.shape[:2], 128, np.uint8)])
        data = _png_bytes(rgba)
    else:
        import uirbench.io

        monkeypatch.setattr(uirbench.io, "MAX_PIXELS", 64 * 80 + 1)  # the guard reads the limit at call time
        data = _png_bytes(np.zeros((100, 100, 3), np.uint8))
    src = _bad_folder(tmp_path, "bad.png", data, good)
    out = tmp_path / "out"
    args = ["generate", "--source", str(src), "--out", str(out), "--suite", "promptir-denoise-v1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "bad.png" in err and "--skip-bad" in err
    assert main([*args, "--skip-bad"]) == 0
    skipped = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    assert [s["image_id"] for s in skipped] == ["bad"] and "bad.png" in skipped[0]["error"]
    rows = (out / "test" / "metadata.jsonl").read_text().splitlines()
    assert {json.loads(r)["image_id"] for r in rows} == {"good"}


def test_special_but_valid_images_are_converted_properly(tmp_path, small_image):
    from uirbench.io import read_image

    root = tmp_path / "src"
    root.mkdir()
    base = np.ascontiguousarray(small_image[:64, :80])
    sixteen = base[:, :, 0].astype(np.uint16) * 257 + 100  # 16-bit grey with low bits set
    Image.fromarray(sixteen).save(root / "grey16.png")
    _write(root / "grey.png", base[:, :, 1])
    _write(root / "cmyk.jpg", base, format="JPEG", quality=95)
    Image.open(root / "cmyk.jpg").convert("CMYK").save(root / "cmyk.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.fromarray(base).save(root / "rotated.jpg", quality=95, exif=exif)
    got16 = read_image(root / "grey16.png")
    assert np.array_equal(got16[:, :, 0], ((sixteen.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8))
    assert np.array_equal(got16[:, :, 0], base[:, :, 0]) and np.array_equal(got16[:, :, 1], got16[:, :, 0])
    assert np.array_equal(read_image(root / "grey.png")[:, :, 2], base[:, :, 1])
    assert read_image(root / "cmyk.jpg").shape == (64, 80, 3)
    assert read_image(root / "rotated.jpg").shape == (80, 64, 3)
    summary = generate(GenerateConfig(source=str(root), suite="promptir-denoise-v1", out=str(tmp_path / "out")))
    assert summary["complete"] and summary["pairs_per_split"]["test"] == 4 * 3


def test_sixteen_bit_is_rounded_not_truncated():
    from uirbench.io import to_uint8

    values = np.array([[0, 128, 32767, 32768, 65535, 257 * 100 + 200]], np.uint16)
    assert to_uint8(values).tolist() == [[0, 0, 127, 128, 255, 101]]  # truncation (>> 8) gives 100 for the last


def test_empty_folder_and_duplicate_ids(tmp_path, small_image, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["generate", "--source", str(empty), "--out", str(tmp_path / "o1")]) == 2
    assert "no image files" in capsys.readouterr().err
    dup = tmp_path / "dup"
    _write(dup / "a.png", small_image)
    _write(dup / "a.jpg", small_image)
    assert main(["generate", "--source", str(dup), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "a.png" in err or "a.jpg" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path, small_image, capsys):
    src = tmp_path / "src"
    _write(src / "good.png", small_image)
    locked = _write(src / "locked.png", small_image)
    locked.chmod(0)
    assert main(["generate", "--source", str(src), "--out", str(tmp_path / "o"), "--suite", "promptir-denoise-v1"]) == 2
    assert "locked.png" in capsys.readouterr().err


def test_hf_source_from_a_local_parquet_dataset(tmp_path, small_image):
    import datasets

    rows = {"image": [{"bytes": _png_bytes(np.ascontiguousarray(small_image[i * 10:i * 10 + 64, :80])), "path": None}
                      for i in range(3)], "image_id": ["a", "b", "c"]}
    ds = datasets.Dataset.from_dict(rows, features=datasets.Features({"image": datasets.Image(), "image_id": datasets.Value("string")}))
    folder = tmp_path / "hfds" / "data"
    folder.mkdir(parents=True)
    ds.to_parquet(str(folder / "test-00000-of-00001.parquet"))
    summary = generate(GenerateConfig(source=f"hf:{tmp_path / 'hfds'}", suite="promptir-denoise-v1", out=str(tmp_path / "out")))
    assert summary["complete"] and summary["pairs_per_split"] == {"test": 9}
    ids = {json.loads(line)["image_id"] for line in (tmp_path / "out" / "test" / "metadata.jsonl").read_text().splitlines()}
    assert ids == {"a", "b", "c"}


def test_parquet_export_embeds_image_bytes(photo_dir, tmp_path):
    from datasets import load_dataset

    out = tmp_path / "pq"
    generate(GenerateConfig(source=str(photo_dir), out=str(out), suite="promptir-denoise-v1", limit=2, format="parquet"))
    files = sorted((out / "parquet").glob("*.parquet"))
    assert [f.name for f in files] == ["test-00000-of-00001.parquet"]
    moved = tmp_path / "moved.parquet"
    files[0].rename(moved)  # the images travel inside the file
    ds = load_dataset("parquet", data_files=str(moved), split="train")
    row = ds[0]
    assert row["input"].size == (80, 64) and row["target"].size == (80, 64)
    from uirbench.io import read_image

    first = json.loads((out / "test" / "metadata.jsonl").read_text().splitlines()[0])
    assert np.array_equal(np.asarray(row["input"].convert("RGB")), read_image(out / "test" / first["input_file_name"]))


def test_the_source_fingerprint_identifies_the_clean_pixels(tiny_dataset, photo_dir):
    """The card's source fingerprint is recomputed here from the source files alone (pixel hash per image id)."""
    import hashlib

    from PIL import Image

    lines = []
    for path in sorted(photo_dir.glob("*.png"), key=lambda p: p.stem):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        header = f"uint8 {rgb.shape[0]}x{rgb.shape[1]}x3\n".encode()
        lines.append(f"{path.stem} {hashlib.sha256(header + rgb.tobytes()).hexdigest()}\n")
    expected = hashlib.sha256("".join(lines).encode()).hexdigest()
    assert f"- source fingerprint: `{expected}` (6 clean images;" in (tiny_dataset / "README.md").read_text()
