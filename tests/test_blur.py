"""Blur family: PSF geometry, linear-light convolution, spatial scaling, replay and parameter errors.

References are independent of the code under test: hand-computed splats and shapes, closed-form
moments (Gaussian covariance plus the pixel square's 1/12, disk variance r^2/4 + 1/12, segment
variance L^2/12), pixel coverage of a disk by adaptive quadrature of its chords, pixel integrals
of a Gaussian by midpoint sums and by ``math.erf``, scipy.ndimage as a second convolution, the
physics of an edge blurred in linear light, and the same blurs in a child process with numpy's
and OpenCV's SIMD dispatch switched off.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import time
import tracemalloc

import cv2
import numpy as np
import pytest
import scipy.integrate
import scipy.ndimage
from conftest import simd_disabled_env

from uirbench.degradations.base import to_linear, to_srgb8
from uirbench.degradations.blur import (
    DIRECT_MAX_TAPS,
    MAX_REACH,
    DefocusBlur,
    GaussianBlur,
    MotionBlur,
    convolve_linear,
    disk_kernel,
    gaussian_kernel,
    motion_kernel,
    shake_trajectory,
    splat_bilinear,
)
from uirbench.errors import ParameterError
from uirbench.registry import DEGRADATIONS, DegradationSpec

CLASSES = [MotionBlur, DefocusBlur, GaussianBlur]
KERNELS = {
    "gaussian": lambda: gaussian_kernel(3.0, 1.2, 30.0),
    "gaussian-tiny": lambda: gaussian_kernel(0.3, 0.1, 70.0),
    "disk": lambda: disk_kernel(2.5),
    "disk-tiny": lambda: disk_kernel(0.2),
    "motion-line": lambda: motion_kernel(20.0, 0.0, 1.0, 1),
    "motion-shake": lambda: motion_kernel(35.0, 1.0, 0.7, 2),
    "motion-short": lambda: motion_kernel(0.3, 0.5, 0.5, 3),
}


def moments(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (x, y) relative to the centre pixel and 2x2 covariance of a kernel's weights."""
    k = kernel.astype(np.float64)
    y, x = np.mgrid[: k.shape[0], : k.shape[1]]
    x, y = x - k.shape[1] // 2, y - k.shape[0] // 2
    mean = np.array([(k * x).sum(), (k * y).sum()])
    dx, dy = x - mean[0], y - mean[1]
    cov = np.array([[(k * dx * dx).sum(), (k * dx * dy).sum()], [(k * dx * dy).sum(), (k * dy * dy).sum()]])
    return mean, cov


@pytest.mark.parametrize("which", KERNELS)
def test_psf_normalised_non_negative_odd_and_tight(which):
    kernel = KERNELS[which]()
    assert kernel.dtype == np.float32 and kernel.ndim == 2
    assert kernel.shape[0] % 2 == 1 and kernel.shape[1] % 2 == 1
    assert kernel.min() >= 0
    assert abs(float(kernel.sum(dtype=np.float64)) - 1.0) < 1e-5
    # No empty margins: the two outermost rows/columns on every side carry weight.
    assert kernel[:2].sum() > 0 and kernel[-2:].sum() > 0 and kernel[:, :2].sum() > 0 and kernel[:, -2:].sum() > 0


@pytest.mark.parametrize(("major", "minor", "angle"), [(3.0, 1.2, 30.0), (2.0, 2.0, 0.0), (4.0, 1.0, 100.0), (1.5, 0.8, -45.0)])
def test_gaussian_covariance_matches_axes_and_angle(major, minor, angle):
    mean, cov = moments(gaussian_kernel(major, minor, angle))
    theta = math.radians(angle)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    # integrating over the pixel square adds its variance 1/12 per axis (Sheppard's correction)
    expected = rot @ np.diag([major**2, minor**2]) @ rot.T + np.eye(2) / 12
    np.testing.assert_allclose(mean, 0.0, atol=1e-5)
    np.testing.assert_allclose(cov, expected, atol=5e-3 * major**2)
    if major != minor:
        _, vectors = np.linalg.eigh(cov)
        direction = math.degrees(math.atan2(vectors[1, 1], vectors[0, 1]))
        assert abs((direction - angle + 90.0) % 180.0 - 90.0) < 0.5


def test_gaussian_isotropic_when_axes_equal_and_size_adapts():
    iso = gaussian_kernel(2.0, 2.0, 37.0)
    np.testing.assert_allclose(iso, gaussian_kernel(2.0, 2.0, 0.0), atol=1e-7)
    np.testing.assert_allclose(iso, iso.T, atol=1e-7)
    # The kernel is the bounding box of the 4-sigma ellipse: 4 * 1 px rows, 4 * 4 px columns each side.
    assert gaussian_kernel(4.0, 1.0, 0.0).shape == (9, 33)
    assert gaussian_kernel(4.0, 1.0, 90.0).shape == (33, 9)


@pytest.mark.parametrize("radius", [2.5, 5.0, 7.0])
def test_disk_symmetric_with_area_and_support(radius):
    k = disk_kernel(radius)
    assert np.array_equal(k, k[::-1]) and np.array_equal(k, k[:, ::-1]) and np.array_equal(k, k.T)
    # Fully covered pixels hold the maximum weight 1 / (disk area in px^2).
    assert 1.0 / k.max() == pytest.approx(math.pi * radius**2, rel=0.01)
    n = k.shape[0] // 2
    y, x = np.abs(np.mgrid[-n:n + 1, -n:n + 1])
    nearest = np.hypot(np.maximum(x - 0.5, 0), np.maximum(y - 0.5, 0))
    farthest = np.hypot(x + 0.5, y + 0.5)
    assert (k[nearest >= radius] == 0).all()
    assert (k[farthest <= radius] == k.max()).all()


@pytest.mark.parametrize(("radius", "rtol"), [(2.5, 0.03), (3.3, 0.03), (5.0, 0.005), (7.0, 0.005), (9.5, 0.005)])
def test_disk_variance(radius, rtol):
    # Disk variance per axis is r^2 / 4; coverage adds the pixel square's 1/12. Sampling that at pixel
    # centres departs from it for small disks (as the docstring states): within 3% from r = 2.5, 0.5% from r = 5.
    mean, cov = moments(disk_kernel(radius))
    np.testing.assert_allclose(mean, 0.0, atol=1e-6)
    np.testing.assert_allclose(cov, np.eye(2) * (radius**2 / 4 + 1 / 12), rtol=rtol, atol=1e-6)


def exact_disk_coverage(radius: float, n: int) -> np.ndarray:
    """Area of each pixel square [j - 1/2, j + 1/2] x [i - 1/2, i + 1/2] inside the disk, for |i|, |j| <= n:
    the integral over x of the chord length inside the square, by adaptive quadrature split at the kinks."""
    def chord(x: float, y0: float, y1: float) -> float:
        half = math.sqrt(max(radius * radius - x * x, 0.0))
        return max(0.0, min(y1, half) - max(y0, -half))

    cover = np.zeros((2 * n + 1, 2 * n + 1))
    for i in range(-n, n + 1):
        for j in range(-n, n + 1):
            y0, y1, x0, x1 = i - 0.5, i + 0.5, j - 0.5, j + 0.5
            kinks = [radius, -radius] + [s * math.sqrt(radius**2 - y * y) for y in (y0, y1) if abs(y) < radius for s in (1, -1)]
            inside = sorted(k for k in kinks if x0 < k < x1)
            cover[i + n, j + n] = scipy.integrate.quad(chord, x0, x1, args=(y0, y1), points=inside or None,
                                                       epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    return cover


@pytest.mark.parametrize("radius", [0.5625, 0.75, 0.94, 1.3, 2.5])
def test_disk_weights_are_exact_pixel_coverage(radius):
    k = disk_kernel(radius)
    n = k.shape[0] // 2
    assert n == math.ceil(radius + 0.5) - 1  # the outermost pixel the disk reaches
    cover = exact_disk_coverage(radius, n)
    assert cover.sum() == pytest.approx(math.pi * radius**2, rel=1e-9)
    np.testing.assert_allclose(k, cover / cover.sum(), atol=2e-7)
    assert np.array_equal(k, k[::-1]) and np.array_equal(k, k[:, ::-1]) and np.array_equal(k, k.T)


def test_sub_pixel_disk_spreads_its_exact_share_onto_the_neighbours():
    # Severity 1 on a 192-px image: r = 1.5 * 192 / 512. A 9x9 midpoint rule gave the 4-neighbours
    # 0.0123 each (-44%) and a variance of 0.025 px^2; the exact overlap is 0.0218 and 0.044 px^2.
    k = disk_kernel(0.5625)
    cover = exact_disk_coverage(0.5625, 1)
    neighbour = cover[1, 2] / cover.sum()
    assert neighbour == pytest.approx(0.0218, abs=1e-4)
    assert k.shape == (3, 3) and k[1, 2] == k[0, 1] == pytest.approx(neighbour, abs=1e-7)
    assert k[0, 0] == 0  # the corner pixel starts at distance 0.707 > r
    assert moments(k)[1][0, 0] == pytest.approx(0.0437, abs=5e-4)


def test_disk_smaller_than_a_pixel_is_a_delta():
    assert np.array_equal(disk_kernel(0.2), np.ones((1, 1), np.float32))
    assert np.array_equal(disk_kernel(0.5), np.ones((1, 1), np.float32))  # the centre pixel holds the whole disk


def supersampled_gaussian(major: float, minor: float, angle: float, shape: tuple[int, int], samples: int) -> np.ndarray:
    """Midpoint sums of the Gaussian density over each pixel square, ``samples``^2 points per pixel."""
    theta = math.radians(angle)
    c, s = math.cos(theta), math.sin(theta)
    ry, rx = shape[0] // 2, shape[1] // 2
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    x = (np.arange(-rx, rx + 1)[:, None] + offsets).ravel()[None, :]
    y = (np.arange(-ry, ry + 1)[:, None] + offsets).ravel()[:, None]
    density = np.exp(-0.5 * (((x * c + y * s) / major) ** 2 + ((y * c - x * s) / minor) ** 2))
    return density.reshape(2 * ry + 1, samples, 2 * rx + 1, samples).sum(axis=(1, 3)) / (2 * math.pi * major * minor * samples**2)


@pytest.mark.parametrize(("major", "minor", "angle"), [(1.0, 0.4, 45.0), (0.6, 0.3, 110.0), (0.3, 0.2, 30.0), (0.3, 0.3, 0.0)])
def test_gaussian_weights_are_pixel_integrals(major, minor, angle):
    k = gaussian_kernel(major, minor, angle)
    # the midpoint rule's error falls as 1/samples^2: extrapolate from 100 and 200 samples per side
    coarse, fine = (supersampled_gaussian(major, minor, angle, k.shape, n) for n in (100, 200))
    reference = (4 * fine - coarse) / 3
    np.testing.assert_allclose(k, reference / reference.sum(), atol=3e-7)


def integrated_variance(sigma: float) -> float:
    """E[round(X)^2], X ~ N(0, sigma^2): the per-axis variance of a pixel-integrated Gaussian (by math.erf)."""
    def cdf(t: float) -> float:
        return 0.5 * (1.0 + math.erf(t / (sigma * math.sqrt(2.0))))

    return sum(k * k * (cdf(k + 0.5) - cdf(k - 0.5)) for k in range(-60, 61))


@pytest.mark.parametrize("sigma", [0.2, 0.3, 0.5, 0.6, 0.8, 1.5, 3.0])
def test_gaussian_discrete_variance(sigma):
    _, cov = moments(gaussian_kernel(sigma, sigma, 0.0))
    assert cov[0, 0] == pytest.approx(cov[1, 1], abs=1e-9)
    assert cov[0, 0] == pytest.approx(integrated_variance(sigma), rel=2e-3, abs=2e-6)  # 2e-3: the 4-sigma truncation
    if sigma >= 0.6:  # as the docstring states: sigma^2 + 1/12 within 0.3% from 0.6 px
        assert cov[0, 0] == pytest.approx(sigma**2 + 1 / 12, rel=3e-3)


def test_sub_pixel_gaussian_is_not_a_delta():
    # Severity 1 on a 192-px image: sigma 0.3 px. Sampling at pixel centres gave a variance of 0.007 px^2
    # (centre weight 0.985); the pixel integral keeps 0.096 px^2, about sigma^2, and sigma^2 + 1/12 is 0.173.
    k = gaussian_kernel(0.3, 0.3, 0.0)
    var = moments(k)[1][0, 0]
    assert var == pytest.approx(0.0956, abs=5e-4) and var > 0.3**2
    assert k[2, 2] == pytest.approx(0.818, abs=1e-3)


@pytest.mark.parametrize(("seed", "anxiety"), [(0, 0.0), (1, 0.3), (2, 1.0), (3, 0.7)])
def test_trajectory_has_unit_path_length_from_the_origin(seed, anxiety):
    path = shake_trajectory(seed, anxiety)
    assert path[0] == 0
    assert np.abs(np.diff(path * 25.0)).sum() == pytest.approx(25.0, rel=1e-9)
    if anxiety == 0:
        assert abs(path[-1]) == pytest.approx(1.0, rel=1e-9)  # uniform linear motion


def test_anxiety_bends_the_path():
    end_to_end = [abs(shake_trajectory(seed, 1.0)[-1]) for seed in range(20)]
    assert np.median(end_to_end) < 0.9


@pytest.mark.parametrize("exposure", [0.5, 1.0])
def test_straight_motion_psf_is_a_centred_segment(exposure):
    length, seed = 24.0, 4
    k = motion_kernel(length, 0.0, exposure, seed)
    mean, cov = moments(k)
    np.testing.assert_allclose(mean, 0.0, atol=1e-5)
    values, vectors = np.linalg.eigh(cov)
    seen = exposure * length
    # A uniform segment of length L has variance L^2 / 12; bilinear splatting adds at most 1/4 px^2.
    assert seen**2 / 12 <= values[1] <= seen**2 / 12 + 0.25
    assert values[0] <= 0.25
    step = shake_trajectory(seed, 0.0)[1]
    assert abs(vectors[0, 1] * step.real + vectors[1, 1] * step.imag) / abs(step) == pytest.approx(1.0, abs=1e-6)


def test_motion_psf_scales_with_length():
    _, cov_long = moments(motion_kernel(40.0, 0.8, 1.0, 9))
    _, cov_short = moments(motion_kernel(20.0, 0.8, 1.0, 9))
    np.testing.assert_allclose(cov_long, 4.0 * cov_short, atol=0.03 * np.abs(cov_long).max())


def test_splat_is_bilinear():
    k = splat_bilinear(np.array([[2.25, 1.5]]), (5, 5))
    expected = np.zeros((5, 5), np.float32)
    expected[1, 2], expected[1, 3], expected[2, 2], expected[2, 3] = 0.375, 0.125, 0.375, 0.125
    np.testing.assert_allclose(k, expected, atol=1e-7)
    corner = splat_bilinear(np.array([[4.0, 4.0]]), (5, 5))
    assert corner[4, 4] == 1 and corner.sum() == 1
    points = np.random.default_rng(0).uniform(0.0, 6.0, size=(50, 2))
    mean, _ = moments(splat_bilinear(points, (7, 7)))
    np.testing.assert_allclose(mean, points.mean(axis=0) - 3.0, atol=1e-5)
    with pytest.raises(ValueError, match="inside"):
        splat_bilinear(np.array([[4.5, 1.0]]), (5, 5))


def _asymmetric_kernel(side: int) -> np.ndarray:
    k = np.zeros((side, side), np.float32)
    c = side // 2
    k[c, c], k[c - 2, c + 2], k[c + 2, c + 1] = 0.5, 0.3, 0.2
    return k


@pytest.mark.parametrize("side", [5, 13])  # direct filter2D path and FFT path
def test_impulse_response_is_the_psf_not_its_mirror(side):
    assert (side * side <= DIRECT_MAX_TAPS) == (side == 5)
    image = np.zeros((40, 48, 3), np.uint8)
    image[20, 24] = 255
    kernel = _asymmetric_kernel(side)
    out = convolve_linear(image, kernel)
    placed = np.zeros((40, 48), np.float32)
    c = side // 2
    placed[20 - c:20 + c + 1, 24 - c:24 + c + 1] = kernel
    expected = to_srgb8(np.repeat(placed[:, :, None], 3, axis=2))
    assert np.abs(out.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("side", [5, 15])
def test_convolution_matches_scipy_reference(side, small_image):
    rng = np.random.default_rng(side)
    kernel = rng.random((side, side)).astype(np.float32)
    kernel /= kernel.sum()
    linear = to_linear(small_image)
    # scipy's "mirror" mode is OpenCV's BORDER_REFLECT_101 (reflection about the edge pixel).
    ref = np.stack([scipy.ndimage.convolve(linear[:, :, ch], kernel, mode="mirror") for ch in range(3)], axis=2)
    diff = np.abs(convolve_linear(small_image, kernel).astype(int) - to_srgb8(ref))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("level", [77, 200])
def test_constant_image_unchanged(cls, level):
    flat = np.full((48, 64, 3), level, np.uint8)
    for deg in (cls(severity=1), cls(severity=5), cls(severity=None, track="ood")):
        out, _ = deg(flat, np.random.default_rng(0))
        assert np.array_equal(out, flat)


@pytest.mark.parametrize(("cls", "params"), [
    (DefocusBlur, {"radius": 0.5625}), (DefocusBlur, {"radius": 0.94}), (DefocusBlur, {"radius": 11.0}),
    (GaussianBlur, {"sigma_major": 0.3, "sigma_minor": 0.3, "angle_deg": 0.0}),
    (GaussianBlur, {"sigma_major": 0.5, "sigma_minor": 0.2, "angle_deg": 33.0}),
    (GaussianBlur, {"sigma_major": 3.0, "sigma_minor": 1.0, "angle_deg": 120.0}),
])
def test_sub_pixel_and_large_psfs_keep_flat_colours_flat(cls, params):
    flat = np.empty((48, 64, 3), np.uint8)
    flat[:] = (3, 77, 254)
    assert np.array_equal(cls.replay(flat, params), flat)


def test_edge_blurred_in_linear_light_crosses_half_intensity_at_the_edge():
    edge = np.zeros((64, 64, 3), np.uint8)
    edge[:, 32:] = 255  # the edge lies between columns 31 and 32, at x = 31.5
    out = GaussianBlur.apply(edge, sigma_major=3.0, sigma_minor=3.0, angle_deg=0.0)
    lin = to_linear(out)[32, :, 1].astype(np.float64)
    crossing = 31 + (0.5 - lin[31]) / (lin[32] - lin[31])
    assert crossing == pytest.approx(31.5, abs=0.05)
    # Blurring the sRGB values instead puts the 50 % sRGB level (much darker light) at the edge.
    naive = cv2.GaussianBlur(edge.astype(np.float32), (25, 25), 3.0, borderType=cv2.BORDER_REFLECT_101)[32, :, 1]
    assert naive[31] + naive[32] == pytest.approx(255.0, abs=0.5)
    assert int(out[32, 31, 1]) + int(out[32, 32, 1]) > 255 + 60


@pytest.mark.parametrize("cls", CLASSES)
def test_spatial_parameters_scale_with_the_short_side(cls, astronaut):
    half = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    _, full_params = cls(severity=3)(astronaut, np.random.default_rng(5))
    _, half_params = cls(severity=3)(half, np.random.default_rng(5))
    key = {MotionBlur: "length", DefocusBlur: "radius", GaussianBlur: "sigma_major"}[cls]
    assert key in cls.SPATIAL
    assert full_params[key] == cls.LEVELS[key][2]
    assert half_params[key] == full_params[key] / 2
    if cls is GaussianBlur:
        assert half_params["sigma_minor"] == pytest.approx(full_params["sigma_minor"] / 2)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(("severity", "track"), [(4, "train"), (None, "train"), (None, "ood")])
def test_replay_from_json_params_is_exact(cls, severity, track, small_image):
    out, params = cls(severity=severity, track=track)(small_image, np.random.default_rng(21))
    assert np.array_equal(cls.replay(small_image, json.loads(json.dumps(params))), out)
    assert not np.array_equal(out, small_image)


@pytest.mark.parametrize("cls", CLASSES)
def test_neutral_returns_a_copy_of_the_input(cls, small_image):
    out, params = cls(severity=0)(small_image, np.random.default_rng(0))
    assert np.array_equal(out, small_image) and out is not small_image
    assert all(params[key] == 0 for key in cls.LEVELS)


def test_draws_stay_in_their_ranges(astronaut):
    for seed in range(30):
        rng = np.random.default_rng(seed)
        _, motion = MotionBlur(severity=None)(astronaut, rng)
        assert 4 <= motion["length"] < 35 and 0 <= motion["anxiety"] < 1 and 0.5 <= motion["exposure"] < 1
        gauss = GaussianBlur(severity=None, track="ood").sample(rng, astronaut)
        assert 4 <= gauss["sigma_major"] < 6 and 0.4 <= gauss["sigma_minor"] / gauss["sigma_major"] < 1
        assert 0 <= gauss["angle_deg"] < 180
        assert 7 <= DefocusBlur(severity=None, track="ood").sample(rng, astronaut)["radius"] < 12


VALID = {
    MotionBlur: {"length": 10.0, "anxiety": 0.5, "exposure": 1.0, "seed": 1},
    DefocusBlur: {"radius": 3.0},
    GaussianBlur: {"sigma_major": 2.0, "sigma_minor": 1.0, "angle_deg": 0.0},
}
BAD_PARAMS = [
    (GaussianBlur, {"sigma_major": -1.0, "sigma_minor": 0.0}, "sigma_major"),
    (GaussianBlur, {"sigma_minor": -0.5}, "sigma_minor"),
    (GaussianBlur, {"sigma_minor": 3.0}, "sigma_minor"),
    (GaussianBlur, {"sigma_minor": 0.0}, "sigma_minor"),
    (GaussianBlur, {"sigma_minor": 1e-300}, "sigma_minor"),  # below MIN_SIGMA: float64 underflow
    (GaussianBlur, {"sigma_major": 0.0, "sigma_minor": 0.5}, "sigma_minor"),
    (GaussianBlur, {"angle_deg": 200.0}, "angle_deg"),
    (MotionBlur, {"length": -3.0}, "length"),
    (MotionBlur, {"anxiety": 1.5}, "anxiety"),
    (MotionBlur, {"exposure": 0.0}, "exposure"),
    (MotionBlur, {"exposure": 1.2}, "exposure"),
    (MotionBlur, {"seed": -1}, "seed"),
    (MotionBlur, {"seed": 2**63}, "seed"),
    (MotionBlur, {"seed": 3.0}, "seed"),
    (DefocusBlur, {"radius": -1.0}, "radius"),
]
WRONG_TYPES = ["abc", None, [1.0], {"a": 1}, True, float("nan"), float("inf"), -float("inf")]


@pytest.mark.parametrize(("cls", "change", "key"), BAD_PARAMS)
def test_bad_params_raise_naming_the_parameter(cls, change, key, small_image):
    with pytest.raises(ParameterError, match=f"{cls.name}: parameter {key}="):
        cls.replay(small_image, {**VALID[cls], **change})


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
def test_every_parameter_refuses_wrong_types(cls, value, small_image):
    for key in VALID[cls]:
        with pytest.raises(ParameterError, match=f"{cls.name}: parameter {key}="):
            cls.replay(small_image, {**VALID[cls], key: value})


@pytest.mark.parametrize(("cls", "key", "fraction"), [
    (MotionBlur, "length", MAX_REACH), (DefocusBlur, "radius", MAX_REACH), (GaussianBlur, "sigma_major", MAX_REACH / 4),
])
def test_spatial_parameters_are_bounded_by_the_shorter_side(cls, key, fraction, small_image):
    short = min(small_image.shape[:2])
    largest = fraction * short
    params = {**VALID[cls], key: largest, **({"sigma_minor": largest, "angle_deg": 45.0} if cls is GaussianBlur else {})}
    assert cls.replay(small_image, params).shape == small_image.shape
    with pytest.raises(ParameterError, match=rf"parameter {key}=\S+ is outside the valid range \[0.0, {largest}\]"):
        cls.replay(small_image, {**params, key: largest * 1.01})
    # at the bound the PSF reaches MAX_REACH * S from its centre: at most S + 3 px on a side
    kernels = {MotionBlur: [motion_kernel(largest, anxiety, 1.0, seed) for anxiety in (0.0, 1.0) for seed in range(5)],
               DefocusBlur: [disk_kernel(largest)], GaussianBlur: [gaussian_kernel(largest, largest, 45.0)]}[cls]
    assert max(max(k.shape) for k in kernels) <= 2 * MAX_REACH * short + 3


@pytest.mark.parametrize(("cls", "change", "key"), [
    (DefocusBlur, {"radius": 1e6}, "radius"),
    (MotionBlur, {"length": 1e7}, "length"),
    (GaussianBlur, {"sigma_major": 1e6, "sigma_minor": 1e6}, "sigma_major"),
    (DefocusBlur, {"radius": "abc"}, "radius"),
])
def test_huge_or_wrong_values_fail_fast_before_allocating(cls, change, key, astronaut):
    params = {**VALID[cls], **change}
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ParameterError, match=f"{cls.name}: parameter {key}=") as info:
            cls.replay(astronaut, params)
        elapsed, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "valid range" in str(info.value) or "must be a number" in str(info.value)
    assert elapsed < 0.05 and peak < 100_000


DISPATCH_CASES = [  # float32 filter2D or numpy's complex64 multiply moved a pixel of these on some CPU settings
    (DefocusBlur, {"radius": 1.5}), (DefocusBlur, {"radius": 2.5}),
    (GaussianBlur, {"sigma_major": 0.8, "sigma_minor": 0.6, "angle_deg": 30.0}),
    (MotionBlur, {"length": 4.0, "anxiety": 0.5, "exposure": 1.0, "seed": 3}),
    (DefocusBlur, {"radius": 7.0}),  # FFT path from here on
    (GaussianBlur, {"sigma_major": 4.0, "sigma_minor": 3.0, "angle_deg": 20.0}),
    (MotionBlur, {"length": 35.0, "anxiety": 0.5, "exposure": 1.0, "seed": 3}),
]


def test_output_does_not_depend_on_opencv_optimisations(astronaut):
    # float32 filter2D changed 1-6 pixels of the first four with cv2.setUseOptimized(False)
    optimised = [cls.replay(astronaut, params) for cls, params in DISPATCH_CASES]
    cv2.setUseOptimized(False)
    try:
        plain = [cls.replay(astronaut, params) for cls, params in DISPATCH_CASES]
    finally:
        cv2.setUseOptimized(True)
    for (cls, params), a, b in zip(DISPATCH_CASES, optimised, plain, strict=True):
        assert np.array_equal(a, b), (cls.name, params)


def test_output_does_not_depend_on_simd_dispatch(astronaut):
    """The same blurs in a child process with numpy's and OpenCV's dispatched SIMD code (and FMA) off."""
    cases = [(cls.name, params) for cls, params in DISPATCH_CASES]
    child = ("import hashlib, json, sys, skimage.data\n"
             "from uirbench.degradations import create\n"
             "image = skimage.data.astronaut()\n"
             "print(json.dumps([hashlib.sha256(type(create(n)).replay(image, p).tobytes()).hexdigest()"
             " for n, p in json.loads(sys.argv[1])]))\n")
    env = simd_disabled_env()
    run = subprocess.run([sys.executable, "-c", child, json.dumps(cases)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    here = [hashlib.sha256(cls.replay(astronaut, params).tobytes()).hexdigest() for cls, params in DISPATCH_CASES]
    assert json.loads(run.stdout) == here


def test_family_registration():
    assert DEGRADATIONS.get("blur") is MotionBlur
    assert DEGRADATIONS.spec("blur") == DegradationSpec(family="blur", alias_of="motion-blur")
    for cls in CLASSES:
        assert DEGRADATIONS.get(cls.name) is cls and cls.stage == "optics"
        assert DEGRADATIONS.spec(cls.name).family == "blur"
