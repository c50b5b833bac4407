"""Metrics: calibration against independent references (scikit-image, pyiqa, closed forms),
conventions, per-image scoring, FID/KID statistics and the offline-weights errors."""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field

import cv2
import numpy as np
import pytest
import scipy.linalg
import skimage.data
import skimage.metrics as skm
import torch
from PIL import Image

from uirbench.errors import UserError
from uirbench.metrics import (
    FID,
    KID,
    LPIPS,
    PSNR,
    PSNR_CAP_DB,
    SSIM,
    InceptionFeatures,
    MissingWeightsError,
    compute_per_image,
    fid_from_features,
    frechet_distance,
    kid,
    metric_spec,
)
from uirbench.metrics.weights import ALEXNET, LPIPS_ALEX_LINEAR, require
from uirbench.registry import METRICS, MetricSpec

NAMES = ("psnr", "ssim", "lpips", "fid", "kid")
YIQ_TO_BT601_DB = 20 * math.log10(255 / 219)


def tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def awgn(image: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noisy = image + np.random.default_rng(seed).normal(0, sigma, image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def bt601_y(image: np.ndarray) -> np.ndarray:
    """Independent float64 reference: MATLAB rgb2ycbcr luma of uint8 RGB, in [0, 1] units."""
    rgb = image.astype(np.float64) / 255
    return (16 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255


def skimage_ssim(a: np.ndarray, b: np.ndarray, channel_axis: int | None) -> float:
    return skm.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=1.0, channel_axis=channel_axis)


PAIRS = {
    f"{name}-{kind}": (name, kind)
    for name in ("astronaut", "coffee", "chelsea")
    for kind in ("awgn", "blur", "jpeg")
}


@pytest.fixture(scope="module", params=sorted(PAIRS))
def real_pair(request) -> tuple[np.ndarray, np.ndarray]:
    name, kind = PAIRS[request.param]
    clean = getattr(skimage.data, name)()
    degraded = {"awgn": lambda: awgn(clean, 10, 7), "blur": lambda: cv2.GaussianBlur(clean, (0, 0), 2.0),
                "jpeg": lambda: jpeg(clean, 30)}[kind]()
    return degraded, clean


def test_registered_with_metadata():
    for name in NAMES:
        assert isinstance(METRICS.spec(name), MetricSpec) and METRICS.get(name).name == name
    assert [METRICS.spec(n).per_image for n in NAMES] == [True, True, True, False, False]
    assert [METRICS.spec(n).higher_is_better for n in NAMES] == [True, True, False, False, False]
    assert [METRICS.spec(n).needs_weights for n in NAMES] == [False, False, True, True, True]


def test_psnr_ssim_match_skimage_rgb_and_y(real_pair):
    degraded, clean = real_pair
    x, y = tensor(degraded), tensor(clean)
    a, b = degraded / 255.0, clean / 255.0
    assert PSNR()(x, y).item() == pytest.approx(skm.peak_signal_noise_ratio(b, a, data_range=1.0), abs=1e-3)
    assert SSIM()(x, y).item() == pytest.approx(skimage_ssim(a, b, channel_axis=2), abs=1e-4)
    ya, yb = bt601_y(degraded), bt601_y(clean)
    assert PSNR("y")(x, y).item() == pytest.approx(skm.peak_signal_noise_ratio(yb, ya, data_range=1.0), abs=1e-3)
    assert SSIM("y")(x, y).item() == pytest.approx(skimage_ssim(ya, yb, channel_axis=None), abs=1e-4)


def test_crop_border_matches_cropped_reference(astronaut):
    degraded = jpeg(astronaut, 20)
    x, y = tensor(degraded), tensor(astronaut)
    a, b = degraded[4:-4, 4:-4] / 255.0, astronaut[4:-4, 4:-4] / 255.0
    assert PSNR(crop_border=4)(x, y).item() == pytest.approx(skm.peak_signal_noise_ratio(b, a, data_range=1.0), abs=1e-3)
    assert SSIM(crop_border=4)(x, y).item() == pytest.approx(skimage_ssim(a, b, channel_axis=2), abs=1e-4)
    assert PSNR(crop_border=4)(x, y).item() != pytest.approx(PSNR()(x, y).item(), abs=1e-3)


def test_reference_table_orientation(astronaut):
    """REFERENCE.md section 4 (astronaut + AWGN sigma 25, uint8); its noise draw is unknown, so the
    tolerance covers any realisation (different seeds move these by < 0.01 dB / 0.002)."""
    x, y = tensor(awgn(astronaut, 25, 0)), tensor(astronaut)
    assert PSNR()(x, y).item() == pytest.approx(20.8628, abs=0.05)
    assert PSNR("y")(x, y).item() == pytest.approx(25.5043, abs=0.05)
    assert SSIM()(x, y).item() == pytest.approx(0.33527, abs=0.005)
    assert SSIM("y")(x, y).item() == pytest.approx(0.52494, abs=0.005)


def test_y_psnr_matches_pyiqa_ycbcr_and_yiq_offset(small_image):
    pyiqa = pytest.importorskip("pyiqa")
    x, y = tensor(awgn(small_image, 15, 3)), tensor(small_image)
    ours = PSNR("y")(x, y).item()
    assert ours == pytest.approx(pyiqa.create_metric("psnr", test_y_channel=True, color_space="ycbcr", device="cpu")(x, y).item(),
                                 abs=1e-3)
    # pyiqa's default psnry uses YIQ luma: exactly 20·log10(255/219) dB lower
    assert ours - pyiqa.create_metric("psnry", device="cpu")(x, y).item() == pytest.approx(YIQ_TO_BT601_DB, abs=1e-3)
    assert SSIM()(x, y).item() == pytest.approx(pyiqa.create_metric("ssimc", device="cpu")(x, y).item(), abs=1e-4)


def test_psnr_hand_computed_and_identical_cap():
    x = torch.full((2, 3, 32, 32), 0.5)
    y = x.clone()
    y[1] += 0.1  # MSE 0.01 -> 20 dB; in Y the difference is 0.1·219/255
    scores = PSNR()(x, y)
    assert scores.dtype == torch.float64 and scores.shape == (2,)
    assert scores[0].item() == PSNR_CAP_DB
    assert scores[1].item() == pytest.approx(20.0, abs=1e-5)
    assert PSNR("y")(x, y)[1].item() == pytest.approx(20.0 + YIQ_TO_BT601_DB, abs=1e-5)
    assert PSNR(data_range=2.0)(x, y)[1].item() == pytest.approx(20.0 + 20 * math.log10(2), abs=1e-5)


def test_ssim_identical_symmetric_and_per_image(small_image):
    images = (small_image, awgn(small_image, 30, 1), cv2.GaussianBlur(small_image, (0, 0), 3))
    clean, noisy, blurred = (tensor(im) for im in images)
    ssim = SSIM()
    assert ssim(clean, clean).item() == pytest.approx(1.0, abs=1e-6)
    assert ssim(noisy, clean).item() == pytest.approx(ssim(clean, noisy).item(), abs=1e-7)
    batch = ssim(torch.cat([noisy, blurred]), torch.cat([clean, clean]))
    single = torch.cat([ssim(noisy, clean), ssim(blurred, clean)])
    torch.testing.assert_close(batch, single, atol=1e-7, rtol=0)
    psnr_batch = PSNR()(torch.cat([noisy, blurred]), torch.cat([clean, clean]))
    torch.testing.assert_close(psnr_batch, torch.cat([PSNR()(noisy, clean), PSNR()(blurred, clean)]), atol=1e-6, rtol=0)


def test_invalid_inputs_and_conventions_raise():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="'rgb', 'y'"):
        PSNR(color_space="ycbcr")
    with pytest.raises(ValueError, match="crop_border"):
        SSIM(crop_border=-1)
    with pytest.raises(ValueError, match="data_range"):
        PSNR(data_range=0)
    with pytest.raises(ValueError, match="at least 11x11"):
        SSIM(crop_border=3)(x, x)
    with pytest.raises(ValueError, match="same shape"):
        PSNR()(x, torch.rand(1, 3, 16, 17))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        PSNR()(x * 2, x)
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
        SSIM()(x[:, :1], x[:, :1])
    with pytest.raises(ValueError, match="floating"):
        PSNR()((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))


def test_compute_per_image_and_spec(small_image):
    x, y = tensor(awgn(small_image, 20, 5)).repeat(2, 1, 1, 1), tensor(small_image).repeat(2, 1, 1, 1)
    scores = compute_per_image(["psnr", "ssim"], x, y, color_space="y", crop_border=4)
    assert set(scores) == {"psnr", "ssim"} and all(s.shape == (2,) for s in scores.values())
    torch.testing.assert_close(scores["ssim"], SSIM("y", 4)(x, y))
    with pytest.raises(ValueError, match="set-level"):
        compute_per_image(["fid"], x, y)
    with pytest.raises(KeyError, match="Did you mean 'ssim'"):
        compute_per_image(["ssm"], x, y)
    spec = metric_spec(["psnr", "ssim", "lpips", "kid"], color_space="y", crop_border=4)
    assert spec["averaging"] == "mean of per-image scores"
    assert "BT.601" in spec["psnr"]["color_space"] and spec["ssim"]["crop_border"] == 4
    assert "11x11 Gaussian" in spec["ssim"]["window"] and spec["lpips"]["crop_border"] == 0
    assert spec["kid"]["per_image"] is False


# ---- FID / KID ---------------------------------------------------------------------------------

def random_spd(rng: np.random.Generator, d: int, rank: int | None = None) -> np.ndarray:
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d + (0 if rank else 0.1 * np.eye(d))


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    s1, s2 = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)  # (m1-m2)² + (sd1-sd2)²
    c1, c2 = random_spd(rng, 6), random_spd(rng, 6)
    independent = np.trace(c1 + c2) - 2 * np.trace(scipy.linalg.sqrtm(c1 @ c2).real)
    assert frechet_distance(np.zeros(6), c1, np.zeros(6), c2) == pytest.approx(independent, rel=1e-9)
    assert frechet_distance(mu1, c1[:5, :5], mu1, c1[:5, :5]) == pytest.approx(0.0, abs=1e-9)
    low1, low2 = random_spd(rng, 8, rank=3), random_spd(rng, 8, rank=3)  # N < D covariances
    independent = np.trace(low1 + low2) - 2 * np.trace(scipy.linalg.sqrtm(low1 @ low2).real)
    assert frechet_distance(np.zeros(8), low1, np.zeros(8), low2) == pytest.approx(independent, abs=1e-6)


def test_kid_unbiased_fid_biased_on_one_distribution():
    rng = np.random.default_rng(1)
    kids, fids = [], []
    for _ in range(300):
        a, b = rng.normal(size=(20, 8)), rng.normal(size=(20, 8))
        kids.append(kid(a, b, subsets=1, subset_size=20, generator=rng))
        fids.append(fid_from_features(a, b))
    kids, fids = np.array(kids), np.array(fids)
    assert abs(kids.mean()) < 3 * kids.std(ddof=1) / np.sqrt(len(kids))
    assert fids.mean() > 20 * fids.std(ddof=1) / np.sqrt(len(fids))
    a = rng.normal(size=(60, 8))
    shifted = [kid(a, rng.normal(size=(60, 8)) + s, subsets=10, subset_size=50, generator=np.random.default_rng(2))
               for s in (0.0, 0.5, 1.0)]
    assert shifted[0] < shifted[1] < shifted[2] and shifted[1] > 0.05
    assert kid(a, a + 1, generator=np.random.default_rng(3)) == kid(a, a + 1, generator=np.random.default_rng(3))


@dataclass(frozen=True)
class RandomProjection:
    """A tiny real feature extractor: 8x8 average pooling, then a fixed random projection to 16-d."""

    seed: int = 0
    weights: np.ndarray = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", np.random.default_rng(self.seed).normal(size=(3 * 8 * 8, 16)))

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        pooled = torch.nn.functional.adaptive_avg_pool2d(images, 8).flatten(1).double().numpy()
        return pooled @ self.weights


def test_fid_kid_use_the_pluggable_extractor(astronaut):
    crops = [astronaut[i:i + 64, j:j + 64] for i in range(0, 448, 64) for j in range(0, 448, 96)]
    clean = torch.cat([tensor(c) for c in crops])
    noisy = torch.cat([tensor(awgn(c, 40, k)) for k, c in enumerate(crops)])
    extractor = RandomProjection()
    fa, fb = extractor(noisy), extractor(clean)
    independent = (np.sum((fa.mean(0) - fb.mean(0)) ** 2) + np.trace(np.cov(fa.T) + np.cov(fb.T))
                   - 2 * np.trace(scipy.linalg.sqrtm(np.cov(fa.T) @ np.cov(fb.T)).real))
    fid = FID(extractor=extractor)(noisy, clean)
    assert fid.shape == () and fid.item() == pytest.approx(independent, rel=1e-6)
    assert FID(extractor=extractor).features(clean).shape == (len(crops), 16)
    k = KID(extractor=extractor, subsets=20, subset_size=20)
    assert k(noisy, clean).item() > k(clean, clean).item()
    with pytest.raises(ValueError, match="feature rows"):
        FID(extractor=lambda im: np.zeros((1, 4)))(clean, clean)


# ---- offline weights ------------------------------------------------------------------------------

def test_missing_weights_raise_clearly_without_download(tmp_path):
    """pyiqa fixes its folder at import, so this runs in a fresh interpreter with an empty TORCH_HOME."""
    code = textwrap.dedent("""
        import torch
        from uirbench.metrics import FID, LPIPS, MissingWeightsError
        x = torch.rand(2, 3, 32, 32)
        for make in (lambda: LPIPS()(x, x), lambda: FID()(x, x)):
            try:
                make()
            except MissingWeightsError as exc:
                print(exc)
            else:
                raise SystemExit("no MissingWeightsError")
    """)
    env = {**os.environ, "TORCH_HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    out = done.stdout
    assert "alexnet-owt-7be5be79.pth" in out and "7be5be79" in out and "download.pytorch.org" in out
    assert "pt_inception-2015-12-05-6726825d.pth" in out and str(tmp_path / "hub" / "pyiqa") in out
    # the LPIPS linear layers come from the torchmetrics wheel, verified by full sha256
    copied = tmp_path / "hub" / "pyiqa" / LPIPS_ALEX_LINEAR.name
    if copied.exists():
        from uirbench.io import sha256_file

        assert sha256_file(copied) == LPIPS_ALEX_LINEAR.sha256
        assert LPIPS_ALEX_LINEAR.name not in out
    assert not (tmp_path / "hub" / "checkpoints" / ALEXNET.name).exists()


def test_wrong_weight_file_is_refused(tmp_path):
    bad = tmp_path / "hub" / "checkpoints" / ALEXNET.name
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not alexnet")
    with pytest.raises(MissingWeightsError, match="different or truncated"):
        require((ALEXNET,), tmp_path, "lpips")


def test_weights_dir_after_pyiqa_import_raises(tmp_path):
    pytest.importorskip("pyiqa")
    for metric in (LPIPS(weights_dir=str(tmp_path)), InceptionFeatures(weights_dir=str(tmp_path))):
        with pytest.raises(UserError, match="pyiqa was already imported"):
            metric.load()


def test_without_pyiqa_the_perceptual_metrics_say_how_to_install_it(tmp_path):
    """The default install leaves pyiqa out (non-commercial licence): asking for lpips or fid names the extra."""
    script = ("import sys, importlib.util\n_find = importlib.util.find_spec\n"  # what an install without the extra sees
              "importlib.util.find_spec = lambda name, *a: None if name.split('.')[0] == 'pyiqa' else _find(name, *a)\n"
              "from uirbench.cli import main\n"
              f"sys.exit(main(['evaluate', '--model', 'identity', '--data', {str(tmp_path)!r}, '--metrics', sys.argv[1]]))\n")
    for metric in ("lpips", "fid"):
        result = subprocess.run([sys.executable, "-c", script, metric], capture_output=True, text=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
        assert result.returncode == 2, result.stderr
        assert "needs the optional package pyiqa" in result.stderr and "pip install 'uirbench[perceptual]'" in result.stderr


def test_ssim_with_a_precomputed_reference_is_bit_identical_to_filtering_all_five_maps_together(astronaut):
    """generate filters the clean image's maps [y, y^2] once per image; a depthwise filter treats every channel
    alone, so this equals SSIM's original single pass over [x, y, x^2, y^2, xy] to the last bit."""
    import numpy as np
    import torch.nn.functional as F

    from uirbench.io import to_tensor
    from uirbench.metrics.fidelity import SSIM_K1, SSIM_K2, _separable_window, ssim_against, ssim_reference

    rng = np.random.default_rng(0)
    clean = np.ascontiguousarray(astronaut[:120, :150])
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    x, y = to_tensor(noisy, channels_last=True), to_tensor(clean, channels_last=True)
    xs, ys = x - 0.5, y - 0.5  # the one-pass formula, written out
    maps = torch.cat([xs, ys, xs * xs, ys * ys, xs * ys], 1).contiguous(memory_format=torch.channels_last)
    h, v = _separable_window(15, maps.device)
    mu_x, mu_y, e_xx, e_yy, e_xy = F.conv2d(F.conv2d(maps, h, groups=15), v, groups=15).split(3, 1)
    c1, c2, cross = SSIM_K1**2, SSIM_K2**2, 0.5 * (mu_x + mu_y)
    mu_xy, mu_sq = mu_x * mu_y, mu_x * mu_x + mu_y * mu_y
    one_pass = ((2 * (mu_xy + cross) + (2 * 0.25 + c1)) * (2 * (e_xy - mu_xy) + c2)
                / ((mu_sq + 2 * cross + (2 * 0.25 + c1)) * ((e_xx + e_yy - mu_sq) + c2))).mean(dim=(1, 2, 3), dtype=torch.float64)
    reference = ssim_reference(y)
    assert torch.equal(ssim_against(x, reference), one_pass)
    assert float(ssim_against(y, reference)[0]) == pytest.approx(1.0, abs=1e-6)
