"""Haze and rain families and scene depth: closed-form checks, physics invariants, depth files, replay,
parameter ranges, and outputs that do not depend on the CPU's SIMD dispatch."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import subprocess
import sys
import time
import tracemalloc

import cv2
import numpy as np
import pytest
from conftest import simd_disabled_env

from uirbench.degradations.depth import ground_plane_prior, load_depth, normalise_depth
from uirbench.degradations.haze import MAX_BETA, Haze
from uirbench.degradations.rain import MAX_LAYERS, MAX_STREAK_SEEDS, Rain, streak_alpha, streak_radius
from uirbench.errors import ParameterError
from uirbench.io import ImageError


def srgb_decode(v: float) -> float:
    """IEC 61966-2-1 sRGB -> linear, written out independently of the package's look-up tables."""
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def srgb_encode(v: float) -> float:
    return v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055


def linear_mean(image: np.ndarray) -> float:
    return float(np.mean(np.vectorize(srgb_decode)(np.arange(256) / 255.0)[image]))


def two_plane_depth(height: int = 64, width: int = 64) -> np.ndarray:
    """Left half at distance 0 (normalises to d = 0), right half at 10 (d = 1)."""
    depth = np.zeros((height, width), np.float32)
    depth[:, width // 2:] = 10.0
    return depth


def streak_angle(alpha: np.ndarray) -> float:
    """Dominant streak tilt from vertical (deg, positive = bottom to the right) by the structure tensor."""
    # smoothing first: central differences are anisotropic on 1-2 px wide lines (biased by up to 10 deg)
    gy, gx = np.gradient(cv2.GaussianBlur(alpha.astype(np.float64), (0, 0), 2.0))
    # gradient orientation from the +x axis (y down); streaks are perpendicular to it, and a streak
    # along (sin a, cos a) has its gradient at -a
    phi = 0.5 * np.degrees(np.arctan2(2 * (gx * gy).sum(), (gx * gx).sum() - (gy * gy).sum()))
    return -phi


def angle_gap(a: float, b: float) -> float:
    return abs((a - b + 90.0) % 180.0 - 90.0)


# -- haze -------------------------------------------------------------------------------------
def test_haze_equals_closed_form_on_flat_image():
    colour = (100, 30, 200)
    image = np.empty((64, 64, 3), np.uint8)
    image[:] = colour
    beta, airlight = 1.2, 0.6
    out = Haze.replay(image, {"beta": beta, "airlight": airlight, "depth_source": "map"}, two_plane_depth())
    t = np.exp(-beta * 1.0)  # far half: d = 1
    for c, level in enumerate(colour):
        hazy = srgb_decode(level / 255.0) * t + airlight * (1 - t)
        expected = srgb_encode(hazy) * 255.0
        assert abs(expected - np.floor(expected) - 0.5) > 0.02, "test value too close to a rounding threshold"
        assert np.all(out[:, 40:, c] == round(expected))
        assert np.all(out[:, :24, c] == level)  # near half: d = 0, t = 1, unchanged


def test_haze_records_depth_source(small_image):
    depth = np.tile(np.linspace(1.0, 5.0, small_image.shape[1], dtype=np.float32), (small_image.shape[0], 1))
    with_map, p_map = Haze(severity=3)(small_image, np.random.default_rng(0), depth)
    with_prior, p_prior = Haze(severity=3)(small_image, np.random.default_rng(0))
    assert p_map["depth_source"] == "map" and p_prior["depth_source"] == "prior:ground-plane"
    assert not np.array_equal(with_map, with_prior)
    # replaying a prior ignores a depth map passed anyway, so replay stays exact
    assert np.array_equal(Haze.replay(small_image, p_prior, depth), with_prior)


def test_larger_beta_lowers_contrast(small_image):
    stds = [Haze.replay(small_image, {"beta": b, "airlight": 0.8, "depth_source": "prior:ground-plane"}).std()
            for b in (0.0, 0.5, 1.5, 2.5, 3.5)]
    assert all(a > b for a, b in itertools.pairwise(stds)), stds


def test_far_pixels_are_hazier_than_near():
    black = np.zeros((64, 96, 3), np.uint8)
    ramp = np.tile(np.arange(96, dtype=np.float32), (64, 1))  # distance grows to the right
    out = Haze.replay(black, {"beta": 2.0, "airlight": 0.9, "depth_source": "map"}, ramp)[..., 0].astype(int)
    profile = out[32]
    assert np.all(np.diff(profile) >= 0) and profile[-1] > profile[0] + 100
    prior = Haze.replay(black, {"beta": 2.0, "airlight": 0.9, "depth_source": "prior:ground-plane"})[..., 0]
    assert prior[0].mean() > prior[-1].mean()  # sky/top far, bottom near


def test_depth_map_is_relative_and_its_edges_slightly_smoothed():
    black = np.zeros((512, 512, 3), np.uint8)
    params = {"beta": 2.0, "airlight": 1.0, "depth_source": "map"}
    out = Haze.replay(black, params, two_plane_depth(512, 512))
    # units do not matter: any increasing affine change of the map gives the same image
    assert np.array_equal(Haze.replay(black, params, two_plane_depth(512, 512) * 1000 + 5), out)
    profile = out[256, :, 0].astype(int)
    assert profile[0] == 0 and profile[-1] > 200
    ramp = np.flatnonzero((profile > profile[0]) & (profile < profile[-1]))  # neither near nor far level
    assert {255, 256} <= set(ramp) and ramp.min() > 245 and ramp.max() < 266  # a few px across the edge


def test_replay_with_map_needs_the_map(small_image):
    depth = np.tile(np.linspace(1.0, 5.0, small_image.shape[1], dtype=np.float32), (small_image.shape[0], 1))
    _, haze_params = Haze(severity=2)(small_image, np.random.default_rng(1), depth)
    _, rain_params = Rain(severity=2)(small_image, np.random.default_rng(1), depth)
    for cls, params in ((Haze, haze_params), (Rain, rain_params)):
        with pytest.raises(ParameterError, match="needs the depth map"):
            cls.replay(small_image, params)
        with pytest.raises(ParameterError, match="does not match"):
            cls.replay(small_image, params, depth[:, :-1])
        with pytest.raises(ParameterError, match="constant"):
            cls.replay(small_image, params, np.ones_like(depth))
        with pytest.raises(ParameterError, match="NaN"):
            cls.replay(small_image, params, np.where(depth > 3, np.nan, depth))


HAZE = {"beta": 1.0, "airlight": 0.8, "depth_source": "prior:ground-plane"}


@pytest.mark.parametrize(("change", "key"), [
    ({"beta": -0.1}, "beta"),
    ({"beta": MAX_BETA * 1.01}, "beta"),
    ({"airlight": 0.0}, "airlight"),
    ({"airlight": 1.2}, "airlight"),
    ({"depth_source": "prior:flat"}, "depth_source"),
    *(({key: value}, key) for key in HAZE for value in ("abc", None, [0.5], True, math.nan, math.inf)),
])
def test_haze_bad_params_name_the_parameter(small_image, change, key):
    with pytest.raises(ParameterError, match=f"haze: parameter {key}="):
        Haze.replay(small_image, {**HAZE, **change})


# -- depth ------------------------------------------------------------------------------------
def test_load_depth_from_16bit_png_and_npy(tmp_path):
    values = np.arange(40 * 30, dtype=np.uint16).reshape(40, 30) * 50
    assert cv2.imwrite(str(tmp_path / "d.png"), values)
    loaded = load_depth(tmp_path / "d.png")
    assert loaded.dtype == np.float32 and np.array_equal(loaded, values.astype(np.float32))
    metric = np.linspace(0.5, 80.0, 1200).reshape(40, 30)
    np.save(tmp_path / "d.npy", metric)
    assert np.array_equal(load_depth(tmp_path / "d.npy"), metric.astype(np.float32))


def test_load_depth_refuses_bad_files(tmp_path):
    cases = {
        "missing.png": (None, "cannot read"),
        "d.jpg": (b"not used", "suffix"),
        "garbage.png": (b"\x89PNG not really", "not a readable"),
        "eight.png": (np.zeros((8, 8), np.uint8), "16-bit"),
        "colour.png": (np.zeros((8, 8, 3), np.uint16), "channels"),
        "cube.npy": (np.zeros((4, 4, 2)), "2-D"),
        "nan.npy": (np.array([[1.0, np.nan]]), "NaN"),
        "text.npy": (np.array([["a", "b"]]), "real numbers"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, np.ndarray) and name.endswith(".png"):
            assert cv2.imwrite(str(path), content)
        elif isinstance(content, np.ndarray):
            np.save(path, content)
        with pytest.raises(ImageError, match=message) as info:
            load_depth(path)
        assert name in str(info.value)


def test_normalise_depth_is_robust_min_max():
    depth = np.tile(np.arange(100, dtype=np.float32), (100, 1))
    depth[0, 0] = 1e6  # one outlier must not squash the rest
    lo, hi = np.percentile(depth, [1, 99])
    out = normalise_depth(depth)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_allclose(out[1:, 1:99], (depth[1:, 1:99] - lo) / (hi - lo), atol=1e-6)
    assert np.all(np.diff(out[50]) >= 0)  # order (near -> far) kept


def test_ground_plane_prior_by_hand():
    d = ground_plane_prior((101, 7))
    assert d.shape == (101, 7) and d.dtype == np.float32
    assert np.all(d[-1] == 0.0) and np.all(d[:41] == 1.0)  # horizon at 0.4 * 100 = row 40
    assert d[70, 3] == pytest.approx((100 - 70) / 60)
    assert np.all(np.diff(d[:, 0]) <= 0)


# -- rain -------------------------------------------------------------------------------------
def test_rain_adds_light():
    dark = np.full((96, 128, 3), 40, np.uint8)
    out, _ = Rain(severity=3)(dark, np.random.default_rng(0))
    assert linear_mean(out) > linear_mean(dark) + 0.01
    assert np.all(out >= dark)  # airlight is brighter than this scene everywhere: light only adds


@pytest.mark.parametrize("angle", [-25.0, 0.0, 20.0])
def test_streaks_follow_the_angle(angle):
    alpha = streak_alpha((128, 128), length=30.0, angle_deg=angle, width=1.5, intensity=0.5, density=0.003, seed=1)
    assert alpha.max() > 0.2
    assert angle_gap(streak_angle(alpha), angle) < 2.5
    # and through the whole model (no veil) on a flat image
    grey = np.full((128, 128, 3), 60, np.uint8)
    layer = {"length": 30.0, "angle_deg": angle, "width": 1.5, "intensity": 0.5, "density": 0.003, "seed": 1}
    out = Rain.replay(grey, {"layers": [layer], "veil_beta": 0.0, "airlight": 0.9, "depth_source": "prior:ground-plane"})
    assert angle_gap(streak_angle(out[..., 1].astype(float)), angle) < 2.5


def test_streak_opacity_is_not_normalised_per_image():
    layer = {"length": 20.0, "angle_deg": 10.0, "width": 2.0, "density": 0.001, "seed": 5}
    dim = streak_alpha((64, 64), intensity=0.2, **layer)
    bright = streak_alpha((64, 64), intensity=0.4, **layer)
    assert 0.05 < dim.max() <= 0.2 + 1e-6
    np.testing.assert_allclose(bright, 2 * dim, atol=1e-6)


def test_zero_density_and_zero_veil_are_neutral(small_image):
    layer = {"length": 30.0, "angle_deg": 5.0, "width": 2.0, "intensity": 0.5, "density": 0.0, "seed": 3}
    params = {"layers": [layer, {**layer, "seed": 4}], "veil_beta": 0.0, "airlight": 0.8, "depth_source": "map"}
    assert np.array_equal(Rain.replay(small_image, params), small_image)  # no veil: no depth needed


def test_more_layers_and_higher_severity_change_more(small_image):
    def change(out):
        return float(np.abs(out.astype(float) - small_image).mean())

    by_severity = [change(Rain(severity=s)(small_image, np.random.default_rng(2))[0]) for s in (1, 3, 5)]
    assert by_severity[0] < by_severity[1] < by_severity[2]
    _, params = Rain(severity=4)(small_image, np.random.default_rng(2))
    assert len(params["layers"]) == 3
    fewer = {**params, "layers": params["layers"][:2]}
    assert change(Rain.replay(small_image, fewer)) < change(Rain.replay(small_image, params))


def test_rain_spatial_parameters_scale_with_image_size(astronaut):
    big = Rain(severity=3).sample(np.random.default_rng(0), astronaut)
    small = Rain(severity=3).sample(np.random.default_rng(0), np.ascontiguousarray(astronaut[::2, ::2]))
    for b, s in zip(big["layers"], small["layers"], strict=True):
        assert s["length"] == pytest.approx(b["length"] / 2) and s["width"] == pytest.approx(b["width"] / 2)
        assert s["density"] == pytest.approx(b["density"] * 4)  # same number of streaks per image
        assert s["angle_deg"] == b["angle_deg"] and s["intensity"] == b["intensity"]


@pytest.mark.parametrize("cls", [Haze, Rain])
@pytest.mark.parametrize("track", ["train", "ood"])
def test_replay_with_depth_map_is_exact(cls, track, small_image):
    depth = np.random.default_rng(9).uniform(1.0, 30.0, small_image.shape[:2]).astype(np.float32)
    out, params = cls(severity=None, track=track)(small_image, np.random.default_rng(4), depth)
    assert not np.array_equal(out, small_image)
    assert np.array_equal(cls.replay(small_image, json.loads(json.dumps(params)), depth), out)


LAYER = {"length": 20.0, "angle_deg": 5.0, "width": 1.0, "intensity": 0.5, "density": 0.001, "seed": 1}
RAIN = {"layers": [LAYER], "veil_beta": 0.1, "airlight": 0.8, "depth_source": "prior:ground-plane"}
WRONG_TYPES = ["abc", None, [0.5], {"a": 1}, True, math.nan, math.inf]


@pytest.mark.parametrize(("change", "key"), [
    ({"density": -0.1}, "density"),
    ({"width": 0.0}, "width"),
    ({"intensity": 1.5}, "intensity"),
    ({"length": -1.0}, "length"),
    ({"angle_deg": 120.0}, "angle_deg"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**63}, "seed"),
    ({"seed": 1.0}, "seed"),
    *(({key: value}, key) for key in LAYER for value in WRONG_TYPES),
])
def test_rain_bad_layer_params_name_the_layer_and_the_parameter(small_image, change, key):
    params = {**RAIN, "layers": [LAYER, {**LAYER, **change}]}
    with pytest.raises(ParameterError, match=f"{key}=") as info:
        Rain.replay(small_image, params)
    assert str(info.value).startswith("rain: ") and "layers[1]" in str(info.value)


@pytest.mark.parametrize(("layers", "message"), [
    ({}, "layers must be a list .* got dict"),
    ([LAYER] * (MAX_LAYERS + 1), f"layers must be a list of at most {MAX_LAYERS} .* got {MAX_LAYERS + 1} layers"),
    ([LAYER, 5], r"layers\[1\] must be a dict .* got int"),
    ([LAYER, {**LAYER, "speed": 3.0}], r"layers\[1\] must be a dict with exactly the keys .* 'speed'"),
    ([{k: v for k, v in LAYER.items() if k != "seed"}], r"layers\[0\] must be a dict with exactly the keys .* got keys \['angle_deg'"),
])
def test_rain_layer_structure_is_checked(small_image, layers, message):
    with pytest.raises(ParameterError, match=f"rain: parameter {message}"):
        Rain.replay(small_image, {**RAIN, "layers": layers})


@pytest.mark.parametrize(("key", "value"), [(k, v) for k in ("veil_beta", "airlight", "depth_source") for v in WRONG_TYPES]
                         + [("veil_beta", -0.2), ("veil_beta", MAX_BETA * 1.01), ("airlight", 0.0), ("depth_source", "prior:flat")])
def test_rain_bad_scalar_params_name_the_parameter(small_image, key, value):
    with pytest.raises(ParameterError, match=f"rain: parameter {key}="):
        Rain.replay(small_image, {**RAIN, key: value})


def test_rain_sizes_and_counts_are_bounded_by_the_image(small_image):
    short = min(small_image.shape[:2])
    longest = {**LAYER, "length": short / 2, "width": short / 8}
    assert Rain.replay(small_image, {**RAIN, "layers": [longest]}).shape == small_image.shape
    for key in ("length", "width"):
        with pytest.raises(ParameterError, match=rf"layers\[0\]\.{key}=\S+ is outside the valid range \[0.0, {longest[key]}\]"):
            Rain.replay(small_image, {**RAIN, "layers": [{**longest, key: longest[key] * 1.01}]})
    # density: at most MAX_STREAK_SEEDS expected seeds on the canvas (the image padded by the kernel radius)
    ry, rx = streak_radius(longest["length"], longest["angle_deg"], longest["width"])
    canvas = (small_image.shape[0] + 2 * ry) * (small_image.shape[1] + 2 * rx)
    assert canvas <= (small_image.shape[0] + 0.82 * short + 5) * (small_image.shape[1] + 0.82 * short + 5)
    with pytest.raises(ParameterError, match=rf"layers\[0\]\.density=\S+ is outside the valid range \[0.0, {MAX_STREAK_SEEDS / canvas}\]"):
        Rain.replay(small_image, {**RAIN, "layers": [{**longest, "density": 1.01 * MAX_STREAK_SEEDS / canvas}]})


@pytest.mark.parametrize(("cls", "params", "key"), [
    (Rain, {**RAIN, "layers": [{**LAYER, "density": 1e12}]}, "layers[0].density"),
    (Rain, {**RAIN, "layers": [{**LAYER, "length": 1e9}]}, "layers[0].length"),
    (Rain, {**RAIN, "layers": [{**LAYER, "width": 1e9}]}, "layers[0].width"),
    (Rain, {**RAIN, "layers": [LAYER] * 10**6}, "layers"),
    (Rain, {**RAIN, "veil_beta": 1e300}, "veil_beta"),
    (Haze, {**HAZE, "beta": 1e9}, "beta"),
    (Haze, {**HAZE, "airlight": "abc"}, "airlight"),
])
def test_huge_or_wrong_values_fail_fast_before_allocating(cls, params, key, astronaut):
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ParameterError, match=f"{cls.name}: parameter {key}".replace("[", r"\[")):
            cls.replay(astronaut, params)
        elapsed, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 0.05 and peak < 100_000


def test_output_does_not_depend_on_simd_dispatch(astronaut, tmp_path):
    """Haze and rain on a depth map in a child process with numpy's and OpenCV's dispatched SIMD code
    (and FMA) off: float32 exp (transmission, streak kernels) and Gaussian depth smoothing moved pixels there."""
    yy, xx = np.mgrid[:512, :512]
    depth = (1.0 + xx + 0.5 * yy + 40 * np.sin(xx / 37.0) * np.cos(yy / 23.0)).astype(np.float32)
    np.save(tmp_path / "depth.npy", depth)
    draws = [(cls(severity=s), s) for cls in (Haze, Rain) for s in (1, 3, 5)]
    draws += [(Rain(severity=5), 0), (Rain(severity=None, track="ood"), 8)]  # these two catch a float32 streak kernel
    cases = [(d.name, d.sample(np.random.default_rng(seed), astronaut, depth)) for d, seed in draws]
    child = ("import hashlib, json, sys, numpy, skimage.data\n"
             "from uirbench.degradations import create\n"
             "image, depth = skimage.data.astronaut(), numpy.load(sys.argv[2])\n"
             "print(json.dumps([hashlib.sha256(type(create(n)).replay(image, p, depth).tobytes()).hexdigest()"
             " for n, p in json.loads(sys.argv[1])]))\n")
    env = simd_disabled_env()
    run = subprocess.run([sys.executable, "-c", child, json.dumps(cases), str(tmp_path / "depth.npy")],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    here = [hashlib.sha256((Haze if n == "haze" else Rain).replay(astronaut, p, depth).tobytes()).hexdigest()
            for n, p in cases]
    assert json.loads(run.stdout) == here
