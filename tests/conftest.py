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


def pytest_configure(config):
    config.addinivalue_line("markers", "internal_error: the test provokes an internal (non-user) error on purpose")


@pytest.fixture(autouse=True)
def no_internal_errors(request, monkeypatch):
    """Fail any test in which the CLI reported an internal error (a bug) unless the test is marked
    ``internal_error``: every user error must be a one-line ``UserError``, never a bug report or a traceback."""
    import uirbench.cli

    seen = []
    original = uirbench.cli.report_bug

    def record(command, exc):
        seen.append(f"{command}: {type(exc).__name__}: {exc}")
        original(command, exc)

    monkeypatch.setattr(uirbench.cli, "report_bug", record)
    yield
    if seen and request.node.get_closest_marker("internal_error") is None:
        pytest.fail(f"the CLI reported an internal error: {seen}")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real 512x512 RGB photograph (scikit-image, public domain)."""
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def small_image(astronaut) -> np.ndarray:
    """A 96x128 crop of a real photograph, for fast tests."""
    return np.ascontiguousarray(astronaut[40:136, 200:328])


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory, astronaut):
    """Six 64x80 crops of a real photograph as a folder source (default-suite splits: 3 train, 1 val, 2 test)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    for i in range(6):
        y, x = 60 * i, 50 + 40 * i
        Image.fromarray(np.ascontiguousarray(astronaut[y:y + 64, x:x + 80])).save(root / f"crop{i}.png")
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, photo_dir):
    """The default suite generated from ``photo_dir``: a complete, real uirbench dataset folder."""
    from uirbench.generate import GenerateConfig, generate

    out = tmp_path_factory.mktemp("tiny") / "data"
    summary = generate(GenerateConfig(source=str(photo_dir), out=str(out)))
    assert summary["complete"]
    return out


def simd_disabled_env() -> dict[str, str]:
    """The environment of a child process with numpy's and OpenCV's dispatched SIMD code (and FMA) switched off:
    what an older CPU would run, for tests that a degradation's output does not depend on the CPU."""
    numpy_targets = np.show_config(mode="dicts")["SIMD Extensions"]["found"]
    opencv_features = [f.strip("*?") for f in cv2.getCPUFeaturesLine().split() if f.startswith("*")]
    return dict(os.environ, NPY_DISABLE_CPU_FEATURES=",".join(numpy_targets),
                OPENCV_CPU_DISABLE=",".join([*opencv_features, "FMA3"]))
