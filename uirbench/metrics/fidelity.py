"""PSNR and SSIM: our own vectorised torch implementations, scored per image.

Conventions are dataclass fields, printed by ``spec()``:

* ``color_space``: ``"rgb"`` scores the three channels; ``"y"`` scores BT.601 luma computed from
  RGB in [0, 1] exactly like MATLAB ``rgb2ycbcr`` (BasicSR, DA-CLIP ``_y``):
  ``Y = 16/255 + (65.481 R + 128.553 G + 24.966 B)/255``, in [16/255, 235/255], still scored with
  ``data_range`` 1. (pyiqa's default ``psnry`` uses YIQ luma 0.299 R + 0.587 G + 0.114 B instead,
  which reads exactly 20·log10(255/219) = 1.3219 dB lower.)
* ``crop_border``: pixels removed from each side before scoring (DA-CLIP's test script uses 4).
* ``data_range``: the peak signal value R (1.0 for images in [0, 1]).

On astronaut + AWGN sigma 25 (uint8) these read PSNR 20.86 dB (RGB) / 25.50 dB (Y) and SSIM 0.335
(RGB) / 0.525 (Y): always print the convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F

from uirbench.errors import UserError
from uirbench.metrics.base import check_pair
from uirbench.registry import METRICS

COLOR_SPACES = ("rgb", "y")
BT601_LUMA = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
BT601_OFFSET = 16.0 / 255.0

PSNR_CAP_DB = 100.0
"""PSNR of identical images (MSE 0) is +inf; scores are capped here so that means stay finite.
Only near-identical images reach it (one grey level off in one pixel of a 512x512 RGB image reads
107 dB and is reported as 100); restorations read 20-40 dB."""

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of NCHW RGB in [0, 1] as N1HW in [16/255, 235/255] (MATLAB ``rgb2ycbcr``, Y only).

    >>> import torch
    >>> [round(float(v) * 255, 3) for v in rgb_to_y(torch.tensor([0.0, 1.0]).view(2, 1, 1, 1).expand(2, 3, 1, 1)).flatten()]
    [16.0, 235.0]
    """
    r, g, b = x.unbind(1)
    return (BT601_OFFSET + BT601_LUMA[0] * r + BT601_LUMA[1] * g + BT601_LUMA[2] * b).unsqueeze(1)


@dataclass(frozen=True)
class FidelityConfig:
    """Conventions shared by PSNR and SSIM (see the module docstring)."""

    color_space: str = "rgb"
    crop_border: int = 0
    data_range: float = 1.0

    def __post_init__(self) -> None:
        if self.color_space not in COLOR_SPACES:
            raise UserError(f"color_space must be one of {COLOR_SPACES}, got {self.color_space!r}")
        if isinstance(self.crop_border, bool) or not isinstance(self.crop_border, int) or self.crop_border < 0:
            raise UserError(f"crop_border must be an integer >= 0 (pixels removed per side), got {self.crop_border!r}")
        if not (isinstance(self.data_range, (int, float)) and math.isfinite(self.data_range) and self.data_range > 0):
            raise UserError(f"data_range must be a positive number (1.0 for images in [0, 1]), got {self.data_range!r}")

    def crop(self, x: torch.Tensor, min_side: int) -> torch.Tensor:
        """Remove ``crop_border`` pixels per side; raise if fewer than ``min_side`` pixels remain."""
        c = self.crop_border
        h, w = x.shape[-2] - 2 * c, x.shape[-1] - 2 * c
        if min(h, w) < min_side:
            raise UserError(f"{type(self).__name__.lower()}: a {x.shape[-1]}x{x.shape[-2]} image with crop_border={c} "
                             f"leaves {w}x{h} px; at least {min_side}x{min_side} are needed")
        return x[..., c:c + h, c:c + w] if c else x

    def spec(self) -> dict[str, Any]:
        return {"color_space": "BT.601 Y (16-235, MATLAB rgb2ycbcr)" if self.color_space == "y" else "RGB",
                "crop_border": self.crop_border, "data_range": self.data_range}


@METRICS.register("psnr", higher_is_better=True, needs_reference=True, needs_weights=False, per_image=True)
@dataclass(frozen=True)
class PSNR(FidelityConfig):
    """Peak signal-to-noise ratio in dB, per image: 10·log10(R² / MSE), MSE over all scored pixels.

    In RGB the MSE pools the three channels of one image (skimage, BasicSR), it is not the mean of
    per-channel PSNRs. Identical images score ``PSNR_CAP_DB`` (100 dB), not +inf.
    Input: NCHW float RGB in [0, 1]; output: float64 tensor [B].
    """

    def __call__(self, restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_pair(restored, target)
        diff = self.crop(restored, 1).float() - self.crop(target, 1).float()
        if self.color_space == "y":  # the 16/255 offset cancels in a difference
            diff = BT601_LUMA[0] * diff[:, 0] + BT601_LUMA[1] * diff[:, 1] + BT601_LUMA[2] * diff[:, 2]
        mse = diff.square().sum(dim=tuple(range(1, diff.ndim))).double() / diff[0].numel()  # cascade sum: float32 is exact enough
        return (10.0 * torch.log10(self.data_range**2 / mse)).clamp(max=PSNR_CAP_DB)

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "unit": "dB", "mse": "pooled over the channels of one image",
                "identical_images": f"capped at {PSNR_CAP_DB:g} dB"}


def gaussian_window(size: int, sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian taps, float64 (the 2-D window is their outer product, as MATLAB ``fspecial``)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_per_image(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM per image (Wang, Bovik, Sheikh, Simoncelli 2004, IEEE TIP 13(4)).

    SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x² + mu_y² + C1)(s_x² + s_y² + C2)) with local
    statistics under an 11x11 Gaussian window (sigma 1.5), population (biased) covariance,
    C1 = (0.01 R)², C2 = (0.03 R)², averaged over the valid region (no padding: the map is
    (H-10)x(W-10)) and then over channels. Matches MATLAB ``ssim_index`` and skimage
    ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.

    ``x``, ``y``: NCHW float tensors, H and W >= 11. Returns float64 [N].

    Speed and precision: the moment maps are filtered by two depthwise 1-D float32 convolutions in
    channels-last layout (4x faster on CPU than NCHW when the width is not a multiple of 8). Values are
    shifted by -R/2 first, which leaves (co)variances unchanged but shrinks E[x²] and so the cancellation
    in E[x²] - mu²; the shift is added back to the means. Error against a float64 reference: < 1e-6 on
    real image pairs. The reference's maps [y, y²] are filtered apart (:func:`ssim_reference`), so many
    images scored against one reference (``generate``'s input SSIM) filter them once; a depthwise filter
    treats every channel alone, so the result is the same to the last bit either way.
    """
    return ssim_against(x, ssim_reference(y, data_range))


@dataclass(frozen=True)
class SSIMReference:
    """The reference image's part of SSIM: its shifted values and its filtered moments mu_y, E[y²] (float32,
    channels-last), from :func:`ssim_reference`."""

    shifted: torch.Tensor
    mu: torch.Tensor
    e_sq: torch.Tensor
    data_range: float


def _filtered(maps: list[torch.Tensor]) -> torch.Tensor:
    """The 11x11 Gaussian window over each channel of the concatenated ``maps`` (valid region)."""
    moments = torch.cat(maps, 1).contiguous(memory_format=torch.channels_last)
    horizontal, vertical = _separable_window(moments.shape[1], moments.device)
    return F.conv2d(F.conv2d(moments, horizontal, groups=moments.shape[1]), vertical, groups=moments.shape[1])


def ssim_reference(y: torch.Tensor, data_range: float = 1.0) -> SSIMReference:
    """Precompute the reference ``y`` (NCHW float) of :func:`ssim_against`."""
    shifted = y.float() - data_range / 2
    mu, e_sq = _filtered([shifted, shifted * shifted]).split(y.shape[1], 1)
    return SSIMReference(shifted, mu, e_sq, data_range)


def ssim_against(x: torch.Tensor, ref: SSIMReference) -> torch.Tensor:
    """Mean SSIM per image of ``x`` (NCHW float, the reference's shape) against a precomputed reference;
    float64 [N] (see :func:`ssim_per_image`)."""
    shift = ref.data_range / 2
    x = x.float() - shift
    mu_x, e_xx, e_xy = _filtered([x, x * x, x * ref.shifted]).split(x.shape[1], 1)
    mu_y, e_yy = ref.mu, ref.e_sq
    c1, c2 = (SSIM_K1 * ref.data_range) ** 2, (SSIM_K2 * ref.data_range) ** 2
    mu_xy = mu_x * mu_y
    mu_sq = mu_x * mu_x + mu_y * mu_y
    cross = shift * (mu_x + mu_y)  # unshifted: mu_x' mu_y' = mu_xy + cross + shift², mu_x'² + mu_y'² = mu_sq + 2 cross + 2 shift²
    numerator = (2 * (mu_xy + cross) + (2 * shift**2 + c1)) * (2 * (e_xy - mu_xy) + c2)
    denominator = (mu_sq + 2 * cross + (2 * shift**2 + c1)) * ((e_xx + e_yy - mu_sq) + c2)
    return (numerator / denominator).mean(dim=(1, 2, 3), dtype=torch.float64)


@lru_cache(maxsize=8)
def _separable_window(groups: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Depthwise conv2d weights (horizontal 1x11, vertical 11x1) of the normalised Gaussian window."""
    g = gaussian_window(SSIM_WINDOW, SSIM_SIGMA).to(dtype=torch.float32, device=device)
    return g.view(1, 1, 1, -1).repeat(groups, 1, 1, 1), g.view(1, 1, -1, 1).repeat(groups, 1, 1, 1)


@METRICS.register("ssim", higher_is_better=True, needs_reference=True, needs_weights=False, per_image=True)
@dataclass(frozen=True)
class SSIM(FidelityConfig):
    """Structural similarity per image (see :func:`ssim_per_image`); RGB SSIM is the mean over channels.

    Input: NCHW float RGB in [0, 1]; output: float64 tensor [B] (1 for identical images).
    """

    def __call__(self, restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_pair(restored, target)
        x, y = self.crop(restored, SSIM_WINDOW), self.crop(target, SSIM_WINDOW)
        if self.color_space == "y":
            x, y = rgb_to_y(x.float()), rgb_to_y(y.float())
        return ssim_per_image(x, y, self.data_range)

    def spec(self) -> dict[str, Any]:
        window = f"{SSIM_WINDOW}x{SSIM_WINDOW} Gaussian, sigma {SSIM_SIGMA}, valid region (no padding)"
        return {**super().spec(), "window": window,
                "covariance": "population", "K1": SSIM_K1, "K2": SSIM_K2, "channels": "mean over channels",
                "reference": "Wang et al. 2004 (MATLAB ssim_index)"}
