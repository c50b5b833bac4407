"""Image-quality metrics registered in ``METRICS``: psnr, ssim (own, fast), lpips (pyiqa), fid, kid.

Per-image metrics take NCHW float32 RGB tensors in [0, 1] (restored, target) and return one
float64 score per image; summaries average per-image scores. fid and kid are set-level. Every
metric's ``spec()`` states its conventions; print :func:`metric_spec` beside every number.
"""

from uirbench.metrics.base import AVERAGING, check_images, check_pair, compute_per_image, conventions_of, create_metric, metric_spec
from uirbench.metrics.distribution import FID, KID, FeatureExtractor, InceptionFeatures, fid_from_features, frechet_distance, kid
from uirbench.metrics.fidelity import PSNR, PSNR_CAP_DB, SSIM, rgb_to_y, ssim_per_image
from uirbench.metrics.perceptual import LPIPS
from uirbench.metrics.weights import MissingWeightsError

__all__ = [
    "AVERAGING",
    "FID",
    "KID",
    "LPIPS",
    "PSNR",
    "PSNR_CAP_DB",
    "SSIM",
    "FeatureExtractor",
    "InceptionFeatures",
    "MissingWeightsError",
    "check_images",
    "check_pair",
    "compute_per_image",
    "conventions_of",
    "create_metric",
    "fid_from_features",
    "frechet_distance",
    "kid",
    "metric_spec",
    "rgb_to_y",
    "ssim_per_image",
]
