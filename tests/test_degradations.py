"""Registry-wide degradation tests: every registered degradation and mixed recipe gets them for free."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys

import cv2
import numpy as np
import pytest
import scipy.ndimage
import torch

from uirbench.degradations import RECIPES, Mixed, Range, create, physical_order
from uirbench.degradations.base import check_param_names, field_rng
from uirbench.degradations.noise import READ_LEVELS, SHOT_LEVELS, CameraNoise, read_from_shot
from uirbench.errors import ParameterError
from uirbench.io import ImageError
from uirbench.registry import DEGRADATIONS, UnknownNameError

NAMES = [*DEGRADATIONS.names(), *RECIPES]


def _run(name: str, image: np.ndarray, seed: int, severity: int | None = 3, track: str = "train"):
    return create(name, severity=severity, track=track)(image, np.random.default_rng(seed))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("severity", [1, 5, None])
def test_shape_dtype_and_replay(name, severity, small_image):
    out, params = _run(name, small_image, seed=7, severity=severity)
    assert out.shape == small_image.shape and out.dtype == np.uint8
    if severity == 5:  # (level 1 of a spatial degradation can be sub-pixel on this 96x128 crop)
        assert not np.array_equal(out, small_image), "the strongest severity changed nothing"
    replayed = type(create(name)).replay(small_image, json.loads(json.dumps(params)))
    assert np.array_equal(out, replayed), "replay from JSON-round-tripped params is not exact"


@pytest.mark.parametrize("name", NAMES)
def test_neutral_severity_is_identity(name, small_image):
    out, _ = _run(name, small_image, seed=3, severity=0)
    assert np.array_equal(out, small_image)
    assert out is not small_image


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_seed_determines_output(name, astronaut):
    # continuous severity: every degradation, random fields or not, draws its parameters from the seed
    a, pa = _run(name, astronaut, seed=11, severity=None)
    b, pb = _run(name, astronaut, seed=11, severity=None)
    c, pc = _run(name, astronaut, seed=12, severity=None)
    assert np.array_equal(a, b) and pa == pb
    assert not np.array_equal(a, c) and pa != pc


@pytest.mark.parametrize("name", NAMES)
def test_output_independent_of_processing_history(name, small_image, astronaut):
    fresh, _ = _run(name, small_image, seed=5)
    for seed in range(3):  # process other images first, with the same degradation object type
        _run(name, np.ascontiguousarray(astronaut[::4, ::4]), seed=seed)
    again, _ = _run(name, small_image, seed=5)
    assert np.array_equal(fresh, again)


@pytest.mark.parametrize("name", NAMES)
def test_global_rng_state_untouched(name, small_image):
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002  (checking the legacy global state is untouched)
    py_state = random.getstate()
    torch_state = torch.get_rng_state().clone()
    cv2.setRNGSeed(1234)  # OpenCV 5 exposes no state getter: compare its next draws instead
    expected = cv2.randu(np.zeros(8, np.float32), 0, 1).copy()
    cv2.setRNGSeed(1234)
    _run(name, small_image, seed=1)
    after = cv2.randu(np.zeros(8, np.float32), 0, 1)
    assert np.array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert random.getstate() == py_state
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(after, expected)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_or_missing_params_are_refused(name, small_image):
    _, params = _run(name, small_image, seed=2)
    cls = type(create(name))
    with pytest.raises(ParameterError, match="valid parameters"):
        cls.replay(small_image, {**params, "bogus": 1})
    with pytest.raises(ParameterError, match="missing"):
        cls.replay(small_image, {k: v for k, v in list(params.items())[1:]})


@pytest.mark.parametrize("name", DEGRADATIONS.names())
def test_ood_range_is_disjoint_from_train(name):
    cls = DEGRADATIONS.get(name)
    if cls is Mixed:
        return
    assert set(cls.TRAIN) == set(cls.OOD) or set(cls.OOD) <= set(cls.TRAIN)
    key = next(iter(cls.LEVELS))
    train, ood = cls.TRAIN[key], cls.OOD[key]
    assert train.hi <= ood.lo or ood.hi <= train.lo, f"{name}: {key} train {train} overlaps ood {ood}"


@pytest.mark.parametrize("bad", [
    np.zeros((64, 64), np.uint8),            # grey
    np.zeros((64, 64, 1), np.uint8),         # grey with channel axis
    np.zeros((64, 64, 4), np.uint8),         # RGBA
    np.zeros((64, 64, 3), np.uint16),        # 16-bit
    np.zeros((64, 64, 3), np.float32),       # float
    np.zeros((8, 64, 3), np.uint8),          # tiny
])
@pytest.mark.parametrize("name", ["awgn", "motion-blur", "haze", "jpeg", "blur+noise+jpeg"])
def test_bad_arrays_are_refused(name, bad):
    with pytest.raises(ImageError):
        _run(name, bad, seed=0)


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownNameError, match="motion-blur"):
        create("motion-blurr")


@pytest.mark.parametrize("severity", [-1, 6, 2.5, True])
def test_bad_severity_raises(severity):
    with pytest.raises(ParameterError, match="severity"):
        create("awgn", severity=severity)


def test_bad_physical_values_raise_naming_the_parameter(small_image):
    with pytest.raises(ParameterError, match="sigma"):
        type(create("awgn")).replay(small_image, {"sigma": -3.0, "seed": 0})
    with pytest.raises(ParameterError, match="quality"):
        type(create("jpeg")).replay(small_image, {"quality": 0})


_CAMERA = {"shot": 0.004, "read_var": 2e-5, "rgb2cam": [[0.6, 0.3, 0.1], [0.1, 0.7, 0.2], [0.0, 0.2, 0.8]],
           "red_gain": 2.0, "blue_gain": 1.7, "rgb_gain": 1.2, "seed": 0}
_MIXED = {"stages": [{"name": "awgn", "params": {"sigma": 5.0, "seed": 0}}, {"name": "jpeg", "params": {"quality": 50}}]}


@pytest.mark.parametrize(("name", "params", "message"), [
    ("awgn", {"sigma": 256.0, "seed": 0}, r"awgn: parameter sigma=256.0 is outside the valid range \[0.0, 255.0\]"),
    ("awgn", {"sigma": float("inf"), "seed": 0}, r"sigma=inf is outside"),
    ("awgn", {"sigma": [5.0], "seed": 0}, r"sigma=\[5.0\] must be a number"),
    ("awgn", {"sigma": 5.0, "seed": -1}, r"awgn: parameter seed=-1 must be an integer in \[0, 2\*\*63\)"),
    ("awgn", {"sigma": 5.0, "seed": True}, r"seed=True must be an integer"),
    ("awgn", {"sigma": 5.0, "seed": "7"}, r"seed='7' must be an integer"),
    ("poisson-gaussian", {"shot": 1.5, "read_var": 0.0, "seed": 0}, r"shot=1.5 is outside the valid range \[0.0, 1.0\]"),
    ("poisson-gaussian", {"shot": 0.01, "read_var": float("nan"), "seed": 0}, r"read_var=nan"),
    ("poisson-gaussian", {"shot": 0.01, "read_var": 0.0, "seed": 2**64}, r"seed=18446744073709551616"),
    ("camera-noise", {**_CAMERA, "shot": -0.1}, r"camera-noise: parameter shot=-0.1"),
    ("camera-noise", {**_CAMERA, "rgb2cam": [[1, 0], [0, 1]]}, r"rgb2cam=\[\[1, 0\], \[0, 1\]\] must be a 3x3 nested list"),
    ("camera-noise", {**_CAMERA, "rgb2cam": "eye"}, r"rgb2cam='eye' must be a 3x3"),
    ("camera-noise", {**_CAMERA, "rgb2cam": [[1, 0, 0], [0, "1", 0], [0, 0, 1]]}, r"rgb2cam\[1\]\[1\]='1' must be a number"),
    ("camera-noise", {**_CAMERA, "rgb2cam": [[1, 0, 0], [0, 11, 0], [0, 0, 1]]}, r"rgb2cam\[1\]\[1\]=11 .*\[-10.0, 10.0\]"),
    ("camera-noise", {**_CAMERA, "rgb2cam": [[1, 1, 0], [1, 1, 0], [0, 0, 1]]}, r"rgb2cam=.* must be invertible"),
    ("camera-noise", {**_CAMERA, "red_gain": 0.0}, r"red_gain=0.0 is outside the valid range \[0.1, 10.0\]"),
    ("camera-noise", {**_CAMERA, "rgb_gain": None}, r"rgb_gain=None must be a number"),
    ("camera-noise", {**_CAMERA, "seed": 0.5}, r"seed=0.5"),
    ("mixed", {"stages": []}, r"mixed: parameter stages=\[\] must be a non-empty list"),
    ("mixed", {"stages": "awgn+jpeg"}, r"stages='awgn\+jpeg' must be a non-empty list"),
    ("mixed", {"stages": [{"name": "awgn", "params": {"sigma": 5.0, "seed": 0}, "extra": 1}]}, r"records"),
    ("mixed", {"stages": [{"name": "mixed", "params": {}}]}, r"cannot itself be 'mixed'"),
    ("mixed", {"stages": [_MIXED["stages"][0]] * 2}, r"listed twice"),
    ("mixed", {"stages": [{"name": "jpeg", "params": [50]}]}, r"jpeg: params must be a JSON object"),
    ("mixed", {"stages": [_MIXED["stages"][0], {"name": "jpeg", "params": {"quality": 0}}]}, r"jpeg: parameter quality=0"),
])
def test_bad_params_raise_parameter_error_naming_value_and_range(small_image, name, params, message):
    with pytest.raises(ParameterError, match=message):
        DEGRADATIONS.get(name).replay(small_image, params)


def test_unknown_stage_name_is_a_user_error(small_image):
    with pytest.raises(UnknownNameError, match="awgm"):
        Mixed.replay(small_image, {"stages": [{"name": "awgm", "params": {}}]})


@pytest.mark.parametrize("params", [None, [("sigma", 5.0)], "sigma=5", 5])
def test_params_that_are_not_an_object_are_refused(small_image, params):
    cls = DEGRADATIONS.get("awgn")
    with pytest.raises(ParameterError, match="params must be a JSON object"):
        check_param_names(cls, params)
    with pytest.raises(ParameterError, match="params must be a JSON object"):
        cls.replay(small_image, params)


# -- scalar transcendentals: the same recorded params on every CPU ------------------------------------
def test_read_noise_levels_follow_the_brooks_relation():
    for shot, read in zip(SHOT_LEVELS, READ_LEVELS, strict=True):
        assert read_from_shot(shot) == pytest.approx(read, rel=1e-11)
        assert read_from_shot(shot) == float(f"{read_from_shot(shot):.11e}")  # 12 significant digits
    # the severity tables use the written-out values, not a libm result
    assert create("poisson-gaussian", severity=3).sample(np.random.default_rng(0), np.zeros((16, 16, 3), np.uint8))[
        "read_var"] == READ_LEVELS[2] == 1.966274555942088e-05


def test_log_uniform_draws_have_twelve_significant_digits_and_stay_in_range():
    r = Range(1e-4, 0.012, log=True)
    rng = np.random.default_rng(0)
    draws = [r.draw(rng) for _ in range(2000)]
    assert all(1e-4 <= d < 0.012 and d == float(f"{d:.11e}") for d in draws)
    logs = np.log(draws)  # still log-uniform: mean and spread of U[log lo, log hi)
    lo, hi = np.log(1e-4), np.log(0.012)
    assert logs.mean() == pytest.approx((lo + hi) / 2, abs=4 * (hi - lo) / np.sqrt(12 * 2000))


# -- camera-noise: Brooks et al. 2019 noise, against an independent float64 pipeline --------------------
def _camera_noise_reference(image: np.ndarray, p: dict) -> np.ndarray:
    """The documented model in float64 with scipy: unprocess, RGGB mosaic, noise, textbook bilinear demosaic
    (measured samples kept), reprocess; the difference of the noisy and noise-free results added to the input."""
    h, w = image.shape[:2]
    y = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="reflect") / 255.0
    x = (0.5 - np.sin(np.arcsin(1 - 2 * y) / 3)) ** 2.2
    ccm = np.array(p["rgb2cam"], np.float64)
    gains = np.array([p["red_gain"], 1.0, p["blue_gain"]]) * p["rgb_gain"]
    cam = np.clip(x @ ccm.T / gains, 0, 1)
    mask = np.zeros(cam.shape, bool)
    mask[0::2, 0::2, 0] = mask[0::2, 1::2, 1] = mask[1::2, 0::2, 1] = mask[1::2, 1::2, 2] = True
    raw = (cam * mask).sum(axis=2)
    n = field_rng(p["seed"]).standard_normal(raw.shape, dtype=np.float32)
    noisy = raw + np.sqrt(p["shot"] * raw + p["read_var"]) * n
    k_rb = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    k_g = np.array([[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]])

    def process(r):
        rgb = np.stack([scipy.ndimage.convolve(r * mask[..., c], k_g if c == 1 else k_rb, mode="mirror") for c in range(3)], -1)
        v = np.clip(rgb[:h, :w] * gains @ np.linalg.inv(ccm).T, 0, 1) ** (1 / 2.2)
        return 255 * (3 * v * v - 2 * v**3)

    return np.clip(np.rint(image + process(noisy) - process(raw)), 0, 255)


@pytest.mark.parametrize("severity", [1, 3, 5, None])
def test_camera_noise_matches_an_independent_float64_pipeline(astronaut, severity):
    image = np.ascontiguousarray(astronaut[50:147, 100:231])  # odd sides: the mosaic is mirrored to even
    params = create("camera-noise", severity=severity).sample(np.random.default_rng(5), image)
    diff = np.abs(CameraNoise.replay(image, params) - _camera_noise_reference(image, params))
    assert diff.max() <= 1  # float32 and the 2^16-bin tone table, near rounding thresholds only
    assert np.mean(diff > 0) < 0.005


def test_camera_noise_without_noise_returns_the_input_exactly(astronaut):
    image = np.ascontiguousarray(astronaut[:97, :131])
    params = create("camera-noise", severity=5).sample(np.random.default_rng(11), image)
    # the pipeline's own demosaicking error (21-26 dB on photos) is not part of the degradation
    assert np.array_equal(CameraNoise.replay(image, {**params, "shot": 1e-12, "read_var": 0.0}), image)
    out = CameraNoise.replay(image, params)
    assert 15 < 10 * np.log10(255**2 / np.mean((out.astype(float) - image) ** 2)) < 25


def test_camera_noise_keeps_the_demosaic_correlation_and_signal_dependence():
    grey = np.full((128, 128, 3), 90, np.uint8)
    params = {**_CAMERA, "rgb2cam": np.eye(3).tolist(), "red_gain": 1.0, "blue_gain": 1.0, "rgb_gain": 1.0, "read_var": 0.0}
    noise = CameraNoise.replay(grey, params).astype(np.float64) - 90
    red = noise[..., 0]
    # red is measured on one site in four and interpolated elsewhere: horizontal neighbours correlate
    rho = np.corrcoef(red[:, :-1].ravel(), red[:, 1:].ravel())[0, 1]
    assert 0.4 < rho < 0.9
    # shot noise: raw std sqrt(shot * r), carried to DN by the slope of the gamma + tone curve f at r
    def unprocess(g):
        return (0.5 - np.sin(np.arcsin(1 - 2 * g / 255) / 3)) ** 2.2

    def slope(r):
        v = np.array([r * 0.999, r * 1.001]) ** (1 / 2.2)
        return float(np.diff(255 * (3 * v * v - 2 * v**3))[0]) / (0.002 * r)

    brighter = CameraNoise.replay(np.full((128, 128, 3), 200, np.uint8), params).astype(np.float64) - 200
    r90, r200 = unprocess(90), unprocess(200)
    shot_model = slope(r200) * np.sqrt(r200) / (slope(r90) * np.sqrt(r90))  # 0.83
    assert brighter.std() / noise.std() == pytest.approx(shot_model, rel=0.03)  # signal-independent noise: 0.45


def test_awgn_is_unbiased_on_flat_grey():
    flat = np.full((1024, 1024, 3), 128, np.uint8)
    out, _ = create("awgn", severity=3)(flat, np.random.default_rng(0))
    assert abs(out.astype(np.float64).mean() - 128.0) < 0.05  # truncation would give about -0.5 DN


def test_thousand_seeds_give_thousand_noise_fields():
    flat = np.full((16, 16, 3), 128, np.uint8)
    deg = create("awgn", severity=3)
    digests = {hashlib.sha256(deg(flat, np.random.default_rng(s))[0].tobytes()).digest() for s in range(1000)}
    assert len(digests) == 1000


def test_mixed_applies_physical_order_with_independent_seeds(small_image):
    shuffled = Mixed(stages=("jpeg", "awgn", "motion-blur", "haze"))
    _, params = shuffled(small_image, np.random.default_rng(4))
    assert [s["name"] for s in params["stages"]] == ["haze", "motion-blur", "awgn", "jpeg"]
    # the noise stage draws the same parameters whatever else is in the chain
    _, alone = Mixed(stages=("awgn",))(small_image, np.random.default_rng(4))
    assert alone["stages"][0] == params["stages"][2]
    # and the stages' seeds differ from each other
    assert params["stages"][1]["params"]["seed"] != params["stages"][2]["params"]["seed"]
    assert physical_order(["jpeg", "rain", "haze", "lowlight"]) == ["haze", "rain", "lowlight", "jpeg"]


def test_mixed_replay_refuses_unphysical_order(small_image):
    _, params = Mixed(stages=("awgn", "jpeg"))(small_image, np.random.default_rng(0))
    with pytest.raises(ParameterError, match="physical order"):
        Mixed.replay(small_image, {"stages": params["stages"][::-1]})


def test_spatial_parameters_scale_with_image_size(astronaut):
    big = create("motion-blur", severity=4).sample(np.random.default_rng(0), astronaut)
    small = create("motion-blur", severity=4).sample(np.random.default_rng(0), np.ascontiguousarray(astronaut[::2, ::2]))
    assert small["length"] == pytest.approx(big["length"] / 2)


_DIGEST_SCRIPT = """
import hashlib, sys, numpy as np, cv2
cv2.setNumThreads(int(sys.argv[1]))
from uirbench.degradations import create
from uirbench.registry import DEGRADATIONS
from uirbench.degradations import RECIPES
import skimage.data
img = np.ascontiguousarray(skimage.data.astronaut()[100:228, 100:292])
h = hashlib.sha256()
for name in [*DEGRADATIONS.names(), *RECIPES]:
    out, _ = create(name, severity=None)(img, np.random.default_rng(2024))
    h.update(name.encode()); h.update(out.tobytes())
print(h.hexdigest())
"""


@pytest.mark.slow
def test_bytes_identical_across_processes_and_thread_counts():
    digests = []
    for threads in ("1", "2"):
        env = {"OMP_NUM_THREADS": threads, "PATH": "", "HF_HUB_OFFLINE": "1"}
        res = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT, threads], capture_output=True, text=True, env=env, check=True)
        digests.append(res.stdout.strip())
    assert digests[0] == digests[1] and len(digests[0]) == 64


def test_albumentations_adapter_is_seeded_and_reports_params(small_image):
    import albumentations as A

    from uirbench.degradations.adapter import to_albumentations

    def run(seed):
        pipe = A.Compose([to_albumentations(create("awgn", severity=None)), A.HorizontalFlip(p=1.0)], seed=seed,
                         save_applied_params=True)
        return pipe(image=small_image)

    a, b, c = run(1), run(1), run(2)
    assert np.array_equal(a["image"], b["image"]) and not np.array_equal(a["image"], c["image"])
    recorded = next(params for name, params in a["applied_transforms"] if name == "UIRBenchDegradation")
    replayed = type(create("awgn")).replay(small_image, recorded["uir_params"])
    assert np.array_equal(a["image"], replayed[:, ::-1])
