"""uirbench.rng: pinned values of every seed derivation and seeded initialisation.

These numbers feed the pinned dataset fingerprints (``pair_rng``), the training batches
(``child_rng``) and every model's initial weights; a change here must be deliberate, so each
function's first few outputs are written out.
"""

from __future__ import annotations

import hashlib
import math
import zlib

import numpy as np
import torch

from uirbench import rng


def test_keys_are_pinned_and_match_their_recipes():
    assert rng.key64("uir-v2") == 6355557121117613435
    assert rng.key64("uir-v2") == int.from_bytes(hashlib.sha256(b"uir-v2").digest()[:8], "big")
    assert rng.key32("router") == 1171452453 == zlib.crc32(b"router")


def test_child_rng_is_pinned_and_is_a_seed_sequence_child():
    assert rng.child_rng(0, 1, 2).random(3).tolist() == [0.053484165504532055, 0.5687422908638454, 0.5879161964855035]
    same = np.random.default_rng(np.random.SeedSequence(0, spawn_key=(1, 2))).random(5)
    assert np.array_equal(rng.child_rng(0, 1, 2).random(5), same)
    assert not np.array_equal(rng.child_rng(0, 2, 1).random(5), same)  # the key's order matters


def test_child_seed_and_torch_generators_are_pinned():
    assert rng.child_seed(0, 1, 2) == 1016617948
    assert rng.child_seed(7, 3) == 3842200183
    values = torch.rand(3, generator=rng.child_torch_generator(0, 1, 2))
    assert torch.equal(values, torch.tensor([0.581989049911499, 0.7994620203971863, 0.6637574434280396]))
    assert torch.equal(torch.rand(4, generator=rng.torch_generator(5)), torch.rand(4, generator=torch.Generator().manual_seed(5)))


def test_fan_in_bound_counts_input_channels_per_group_and_kernel():
    assert rng.fan_in_bound(torch.empty(8, 2, 3, 3)) == 1 / math.sqrt(18)
    assert rng.fan_in_bound(torch.empty(4, 3)) == 1 / math.sqrt(3)


def test_init_uniform_and_init_rand_are_pinned_and_differ_by_one_ulp():
    w, b = torch.empty(4, 3), torch.empty(4)
    rng.init_uniform_(w, b, rng.torch_generator(0))
    assert torch.equal(w.flatten()[:3], torch.tensor([-0.004322517663240433, 0.3097158372402191, -0.4751853346824646]))
    assert torch.equal(b[:3], torch.tensor([-0.55157071352005, -0.3823687434196472, -0.2379971146583557]))
    w2, b2 = torch.empty(4, 3), torch.empty(4)
    rng.init_rand_(w2, b2, rng.torch_generator(0))
    assert torch.equal(w2.flatten()[:3], torch.tensor([-0.004322528839111328, 0.3097158670425415, -0.4751853346824646]))
    assert torch.equal(b2[:3], b[:3])
    # the same law in two arithmetic forms: equal up to rounding, not bit-identical (why both exist)
    assert not torch.equal(w, w2) and (w - w2).abs().max() <= 6e-8
    assert w.abs().max() <= 1 / math.sqrt(3) and b.abs().max() <= 1 / math.sqrt(3)


def test_init_draws_weight_then_bias_and_skips_a_missing_bias():
    w, b = torch.empty(4, 3), torch.empty(4)
    rng.init_rand_(w, b, rng.torch_generator(1))
    generator = rng.torch_generator(1)
    w_only = torch.empty(4, 3)
    rng.init_rand_(w_only, None, generator)
    bound = 1 / math.sqrt(3)  # the bias takes the weight's bound and the generator's next draws
    assert torch.equal(w_only, w) and torch.equal(torch.rand(4, generator=generator) * (2 * bound) - bound, b)
    layer = torch.nn.Linear(3, 4)
    rng.init_uniform_(layer.weight, layer.bias, rng.torch_generator(2))
    assert layer.weight.requires_grad and layer.weight.grad_fn is None  # drawn in place, outside autograd


def test_private_rng_leaves_the_global_state_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with rng.private_rng():
        torch.nn.Linear(16, 16)  # draws default weights from the global RNG
        torch.rand(10)
    assert torch.equal(torch.rand(3), expected)
