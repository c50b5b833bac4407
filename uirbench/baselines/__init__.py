"""Restoration baselines, one file each, registered in ``MODELS``."""

from uirbench.baselines import airnet, classical, identity, nafnet, promptir, restormer  # noqa: F401  (register built-ins)
