"""``classical``: one classical filter per degradation family, chosen by the manifest's label.

An *oracle-label* baseline: it is told which families degraded each image (never their
parameters) and undoes them in reverse physical order (JPEG -> noise -> low light -> blur ->
rain -> haze). Filters, with their sources:

* noise: non-local means (Buades et al. 2005, OpenCV ``fastNlMeansDenoisingColored``) with the
  filter strength set from the noise level estimated by Immerkaer's (1996) Laplacian estimator;
* jpeg: edge-preserving bilateral smoothing (Tomasi & Manduchi 1998) as a deblocking filter;
* lowlight: exposure gain in linear light to a mean luminance of 0.18 (mid-grey), then NLM on the
  amplified noise;
* blur: unsharp masking (amount 1, Gaussian sigma 1.5 px at 512 px);
* rain: bright thin structures removed where the image exceeds its 5x5 median by > 8 DN;
* haze: dark channel prior (He, Sun & Tang 2009): 15-px patches (at 512 px), omega 0.95, airlight
  from the brightest 0.1% of the dark channel, transmission refined by a guided filter
  (He et al. 2010, radius 30 px, eps 1e-3), t0 = 0.1.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from uirbench.degradations import families, to_linear, to_srgb8
from uirbench.errors import UserError
from uirbench.io import to_numpy, to_tensor
from uirbench.registry import DEGRADATIONS, MODELS
from uirbench.restorer import Restorer

ORDER = ("jpeg", "noise", "lowlight", "blur", "rain", "haze")


def _scaled(px: float, image: np.ndarray, odd: bool = False) -> int:
    n = max(1, round(px * min(image.shape[:2]) / 512))
    return n + 1 - n % 2 if odd else n


def estimate_noise_sigma(image: np.ndarray) -> float:
    """Immerkaer (1996): sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * L| per channel, averaged, in DN."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = cv2.filter2D(image.astype(np.float32), -1, kernel)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(response).sum() / (6.0 * response.size))


def denoise(image: np.ndarray) -> np.ndarray:
    h = 0.8 * estimate_noise_sigma(image)
    if h < 1.0:
        return image.copy()
    return cv2.fastNlMeansDenoisingColored(image, None, h, h, 7, 21)


def deblock(image: np.ndarray) -> np.ndarray:
    return cv2.bilateralFilter(image, 5, 25, 2)


def enhance_lowlight(image: np.ndarray) -> np.ndarray:
    linear = to_linear(image)
    luminance = linear @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    gain = min(64.0, 0.18 / max(float(luminance.mean()), 1e-4))
    return denoise(to_srgb8(linear * np.float32(gain)))


def sharpen(image: np.ndarray) -> np.ndarray:
    sigma = 1.5 * min(image.shape[:2]) / 512
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    return cv2.addWeighted(image, 2.0, blurred, -1.0, 0)


def derain(image: np.ndarray) -> np.ndarray:
    median = cv2.medianBlur(image, 5)
    streak = (image.astype(np.int16) - median.astype(np.int16)).max(axis=2) > 8
    out = image.copy()
    out[streak] = median[streak]
    return out


def _guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al. 2010 guided filter with box means (grey guide, float32 in [0, 1])."""
    def mean(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = mean(guide), mean(src)
    a = (mean(guide * src) - mean_i * mean_p) / (mean(guide * guide) - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    return mean(a) * guide + mean(b)


def dehaze(image: np.ndarray) -> np.ndarray:
    img = image.astype(np.float32) / 255.0
    patch = _scaled(15, image, odd=True)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    dark = cv2.erode(img.min(axis=2), kernel)
    top = max(1, dark.size // 1000)
    idx = np.argpartition(dark.ravel(), -top)[-top:]
    airlight = np.maximum(img.reshape(-1, 3)[idx].mean(axis=0), 1e-3)
    t = 1.0 - 0.95 * cv2.erode((img / airlight).min(axis=2), kernel)
    t = _guided_filter(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), t.astype(np.float32), _scaled(30, image), 1e-3)
    out = (img - airlight) / np.maximum(t, 0.1)[:, :, None] + airlight
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


FILTERS = {"jpeg": deblock, "noise": denoise, "lowlight": enhance_lowlight, "blur": sharpen, "rain": derain, "haze": dehaze}


def restore_classical(image: np.ndarray, labels: list[str]) -> np.ndarray:
    """Apply the filters of ``labels`` (families) in reverse physical order to an HxWx3 uint8 image."""
    unknown = sorted(set(labels) - set(FILTERS))
    if unknown:
        raise UserError(f"classical: no filter for {', '.join(unknown)}; known families: {', '.join(ORDER)}")
    out = image
    for family in ORDER:
        if family in labels:
            out = FILTERS[family](out)
    return out


def _known_families(label: str) -> list[str]:
    """The uirbench families of a manifest label; a label outside them (CDD-11's snow, an imported set's own
    names) gets no filter for that part, so the image passes through unchanged rather than stopping the run."""
    parts = [part for part in label.split("+") if part in DEGRADATIONS]
    return families("+".join(parts)) if parts else []


@MODELS.register("classical", kind="baseline", paper="oracle-label classical filters (see module docstring)")
class Classical(Restorer):
    """Per-family classical filters chosen by the oracle degradation label (NLM, DCP, gain+NLM, unsharp, ...)."""

    uses_hint = True

    def forward(self, x: torch.Tensor, degradation_hint: list[str] | None = None) -> torch.Tensor:
        if degradation_hint is None or len(degradation_hint) != x.shape[0]:
            raise UserError("classical is an oracle-label baseline: it needs one degradation label per image "
                             "(evaluate passes the manifest's `degradation` column)")
        images = to_numpy(x.clamp(0, 1))
        restored = [restore_classical(img, _known_families(label)) for img, label in zip(images, degradation_hint, strict=True)]
        return torch.cat([to_tensor(r) for r in restored]).to(x.device)
