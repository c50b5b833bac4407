"""Offline handling of pretrained weights for pyiqa metrics (LPIPS, FID Inception).

Where the files live (``weights_dir`` plays the role of ``TORCH_HOME``):

* pyiqa's own files: ``$TORCH_HOME/hub/pyiqa``. pyiqa fixes this folder **when it is first
  imported** (``pyiqa.utils.download_util.DEFAULT_CACHE_DIR``), so a ``weights_dir`` must be given
  before anything imports pyiqa in the process; otherwise :func:`torch_home` raises.
* torchvision backbones: ``$TORCH_HOME/hub/checkpoints``, looked up at load time.

Before a metric is built, :func:`require` checks that every file exists and that its sha256
matches: torch hash-checks only what it downloads, never a cached file, and pyiqa loads LPIPS's
linear layers with ``strict=False``, so a wrong file loads silently (it gave LPIPS -0.0015).
Nothing is downloaded: a missing file raises :class:`MissingWeightsError` naming the file, its
expected sha256, where to put it and its URL, before pyiqa could try the network.

The LPIPS v0.1 linear layers are the one exception: the same file ships inside the torchmetrics
(and ``lpips``) wheels. When pyiqa's copy is missing and a wheel's copy has the expected full
sha256 (measured: torchmetrics 1.9 ``functional/image/lpips_models/alex.pth`` = pyiqa's
``LPIPS_v0.1_alex-df73285e.pth``), it is copied into the pyiqa folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from uirbench.errors import UserError
from uirbench.io import sha256_file, write_bytes

log = logging.getLogger(__name__)

PYIQA_URL = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/"


class MissingWeightsError(UserError, FileNotFoundError):
    """A pretrained weight file is missing or has the wrong sha256; the message says how to fix it."""


@dataclass(frozen=True)
class WeightFile:
    """One pretrained file: where its loader looks for it and how to check it.

    ``store``: ``"pyiqa"`` ($TORCH_HOME/hub/pyiqa) or ``"checkpoints"`` ($TORCH_HOME/hub/checkpoints).
    ``sha256``: the full hex digest where we measured it, else the 8-digit prefix that torch.hub
    puts in file names (``name-<sha256[:8]>.pth``), which is what torch.hub itself checks.
    """

    name: str
    store: str
    sha256: str
    url: str
    what: str
    bundled: tuple[tuple[str, str], ...] = ()
    """(package, path inside it) of copies shipped in installed wheels, checked by full sha256."""


ALEXNET = WeightFile("alexnet-owt-7be5be79.pth", "checkpoints", "7be5be79",
                     "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
                     "torchvision AlexNet ImageNet backbone of LPIPS, ~244 MB")
LPIPS_ALEX_LINEAR = WeightFile(
    "LPIPS_v0.1_alex-df73285e.pth", "pyiqa", "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    PYIQA_URL + "LPIPS_v0.1_alex-df73285e.pth", "LPIPS v0.1 linear layers on AlexNet, 6 kB",
    bundled=(("torchmetrics", "functional/image/lpips_models/alex.pth"), ("lpips", "weights/v0.1/alex.pth")))
FID_INCEPTION = WeightFile("pt_inception-2015-12-05-6726825d.pth", "pyiqa", "6726825d",
                           PYIQA_URL + "pt_inception-2015-12-05-6726825d.pth",
                           "InceptionV3 with the TensorFlow FID weights (as in pytorch-fid)")


def hub_dir(weights_dir: str | os.PathLike[str] | None) -> Path:
    """The torch hub folder used: ``weights_dir/hub`` or, without one, ``torch.hub.get_dir()``."""
    if weights_dir is not None:
        return Path(weights_dir).expanduser().resolve() / "hub"
    import torch.hub

    return Path(torch.hub.get_dir()).expanduser().resolve()


def store_dir(store: str, weights_dir: str | os.PathLike[str] | None) -> Path:
    """Folder where the loader of ``store`` looks (pyiqa's import-time folder once pyiqa is imported)."""
    if store == "checkpoints":
        return hub_dir(weights_dir) / "checkpoints"
    if store != "pyiqa":
        raise UserError(f"store must be 'pyiqa' or 'checkpoints', got {store!r}")
    if weights_dir is None and "pyiqa" in sys.modules:
        from pyiqa.utils.download_util import DEFAULT_CACHE_DIR

        return Path(DEFAULT_CACHE_DIR).expanduser().resolve()
    return hub_dir(weights_dir) / "pyiqa"


PERCEPTUAL_EXTRA = "pip install 'uirbench[perceptual]'"


def require_pyiqa(what: str) -> None:
    """Raise a UserError saying how to install pyiqa, the optional package behind LPIPS and the FID/KID
    Inception features (PolyForm Noncommercial licence, hence not in the default install)."""
    import importlib.util

    if importlib.util.find_spec("pyiqa") is None:
        raise UserError(f"{what} needs the optional package pyiqa (licence: PolyForm Noncommercial 1.0), which the default "
                        f"install leaves out: {PERCEPTUAL_EXTRA} (or `pip install pyiqa`)")


@contextlib.contextmanager
def torch_home(weights_dir: str | os.PathLike[str] | None) -> Iterator[None]:
    """Within this context ``TORCH_HOME = weights_dir`` (None: unchanged): check weights, import pyiqa
    and build models inside it so that checked and loaded files are the same.

    Raises if pyiqa was already imported with another folder or ``torch.hub.set_dir`` overrides
    TORCH_HOME: the files checked would not be the ones loaded.
    """
    if weights_dir is None:
        yield
        return
    import torch.hub

    home = str(Path(weights_dir).expanduser().resolve())
    previous = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = home
    try:
        if Path(torch.hub.get_dir()).resolve() != Path(home) / "hub":
            raise UserError(f"torch.hub.set_dir({torch.hub.get_dir()!r}) was called in this process and overrides "
                            f"weights_dir={home!r}; use weights_dir=None to load from the hub folder set there")
        if "pyiqa" in sys.modules:  # else pyiqa, imported inside this context, takes our TORCH_HOME
            from pyiqa.utils.download_util import DEFAULT_CACHE_DIR

            if Path(DEFAULT_CACHE_DIR).resolve() != Path(home) / "hub" / "pyiqa":
                raise UserError(f"pyiqa was already imported and looks for weights in {DEFAULT_CACHE_DIR}, not under "
                                f"weights_dir={home!r}: pyiqa fixes its folder when first imported. Pass weights_dir "
                                "(or set TORCH_HOME) before anything imports pyiqa, or use weights_dir=None")
        yield
    finally:
        if previous is None:
            os.environ.pop("TORCH_HOME", None)
        else:
            os.environ["TORCH_HOME"] = previous


@lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)  # size and mtime in the key: a replaced file is hashed again


def file_sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns)


def _bundled_copy(weight: WeightFile) -> Path | None:
    """An installed wheel's copy of ``weight`` with the full expected sha256, if any."""
    for package, relative in weight.bundled:
        spec = importlib.util.find_spec(package)  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            candidate = Path(root) / relative
            if candidate.is_file() and file_sha256(candidate) == weight.sha256:
                return candidate
    return None


def require(files: tuple[WeightFile, ...], weights_dir: str | os.PathLike[str] | None, user: str) -> dict[str, Path]:
    """Check ``files`` for metric ``user``; return ``{file name: path}`` or raise :class:`MissingWeightsError`.

    A missing file with a verified copy in an installed wheel (``WeightFile.bundled``) is copied
    into place first (atomic write) and logged.
    """
    paths, problems = {}, []
    for weight in files:
        path = store_dir(weight.store, weights_dir) / weight.name
        if not path.is_file() and (source := _bundled_copy(weight)) is not None:
            write_bytes(path, source.read_bytes())
            log.info("copied %s from %s (same sha256 %s...)", weight.name, source, weight.sha256[:16])
        if not path.is_file():
            problems.append(f"- {weight.name} ({weight.what}): not found at {path}")
        elif not (digest := file_sha256(path)).startswith(weight.sha256):
            problems.append(f"- {weight.name} ({weight.what}) at {path} has sha256 {digest[:16]}...; "
                            "it is a different or truncated file: delete it and fetch it again")
        else:
            paths[weight.name] = path
            continue
        problems.append(f"  expected sha256 {weight.sha256[:16]}..., from {weight.url}")
    if problems:
        raise MissingWeightsError(
            f"{user} needs pretrained weights that are missing or wrong (uirbench never downloads):\n" + "\n".join(problems)
            + "\nPut each file at the path shown (the folders follow TORCH_HOME: <dir>/hub/pyiqa and "
            "<dir>/hub/checkpoints), or pass weights_dir=<dir> holding hub/pyiqa and hub/checkpoints.")
    return paths
