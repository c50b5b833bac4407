"""The only place that reads/writes images and depth maps and converts layouts and dtypes.

Conventions: degradations work on HxWx3 ``uint8`` RGB arrays; models and metrics on NCHW
``float32`` RGB tensors in [0, 1]; depth maps are HxW arrays of finite real numbers, stored as
16-bit single-channel PNG or ``.npy`` (``read_depth`` / ``write_depth``). Every write is atomic (temporary file in the same folder, then
``os.replace``), so an interrupted run never leaves a half-written file under a final name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from uirbench.errors import UserError

MIN_SIDE = 16
"""Images with a side shorter than this are refused: no degradation is meaningful on them."""

MAX_PIXELS = 64_000_000
"""Decompression-bomb guard: images with more pixels than this are refused before decoding."""

_UMASK = os.umask(0)
os.umask(_UMASK)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
DEPTH_SUFFIXES = (".png", ".npy")


class ImageError(UserError):
    """An image file or array that uirbench refuses, with the reason and the file name."""


def check_rgb(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Return ``image`` if it is an HxWx3 uint8 RGB array of at least MIN_SIDE pixels, else raise.

    Arrays are never converted silently: grey, RGBA and 16-bit inputs are refused here with a
    message saying how to convert them (``read_image`` does the conversions for files).
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{what}: expected a numpy array (HxWx3 uint8 RGB), got {type(image).__name__}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        raise ImageError(f"{what}: greyscale array of shape {image.shape}; uirbench degrades RGB images. "
                         "Replicate the channel (np.repeat(img[..., None], 3, axis=2)) or read the file with uirbench.io.read_image")
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageError(f"{what}: expected shape HxWx3 (RGB), got {image.shape}")
    if image.shape[2] == 4:
        raise ImageError(f"{what}: RGBA array; drop or composite the alpha channel first (read_image does this for opaque files)")
    if image.dtype != np.uint8:
        raise ImageError(f"{what}: expected dtype uint8 (0-255), got {image.dtype}; convert 16-bit data with "
                         "uirbench.io.to_uint8 (rounds x*255/65535) rather than truncating")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ImageError(f"{what}: {image.shape[1]}x{image.shape[0]} px is smaller than the minimum side of {MIN_SIDE} px")
    return image


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Convert uint8/uint16 (full range) or float in [0, 1] to uint8 by rounding, never truncating."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ImageError("float image contains NaN or inf")
        return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    raise ImageError(f"unsupported image dtype {image.dtype}; expected uint8, uint16 or float")


def _png_bit_depth(data: bytes) -> int | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 24:
        return data[24]
    return None


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` as printable text: bytes that are not UTF-8 (e.g. a Latin-1 file name) shown as ``\\xff`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB (see :func:`decode_image`); errors name the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"{display_path(path)}: cannot read file ({exc.strerror or exc})") from exc
    return decode_image(data, display_path(path), max_pixels=max_pixels)


def decode_image(data: bytes, name: str, *, max_pixels: int | None = None) -> np.ndarray:
    """Decode encoded image bytes as HxWx3 uint8 RGB, applying EXIF orientation.

    Handled explicitly: greyscale (channel replicated), palette, opaque RGBA/LA (alpha dropped),
    CMYK (Pillow's conversion), 16-bit PNG/TIFF (rounded x*255/65535, never truncated).
    Refused with an :class:`ImageError` naming ``name``: truncated or non-image data,
    translucent alpha, more than ``max_pixels`` pixels (decompression bomb), sides under ``MIN_SIDE``.
    """
    from PIL import Image, ImageOps

    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            fmt = probe.format
    except Exception as exc:
        reason = "unknown or unsupported image format" if type(exc).__name__ == "UnidentifiedImageError" else str(exc)
        raise ImageError(f"{name}: not a readable image ({reason})") from exc
    if width * height > max_pixels:
        raise ImageError(f"{name}: {width}x{height} = {width * height:,} pixels exceeds the limit of "
                         f"{max_pixels:,} (decompression-bomb guard)")
    if fmt in ("PNG", "TIFF") and _png_bit_depth(data) in (None, 16):
        try:
            array = _read_high_bit_depth(data)
        except ImageError as exc:
            raise ImageError(f"{name}: {exc}") from exc
        if array is not None:
            return check_rgb(_exif_oriented(array, data), name)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            array = _pil_to_rgb(img, name)
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({exc})") from exc
    return check_rgb(array, name)


_EXIF_ORIENTATION = 0x0112


def _exif_oriented(array: np.ndarray, data: bytes) -> np.ndarray:
    """Apply the EXIF orientation tag of ``data`` (values 1-8, TIFF 6.0 / EXIF 2.3) to an HxWxC array,
    as ``PIL.ImageOps.exif_transpose`` does for 8-bit images (OpenCV's IMREAD_UNCHANGED ignores it)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # an unreadable EXIF block: Pillow's own path ignores it too
        orientation = 1
    steps = {
        2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(steps[orientation](array)) if orientation in steps else array


def _read_high_bit_depth(data: bytes) -> np.ndarray | None:
    """Decode 16-bit PNG/TIFF with OpenCV (Pillow truncates 16-bit RGB to 8 bits); None if 8-bit."""
    import cv2

    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint16:
        return None
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.shape[2] == 4:
        if (array[:, :, 3] != 65535).any():
            raise ImageError("16-bit image with a translucent alpha channel; composite it onto a background first")
        array = array[:, :, 2::-1]
    else:
        array = array[:, :, ::-1]
    return to_uint8(np.ascontiguousarray(array))


def _pil_to_rgb(img: Any, path: str) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(img)
        if array.dtype != np.uint16:
            array = array.astype(np.int64)
            if array.min() < 0 or array.max() > 65535:
                raise ImageError(f"{path}: 32-bit integer image with values outside 0-65535")
            array = array.astype(np.uint16)
        return np.repeat(to_uint8(array)[:, :, None], 3, axis=2)
    if mode == "F":
        raise ImageError(f"{path}: floating-point image; export it as 8- or 16-bit PNG first")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"))
        if (rgba[:, :, 3] != 255).any():
            raise ImageError(f"{path}: image has a translucent alpha channel; composite it onto a background first")
        return np.ascontiguousarray(rgba[:, :, :3])
    if mode in ("1", "L", "P", "CMYK", "YCbCr", "LAB", "HSV", "RGB"):
        return np.asarray(img.convert("RGB"))
    raise ImageError(f"{path}: unsupported image mode {mode!r}")


def _atomic_write(path: str | os.PathLike[str], write: Callable[[Any], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; final files get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` atomically (temporary file + rename)."""
    _atomic_write(path, lambda fh: fh.write(data))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically; NaN/inf are refused (they are not JSON)."""
    write_bytes(path, (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode())


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of an HxWx3 uint8 RGB array (deterministic: fixed zlib and filter settings).

    zlib level 1 with the RLE strategy: measured 9.6 -> 5.9 ms per image against level 3, with
    files 3% smaller for degraded images and 3.5% larger for clean ones. Every row with PNG's Up
    filter instead of libpng choosing one of five per row: on generate's inputs and targets
    12.1 -> 7.0 ms per image (CPU time), files 6% larger. Pixels, hence pixel hashes and dataset
    fingerprints, do not depend on these settings (``manifest.py``); file hashes do.
    """
    import cv2

    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
              cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(check_rgb(image)[:, :, ::-1]), params)
    if not ok:
        raise ImageError("PNG encoding failed")
    return buf.tobytes()


def write_image(path: str | os.PathLike[str], image: np.ndarray, *, jpeg_quality: int = 95) -> None:
    """Write an RGB uint8 image atomically: lossless PNG, or JPEG when the suffix says .jpg/.jpeg."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        write_bytes(path, encode_png(image))
    elif suffix in (".jpg", ".jpeg"):
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(check_rgb(image)).save(buf, format="JPEG", quality=jpeg_quality)
        write_bytes(path, buf.getvalue())
    else:
        raise ImageError(f"{path}: unsupported output suffix {suffix!r}; use .png (lossless) or .jpg")


def depth_problem(depth: np.ndarray, shape: tuple[int, ...] | None = None) -> str | None:
    """What is wrong with ``depth`` as a depth map (of ``shape[:2]`` when given), or None if it is a
    2-D array of finite real numbers."""
    if not isinstance(depth, np.ndarray):
        return f"depth must be a 2-D numpy array, got {type(depth).__name__}"
    if not (np.issubdtype(depth.dtype, np.integer) or np.issubdtype(depth.dtype, np.floating)):
        return f"depth map must hold real numbers (integer or float), got dtype {depth.dtype}"
    if depth.ndim != 2:
        return f"depth map must be 2-D (HxW), got shape {depth.shape}"
    if shape is not None and depth.shape != tuple(shape[:2]):
        return f"depth map shape {depth.shape} does not match the image's {tuple(shape[:2])}"
    if not np.isfinite(depth).all():
        return "depth map contains NaN or inf"
    return None


def _depth_suffix(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in DEPTH_SUFFIXES:
        raise ImageError(f"{display_path(path)}: unsupported depth file suffix {suffix!r}; valid: {', '.join(DEPTH_SUFFIXES)} "
                         "(16-bit single-channel PNG or a 2-D numpy array)")
    return suffix


def read_depth(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a depth map: a single-channel 16-bit PNG or a 2-D ``.npy`` array -> HxW float32.

    Values are returned as stored (distance-like, larger = farther; units do not matter, see
    ``degradations.depth.normalise_depth``). Refused with an :class:`ImageError` naming the file:
    missing or unreadable files, other suffixes, 8-bit PNGs (256 depth levels band visibly in
    haze), colour PNGs, arrays that are not 2-D, not real numbers, or not finite.
    """
    import cv2

    name, suffix = display_path(path), _depth_suffix(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"{name}: cannot read depth file ({exc.strerror or exc})") from exc
    if suffix == ".png":
        depth = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if depth is None:
            raise ImageError(f"{name}: not a readable PNG depth map")
        if depth.ndim != 2:
            raise ImageError(f"{name}: depth PNG has {depth.shape[2]} channels; expected one (greyscale 16-bit)")
        if depth.dtype != np.uint16:
            raise ImageError(f"{name}: depth PNG is {depth.dtype} ({8 * depth.itemsize}-bit); expected 16-bit, "
                             "since 8-bit depth bands visibly in haze. Save depth as 16-bit PNG or .npy")
    else:
        try:
            depth = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ImageError(f"{name}: not a readable .npy depth map ({exc})") from exc
    problem = depth_problem(depth)
    if problem:
        raise ImageError(f"{name}: {problem}")
    return depth.astype(np.float32)


def encode_depth_png(depth: np.ndarray) -> bytes:
    """HxW depth map -> 16-bit single-channel PNG bytes, min-max scaled to 0-65535 and rounded.

    Only relative depth survives (haze and rain normalise the map anyway); a constant map becomes
    all zeros. Deterministic: OpenCV's default PNG settings, fixed since ``generate`` first wrote depth.
    """
    import cv2

    d = depth.astype(np.float64)
    lo, hi = float(d.min()), float(d.max())
    scaled = np.zeros_like(d) if hi <= lo else (d - lo) / (hi - lo)
    ok, buf = cv2.imencode(".png", np.rint(scaled * 65535).astype(np.uint16))
    if not ok:
        raise ImageError("depth map PNG encoding failed")
    return buf.tobytes()


def stored_depth(depth: np.ndarray) -> np.ndarray:
    """``depth`` as ``generate`` stores it and reads it back: :func:`encode_depth_png`, decoded, float32 (what
    :func:`read_depth` returns for the stored file); pairs are sampled from this."""
    import cv2

    return cv2.imdecode(np.frombuffer(encode_depth_png(depth), np.uint8), cv2.IMREAD_UNCHANGED).astype(np.float32)


def write_depth(path: str | os.PathLike[str], depth: np.ndarray) -> None:
    """Write a depth map atomically: ``.png`` as :func:`encode_depth_png` (relative depth, 16-bit),
    ``.npy`` with its values and dtype as given. What :func:`read_depth` would refuse is refused
    here, with an :class:`ImageError` naming the file."""
    suffix = _depth_suffix(path)
    problem = depth_problem(depth)
    if problem:
        raise ImageError(f"{display_path(path)}: {problem}")
    if suffix == ".png":
        write_bytes(path, encode_depth_png(depth))
    else:
        buf = io.BytesIO()
        np.save(buf, depth, allow_pickle=False)
        write_bytes(path, buf.getvalue())


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def to_tensor(images: np.ndarray | list[np.ndarray], *, channels_last: bool = False) -> Any:
    """HxWx3 uint8 (or a list of same-size ones) -> NCHW float32 torch tensor in [0, 1].

    The tensor is contiguous in NCHW order (``torch.contiguous_format``); with ``channels_last`` it
    keeps the arrays' HxWx3 memory order instead (``torch.channels_last``, same values), which saves
    a reordering copy here and another in code that convolves in that layout (``ssim_per_image``).
    """
    import torch

    batch = np.stack([check_rgb(im) for im in images]) if isinstance(images, list) else check_rgb(images)[None]
    batch = batch if batch.flags.writeable else batch.copy()
    tensor = torch.from_numpy(batch).permute(0, 3, 1, 2)
    return (tensor if channels_last else tensor.contiguous()).float().div_(255.0)


def to_numpy(tensor: Any) -> list[np.ndarray]:
    """NCHW float tensor in [0, 1] -> list of HxWx3 uint8 arrays (rounded once, clipped)."""
    if tensor.ndim != 4 or tensor.shape[1] != 3:
        raise ImageError(f"expected an NCHW tensor with 3 channels, got shape {tuple(tensor.shape)}")
    array = tensor.detach().float().clamp(0, 1).mul(255.0).round().to("cpu").permute(0, 2, 3, 1).numpy()
    return [np.ascontiguousarray(a.astype(np.uint8)) for a in array]
