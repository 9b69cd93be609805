"""Peak memory of NumPy ``chop``: at most about the input's size beyond the output.

tracemalloc sees NumPy's array buffers and is deterministic (unlike the
resident set size), so these are not timed tests. The block drivers' chunks
and the fast path's batches of rare elements are made smaller here (results
do not depend on their size) so that their
fixed few megabytes stay well below the bound for 2**20 elements;
``benchmarks/bench_memory.py`` measures larger arrays with the real sizes.
"""

from __future__ import annotations

import tracemalloc

import jax
import numpy as np
import pytest

import numfmt
import numfmt.block.chunks
import numfmt.core.elementwise
from numfmt.float import native

ROWS, COLS = 256, 4096  # 2**20 elements
BOUND = 1.1  # extra bytes / input bytes

# (format, rounding, key kind, random_bits, input kind)
CASES = [
    ("bfloat16", "nearest_even", None, None, "normal"),
    ("bfloat16", "nearest_even", None, None, "relu"),  # half zeros: zeros are rare for the fast path
    ("float8_e4m3fn", "nearest_even", None, None, "normal"),  # ~1% rare (below the normal range)
    ("float8_e4m3fn", "stochastic", "gen", None, "normal"),
    ("float8_e4m3fn", "stochastic", "jax", None, "relu"),
    ("posit8_0", "nearest_even", None, None, "normal"),
    ("posit16_1", "stochastic", "seed", None, "normal"),
    ("q3.12", "stochastic", "jax", None, "normal"),
    ("mxfp4_e2m1", "nearest_even", None, None, "normal"),
    ("mxfp4_e2m1", "stochastic", "gen", None, "normal"),
    ("mxfp4_e2m1", "stochastic", "jax", None, "normal"),
    ("mxfp8_e4m3", "nearest_even", None, None, "normal"),
    ("mxint8", "nearest_even", None, None, "normal"),
    ("bfp(m=7,block=32)", "nearest_even", None, None, "normal"),
    ("nvfp4", "nearest_even", None, None, "normal"),
    ("nvfp4", "stochastic_a", "gen", 31, "normal"),
    ("nvfp4", "stochastic_a", "jax", 31, "normal"),
    ("nf4", "nearest_even", None, None, "normal"),
    ("int8_per_tensor", "nearest_even", None, None, "normal"),
    ("int8_per_tensor", "stochastic_a", "gen", 31, "normal"),
    ("int8_per_channel", "nearest_even", None, None, "normal"),
    ("int8_per_channel(axis=1)", "stochastic_a", "jax", 31, "normal"),
    ("int8_g32", "nearest_even", None, None, "normal"),
    ("int4_asym_g128", "stochastic_a", "seed", 31, "normal"),
]


def _input(kind, dtype):
    x = np.random.default_rng(1).standard_normal((ROWS, COLS), dtype=np.float32).astype(dtype, copy=False)
    return np.maximum(x, 0, out=x) if kind == "relu" else x


def _key(kind):
    return {None: None, "gen": np.random.default_rng(0), "seed": 0, "jax": jax.random.key(0)}[kind]


def _extra(fn, x):
    """Peak traced bytes of ``fn()`` beyond its result, over ``x.nbytes``."""
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - out.nbytes) / x.nbytes


# float formats run on the compiled kernel and on the NumPy path; the other families on NumPy only
PATHS = [
    (*case, compiled)
    for case in CASES
    for compiled in ((True, False) if isinstance(numfmt.parse(case[0]), numfmt.FloatFormat) else (False,))
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("fmt", "rounding", "key", "random_bits", "kind", "compiled"), PATHS)
def test_chop_peak_memory(fmt, rounding, key, random_bits, kind, compiled, dtype, monkeypatch):
    monkeypatch.setattr(numfmt.block.chunks, "_CHUNK", 1 << 13)
    monkeypatch.setattr(numfmt.core.elementwise, "_RARE", 1 << 13)
    monkeypatch.setitem(native._state, "enabled", compiled)
    x = _input(kind, dtype)
    numfmt.chop(x[:2], fmt, rounding, key=_key(key), random_bits=random_bits)  # caches and lazy imports
    k = _key(key)
    extra = _extra(lambda: numfmt.chop(x, fmt, rounding, key=k, random_bits=random_bits), x)
    assert extra <= BOUND, f"chop to {fmt} ({rounding}, key {key}) peaks at {extra:.2f}x the input beyond its output"
