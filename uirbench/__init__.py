"""uirbench: dataset + benchmark suite with reference models for universal image restoration."""

from uirbench.registry import DEGRADATIONS, METRICS, MODELS, Registry

__version__ = "0.2.0"
__all__ = ["DEGRADATIONS", "METRICS", "MODELS", "Registry", "__version__"]
