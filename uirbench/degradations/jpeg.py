"""JPEG compression: a real libjpeg encode and decode at an integer quality.

``jpeg`` compresses the RGB image with libjpeg's baseline settings (IJG scaling of the ITU-T
T.81 Annex K quantisation tables by ``quality`` 1-100; 4:2:0 chroma subsampling, pinned) and
decodes it with libjpeg's defaults. The output equals, byte for byte, Pillow's round trip
``Image.fromarray(rgb).save(buf, "JPEG", quality=q)`` -> ``Image.open(buf).convert("RGB")``
(the tests check it on real images). OpenCV's libjpeg-turbo does the work: same bytes in
1.4 ms instead of 2.5 ms per 512x512 image (Pillow decodes slower and returns a read-only array
that needs a copy). Colour order is explicit, RGB -> BGR before encoding and BGR -> RGB after decoding;
encoding RGB as if it were BGR (albumentations' ImageCompression) puts luma and chroma on the
wrong mixtures and lands 35 dB PSNR away from a correct encode at quality 30 (REFERENCE.md 3).

Severity levels: quality 70, 60, 50, 40, 30; in-distribution draws 30-70, out-of-distribution
10-29 (ImageNet-C uses 25-7, DA-CLIP 10). ``quality=None`` (severity 0) means no compression.
Quality is photometric: it does not scale with image size. Valid range, checked by ``apply``
before any work: ``quality`` an integer in [1, 100] (bool and float refused) or ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from uirbench.degradations.base import Degradation, Range, short_repr
from uirbench.errors import ParameterError
from uirbench.registry import DEGRADATIONS

_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)
"""Where OpenCV has this flag, libjpeg writes RGB itself: the same bytes as decoding to BGR and swapping,
one pass fewer. Older releases swap afterwards."""


def check_quality(quality: Any) -> int:
    """Return ``quality`` as an int if it is an integer 1-100 (bool and float refused), else raise :class:`ParameterError`."""
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ParameterError(f"jpeg: parameter quality={short_repr(quality)} must be an integer in [1, 100], "
                             "or None for no compression")
    return int(quality)


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode HxWx3 uint8 RGB as a 4:2:0 baseline JPEG at ``quality`` (1-100) and decode it to RGB."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError(f"jpeg: OpenCV failed to encode a {image.shape} image at quality {quality}")
    if _IMREAD_RGB is None:
        return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return cv2.imdecode(data, _IMREAD_RGB)


@DEGRADATIONS.register("jpeg", family="jpeg")
@dataclass(frozen=True)
class JPEG(Degradation):
    """Real libjpeg compression at integer ``quality`` 1-100 with 4:2:0 chroma subsampling."""

    stage = "compression"
    LEVELS = {"quality": (70, 60, 50, 40, 30)}
    NEUTRAL = {"quality": None}
    TRAIN = {"quality": Range(30, 71, integer=True)}
    OOD = {"quality": Range(10, 30, integer=True)}

    @staticmethod
    def apply(image: np.ndarray, *, quality: int | None) -> np.ndarray:
        if quality is None:
            return image.copy()
        return jpeg_round_trip(image, check_quality(quality))
