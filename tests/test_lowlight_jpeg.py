"""Family tests for low light (physical and Lv et al. compat) and JPEG, against independent references.

References used here, none produced by the code under test: the sRGB transfer function written out
in float64, Poisson/Gaussian moments with tolerances from the sample size, Lv et al.'s closed form,
and Pillow's own JPEG round trip.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import skimage.data
from PIL import Image

from uirbench.degradations.jpeg import JPEG
from uirbench.degradations.lowlight import SENSOR, LowLight, LowLightCompat
from uirbench.errors import ParameterError


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 decoding in float64, v in [0, 1]."""
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def lin(image: np.ndarray) -> np.ndarray:
    return srgb_to_linear(image.astype(np.float64) / 255.0)


def flat(value: int, side: int = 256) -> np.ndarray:
    return np.full((side, side, 3), value, np.uint8)


def lowlight(image, ev, shot=SENSOR["shot"], read=SENSOR["read"], seed=0):
    return LowLight.replay(image, {"ev": ev, "shot": shot, "read": read, "seed": seed})


# -- lowlight ---------------------------------------------------------------------------------
def test_ideal_sensor_scales_exposure_in_linear_light():
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    for ev in (1.0, 2.5, 4.0):
        out = lowlight(levels, ev, shot=0.0, read=0.0)
        expected = np.rint(255 * linear_to_srgb(lin(levels) * 2.0**-ev))
        assert np.abs(out - expected).max() <= 1  # a 1-DN miss only within 2^-17 of a rounding threshold
        assert np.mean(out == expected) > 0.99


@pytest.mark.parametrize("ev", [2.0, 4.0])
def test_mean_linear_intensity_falls_by_two_to_the_minus_ev(astronaut, ev):
    out = lowlight(astronaut, ev, read=0.0, seed=3)  # Poisson alone: non-negative, nothing clipped
    ratio = lin(out).mean() / lin(astronaut).mean()
    # sampling error of the mean is ~1e-4 relative; 8-bit sRGB rounding of dark values adds a little bias
    assert ratio == pytest.approx(2.0**-ev, rel=0.003)


@pytest.mark.parametrize(("shot", "read"), [(1 / 2000, 0.0), (0.0, 0.004), (1 / 2000, 0.002), (2e-3, 5e-4)])
def test_noise_variance_is_shot_times_signal_plus_read_squared(shot, read):
    image, ev = flat(180), 2.0
    x_dim = float(lin(image[:1, :1])[0, 0, 0]) * 2.0**-ev
    y = lin(lowlight(image, ev, shot=shot, read=read, seed=11))
    n = y.size
    # Sheppard's correction: rounding to 8-bit sRGB adds step^2 / 12, step = one DN in linear light there
    v = np.rint(255 * linear_to_srgb(x_dim))
    step = float(srgb_to_linear((v + 1) / 255.0) - srgb_to_linear((v - 1) / 255.0)) / 2
    expected = shot * x_dim + read**2 + step**2 / 12
    # relative std of a sample variance is sqrt(2 / n) for near-Gaussian data; allow 5 of them
    assert y.var() == pytest.approx(expected, rel=5 * np.sqrt(2 / n))
    assert y.mean() == pytest.approx(x_dim, abs=5 * np.sqrt(expected / n))


def test_output_is_darker_and_noisier_at_every_level_without_rebrightening():
    image = flat(200, 128)
    means, snrs = [], []
    for severity in range(1, 6):
        out, params = LowLight(severity=severity)(image, np.random.default_rng(severity))
        assert params["ev"] == severity + 1 and params["shot"] == SENSOR["shot"] and params["read"] == SENSOR["read"]
        y = lin(out)
        means.append(y.mean())
        snrs.append(y.mean() / y.std())
    assert means[0] < lin(image).mean() / 3.5  # 2 stops down, not brought back up
    assert (np.diff(means) < 0).all()
    assert (np.diff(snrs) < 0).all()  # fewer photons alone make darker exposures noisier


def test_lowlight_continuous_draws_stay_in_their_tracks(small_image):
    for track, (lo, hi) in (("train", (2.0, 6.0)), ("ood", (6.0, 8.0))):
        deg = LowLight(severity=None, track=track)
        for seed in range(20):
            p = deg.sample(np.random.default_rng(seed), small_image)
            assert lo <= p["ev"] < hi and 2e-4 <= p["shot"] < 2e-3 and 5e-4 <= p["read"] < 4e-3


# -- lowlight-compat ---------------------------------------------------------------------------
def test_compat_matches_lv_closed_form_without_noise():
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    for alpha, beta, gamma in ((0.95, 0.75, 2.25), (0.9, 0.5, 5.0), (1.0, 1.0, 1.5)):
        out = LowLightCompat.replay(levels, {"gamma": gamma, "sigma": 0.0, "alpha": alpha, "beta": beta, "seed": 0})
        exact = 255 * beta * (alpha * levels / 255.0) ** gamma
        tie = np.abs(exact - np.floor(exact) - 0.5) < 1e-4  # float32 evaluation may round these either way
        assert np.array_equal(out[~tie], np.rint(exact[~tie]))


def test_compat_noise_has_the_stated_std_in_dn():
    image = flat(230)
    out = LowLightCompat.replay(image, {"gamma": 1.5, "sigma": 4.0, "alpha": 1.0, "beta": 1.0, "seed": 5}).astype(np.float64)
    mean = 255 * (230 / 255) ** 1.5
    n = out.size
    assert out.std() ** 2 == pytest.approx(16 + 1 / 12, rel=5 * np.sqrt(2 / n))  # + rounding variance
    assert out.mean() == pytest.approx(mean, abs=5 * 4 / np.sqrt(n) + 0.01)


def test_compat_levels_fix_alpha_beta_and_draws_follow_lv_ranges(small_image):
    out, params = LowLightCompat(severity=4)(small_image, np.random.default_rng(0))
    assert (params["alpha"], params["beta"], params["gamma"]) == (0.95, 0.75, 4.0)
    assert out.mean() < small_image.mean() / 2
    for track, (lo, hi) in (("train", (1.5, 5.0)), ("ood", (5.0, 7.0))):
        for seed in range(20):
            p = LowLightCompat(severity=None, track=track).sample(np.random.default_rng(seed), small_image)
            assert lo <= p["gamma"] < hi and 0.9 <= p["alpha"] < 1 and 0.5 <= p["beta"] < 1


# -- jpeg --------------------------------------------------------------------------------------
def pillow_jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def jpeg(image, quality):
    return JPEG.replay(image, {"quality": quality})


@pytest.fixture(scope="module")
def real_images(astronaut, small_image):
    return {
        "astronaut": astronaut,
        "small": small_image,
        "chelsea-odd-size": np.ascontiguousarray(skimage.data.chelsea()[:201, :301]),
        "coffee": skimage.data.coffee(),
        "flipped-view": small_image[::-1, ::-1],  # negative strides: not contiguous
    }


@pytest.mark.parametrize("quality", [1, 10, 30, 50, 71, 95, 100])
def test_jpeg_equals_pillow_byte_for_byte(real_images, quality):
    for name, image in real_images.items():
        assert np.array_equal(jpeg(image, quality), pillow_jpeg(np.ascontiguousarray(image), quality)), name


def test_jpeg_of_a_solid_colour_is_nearly_lossless():
    solid = np.zeros((64, 64, 3), np.uint8)
    solid[:] = (200, 120, 40)
    for quality, bound in ((90, 1), (30, 6)):  # bound: half a DC quantisation step through YCbCr -> RGB
        out = jpeg(solid, quality)
        assert (out == out[0, 0]).all(), "a flat image must stay flat"
        assert np.abs(out.astype(int) - solid).max() <= bound


def test_jpeg_keeps_channel_order():
    red = np.zeros((64, 64, 3), np.uint8)
    red[..., 0] = 255
    r, g, b = jpeg(red, 30)[32, 32].astype(int)
    assert r > 230 and g < 25 and b < 25  # a BGR mix-up would give a blue image


def test_jpeg_preserves_channel_means_of_a_photo(astronaut):
    out = jpeg(astronaut, 30)
    diff = out.reshape(-1, 3).mean(0) - astronaut.reshape(-1, 3).mean(0)
    assert np.abs(diff).max() < 1.0


def test_jpeg_lower_quality_is_further_from_the_clean_image(astronaut):
    errors = [np.abs(jpeg(astronaut, q).astype(int) - astronaut).mean() for q in (70, 50, 30, 10)]
    assert (np.diff(errors) > 0).all()


def test_jpeg_quality_draws_are_integers_in_range(small_image):
    for track, (lo, hi) in (("train", (30, 70)), ("ood", (10, 29))):
        drawn = {JPEG(severity=None, track=track).sample(np.random.default_rng(s), small_image)["quality"] for s in range(400)}
        assert all(type(q) is int for q in drawn)
        assert min(drawn) == lo and max(drawn) == hi
    levels = [JPEG(severity=s).sample(np.random.default_rng(0), small_image)["quality"] for s in range(6)]
    assert levels == [None, 70, 60, 50, 40, 30]


# -- validation and replay -----------------------------------------------------------------------
@pytest.mark.parametrize("quality", [0, 101, 30.5, 30.0, True, "50", -5, [50], {"q": 50}, float("nan"), 10**30])
def test_bad_jpeg_quality_raises_naming_it(small_image, quality):
    with pytest.raises(ParameterError, match=r"quality=.*\[1, 100\]"):
        jpeg(small_image, quality)


@pytest.mark.parametrize(("cls", "params", "bad_key"), [
    (LowLight, {"ev": -1.0, "shot": 0.001, "read": 0.001, "seed": 0}, "ev"),
    (LowLight, {"ev": 2.0, "shot": -0.001, "read": 0.001, "seed": 0}, "shot"),
    (LowLight, {"ev": 2.0, "shot": 0.001, "read": float("nan"), "seed": 0}, "read"),
    (LowLight, {"ev": 17.0, "shot": 0.001, "read": 0.001, "seed": 0}, r"ev=17.0 .*\[0.0, 16.0\]"),
    (LowLight, {"ev": 2.0, "shot": 1e-300, "read": 0.001, "seed": 0}, r"shot=1e-300 must be 0 .* \[1e-06, 1.0\]"),
    (LowLight, {"ev": 2.0, "shot": 2.0, "read": 0.001, "seed": 0}, r"shot=2.0 .*\[0.0, 1.0\]"),
    (LowLight, {"ev": 2.0, "shot": 0.001, "read": 1.5, "seed": 0}, r"read=1.5 .*\[0.0, 1.0\]"),
    (LowLight, {"ev": "2", "shot": 0.001, "read": 0.001, "seed": 0}, r"ev='2' must be a number"),
    (LowLight, {"ev": 2.0, "shot": 0.001, "read": 0.001, "seed": -1}, r"seed=-1 .*\[0, 2\*\*63\)"),
    (LowLight, {"ev": 2.0, "shot": 0.001, "read": 0.001, "seed": 1.0}, r"seed=1.0 must be an integer"),
    (LowLightCompat, {"gamma": 0.5, "sigma": 1.0, "alpha": 0.9, "beta": 0.5, "seed": 0}, "gamma"),
    (LowLightCompat, {"gamma": 2.0, "sigma": -1.0, "alpha": 0.9, "beta": 0.5, "seed": 0}, "sigma"),
    (LowLightCompat, {"gamma": 2.0, "sigma": 1.0, "alpha": 1.5, "beta": 0.5, "seed": 0}, "alpha"),
    (LowLightCompat, {"gamma": 2.0, "sigma": 1.0, "alpha": 0.9, "beta": -0.1, "seed": 0}, "beta"),
    (LowLightCompat, {"gamma": 11.0, "sigma": 1.0, "alpha": 0.9, "beta": 0.5, "seed": 0}, r"gamma=11.0 .*\[1.0, 10.0\]"),
    (LowLightCompat, {"gamma": 2.0, "sigma": 300.0, "alpha": 0.9, "beta": 0.5, "seed": 0}, r"sigma=300.0 .*\[0.0, 255.0\]"),
    (LowLightCompat, {"gamma": 2.0, "sigma": 1.0, "alpha": None, "beta": 0.5, "seed": 0}, r"alpha=None must be a number"),
    (LowLightCompat, {"gamma": 2.0, "sigma": 1.0, "alpha": 0.9, "beta": 0.5, "seed": 2**63}, r"seed=9223372036854775808"),
])
def test_bad_lowlight_params_raise_naming_them(small_image, cls, params, bad_key):
    with pytest.raises(ParameterError, match=bad_key):
        cls.replay(small_image, params)


@pytest.mark.parametrize("cls", [LowLight, LowLightCompat, JPEG])
@pytest.mark.parametrize("track", ["train", "ood"])
def test_replay_from_json_is_exact(small_image, cls, track):
    out, params = cls(severity=None, track=track)(small_image, np.random.default_rng(21))
    assert np.array_equal(cls.replay(small_image, json.loads(json.dumps(params))), out)


@pytest.mark.parametrize("cls", [LowLight, LowLightCompat, JPEG])
def test_severity_zero_is_byte_identical(small_image, cls):
    out, params = cls(severity=0)(small_image, np.random.default_rng(0))
    assert np.array_equal(out, small_image) and out is not small_image
    assert json.loads(json.dumps(params)) == params
