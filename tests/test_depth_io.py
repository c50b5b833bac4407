"""Depth map files through uirbench.io: 16-bit PNG and .npy round trips, errors that name the file,
and pinned PNG bytes (``generate`` stores every depth map with ``encode_depth_png``, and the dataset
fingerprint covers what is sampled from them)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from uirbench.degradations.depth import load_depth
from uirbench.io import ImageError, encode_depth_png, read_depth, write_depth

RAMP = np.linspace(0.5, 80.0, 16 * 16).reshape(16, 16)
"""A small metric depth map (metres), float64."""


def test_png_round_trip_keeps_relative_depth_at_16_bits(tmp_path):
    write_depth(tmp_path / "d.png", RAMP)
    back = read_depth(tmp_path / "d.png")
    assert back.dtype == np.float32 and back.shape == RAMP.shape
    expected = np.rint((RAMP - RAMP.min()) / (RAMP.max() - RAMP.min()) * 65535)  # min-max scaled, rounded
    assert np.array_equal(back, expected.astype(np.float32))
    full = np.arange(0, 65536, 257, dtype=np.uint16).reshape(16, 16)  # already 0..65535: stored exactly
    write_depth(tmp_path / "full.png", full)
    assert np.array_equal(read_depth(tmp_path / "full.png"), full.astype(np.float32))


def test_npy_round_trip_keeps_the_values(tmp_path):
    write_depth(tmp_path / "d.npy", RAMP)
    assert np.load(tmp_path / "d.npy").dtype == np.float64  # stored as given
    assert np.array_equal(read_depth(tmp_path / "d.npy"), RAMP.astype(np.float32))


def test_load_depth_delegates_to_read_depth(tmp_path):
    write_depth(tmp_path / "d.png", RAMP)
    assert np.array_equal(load_depth(tmp_path / "d.png"), read_depth(tmp_path / "d.png"))


def test_png_bytes_are_pinned(tmp_path):
    data = encode_depth_png(RAMP)
    assert hashlib.sha256(data).hexdigest() == "10bb1602d1fbc86025745c6e322a461b6da6fda6b1847d868d6c697d654f18a4"
    write_depth(tmp_path / "d.png", RAMP)
    assert (tmp_path / "d.png").read_bytes() == data
    ramp2 = np.add.outer(np.arange(12.0), np.arange(20.0)) ** 2
    assert hashlib.sha256(encode_depth_png(ramp2)).hexdigest() == "4c21b3d2da2e7a6cae0390c2503fc17378745888e792cf9a48b3c4d01be5f22a"


@pytest.mark.parametrize(("name", "content", "message"), [
    ("garbage.png", b"\x89PNG not really", "not a readable PNG"),
    ("garbage.npy", b"not numpy", "not a readable .npy"),
    ("d.tif", b"unused", "suffix"),
    ("missing.png", None, "cannot read"),
])
def test_bad_depth_file_error_names_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as info:
        read_depth(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("name", "depth", "message"), [
    ("d.jpg", RAMP, "suffix"),
    ("nan.png", np.array([[1.0, np.nan], [2.0, 3.0]]), "NaN"),
    ("cube.npy", np.zeros((4, 4, 2)), "2-D"),
])
def test_write_depth_refuses_what_read_depth_would_refuse(tmp_path, name, depth, message):
    with pytest.raises(ImageError, match=message) as info:
        write_depth(tmp_path / name, depth)
    assert name in str(info.value) and not (tmp_path / name).exists()
