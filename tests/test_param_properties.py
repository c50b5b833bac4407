"""Property: a replay with one parameter replaced by any JSON value returns an image or raises a UserError.

For every registered degradation variant (aliases skipped) and every mixed recipe, start from the
valid severity-3 params of a small real crop, replace ONE node of the params tree (a top-level value,
an element of a nested list such as ``rgb2cam`` or rain's ``layers``, or, for chains, anything inside
``stages``, usually one stage's parameter) by an arbitrary JSON value or a scaled copy of the valid
one, and replay. The replay must either return an HxWx3 uint8 image of the input's shape or raise
:class:`~uirbench.errors.UserError` (the one-line errors of the CLI's ``--param`` and ``--params-in``),
never another exception or warning, and must stay within a memory bound: a traced peak (numpy
allocations, ``tracemalloc``) under 256 MB, with the address space capped at 2 GB above the current
size on Linux so that a runaway allocation fails fast instead of exhausting the machine.

``derandomize=True``: the examples are a fixed function of the test, so CI is reproducible.
"""

from __future__ import annotations

import copy
import math
import resource
import sys
import tracemalloc
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
import skimage.data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uirbench.degradations import RECIPES, create
from uirbench.errors import UserError
from uirbench.registry import DEGRADATIONS

IMAGE = np.ascontiguousarray(skimage.data.astronaut()[100:132, 200:240])  # 32x40 px of a real photo
TARGETS = [n for n in DEGRADATIONS.names() if DEGRADATIONS.spec(n).alias_of is None] + list(RECIPES)
PEAK_BYTES = 256 * 2**20
ADDRESS_MARGIN = 2 * 2**30

HUGE_INTS = [-1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63), 10**30, 10**400]
ODD_FLOATS = [0.0, -0.0, 0.5, 1e-300, 5e-324, 1e300, -1e300, 1.7976931348623157e308, math.inf, -math.inf, math.nan]
LEAVES = (st.none() | st.booleans() | st.integers() | st.sampled_from(HUGE_INTS)
          | st.floats() | st.sampled_from(ODD_FLOATS) | st.text(max_size=12))
JSON = st.recursive(LEAVES, lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=6), children, max_size=4), max_leaves=10)
SCALES = [-1.0, 0.0, 0.5, 2.0, 10.0, 1e3, 1e6, 1e12]


def valid_params(name: str) -> dict:
    return create(name, severity=3).sample(np.random.default_rng(0), IMAGE)


VALID = {name: valid_params(name) for name in TARGETS}


def node_paths(tree, prefix: tuple = ()) -> list[tuple]:
    """Paths (tuples of dict keys and list indices) to every node below the root of a params tree."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    paths = []
    for key, value in items:
        paths.append((*prefix, key))
        paths.extend(node_paths(value, (*prefix, key)))
    return paths


def replaced(tree, path: tuple, value):
    """A deep copy of ``tree`` with the node at ``path`` set to ``value``."""
    tree = copy.deepcopy(tree)
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return tree


def near(original) -> st.SearchStrategy:
    """Values close to a valid one: the same number scaled (towards range ends and far past them) or shifted."""
    if isinstance(original, bool) or not isinstance(original, (int, float)):
        return st.nothing()
    numbers = [original * s for s in SCALES] + [original + 1, original - 1]
    if isinstance(original, int):
        numbers += [int(n) for n in numbers if math.isfinite(n)]
    return st.sampled_from(numbers)


_address_cap: list[int] = []


@contextmanager
def memory_bound():
    """Trace the peak of Python/numpy allocations; on Linux also cap the address space 2 GB above its size
    at the first example (a fixed cap: memory that failing examples keep alive cannot ratchet it up)."""
    limit = None
    if sys.platform.startswith("linux"):
        limit = resource.getrlimit(resource.RLIMIT_AS)
        if not _address_cap:
            with open("/proc/self/status") as f:
                _address_cap.append(next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:")) + ADDRESS_MARGIN)
        if limit[1] == resource.RLIM_INFINITY or _address_cap[0] < limit[1]:
            resource.setrlimit(resource.RLIMIT_AS, (_address_cap[0], limit[1]))
    tracemalloc.start()
    try:
        yield
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, limit)
        assert peak < PEAK_BYTES, f"replay allocated {peak / 2**20:.0f} MB (bound {PEAK_BYTES / 2**20:.0f} MB)"


def test_the_valid_params_replay():
    for name, params in VALID.items():
        out = type(create(name)).replay(IMAGE, params)
        assert out.shape == IMAGE.shape and out.dtype == np.uint8


@pytest.mark.parametrize("name", TARGETS)
@settings(max_examples=100, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_one_replaced_parameter_gives_an_image_or_a_user_error(name, data):
    params = VALID[name]
    path = data.draw(st.sampled_from(node_paths(params)), label="path")
    original = params
    for key in path:
        original = original[key]
    value = data.draw(JSON | near(original), label="value")
    cls = type(create(name))
    with memory_bound(), warnings.catch_warnings():
        warnings.simplefilter("error")  # a NaN cast or overflow is a silent wrong image: fail on it
        try:
            out = cls.replay(IMAGE, replaced(params, path, value))
        except UserError:
            return
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == IMAGE.shape
