"""Seed derivation and seeded initialisation, in one place (DESIGN: "Randomness is an argument").

Seeds: a run has one seed; every independent stream (a generated pair, a training sample, an
adapter's init) gets its own child, keyed by what it is, never by when it runs. ``child_rng`` and
``child_torch_generator`` derive those children with ``np.random.SeedSequence(seed, spawn_key=key)``;
``key64`` / ``key32`` turn names into key words.

Initialisation: PyTorch's default law for conv/linear layers, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
for weight and bias, redrawn from an explicit ``torch.Generator`` so that the global RNG is never
read. It exists in two arithmetic forms that differ by up to one float32 ulp when the bound is not
a power of two; each feeds pinned models, so both are kept, under their own names:
``init_uniform_`` (the baselines) and ``init_rand_`` (UIR-LoRA).

torch is imported inside the functions that need it, so ``import uirbench.rng`` stays cheap.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

DEFAULT_SEED = 0
"""Seed of the generator a model draws its weights from when none is given."""


# -- seeds -------------------------------------------------------------------------------------
def key64(text: str) -> int:
    """A 64-bit spawn-key word for ``text``: the first 8 bytes of its UTF-8 SHA-256, big-endian, in [0, 2**64).

    Used by ``generate.pair_rng`` (suite name, image id, pair key), so pair bytes depend on names only.
    """
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def key32(text: str) -> int:
    """A 32-bit spawn-key word for ``text``: the CRC-32 of its UTF-8 bytes, in [0, 2**32).

    For keys named by short names: the stages of a mixed degradation chain, UIR-LoRA's adapters and router.
    """
    return zlib.crc32(text.encode())


def child_rng(seed: int, *key: int) -> np.random.Generator:
    """The numpy generator of child ``key`` of ``seed``: ``default_rng(SeedSequence(seed, spawn_key=key))``.

    ``key``: non-negative ints (e.g. ``key64`` words, or a training (step, index)). A pure function
    of (seed, key): the draws do not depend on processing order, workers or shards.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def child_seed(seed: int, *key: int) -> int:
    """A 32-bit seed in [0, 2**32) for child ``key`` of ``seed``: the first word of its SeedSequence state."""
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1)[0])


def torch_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (``torch.Generator().manual_seed(seed)``)."""
    import torch

    return torch.Generator().manual_seed(seed)


def child_torch_generator(seed: int, *key: int) -> torch.Generator:
    """A CPU ``torch.Generator`` for child ``key`` of ``seed``, seeded with ``child_seed(seed, *key)``.

    A pure function of (seed, key), e.g. (seed, step, sample offset) for a training batch's noise.
    """
    return torch_generator(child_seed(seed, *key))


@contextmanager
def private_rng() -> Iterator[None]:
    """Restore the global CPU torch RNG on exit: layer constructors draw default weights from it.

    Build layers inside this block, then redraw their weights with ``init_uniform_`` / ``init_rand_``.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        yield


# -- initialisation ----------------------------------------------------------------------------
def fan_in_bound(weight: torch.Tensor) -> float:
    """1 / sqrt(fan_in) of a conv/linear weight [out, in / groups, *kernel]: fan_in = ``weight[0].numel()``."""
    return 1.0 / math.sqrt(weight[0].numel())


def init_uniform_(weight: torch.Tensor, bias: torch.Tensor | None, generator: torch.Generator) -> None:
    """Overwrite ``weight`` then ``bias`` (if any) in place with U(-b, b), b = ``fan_in_bound(weight)``.

    Drawn on the CPU in the parameter's dtype with ``Tensor.uniform_(-b, b)`` (computes from + u * (to - from)).
    Used by ``baselines.blocks.init_weights`` (NAFNet, Restormer, PromptIR, AirNet).
    """
    import torch

    bound = fan_in_bound(weight)
    with torch.no_grad():
        for param in (weight, bias):
            if param is not None:
                param.copy_(torch.empty(param.shape, dtype=param.dtype).uniform_(-bound, bound, generator=generator))


def init_rand_(weight: torch.Tensor, bias: torch.Tensor | None, generator: torch.Generator) -> None:
    """Overwrite ``weight`` then ``bias`` (if any) in place with U(-b, b), b = ``fan_in_bound(weight)``.

    Drawn in float32 on ``generator.device`` as ``torch.rand * (2 b) - b``; not bit-identical to
    ``init_uniform_`` (see the module docstring). Used by UIR-LoRA: ``uir_lora.backbone`` (the tiny
    backbone's convs and linears), ``uir_lora.router`` (the learned router) and ``uir_lora.lora`` (the
    LoRA down-projections A, with ``bias=None``).
    """
    import torch

    bound = fan_in_bound(weight)
    with torch.no_grad():
        for param in (weight, bias):
            if param is not None:
                param.copy_(torch.rand(param.shape, generator=generator, device=generator.device) * (2 * bound) - bound)
