"""Restoration baselines, one file each, registered in ``MODELS``."""
