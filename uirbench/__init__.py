"""uirbench: dataset + benchmark suite with reference models for universal image restoration.

The three registries hold the built-ins as soon as they are queried (third-party plugins join them
through the ``uirbench`` entry-point group), and one factory per kind builds an object by name:

>>> import uirbench
>>> "nafnet" in uirbench.MODELS and "haze" in uirbench.DEGRADATIONS and "psnr" in uirbench.METRICS
True
>>> uirbench.create_degradation("awgn", severity=2).name
'awgn'
"""

from __future__ import annotations

import importlib
from typing import Any

from uirbench.errors import UserError
from uirbench.registry import DEGRADATIONS, METRICS, MODELS, DegradationSpec, MetricSpec, ModelSpec, Registry

__version__ = "0.2.0"

_FACTORIES = {
    "create_degradation": ("uirbench.degradations", "create"),
    "create_model": ("uirbench.models", "create_model"),
    "create_metric": ("uirbench.metrics.base", "create_metric"),
}


def __getattr__(name: str) -> Any:
    """The factories, imported on first use (``import uirbench`` stays light: no torch, no numpy)."""
    if name in _FACTORIES:
        module, attribute = _FACTORIES[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'uirbench' has no attribute {name!r}")


__all__ = [
    "DEGRADATIONS", "METRICS", "MODELS", "DegradationSpec", "MetricSpec", "ModelSpec", "Registry", "UserError",
    "__version__", "create_degradation", "create_metric", "create_model",
]
