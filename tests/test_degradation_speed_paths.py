"""The degradations' fast paths equal their plain formulations bit for bit.

Speed work may reorder memory (planes by Bayer site, channels split by OpenCV), fold exact powers
of two into earlier steps, or let OpenCV round; none of it may move a pixel (the golden pins and the
dataset fingerprints depend on it). Each test writes the plain formulation out and compares bytes,
on even and odd sizes, contiguous and strided inputs.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.fft

from uirbench.degradations import noise
from uirbench.degradations.base import (
    add_round_uint8,
    field_rng,
    round_to_uint8,
    srgb8_from_bins,
    to_linear,
    to_srgb8,
)
from uirbench.degradations.blur import DIRECT_MAX_TAPS, convolve_linear, disk_kernel
from uirbench.degradations.jpeg import jpeg_round_trip
from uirbench.degradations.lowlight import LowLightCompat
from uirbench.registry import DEGRADATIONS

SHAPES = [(96, 128), (37, 53), (16, 17), (1, 1), (2, 3)]


def crop(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.ascontiguousarray(image[:shape[0], :shape[1]])


# -- camera noise: the pipeline written on the interleaved mosaic, one plain step after another ---
def plain_demosaic(raw: np.ndarray) -> np.ndarray:
    """Bilinear RGGB demosaic on the interleaved HxW mosaic (reflect-101 borders) -> 3xHxW."""
    h, w = raw.shape
    p = np.pad(raw, 1, mode="reflect")

    def at(dy, dx, oy, ox):
        return p[1 + dy + oy:1 + dy + oy + h:2, 1 + dx + ox:1 + dx + ox + w:2]

    def horiz(dy, dx):
        return (at(dy, dx, 0, -1) + at(dy, dx, 0, 1)) * np.float32(0.5)

    def vert(dy, dx):
        return (at(dy, dx, -1, 0) + at(dy, dx, 1, 0)) * np.float32(0.5)

    def cross(dy, dx):
        return (horiz(dy, dx) + vert(dy, dx)) * np.float32(0.5)

    def diag(dy, dx):
        return ((at(dy, dx, -1, -1) + at(dy, dx, -1, 1)) + (at(dy, dx, 1, -1) + at(dy, dx, 1, 1))) * np.float32(0.25)

    out = np.empty((3, h, w), np.float32)
    for dy, dx, planes in ((0, 0, (None, cross, diag)), (0, 1, (horiz, None, vert)),
                           (1, 0, (vert, None, horiz)), (1, 1, (diag, cross, None))):
        for c, interpolate in enumerate(planes):
            out[c, dy::2, dx::2] = raw[dy::2, dx::2] if interpolate is None else interpolate(dy, dx)
    return out


def plain_mix(x, row):
    return x[0] * np.float32(row[0]) + x[1] * np.float32(row[1]) + x[2] * np.float32(row[2])


def plain_process(raw, to_rgb, h, w):
    rgb = plain_demosaic(raw)[:, :h, :w]
    out = np.empty((3, h, w), np.float32)
    for c in range(3):
        v = np.clip(plain_mix(rgb, to_rgb[c]), 0.0, 1.0) * np.float32(1 << 16)
        out[c] = noise._PROCESS_DN[np.minimum(v, (1 << 16) - 1).astype(np.uint16)]
    return out


def plain_camera_noise(image, *, shot, read_var, rgb2cam, red_gain, blue_gain, rgb_gain, seed):
    h, w = image.shape[:2]
    gains = [red_gain * rgb_gain, rgb_gain, blue_gain * rgb_gain]
    to_cam = [[rgb2cam[i][j] / gains[i] for j in range(3)] for i in range(3)]
    padded = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="reflect")
    raw = np.empty(padded.shape[:2], np.float32)
    for c, dy, dx in noise._RGGB:
        site = padded[dy::2, dx::2]
        raw[dy::2, dx::2] = plain_mix([noise._UNPROCESS[site[..., k]] for k in range(3)], to_cam[c])
    raw = np.clip(raw, 0.0, 1.0)
    noisy = raw + np.sqrt(raw * np.float32(shot) + np.float32(read_var)) * field_rng(seed).standard_normal(raw.shape, dtype=np.float32)
    inv = noise._inverse3(rgb2cam)
    to_rgb = [[inv[i][j] * gains[j] for j in range(3)] for i in range(3)]
    diff = plain_process(noisy, to_rgb, h, w) - plain_process(raw, to_rgb, h, w)
    return round_to_uint8(diff.transpose(1, 2, 0) + image)


@pytest.mark.parametrize("shape", SHAPES)
def test_camera_noise_equals_the_interleaved_pipeline(small_image, shape):
    image = crop(small_image, shape)
    rng = np.random.default_rng(sum(shape))
    for severity in (1, 3, 5, None):
        params = DEGRADATIONS.get("camera-noise")(severity=severity).sample(rng, small_image)
        assert np.array_equal(noise.CameraNoise.apply(image, **params), plain_camera_noise(image, **params))


def test_camera_noise_takes_strided_input(small_image):
    params = DEGRADATIONS.get("camera-noise")(severity=4).sample(np.random.default_rng(1), small_image)
    view = small_image[::-1, 1::2]
    assert np.array_equal(noise.CameraNoise.apply(view, **params), plain_camera_noise(np.ascontiguousarray(view), **params))


# -- rounding and encoding helpers ----------------------------------------------------------------
def test_add_round_uint8_is_numpys_float32_sum_rounded_half_to_even():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    values = (rng.standard_normal(image.shape) * 40).astype(np.float32)
    # sums that float32 rounds onto a half (x + 0.49999997 -> x + 0.5 for x >= 2) and exact halves
    values.flat[:300] = np.float32(0.49999997)
    values.flat[300:600] = np.float32(-0.49999997)
    values.flat[600:900] = np.float32(0.5)
    values.flat[900:1000] = np.float32(-300.0)
    assert np.array_equal(add_round_uint8(values, image), round_to_uint8(values + image))
    assert np.array_equal(add_round_uint8(values[::2, ::-1], image[::2, ::-1]), round_to_uint8(values[::2, ::-1] + image[::2, ::-1]))


def test_srgb8_from_bins_is_to_srgb8_of_the_unscaled_value():
    rng = np.random.default_rng(1)
    linear = rng.uniform(-0.1, 1.1, (200, 300)).astype(np.float32)
    linear.flat[:256] = to_linear(np.arange(256, dtype=np.uint8)[None, :]).ravel()  # every level, exactly
    assert np.array_equal(srgb8_from_bins(linear * np.float32(1 << 16)), to_srgb8(linear))


def test_fft_convolution_with_prescaled_kernel_equals_the_unscaled_one(small_image):
    """The FFT path folds 2^16 into the kernel spectrum; the plain path scales the result instead."""
    kernel = disk_kernel(6.0)
    assert kernel.size > DIRECT_MAX_TAPS
    for shape in [(96, 128), (37, 53)]:
        image = crop(small_image, shape)
        (h, w), (kh, kw) = image.shape[:2], kernel.shape
        size = (scipy.fft.next_fast_len(h + kh - 1, real=True), scipy.fft.next_fast_len(w + kw - 1, real=True))
        spectrum_k = scipy.fft.fft(scipy.fft.rfft(kernel, n=size[1], axis=1), n=size[0], axis=0)
        planes = []
        for c in range(3):
            padded = to_linear(cv2.copyMakeBorder(image[:, :, c], kh // 2, kh // 2 + size[0] - (h + kh - 1), kw // 2,
                                                  kw // 2 + size[1] - (w + kw - 1), cv2.BORDER_REFLECT_101))
            s = scipy.fft.rfft2(padded)
            re = s.real * spectrum_k.real - s.imag * spectrum_k.imag
            im = s.real * spectrum_k.imag + s.imag * spectrum_k.real
            blurred = scipy.fft.irfft2(re + 1j * im, s=size)[kh - 1:kh - 1 + h, kw - 1:kw - 1 + w]
            planes.append(to_srgb8(blurred))
        assert np.array_equal(convolve_linear(image, kernel), np.stack(planes, axis=2))


def test_direct_convolution_takes_strided_input(small_image):
    kernel = disk_kernel(1.5)
    assert kernel.size <= DIRECT_MAX_TAPS
    view = small_image[::-1, ::2]
    assert np.array_equal(convolve_linear(view, kernel), convolve_linear(np.ascontiguousarray(view), kernel))


def test_jpeg_decodes_straight_to_the_rgb_of_a_bgr_decode(small_image):
    params = [cv2.IMWRITE_JPEG_QUALITY, 40, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]
    for shape in [(96, 128), (37, 53)]:
        image = crop(small_image, shape)
        data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)[1]
        assert np.array_equal(jpeg_round_trip(image, 40), cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))


@pytest.mark.parametrize("sigma", [0.0, 4.0])
def test_lowlight_compat_equals_its_numpy_formulation(small_image, sigma):
    gamma, alpha, beta, seed = 2.7, 0.93, 0.6, 5
    curve = (255.0 * beta * (alpha * np.arange(256) / 255.0) ** gamma).astype(np.float32)
    dark = curve[small_image]
    if sigma:
        dark = dark + field_rng(seed).standard_normal(small_image.shape, dtype=np.float32) * np.float32(sigma)
    got = LowLightCompat.apply(small_image, gamma=gamma, sigma=sigma, alpha=alpha, beta=beta, seed=seed)
    assert np.array_equal(got, round_to_uint8(dark))


def test_param_names_are_cached_but_not_shared():
    cls = DEGRADATIONS.get("awgn")
    names = cls.param_names()
    names.append("oops")
    assert cls.param_names() == ["sigma", "seed"]
