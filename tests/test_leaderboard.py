"""Leaderboard: entry schema, tied-rank groups, verified submissions (folder/zip, every refusal), build, page in Chromium."""

from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from uirbench.errors import UserError
from uirbench.io import read_image, write_image, write_json
from uirbench.leaderboard.build import build
from uirbench.leaderboard.commands import add_commands
from uirbench.leaderboard.entry import EntryError, load_entries, load_entry, validate_entry
from uirbench.leaderboard.ranking import Board, boards, cell_ranks, mean_ranks, tie_groups
from uirbench.leaderboard.submit import SubmissionError, SubmitConfig, submit
from uirbench.stats import bootstrap_ci
from uirbench.suites import DEFAULT_SUITE


def _manifest(data: Path, split: str = "test") -> list[dict]:
    return [json.loads(line) for line in (data / split / "metadata.jsonl").read_text().splitlines()]


def _tree_digest(folder: Path) -> str:
    """sha256 over every path (hidden ones too) and file content below ``folder``; a missing folder hashes as such."""
    h = hashlib.sha256()
    if not folder.exists():
        return "absent"
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _cli(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="uirbench")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.func(args)


@pytest.fixture(scope="module")
def identity_set(tiny_dataset, tmp_path_factory) -> Path:
    """The identity model's restored set: the dataset's degraded inputs, at their manifest names."""
    root = tmp_path_factory.mktemp("restored") / "identity"
    shutil.copytree(tiny_dataset / "test" / "input", root / "input")
    return root


@pytest.fixture(scope="module")
def median_set(tiny_dataset, tmp_path_factory) -> Path:
    """A real classical filter's restored set: 3x3 median of every input."""
    root = tmp_path_factory.mktemp("restored") / "median"
    for row in _manifest(tiny_dataset):
        write_image(root / row["input_file_name"], cv2.medianBlur(read_image(tiny_dataset / "test" / row["input_file_name"]), 3))
    return root


@pytest.fixture(scope="module")
def board_dir(tiny_dataset, identity_set, median_set, tmp_path_factory) -> Path:
    """An entries folder with two submitted (recomputed) entries."""
    entries = tmp_path_factory.mktemp("board") / "entries"
    submit(SubmitConfig(restored=str(identity_set), data=str(tiny_dataset), name="identity", entries=str(entries)))
    _cli(["submit", str(median_set), "--data", str(tiny_dataset), "--name", "median3", "--entries", str(entries)])
    return entries


# --- schema --------------------------------------------------------------------------------------------------------

def test_entry_round_trip_and_independent_scores(board_dir, tiny_dataset, median_set, tmp_path):
    entry = load_entry(board_dir / "median3.json")
    write_json(tmp_path / "median3.json", entry)
    assert load_entry(tmp_path / "median3.json") == entry == validate_entry(copy.deepcopy(entry))
    assert entry["provenance"] == "recomputed" and entry["commands"][0].startswith("uirbench submit ")
    # every per-image PSNR recomputed here with numpy (RGB, data range 1, MSE pooled over channels)
    psnrs = []
    for row in _manifest(tiny_dataset):
        restored = read_image(median_set / row["input_file_name"]).astype(np.float64) / 255
        target = read_image(tiny_dataset / "test" / row["target_file_name"]).astype(np.float64) / 255
        psnrs.append(10 * np.log10(1.0 / np.mean((restored - target) ** 2)))
    # (uirbench's PSNR takes the MSE in float32: agreement to ~1e-7 dB)
    assert entry["results"]["overall"]["psnr"]["mean"] == pytest.approx(np.mean(psnrs), abs=1e-5)
    assert entry["results"]["overall"]["psnr"]["ci95"] == pytest.approx(list(bootstrap_ci(psnrs)), abs=1e-5)
    identity = load_entry(board_dir / "identity.json")
    recorded = [row["input_psnr"] for row in _manifest(tiny_dataset)]  # generate's own measurement of the inputs
    assert identity["results"]["overall"]["psnr"]["mean"] == pytest.approx(np.mean(recorded), abs=1e-9)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: re.sub(r'"mean": [-+.e0-9]+', '"mean": NaN', t, count=1), "NaN"),
    (lambda t: re.sub(r'"mean": [-+.e0-9]+', '"mean": 1e999', t, count=1), "expected a finite number, got inf"),
    (lambda t: t.replace('"provenance"', '"colour": 1, "provenance"', 1), r"unknown field\(s\) colour"),
    (lambda t: t.replace('"provenance": "recomputed"', '"provenance": "recomputed", "provenance": "self-reported"', 1), "duplicate"),
    (lambda t: t.replace('"higher_is_better": true', '"higher_is_better": "yes"', 1), "higher_is_better"),
])
def test_bad_entry_json_is_refused_and_build_writes_nothing(edit, message, board_dir, tmp_path):
    entries, out = tmp_path / "entries", tmp_path / "out"
    shutil.copytree(board_dir, entries)
    path = entries / "identity.json"
    path.write_text(edit(path.read_text()))
    before = _tree_digest(entries)
    with pytest.raises(EntryError, match=message):
        load_entries(entries)
    with pytest.raises(UserError, match=r"identity\.json"):
        _cli(["leaderboard", "build", "--entries", str(entries), "--out", str(out)])
    assert _tree_digest(entries) == before and not out.exists()


def test_entry_file_name_and_self_reported_source_are_checked(board_dir, tmp_path):
    entry = load_entry(board_dir / "identity.json")
    write_json(tmp_path / "other.json", entry)
    with pytest.raises(EntryError, match=r"rename the file to identity\.json"):
        load_entries(tmp_path)
    claimed = {**entry, "provenance": "self-reported"}
    with pytest.raises(EntryError, match="source"):
        validate_entry(claimed)


# --- statistics and ranks ------------------------------------------------------------------------------------------

def test_bootstrap_ci_hand_computed():
    # mean of 4 draws from {0,0,0,1}: P(mean <= 0.5) = 0.949 < 0.975 <= P(mean <= 0.75) = 0.996; P(mean = 0) = 0.316
    assert bootstrap_ci([0.0, 0.0, 0.0, 1.0]) == (0.0, 0.75)
    assert bootstrap_ci([3.0, 3.0, 3.0]) == (3.0, 3.0)


def test_tie_groups_hand_computed():
    stats = {"A": {"mean": 30.0, "ci95": [29.5, 30.5]}, "B": {"mean": 29.8, "ci95": [29.2, 30.4]},
             "C": {"mean": 29.0, "ci95": [28.6, 29.4]}, "D": {"mean": 28.9, "ci95": [28.0, 29.45]},
             "E": {"mean": 28.5, "ci95": [27.9, 28.55]}}
    # B overlaps leader A; C misses A (29.4 < 29.5) and leads; D overlaps C; E overlaps D but not its leader C
    assert tie_groups(stats, higher_is_better=True) == {"A": 1, "B": 1, "C": 3, "D": 3, "E": 5}
    # lower is better (e.g. LPIPS): E leads; D overlaps E; C overlaps E? no (28.6 > 28.55): new group led by C, then B, A
    assert tie_groups(stats, higher_is_better=False) == {"E": 1, "D": 1, "C": 3, "B": 3, "A": 5}
    touching = {"x": {"mean": 2.0, "ci95": [1.0, 3.0]}, "y": {"mean": 0.0, "ci95": [-1.0, 1.0]}}
    assert tie_groups(touching, higher_is_better=True) == {"x": 1, "y": 1}


def test_mean_rank_hand_computed():
    def entry(name, a, b):
        return {"name": name, "results": {"overall": {"psnr": a}, "per_degradation": {"a": {"psnr": a}, "b": {"psnr": b}}}}
    board = Board("s", "test", "f" * 64, 10, {"averaging": "mean", "psnr": {"higher_is_better": True}}, (
        entry("X", {"mean": 30.0, "ci95": [29.0, 31.0]}, {"mean": 19.0, "ci95": [18.0, 19.5]}),
        entry("Y", {"mean": 29.5, "ci95": [28.8, 30.2]}, {"mean": 18.9, "ci95": [18.5, 19.2]}),
        entry("Z", {"mean": 25.0, "ci95": [24.0, 26.0]}, {"mean": 20.0, "ci95": [19.9, 20.1]})))
    assert cell_ranks(board, "psnr", "per_degradation", "a") == {"X": 1, "Y": 1, "Z": 3}
    assert cell_ranks(board, "psnr", "per_degradation", "b") == {"Z": 1, "X": 2, "Y": 2}
    assert mean_ranks(board, "psnr") == {"X": 1.5, "Y": 1.5, "Z": 2.0}


def test_self_reported_and_other_datasets_are_never_ranked_together(board_dir, tmp_path):
    entries = tmp_path / "entries"
    shutil.copytree(board_dir, entries)
    claim = load_entry(entries / "median3.json")
    for group in claim["results"].values():
        for stats in ([group] if "psnr" in group else group.values()):
            stats["psnr"] = {"mean": stats["psnr"]["mean"] + 20}  # a better number, but only claimed
    claim.update(name="paper-claim", provenance="self-reported", source="a paper's Table 2", commands=[])
    del claim["submission"]
    write_json(entries / "paper-claim.json", claim)
    other = load_entry(entries / "identity.json")
    other["name"], other["dataset"]["fingerprint"] = "other-data", "0" * 64
    # a set-level metric as evaluate writes it (value, N) gets its own columns and table
    other["set_metrics"] = {"fid": {"overall": {"value": 12.5, "n": 120}, "per_degradation": {"noise": {"value": 30.25, "n": 8}}}}
    write_json(entries / "other-data.json", other)
    ranked, apart = boards(load_entries(entries))
    assert [[e["name"] for e in b.entries] for b in ranked] == [["other-data"], ["identity", "median3"]]
    assert [e["name"] for e in apart] == ["paper-claim"]
    build(entries, tmp_path / "out")
    main = next(p for p in (tmp_path / "out" / "tables").glob("*-overall.csv") if "00000000" not in p.name)
    ranked_rows = list(csv.reader(main.read_text().splitlines()[3:]))
    assert sorted(r[1] for r in ranked_rows) == ["identity", "median3"]
    assert "paper-claim" in (tmp_path / "out" / "tables" / "self-reported.csv").read_text()
    fid = next((tmp_path / "out" / "tables").glob("*00000000*-per-degradation-fid.csv")).read_text()
    assert "noise,30.25,8" in fid


# --- submissions ---------------------------------------------------------------------------------------------------

def test_zip_and_folder_give_the_same_entry(board_dir, identity_set, tiny_dataset, tmp_path):
    archive = tmp_path / "identity.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(identity_set.rglob("*.png")):
            zf.write(path, path.relative_to(identity_set).as_posix())
    zipped = submit(SubmitConfig(restored=str(archive), data=str(tiny_dataset), name="identity", entries=str(tmp_path / "e")))
    folder = load_entry(board_dir / "identity.json")
    assert zipped["entry"] == folder  # same name, same images: same results, same submission hash, same command shape
    assert zipped["entry"]["submission"]["images"] == len(_manifest(tiny_dataset))


def test_same_name_is_refused_unless_replace(board_dir, median_set, tiny_dataset, tmp_path):
    entries = tmp_path / "entries"
    shutil.copytree(board_dir, entries)
    before = _tree_digest(entries)
    with pytest.raises(UserError, match=r"already exists.*--replace"):
        _cli(["submit", str(median_set), "--data", str(tiny_dataset), "--name", "identity", "--entries", str(entries)])
    assert _tree_digest(entries) == before
    _cli(["submit", str(median_set), "--data", str(tiny_dataset), "--name", "identity", "--entries", str(entries), "--replace"])
    replaced = load_entry(entries / "identity.json")
    assert replaced["submission"] == load_entry(board_dir / "median3.json")["submission"]
    assert sorted(p.name for p in entries.iterdir()) == ["identity.json", "median3.json"]  # no temporary file left


def _zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return path


def _bad_submissions(root: Path, data: Path, identity: Path) -> dict[str, tuple[Path, Path, str]]:
    """kind -> (restored path, dataset path, expected message); each differs from a valid set in one way."""
    rows = _manifest(data)
    first = rows[0]["input_file_name"]
    valid = [(p.relative_to(identity).as_posix(), p.read_bytes()) for p in sorted(identity.rglob("*.png"))]

    def folder(name: str) -> Path:
        path = root / name
        shutil.copytree(identity, path)
        return path

    link = zipfile.ZipInfo(first)
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    bomb = zipfile.ZipInfo(first)
    bomb.compress_type = zipfile.ZIP_DEFLATED
    cases = {
        "dotdot": (_zip(root / "dotdot.zip", [*valid, ("input/../../evil.png", valid[0][1])]), data, "'\\.\\.'"),
        "absolute": (_zip(root / "absolute.zip", [*valid, ("/tmp/evil.png", valid[0][1])]), data, "absolute path"),
        "zip-symlink": (_zip(root / "link.zip", [(link, b"/etc/passwd"), *valid[1:]]), data, "symbolic link"),
        "zip-bomb": (_zip(root / "bomb.zip", [(bomb, bytes(4 << 20)), *valid[1:]]), data, "zip bomb"),
        "oversized-member": (_zip(root / "big.zip", [(first, np.random.default_rng(0).bytes(2 << 20)), *valid[1:]]), data,
                             "more than any PNG"),
    }
    path = folder("symlink")
    (path / first).unlink()
    (path / first).symlink_to(identity / first)
    cases["folder-symlink"] = (path, data, "symbolic link")
    path = folder("jpeg")
    _, jpeg = cv2.imencode(".jpg", read_image(identity / first))
    (path / first).write_bytes(jpeg.tobytes())
    cases["not-png"] = (path, data, "not a PNG")
    path = folder("truncated")
    (path / first).write_bytes((identity / first).read_bytes()[:200])
    cases["unreadable"] = (path, data, "unreadable image")
    path = folder("missing")
    (path / first).unlink()
    cases["missing"] = (path, data, "1 missing")
    path = folder("extra")
    (path / "input" / "notes.png").write_bytes(valid[0][1])
    cases["extra"] = (path, data, "1 unexpected")
    path = folder("nested")
    (path / "test").mkdir()
    shutil.move(path / "input", path / "test" / "input")
    cases["wrapped-in-folder"] = (path, data, "zip the folder's contents")
    path = folder("size")
    write_image(path / first, read_image(identity / first)[:-2])
    cases["wrong-size"] = (path, data, "but the pair is")
    tampered = root / "tampered-data"
    shutil.copytree(data, tampered)
    manifest = tampered / "test" / "metadata.jsonl"
    manifest.write_text(manifest.read_text().replace('"copy": 0', '"copy": 1', 1))  # a semantic field: the fingerprint covers it
    cases["fingerprint"] = (identity, tampered, "the dataset was edited")
    return cases


KINDS = ["dotdot", "absolute", "zip-symlink", "zip-bomb", "oversized-member", "folder-symlink", "not-png", "unreadable",
         "missing", "extra", "wrapped-in-folder", "wrong-size", "fingerprint"]


@pytest.fixture(scope="module")
def bad_submissions(tiny_dataset, identity_set, tmp_path_factory):
    return _bad_submissions(tmp_path_factory.mktemp("bad"), tiny_dataset, identity_set)


@pytest.mark.parametrize("kind", KINDS)
def test_refused_submission_leaves_entries_byte_identical(kind, bad_submissions, board_dir, tmp_path):
    restored, data, message = bad_submissions[kind]
    entries = tmp_path / "entries"
    shutil.copytree(board_dir, entries)
    before = _tree_digest(entries)
    with pytest.raises(UserError, match=message):
        _cli(["submit", str(restored), "--data", str(data), "--name", "new-entry", "--entries", str(entries)])
    assert _tree_digest(entries) == before


def test_bad_name_is_refused(identity_set, tiny_dataset, tmp_path):
    with pytest.raises(SubmissionError, match="--name"):
        submit(SubmitConfig(restored=str(identity_set), data=str(tiny_dataset), name="../up", entries=str(tmp_path / "e")))
    assert not (tmp_path / "e").exists() and not (tmp_path / "up.json").exists()


# --- build and page ------------------------------------------------------------------------------------------------

def test_build_is_deterministic_and_removes_stale_files(board_dir, tmp_path):
    out = tmp_path / "out"
    first = build(board_dir, out)
    digest = _tree_digest(out)
    assert build(board_dir, out) == first and _tree_digest(out) == digest
    assert {"README.md", "index.html"} <= set(first) and any(f.endswith("-radar-psnr.png") for f in first)
    tables = [f for f in first if f.endswith(".csv")]
    readme = (out / "README.md").read_text()
    assert readme.count(f"\n> {DEFAULT_SUITE}/test, ") == len(tables)  # the spec line above every table
    # the same entry on another dataset: a new board, so every file of the old one must go, and only those
    entries = tmp_path / "entries"
    moved = load_entry(board_dir / "identity.json")
    moved["dataset"]["fingerprint"] = "1" * 64
    write_json(entries / "identity.json", moved)
    (out / "mine.txt").write_text("not generated")
    second = build(entries, out)
    assert set(first) & set(second) == {"README.md", "index.html"}
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted([*second, ".built", "mine.txt"])


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install -y chromium)")
def test_page_renders_in_headless_chromium(board_dir, tmp_path):
    out = tmp_path / "out"
    build(board_dir, out)
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900"]
    url = (out / "index.html").as_uri()
    shot = tmp_path / "page.png"
    subprocess.run([*flags, f"--screenshot={shot}", url], check=True, capture_output=True, timeout=120)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (900, 1200)
    assert image.std() > 20 and (image < 250).any(axis=2).mean() > 0.02  # not blank, not all white
    dom = subprocess.run([*flags, "--dump-dom", url], check=True, capture_output=True, timeout=120, text=True).stdout
    tables = [p.stem for p in (out / "tables").glob("*.csv")]
    for table_id in tables:
        assert f'<table id="{table_id}" class="sortable">' in dom
    overall = dom.split('-overall" class="sortable">', 1)[1].split("</table>", 1)[0]
    assert overall.count("<tr>") == 3 and "identity" in overall and "median3" in overall
    assert dom.count("<img ") == len(list((out / "figures").glob("*.png")))
    assert 'title="click to sort by psnr"' in overall  # the inline sorting script ran


def test_boards_name_the_source_of_their_clean_images(board_dir, tiny_dataset, photo_dir, tmp_path):
    """An entry records where its dataset's clean images came from; the board's heading and spec say it."""
    from uirbench.manifest import source_fingerprint

    images = json.loads((tiny_dataset / "suite.json").read_text())["images"]
    entry = load_entry(board_dir / "median3.json")
    assert entry["dataset"]["source"] == str(photo_dir)
    assert entry["dataset"]["source_fingerprint"] == source_fingerprint(images)
    _cli(["leaderboard", "build", "--entries", str(board_dir), "--out", str(tmp_path / "out")])
    readme = (tmp_path / "out" / "README.md").read_text()
    label = f"{photo_dir.name} (source fingerprint {source_fingerprint(images)[:12]})"
    assert f"## Board uir-v2/test on {label} (" in readme and f"; clean images: {label}" in readme


def test_analyses_in_notes_are_copied_into_the_readme(board_dir, tmp_path):
    import shutil

    entries = tmp_path / "lb" / "entries"
    shutil.copytree(board_dir, entries)
    (tmp_path / "lb" / "notes").mkdir()
    (tmp_path / "lb" / "notes" / "b.md").write_text("## Second analysis\n\nmore\n")
    (tmp_path / "lb" / "notes" / "a.md").write_text("## First analysis\n\ncomputed by `python tools/x.py`\n")
    _cli(["leaderboard", "build", "--entries", str(entries), "--out", str(tmp_path / "lb")])
    readme = (tmp_path / "lb" / "README.md").read_text()
    first, second, made = (readme.index(t) for t in ("## First analysis", "## Second analysis", "## How each entry was made"))
    assert first < second < made and "computed by `python tools/x.py`" in readme
