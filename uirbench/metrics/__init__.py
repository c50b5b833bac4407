"""Image-quality metrics registered in ``METRICS``."""
