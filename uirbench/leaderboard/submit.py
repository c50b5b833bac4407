"""``uirbench submit``: verify a set of restored PNGs against a dataset, rescore it, write one entry.

Layout of a submission (a folder or a ``.zip``): one PNG per pair of the split, at the path the
manifest gives as ``input_file_name`` relative to the submission's root, i.e. ``input/<pair id>.png``
(exactly what ``uirbench evaluate --save-images`` writes under ``OUT/images/<split>/``). Nothing else
may be there. Every check runs before anything is written; a refused submission leaves the entries
folder byte-identical:

* zip members: no absolute path, drive letter, backslash or ``..``; no symlink; no encryption; no
  duplicate name; a compression ratio of at most ``MAX_RATIO``; each member (and so the total) at
  most ``png_size_limit`` of its image's size, checked on the declared sizes before any member is
  read (a zip bomb is refused before it is inflated). Members are read into memory, never extracted;
* folders: no symlink and no special file anywhere inside; files opened with ``O_NOFOLLOW``;
* the set of names equals the manifest's (missing and extra names are listed);
* each file is a PNG (signature) that decodes (``uirbench.io.decode_image``) to the pair's size;
* the dataset passes ``uirbench.verify.verify``: every file hash and the fingerprint recomputed
  from the manifests match what is recorded.

The images are then scored by ``uirbench.evaluate.score_restored``, the code path of ``evaluate``,
under its default conventions; the entry is ``recomputed`` and records the command and the sha256
of the restored set (over the sorted lines ``<name> <sha256 of the file>\\n``). The entry is written
as ``<entries>/<name>.json`` atomically; an existing one is never overwritten without ``replace``.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uirbench.errors import UserError
from uirbench.leaderboard.entry import ENTRIES_DIR

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_RATIO = 100
"""Largest accepted uncompressed/compressed size ratio of a zip member (PNGs barely compress further)."""


class SubmissionError(UserError):
    """A refused submission; the message names the file and the problem."""


@dataclass(frozen=True)
class SubmitConfig:
    """Arguments of ``uirbench submit`` (see ``--help``)."""

    restored: str
    data: str
    name: str
    split: str = "test"
    entries: str = ENTRIES_DIR
    replace: bool = False
    command: str = ""


def png_size_limit(height: int, width: int) -> int:
    """Bytes no honest PNG of ``height`` x ``width`` px exceeds: twice a 16-bit RGBA image stored
    uncompressed (8 bytes per pixel + 1 filter byte per row), plus 1 MiB for chunks and metadata."""
    return 2 * height * (8 * width + 1) + (1 << 20)


def _listing(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _zip_member_name(info: zipfile.ZipInfo, archive: Path) -> str:
    name = info.filename
    where = f"{archive}: member {name!r}"
    if name.startswith("/") or "\\" in name or re.match(r"[A-Za-z]:", name):
        raise SubmissionError(f"{where}: absolute path or backslash; members must be relative, like input/<pair id>.png")
    if any(part in ("", ".", "..") for part in name.rstrip("/").split("/")):
        raise SubmissionError(f"{where}: path with '..', '.' or an empty component; refusing to read it")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise SubmissionError(f"{where}: symbolic link; submit the PNG files themselves")
    if info.flag_bits & 0x1:
        raise SubmissionError(f"{where}: encrypted; submit an unencrypted zip")
    return name


@contextmanager
def _zip_files(archive: Path, limits: dict[str, int]) -> Iterator[dict[str, Any]]:
    """``{name: read() -> bytes}`` of a zip's files, after the name, link, size and ratio checks."""
    try:
        zf = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile) as exc:
        raise SubmissionError(f"{archive}: not a readable zip file ({exc})") from exc
    with zf:
        files: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            name = _zip_member_name(info, archive)
            if info.is_dir():
                continue
            if name in files:
                raise SubmissionError(f"{archive}: member {name!r} appears twice")
            if info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise SubmissionError(f"{archive}: member {name!r} inflates {info.compress_size:,} -> {info.file_size:,} bytes, "
                                      f"a ratio above {MAX_RATIO} (zip bomb guard)")
            files[name] = info
        total, allowed = sum(i.file_size for i in files.values()), sum(limits.values())
        if total > allowed:
            raise SubmissionError(f"{archive}: {total:,} bytes uncompressed exceeds {allowed:,}, the most the expected PNGs "
                                  "can take (zip bomb guard)")
        _check_sizes(archive, {name: info.file_size for name, info in files.items()}, limits)

        def reader(info: zipfile.ZipInfo) -> Any:
            def read() -> bytes:
                try:
                    return zf.read(info)
                except (OSError, EOFError, NotImplementedError, zipfile.BadZipFile, zlib.error) as exc:
                    raise SubmissionError(f"{archive}: member {info.filename!r} cannot be read ({exc})") from exc
            return read

        yield {name: reader(info) for name, info in files.items()}


def _folder_files(root: Path, limits: dict[str, int]) -> dict[str, Any]:
    """``{relative posix name: read() -> bytes}`` of a folder's files; symlinks and special files refused."""
    files: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    pending = [root]
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as it:
            for item in sorted(it, key=lambda e: e.name):
                rel = Path(item.path).relative_to(root).as_posix()
                if item.is_symlink():
                    raise SubmissionError(f"{root}: {rel} is a symbolic link; submit the PNG files themselves")
                if item.is_dir(follow_symlinks=False):
                    pending.append(Path(item.path))
                elif item.is_file(follow_symlinks=False):
                    sizes[rel] = item.stat(follow_symlinks=False).st_size
                    files[rel] = _file_reader(Path(item.path), limits.get(rel, 0))
                else:
                    raise SubmissionError(f"{root}: {rel} is not a regular file")
    _check_sizes(root, sizes, limits)
    return files


def _file_reader(path: Path, limit: int) -> Any:
    def read() -> bytes:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as fh:
                return fh.read(limit + 1)  # a file grown since the size check fails the length check
        except OSError as exc:
            raise SubmissionError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return read


def _check_sizes(where: Path, sizes: dict[str, int], limits: dict[str, int]) -> None:
    for name, size in sorted(sizes.items()):
        if name in limits and size > limits[name]:
            raise SubmissionError(f"{where}: {name} is {size:,} bytes, more than any PNG of its image size can be "
                                  f"({limits[name]:,})")


@contextmanager
def restored_files(path: Path, limits: dict[str, int]) -> Iterator[dict[str, Any]]:
    """The files of a submission folder or zip, ``{name: read() -> bytes}``, after the safety checks.

    ``limits`` maps each expected name to its byte limit (:func:`png_size_limit`).
    """
    if path.is_file() and path.suffix.lower() == ".zip":
        with _zip_files(path, limits) as files:
            yield files
    elif path.is_dir():
        yield _folder_files(path, limits)
    else:
        raise SubmissionError(f"RESTORED {path}: expected a folder or a .zip file of restored PNGs")


def _check_names(path: Path, names: set[str], expected: set[str]) -> None:
    missing, extra = sorted(expected - names), sorted(names - expected)
    if not missing and not extra:
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_listing(missing)})")
    if extra:
        problems.append(f"{len(extra)} unexpected ({_listing(extra)})")
    hint = ""
    example = sorted(expected)[0]
    basenames = {n.rsplit("/", 1)[-1] for n in extra}
    if any(n.endswith("/" + example) for n in extra):
        hint = f"; the names sit inside a folder: put {example} at the root (zip the folder's contents, not the folder)"
    elif example.rsplit("/", 1)[-1] in basenames:
        hint = f"; name each image by the manifest's input_file_name, e.g. {example}"
    raise SubmissionError(f"{path}: the restored set does not match the split: {'; '.join(problems)}{hint}")


def _decode(name: str, data: bytes, row: dict[str, Any]) -> Any:
    from uirbench.io import ImageError, decode_image

    if not data.startswith(PNG_SIGNATURE):
        raise SubmissionError(f"{name}: not a PNG file (submit lossless PNGs named like the dataset's inputs)")
    try:
        image = decode_image(data, name)
    except ImageError as exc:
        raise SubmissionError(f"unreadable image: {exc}") from exc
    if image.shape[:2] != (row["height"], row["width"]):
        raise SubmissionError(f"{name}: {image.shape[1]}x{image.shape[0]} px, but the pair is {row['width']}x{row['height']} px")
    return image


def _entry_path(config: SubmitConfig) -> Path:
    from uirbench.leaderboard.entry import EntryError, check_name

    try:
        check_name(config.name, "--name")
    except EntryError as exc:
        raise SubmissionError(str(exc)) from exc
    path = Path(config.entries) / f"{config.name}.json"
    if path.exists() and not config.replace:
        raise SubmissionError(f"--name {config.name}: {path} already exists; choose another name or pass --replace")
    return path


def _verified_rows(config: SubmitConfig) -> list[dict[str, Any]]:
    from uirbench.evaluate import load_split
    from uirbench.verify import verify

    rows = load_split(Path(config.data), config.split)
    result = verify(config.data)
    if result["problems"]:
        raise SubmissionError(f"--data {config.data}: the dataset does not match its fingerprint ({len(result['problems'])} "
                              f"problem(s): {_listing(result['problems'], 3)}); regenerate it or run `uirbench verify`")
    return rows


def _write_entry(path: Path, entry: dict[str, Any], replace: bool) -> None:
    """Write ``entry`` atomically; without ``replace`` a hard link makes "create only if absent" atomic too."""
    import tempfile

    from uirbench.io import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_json(tmp, entry)
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except FileExistsError:
        raise SubmissionError(f"{path} appeared while scoring; pass --replace to overwrite it") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def submit(config: SubmitConfig) -> dict[str, Any]:
    """Verify and score a restored set (module docstring); returns ``{"path", "entry"}``."""
    from uirbench import __version__
    from uirbench.evaluate import EvaluateConfig, load_metrics, provenance_commands, score_restored
    from uirbench.io import to_tensor
    from uirbench.leaderboard.entry import entry_from_summary

    path = _entry_path(config)
    rows = _verified_rows(config)
    by_name = {row["input_file_name"]: row for row in rows}
    limits = {name: png_size_limit(row["height"], row["width"]) for name, row in by_name.items()}
    restored = Path(config.restored)
    with restored_files(restored, limits) as files:
        _check_names(restored, set(files), set(by_name))
        blobs, digest = {}, hashlib.sha256()
        for name in sorted(files):
            data = files[name]()
            if len(data) > limits[name]:
                raise SubmissionError(f"{restored}: {name} holds more than {limits[name]:,} bytes")
            _decode(name, data, by_name[name])
            blobs[name] = data
            digest.update(f"{name} {hashlib.sha256(data).hexdigest()}\n".encode())
    evaluation = EvaluateConfig(model=config.name, data=config.data, split=config.split)

    def read_submitted(batch: list[dict[str, Any]], inputs: Any) -> tuple[Any, list[dict[str, Any]]]:
        images = [_decode(row["input_file_name"], blobs[row["input_file_name"]], row) for row in batch]
        return to_tensor(images), [{} for _ in batch]

    model = {"name": config.name, "checkpoint": None, "checkpoint_sha256": None, "parameters": None}
    _, summary, _ = score_restored(evaluation, rows, load_metrics(evaluation)[:2], read_submitted, model, desc=f"submit {config.name}")
    summary["runtime"] = {"device": "not measured (scored from submitted images)"}
    summary["versions"] = {"uirbench": __version__}
    entry = entry_from_summary(summary, config.name, commands=provenance_commands(Path(config.data), None, config.command),
                               submission={"sha256": digest.hexdigest(), "images": len(blobs)})
    _write_entry(path, entry, config.replace)
    return {"path": str(path), "entry": entry}
