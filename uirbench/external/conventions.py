"""How the all-in-one papers score their tables, as functions: the ``promptir`` convention.

AirNet (Li et al., CVPR 2022), PromptIR (Potlapalli et al., NeurIPS 2023) and AdaIR, which reuse
AirNet's test code, score the 3-task and 5-task sets differently from uirbench's default
(``uirbench evaluate``: whole images, restored images rounded to 8 bits, 11x11 Gaussian SSIM):

1. input **and** ground truth are centre-cropped to a multiple of 16 px before the model runs
   (their ``crop_img(image, base=16)``; :func:`crop_to_multiple`);
2. the restored image is clipped to [0, 1] but **not** rounded to 8 bits;
3. PSNR and SSIM on RGB in [0, 1] with scikit-image 0.19: ``peak_signal_noise_ratio(data_range=1)``
   (MSE pooled over the channels, as uirbench's PSNR) and ``structural_similarity(data_range=1,
   multichannel=True)``, whose defaults are a 7x7 **uniform** window with **sample** covariance,
   averaged over the valid region and the channels (:func:`ssim_uniform`); no border crop.

That call fails on scikit-image >= 0.20 (``multichannel`` was removed), so users pin 0.19.3;
:func:`ssim_uniform` computes the same quantity without it. scikit-image 0.19 kept float32 inputs in
float32; this runs in float64 (the two differ by < 1e-5 SSIM).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from uirbench.errors import UserError

if TYPE_CHECKING:
    import torch

CROP_MULTIPLE = 16
UNIFORM_WINDOW = 7
SSIM_K1, SSIM_K2 = 0.01, 0.03
PROMPTIR = "promptir"
UIRBENCH = "uirbench"
CONVENTIONS = (PROMPTIR, UIRBENCH)
"""``promptir``: the AirNet/PromptIR/AdaIR test scripts (this module); ``uirbench``: ``uirbench evaluate``'s defaults."""


def crop_to_multiple(image: np.ndarray, base: int = CROP_MULTIPLE) -> np.ndarray:
    """Centre crop of an HxWxC array to the largest multiple of ``base`` in each side (PromptIR's ``crop_img``).

    The odd pixel of an odd remainder goes to the bottom/right edge, as in their code:

    >>> crop_to_multiple(np.zeros((321, 481, 3), np.uint8)).shape
    (320, 480, 3)
    >>> int(crop_to_multiple(np.arange(19 * 17).reshape(19, 17, 1))[0, 0, 0])  # rows 1..16, columns 0..15
    17
    """
    h, w = image.shape[:2]
    if h < base or w < base:
        raise UserError(f"crop to a multiple of {base} px: a {w}x{h} image has a side below {base} px")
    top, left = (h % base) // 2, (w % base) // 2
    return image[top:top + h - h % base, left:left + w - w % base]


def ssim_uniform(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = UNIFORM_WINDOW) -> torch.Tensor:
    """Mean SSIM per image under scikit-image 0.19's defaults for float images (Wang et al. 2004, IEEE TIP 13(4)).

    Local means, variances and covariance under a ``window`` x ``window`` uniform window; variances
    and covariance scaled by N/(N-1), N = window² (sample covariance); C1 = (0.01 R)², C2 = (0.03 R)²;
    the SSIM map is averaged over its valid region, the pixels at least (window-1)/2 from every border
    (the map skimage crops before its mean), then over channels.

    ``x``, ``y``: NCHW float tensors, H and W >= ``window``. Returns float64 [N].

    >>> import torch
    >>> x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> float(ssim_uniform(x, x))
    1.0
    """
    import torch.nn.functional as F

    if x.shape != y.shape or x.ndim != 4:
        raise UserError(f"ssim_uniform: expected two NCHW tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < window:
        raise UserError(f"ssim_uniform: a {x.shape[-1]}x{x.shape[-2]} image is smaller than the {window}x{window} window")
    x, y = x.double(), y.double()

    def mean(t: torch.Tensor) -> torch.Tensor:  # valid region only: no padding, so no border handling to match
        return F.avg_pool2d(t, window, stride=1)

    mu_x, mu_y = mean(x), mean(y)
    scale = window**2 / (window**2 - 1)
    var_x = scale * (mean(x * x) - mu_x * mu_x)
    var_y = scale * (mean(y * y) - mu_y * mu_y)
    cov = scale * (mean(x * y) - mu_x * mu_y)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim = (2 * mu_x * mu_y + c1) * (2 * cov + c2) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    return ssim.mean(dim=(1, 2, 3))


CROP_TEXT = f"multiple-of-{CROP_MULTIPLE} centre crop of input and target, before the model"


def promptir_spec() -> dict[str, Any]:
    """The metric-spec block of the ``promptir`` convention (the form of ``uirbench.metrics.metric_spec``)."""
    from uirbench.metrics import AVERAGING, create_metric

    psnr = create_metric("psnr").spec()
    common = {"higher_is_better": True, "per_image": True, "color_space": "RGB", "crop_border": CROP_TEXT, "data_range": 1.0}
    return {
        "averaging": AVERAGING,
        "convention": f"{PROMPTIR}: the AirNet/PromptIR/AdaIR test scripts (scikit-image 0.19 metrics)",
        "psnr": {**common, "unit": "dB", "mse": psnr["mse"], "identical_images": psnr["identical_images"],
                 "reference": "scikit-image 0.19 peak_signal_noise_ratio(data_range=1)"},
        "ssim": {**common, "window": f"{UNIFORM_WINDOW}x{UNIFORM_WINDOW} uniform, valid region (no padding)",
                 "covariance": f"sample (x {UNIFORM_WINDOW**2}/{UNIFORM_WINDOW**2 - 1})", "K1": SSIM_K1, "K2": SSIM_K2,
                 "channels": "mean over channels",
                 "reference": "scikit-image 0.19 structural_similarity(data_range=1, multichannel=True) defaults"},
        "quantisation": "none: restored images clipped to [0, 1] and scored as floats, not rounded to 8 bits",
    }
