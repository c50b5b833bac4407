"""Test set-up: one thread everywhere (small torch/numpy ops are 10-100x slower with 2 threads here)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import cv2
import numpy as np
import pytest
import torch

torch.set_num_threads(1)
cv2.setNumThreads(1)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real 512x512 RGB photograph (scikit-image, public domain)."""
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def small_image(astronaut) -> np.ndarray:
    """A 96x128 crop of a real photograph, for fast tests."""
    return np.ascontiguousarray(astronaut[40:136, 200:328])
