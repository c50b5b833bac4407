"""What every metric shares: input checks, per-image scoring of a batch, and the printed conventions.

Metrics are frozen dataclasses registered in ``METRICS`` with a :class:`uirbench.registry.MetricSpec`
(``higher_is_better``, ``needs_reference``, ``needs_weights``, ``per_image``) and built by :func:`create_metric`,
whose keywords are the metric's dataclass fields (its conventions). A per-image metric is called as
``metric(restored, target)`` on NCHW float32 RGB tensors in [0, 1] and returns one score per image
(float64 tensor of shape [B]); a dataset score is the **mean of per-image scores**, never a score of
the pooled batch (torchmetrics' default batch PSNR pools the error and reads 22.45 dB where the
mean of per-image PSNRs is 22.92 dB). Set-level metrics (``per_image=False``: fid, kid) compare
two sets of images through features and return one number.

Every metric has ``spec() -> dict``: the conventions behind its numbers (colour space, border crop,
data range, window, network, ...). The same image pair scores 20.86 dB in RGB and 25.50 dB in
BT.601 Y, so :func:`metric_spec` is printed beside every result.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from uirbench.errors import UserError
from uirbench.registry import METRICS

DEFAULT_CONVENTIONS = {"color_space": "rgb", "crop_border": 0, "data_range": 1.0}
"""The run-wide conventions of ``compute_per_image`` and ``uirbench evaluate`` when none is given."""

AVERAGING = "mean of per-image scores"
"""How per-image metrics summarise a dataset; set-level metrics (fid, kid) give one score per set."""

def check_pair(restored: torch.Tensor, target: torch.Tensor) -> None:
    """Raise unless both are same-shape NCHW 3-channel floating tensors with values in [0, 1]."""
    for what, x in (("restored", restored), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{what}: expected a torch.Tensor (NCHW float32 RGB in [0, 1]), got {type(x).__name__}")
        check_images(x, what)
    if restored.shape != target.shape:
        raise UserError(f"restored {tuple(restored.shape)} and target {tuple(target.shape)} must have the same shape")
    if restored.device != target.device:
        raise UserError(f"restored is on {restored.device} but target on {target.device}; move both to one device")


def check_images(x: torch.Tensor, what: str = "images") -> None:
    """Raise unless ``x`` is an NCHW 3-channel floating tensor with finite values in [0, 1]."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise UserError(f"{what}: expected an NCHW tensor with 3 (RGB) channels, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise UserError(f"{what}: expected a floating tensor in [0, 1], got {x.dtype}; uirbench.io.to_tensor converts uint8")
    if x.numel() == 0:
        raise UserError(f"{what}: empty tensor of shape {tuple(x.shape)}")
    lo, hi = torch.aminmax(_dense_view(x))
    if not (lo >= 0 and hi <= 1):  # also false for NaN
        raise UserError(f"{what}: values must lie in [0, 1], got min {float(lo):.6g}, max {float(hi):.6g}; "
                         "clamp model outputs (x.clamp(0, 1)) before scoring")


def _dense_view(x: torch.Tensor) -> torch.Tensor:
    """``x`` permuted so that its memory is contiguous if it is dense in any dimension order
    (e.g. channels-last): reductions over it then run 4x faster."""
    view = x.permute(sorted(range(x.ndim), key=x.stride, reverse=True))
    return view if view.is_contiguous() else x


def conventions_of(name: str) -> tuple[str, ...]:
    """The settings metric ``name`` takes (``create_metric`` keywords: its dataclass fields), e.g.
    ``('color_space', 'crop_border', 'data_range')`` for psnr, ``('weights_dir', 'extractor')`` for fid."""
    return tuple(f.name for f in dataclasses.fields(METRICS.get(name)) if f.init)


def create_metric(name: str, **settings: Any) -> Any:
    """The metric ``name`` (see ``uirbench list metrics``) with ``settings`` (its conventions, see :func:`conventions_of`).

    A setting the metric does not take is refused, never dropped: the number would not mean what was asked.

    >>> create_metric("psnr", color_space="y").spec()["color_space"]
    'BT.601 Y (16-235, MATLAB rgb2ycbcr)'
    >>> create_metric("lpips", color_space="y")
    Traceback (most recent call last):
    ...
    uirbench.errors.UserError: metric 'lpips' takes no setting color_space; its settings: weights_dir
    """
    valid = conventions_of(name)
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise UserError(f"metric {name!r} takes no setting {', '.join(unknown)}; its settings: {', '.join(valid) or 'none'}")
    return METRICS.get(name)(**settings)


def _per_image_metric(name: str, conventions: dict[str, Any]) -> Any:
    if not METRICS.spec(name).per_image:
        per_image = [n for n in METRICS.names() if METRICS.spec(n).per_image]
        raise UserError(f"metric {name!r} is set-level (one score for a whole set); per-image metrics: {', '.join(per_image)}")
    taken = conventions_of(name)
    ignored = [f"{k}={v!r}" for k, v in conventions.items() if k not in taken and v != DEFAULT_CONVENTIONS[k]]
    if ignored:
        raise UserError(f"metric {name!r} cannot score with {', '.join(ignored)} (its settings: {', '.join(taken)}); "
                        "score it in a separate call")
    return create_metric(name, **{k: v for k, v in conventions.items() if k in taken})


def compute_per_image(names: list[str] | tuple[str, ...], restored: torch.Tensor, target: torch.Tensor, *,
                      color_space: str = "rgb", crop_border: int = 0, data_range: float = 1.0) -> dict[str, torch.Tensor]:
    """Score a batch with several per-image metrics: ``{name: float64 tensor [B]}``.

    ``restored``/``target``: NCHW float32 RGB in [0, 1], same shape. The conventions go to every
    metric that takes them (psnr, ssim); a metric that cannot honour a non-default one (lpips on Y) is refused.

    >>> import torch
    >>> clean = torch.full((2, 3, 16, 16), 0.5)
    >>> scores = compute_per_image(["psnr"], clean + 0.01, clean)
    >>> [round(v, 2) for v in scores["psnr"].tolist()]
    [40.0, 40.0]
    """
    conventions = {"color_space": color_space, "crop_border": crop_border, "data_range": data_range}
    metrics = {name: _per_image_metric(name, conventions) for name in names}
    return {name: metric(restored, target) for name, metric in metrics.items()}


def metric_spec(names: list[str] | tuple[str, ...], *, color_space: str = "rgb", crop_border: int = 0,
                data_range: float = 1.0) -> dict[str, Any]:
    """The conventions behind each named metric's numbers, as plain JSON values (print them with scores)."""
    conventions = {"color_space": color_space, "crop_border": crop_border, "data_range": data_range}
    spec: dict[str, Any] = {"averaging": AVERAGING}
    for name in names:
        registered = METRICS.spec(name)
        metric = create_metric(name, **{k: v for k, v in conventions.items() if k in conventions_of(name)})
        spec[name] = {"higher_is_better": registered.higher_is_better, "per_image": registered.per_image, **metric.spec()}
    return spec
