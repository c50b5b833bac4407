"""Set-level distribution metrics: FID and KID between the features of two image sets.

* FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
  Equilibrium"): Frechet distance between Gaussians fitted to the two feature sets. It is biased
  for small sets (the bias falls like 1/N: two samples of one distribution gave 2430 at N=500 and
  421 at N=5000 with 2048-d features), so always report N beside it.
* KID (Binkowski, Sutherland, Arbel, Gretton 2018, "Demystifying MMD GANs"): unbiased MMD² with
  the cubic polynomial kernel k(x, y) = (x·y/d + 1)³, averaged over random subsets; centred on 0
  for two samples of one distribution, hence preferred for small sets.

Features come from a pluggable extractor: any callable mapping NCHW float RGB in [0, 1] to an
[N, D] array or tensor (:class:`FeatureExtractor`). The default, :class:`InceptionFeatures`, gives
clean-fid-style InceptionV3 pool3 features (2048-d) through pyiqa with verified offline weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from uirbench.errors import UserError
from uirbench.metrics.base import check_images
from uirbench.metrics.weights import FID_INCEPTION, require, require_pyiqa, torch_home
from uirbench.registry import METRICS

FeatureExtractor = Callable[[torch.Tensor], "np.ndarray | torch.Tensor"]
"""NCHW float RGB in [0, 1] -> [N, D] features (converted to float64 numpy)."""

INCEPTION_SIZE = 299


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2):

    ||mu1 - mu2||² + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2)).

    The trace term is computed as sum sqrt(eig(S1^(1/2) sigma2 S1^(1/2))): that matrix is symmetric
    PSD and similar to sigma1 sigma2, so this avoids the complex, ill-conditioned ``sqrtm`` of a
    non-symmetric product (and scipy's removed ``disp`` argument). Rounding can leave tiny negative
    eigenvalues for rank-deficient covariances (N < D); they are clipped to 0, and so is the result.
    Shapes: mu [D], sigma [D, D] (symmetric PSD). Returns a float in feature units squared.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise UserError(f"shapes must be mu [D], sigma [D, D] with one D; got mu1 {mu1.shape}, sigma1 {sigma1.shape}, "
                         f"mu2 {mu2.shape}, sigma2 {sigma2.shape}")
    values, vectors = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root1 @ sigma2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return max(float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt), 0.0)


def fid_from_features(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID of two feature sets [N, D]: Frechet distance of their means and sample covariances (ddof 1)."""
    a, b = _as_features(features_a, "features_a"), _as_features(features_b, "features_b")
    _same_dim(a, b)
    for what, f in (("features_a", a), ("features_b", b)):
        if len(f) < 2:
            raise UserError(f"{what}: FID needs at least 2 samples for a covariance, got {len(f)}")
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def kid(features_a: np.ndarray, features_b: np.ndarray, *, subsets: int = 100, subset_size: int = 1000,
        generator: np.random.Generator) -> float:
    """Kernel Inception Distance: mean over ``subsets`` of the unbiased MMD² estimate

    MMD²_u = [sum_{i!=j} k(x_i, x_j) + sum_{i!=j} k(y_i, y_j)] / (m(m-1)) - 2 sum_{i,j} k(x_i, y_j) / m²

    with k(x, y) = (x·y/d + 1)³, on m = min(subset_size, N_a, N_b) samples drawn without
    replacement from each set by ``generator``. Features [N, D]; returns a float (can be < 0).
    """
    a, b = _as_features(features_a, "features_a"), _as_features(features_b, "features_b")
    _same_dim(a, b)
    if subsets < 1:
        raise UserError(f"subsets must be >= 1, got {subsets}")
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise UserError(f"KID needs at least 2 samples per set (subset_size {subset_size}, sets of {len(a)} and {len(b)})")
    d = a.shape[1]
    total = 0.0
    for _ in range(subsets):
        x = a[generator.choice(len(a), m, replace=False)]
        y = b[generator.choice(len(b), m, replace=False)]
        k_xx, k_yy, k_xy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        total += within - 2 * k_xy.mean()
    return float(total / subsets)


def _as_features(features: Any, what: str) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        features = features.detach().to("cpu", torch.float64).numpy()
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] < 1:
        raise UserError(f"{what}: features must have shape [N, D], got {f.shape}")
    if not np.isfinite(f).all():
        raise UserError(f"{what}: features contain NaN or inf")
    return f


def _same_dim(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise UserError(f"feature sets differ in dimension: {a.shape[1]} vs {b.shape[1]}")


@lru_cache(maxsize=4)
def _inception(weights_dir: str | None, device: str) -> torch.nn.Module:
    require_pyiqa("InceptionFeatures (fid, kid)")
    with torch_home(weights_dir):
        require((FID_INCEPTION,), weights_dir, "InceptionFeatures (fid, kid)")
        from pyiqa.archs.inception import InceptionV3

        model = InceptionV3(output_blocks=[InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    return model.to(torch.device(device)).eval()


@dataclass(frozen=True)
class InceptionFeatures:
    """InceptionV3 pool3 features [N, 2048] with the TF-FID weights, clean-fid "clean" preprocessing:

    each channel of the 0-255 float image resized to 299x299 by PIL bicubic (antialiased), clipped
    to [0, 255], mapped by (x - 128)/128 (Parmar, Zhang, Zhu 2022, "On Aliased Resizing and
    Surprising Subtleties in GAN Evaluation"). ``weights_dir``: TORCH_HOME-style folder (see
    :mod:`uirbench.metrics.weights`). Input NCHW float RGB in [0, 1]; returns float64 numpy [N, 2048].
    """

    weights_dir: str | None = None

    def load(self, device: torch.device | str = "cpu") -> torch.nn.Module:
        """pyiqa's InceptionV3 on ``device``; raises :class:`MissingWeightsError` naming missing files."""
        return _inception(self.weights_dir, str(torch.device(device)))

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        check_images(images)
        model = self.load(images.device)
        batch = torch.from_numpy(np.stack([_clean_resize(im) for im in images.detach().float().cpu().numpy()]))
        with torch.no_grad():
            features = model(((batch - 128) / 128).to(images.device))[0]
        return features.reshape(len(images), -1).to("cpu", torch.float64).numpy()


def _clean_resize(image: np.ndarray) -> np.ndarray:
    """CHW float in [0, 1] -> CHW float32 0-255 at 299x299, PIL bicubic per channel in float mode."""
    from PIL import Image

    channels = [Image.fromarray(np.ascontiguousarray(c * 255, dtype=np.float32), mode="F")
                .resize((INCEPTION_SIZE, INCEPTION_SIZE), resample=Image.Resampling.BICUBIC) for c in image]
    return np.clip(np.stack([np.asarray(c) for c in channels]), 0, 255).astype(np.float32)


@dataclass(frozen=True)
class _SetMetric:
    """``weights_dir``: where the default extractor (:class:`InceptionFeatures`) finds its weights; ``extractor``:
    any callable images -> features [N, D] in its place."""

    weights_dir: str | None = None
    extractor: FeatureExtractor | None = None

    def __post_init__(self) -> None:
        if self.extractor is None:
            object.__setattr__(self, "extractor", InceptionFeatures(weights_dir=self.weights_dir))

    def features(self, images: torch.Tensor) -> np.ndarray:
        """Features [N, D] float64 of ``images`` (NCHW float RGB in [0, 1]); accumulate these over batches."""
        check_images(images)
        f = _as_features(self.extractor(images), f"features from {type(self.extractor).__name__}")
        if len(f) != len(images):
            raise UserError(f"{type(self.extractor).__name__} returned {len(f)} feature rows for {len(images)} images")
        return f

    def __call__(self, restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Score two image sets given whole: a 0-d float64 tensor (sets may differ in size)."""
        return torch.tensor(self.from_features(self.features(restored), self.features(target)), dtype=torch.float64)

    def from_features(self, features_a: np.ndarray, features_b: np.ndarray) -> float:
        raise NotImplementedError


@METRICS.register("fid", higher_is_better=False, needs_reference=True, needs_weights=True, per_image=False)
@dataclass(frozen=True)
class FID(_SetMetric):
    """Frechet distance between the feature distributions of two image sets (report N: biased ~1/N)."""

    def from_features(self, features_a: np.ndarray, features_b: np.ndarray) -> float:
        return fid_from_features(features_a, features_b)

    def spec(self) -> dict[str, Any]:
        return {"features": _describe(self.extractor), "statistic": "Frechet distance of Gaussian fits, sample covariance",
                "note": "set-level and biased for small N (falls like 1/N): report N"}


@METRICS.register("kid", higher_is_better=False, needs_reference=True, needs_weights=True, per_image=False)
@dataclass(frozen=True)
class KID(_SetMetric):
    """Unbiased MMD² with the cubic polynomial kernel, mean over ``subsets`` random subsets of
    ``subset_size`` (capped at the set sizes) drawn with ``np.random.default_rng(seed)``."""

    subsets: int = 100
    subset_size: int = 1000
    seed: int = 0

    def from_features(self, features_a: np.ndarray, features_b: np.ndarray) -> float:
        return kid(features_a, features_b, subsets=self.subsets, subset_size=self.subset_size,
                   generator=np.random.default_rng(self.seed))

    def spec(self) -> dict[str, Any]:
        return {"features": _describe(self.extractor), "kernel": "(x.y/d + 1)^3", "estimator": "unbiased MMD^2",
                "subsets": self.subsets, "subset_size": self.subset_size, "seed": self.seed}


def _describe(extractor: FeatureExtractor) -> str:
    if isinstance(extractor, InceptionFeatures):
        return "InceptionV3 pool3 (2048-d, TF-FID weights via pyiqa), clean-fid bicubic resize to 299"
    return repr(extractor)
