"""Scene depth for depth-aware degradations (haze, rain veil): normalising, a fallback prior.

Convention: degradations use *relative* depth ``d`` in [0, 1], float32, HxW: 0 is the nearest
part of the scene, 1 the farthest. A stored depth map is distance-like (larger = farther: metres,
millimetres, any monotone unit); inverse-depth or disparity maps (e.g. MiDaS output) must be
inverted before use. A map is normalised by a robust min-max (1st-99th percentiles, clipped) and
then blurred slightly, because depth edges that do not align exactly with image edges otherwise
leave bright or dark halos around objects once haze is added (REFERENCE Sec. 3).

Without a map, a deterministic, content-free prior stands in (``ground-plane``, see
:func:`ground_plane_prior`). Parameters record where depth came from: ``depth_source`` is
``"map"`` (the stored map is needed to replay) or ``"prior:<name>"`` (replay needs nothing).
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from uirbench.degradations.base import REFERENCE_SIDE, short_repr
from uirbench.errors import ParameterError
from uirbench.io import depth_problem, read_depth

SMOOTH_SIGMA = 1.5
"""Gaussian sigma (px at a 512-px short side) of the depth-edge smoothing; scales with the image."""
PERCENTILE_SAMPLES = 128
"""Percentiles are taken on a regular grid of about this many rows and columns (every k-th pixel),
which keeps normalisation ~15x cheaper than a full sort at 512 px and is deterministic."""
HORIZON = 0.4
"""Ground-plane prior: the horizon's height as a fraction of the image height, from the top."""


def load_depth(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a stored depth map as HxW float32, values as stored: :func:`uirbench.io.read_depth`,
    where depth files are decoded (errors name the file)."""
    return read_depth(path)


def check_depth(depth: np.ndarray, shape: tuple[int, ...] | None = None, what: str = "depth") -> np.ndarray:
    """Return ``depth`` if it is a 2-D finite real array (of ``shape[:2]`` when given), else raise a
    :class:`~uirbench.errors.ParameterError` prefixed by ``what``."""
    problem = depth_problem(depth, shape)
    if problem:
        raise ParameterError(f"{what}: {problem}")
    return depth


def normalise_depth(depth: np.ndarray) -> np.ndarray:
    """Distance-like HxW map -> relative depth float32 in [0, 1] (near 0, far 1).

    Robust min-max: ``d = clip((depth - p1) / (p99 - p1), 0, 1)`` with p1, p99 the 1st and 99th
    percentiles (taken on a regular grid subsample, see ``PERCENTILE_SAMPLES``), so a few outliers
    (sky at "infinity", sensor spikes) do not squash the rest of the scene. If p1 == p99 the full
    min-max is used; a constant map has no relative depth and is refused.
    """
    depth = check_depth(depth).astype(np.float32, copy=False)
    step = max(1, min(depth.shape) // PERCENTILE_SAMPLES)
    lo, hi = (float(v) for v in np.percentile(depth[::step, ::step], [1.0, 99.0]))
    if hi <= lo:
        lo, hi = float(depth.min()), float(depth.max())
    if hi <= lo:
        raise ParameterError(f"depth map is constant ({lo}): relative depth is undefined; "
                             "pass depth=None to use the ground-plane prior instead")
    out = depth - np.float32(lo)
    out *= np.float32(1.0 / (hi - lo))
    return np.clip(out, 0.0, 1.0, out=out)


def smooth_depth(depth01: np.ndarray) -> np.ndarray:
    """Slight Gaussian blur of relative depth (sigma ``SMOOTH_SIGMA`` px at 512, scaled) against halos.

    HxW float32 in, float32 out. The blur runs in float64: OpenCV's float32 Gaussian filter differs
    by a few ulp between its SSE, AVX2 and FMA code paths, which reaches the rounded image now and
    then; the float64 result cast to float32 does not depend on the CPU.
    """
    sigma = SMOOTH_SIGMA * min(depth01.shape) / REFERENCE_SIDE
    wide = depth01.astype(np.float64)
    # in place: OpenCV maps fresh pages for every array it allocates, numpy's allocator reuses freed ones
    cv2.GaussianBlur(wide, (0, 0), sigma, dst=wide, borderType=cv2.BORDER_REFLECT_101)
    return wide.astype(np.float32)


def ground_plane_prior(shape: tuple[int, ...]) -> np.ndarray:
    """Relative depth of a flat ground seen by a level camera, HxW float32 in [0, 1].

    A level pinhole camera at height h over flat ground sees the ground point on image row y
    (below the horizon row y_h) at distance Z(y) = h f / (y - y_h): distance grows from the bottom
    row to infinity at the horizon. Mapping it to [0, 1] by ``d = 1 - Z_bottom / Z`` gives

        d(y) = min(1, (H - 1 - y) / (H - 1 - y_h)),   y_h = HORIZON * (H - 1),

    i.e. 0 at the bottom row, rising linearly to 1 at the horizon, 1 above it (sky, far scenery).
    Deterministic, independent of the content and costs one column.
    """
    height, width = shape[:2]
    bottom = height - 1.0
    column = np.minimum((bottom - np.arange(height)) / (bottom * (1.0 - HORIZON)), 1.0).astype(np.float32)
    return np.ascontiguousarray(np.broadcast_to(column[:, None], (height, width)))


PRIORS = {"ground-plane": ground_plane_prior}
DEFAULT_PRIOR = "ground-plane"


def depth_source_of(depth: np.ndarray | None) -> str:
    """The ``depth_source`` parameter to record: ``"map"`` if a map is given, else the default prior."""
    return "map" if depth is not None else f"prior:{DEFAULT_PRIOR}"


def check_depth_source(name: str, depth_source: str) -> None:
    """Raise a :class:`~uirbench.errors.ParameterError` unless ``depth_source`` is ``"map"`` or ``"prior:<known prior>"``."""
    valid = ["map", *(f"prior:{p}" for p in PRIORS)]
    if not isinstance(depth_source, str) or depth_source not in valid:
        raise ParameterError(f"{name}: parameter depth_source={short_repr(depth_source)} is not valid; "
                             f"valid choices: {', '.join(valid)}")


def scene_depth(name: str, shape: tuple[int, ...], depth: np.ndarray | None, depth_source: str) -> np.ndarray:
    """Relative depth (HxW float32 in [0, 1]) that ``depth_source`` names, for the degradation ``name``.

    ``"map"``: ``depth`` (the stored map, same HxW as the image) normalised and smoothed; it is
    required. ``"prior:<name>"``: the named prior; a ``depth`` passed anyway is ignored, so replay
    reproduces what was sampled.
    """
    check_depth_source(name, depth_source)
    if depth_source != "map":
        return PRIORS[depth_source.removeprefix("prior:")](shape)
    if depth is None:
        raise ParameterError(f"{name}: depth_source='map' needs the depth map these parameters were sampled with; "
                             "pass it as depth=... (replay cannot reproduce the image without it)")
    return smooth_depth(normalise_depth(check_depth(depth, shape, what=f"{name}: depth")))
