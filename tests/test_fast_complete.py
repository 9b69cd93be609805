"""The complete short sequence: the JAX rounding to bfloat16/TF32 from float32.

Where the format has the input's exponent range (``FastPlan.complete``),
``numfmt.chop`` on JAX rounds by the short sequence alone (NaN is the only
special case). It must equal the general kernel (``numfmt._kernel``) bit for
bit on every input: here on every upper half-pattern with the low bits at each
tie, edge and neighbour, on a stride through all 2**32 patterns and on
hypothesis raw bits, and, for bfloat16 round to nearest even, on ml_dtypes'
float32 -> bfloat16 cast.
"""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numfmt
from numfmt._fast import complete_round_bits, fast_plan
from numfmt._kernel import make_plan, round_bits
from numfmt._random import hash_bits
from numfmt._xp import NUMPY

COMPLETE = {"bfloat16": 16, "float(e=8,m=10)": 13}  # format: dropped bits d from float32


def plan_of(name, mode, dtype=np.float32):
    fmt, rounding = numfmt.parse(name), numfmt.Rounding.parse(mode)
    bits = np.dtype(dtype).itemsize * 8 - 1 if rounding.is_stochastic else 0
    return make_plan(fmt, np.dtype(dtype), rounding, fmt.overflow, bits)


def patterns(d):
    """Every upper part, with the low ``d`` bits at 0, 1, half-1, half, half+1, all ones; plus a stride."""
    high = np.arange(1 << (32 - d), dtype=np.uint64) << np.uint64(d)
    half = 1 << (d - 1)
    low = np.array([0, 1, half - 1, half, half + 1, (1 << d) - 1], np.uint64)
    edges = (high[:, None] | low[None, :]).reshape(-1)
    stride = np.arange(0, 1 << 32, 997, dtype=np.uint64)
    return np.concatenate([edges, stride]).astype(np.uint32)


@pytest.mark.parametrize("mode", ["nearest_even", "stochastic"])
@pytest.mark.parametrize("name", list(COMPLETE))
def test_complete_sequence_equals_the_general_kernel(name, mode):
    plan = plan_of(name, mode)
    fp = fast_plan(plan)
    assert fp is not None and fp.complete and fp.drop == COMPLETE[name]
    u = patterns(fp.drop)
    rbits = hash_bits(NUMPY, [1, 2, 3, 4], 0, u.size, 32) if plan.is_stochastic else None
    want, unrep = round_bits(NUMPY, u, plan, rbits)
    assert unrep is None
    np.testing.assert_array_equal(complete_round_bits(NUMPY, u, fp, rbits), want)
    # the JAX chop (which takes this path) under jit, with the same random words
    key = jax.random.key(7)
    if plan.is_stochastic:
        rbits = hash_bits(NUMPY, np.asarray(numfmt._random.seed_words(key)), 0, u.size, 32)
        want, _ = round_bits(NUMPY, u, plan, rbits)
    kw = {"key": key} if plan.is_stochastic else {}
    got = jax.jit(lambda x, **k: numfmt.chop(x, name, mode, **k))(jnp.asarray(u.view(np.float32)), **kw)
    np.testing.assert_array_equal(np.asarray(got).view(np.uint32), want)


def test_bfloat16_nearest_even_equals_ml_dtypes():
    u = patterns(16)
    x = u.view(np.float32)
    got = np.asarray(jax.jit(lambda v: numfmt.chop(v, "bfloat16"))(jnp.asarray(x))).view(np.uint32)
    nan = np.isnan(x)
    want = np.where(nan, 0, x).astype(ml_dtypes.bfloat16).astype(np.float32).view(np.uint32)
    np.testing.assert_array_equal(got[~nan], want[~nan])
    np.testing.assert_array_equal(got[nan], u[nan])  # NaN payloads pass unchanged


def test_specials_and_regimes():
    f = jax.jit(lambda v: numfmt.chop(v, "bfloat16"))
    cases = {  # input bits -> bfloat16 result bits (in float32)
        0x00000000: 0x00000000, 0x80000000: 0x80000000,  # +-0
        0x00000001: 0x00000000, 0x00008000: 0x00000000, 0x00008001: 0x00010000,  # subnormal ties, underflow
        0x00018000: 0x00020000, 0x807FFFFF: 0x80800000,  # subnormal tie to even, carry into the normals
        0x3F808000: 0x3F800000, 0x3F818000: 0x3F820000,  # normal ties
        0x7F7F7FFF: 0x7F7F0000, 0x7F7F8000: 0x7F800000, 0xFF7FFFFF: 0xFF800000,  # max, overflow to inf
        0x7F800000: 0x7F800000, 0xFF800000: 0xFF800000,  # inf
        0x7F800001: 0x7F800001, 0xFFC12345: 0xFFC12345, 0x7FFFFFFF: 0x7FFFFFFF,  # NaN unchanged
    }  # fmt: skip
    u = np.array(list(cases), np.uint32)
    got = np.asarray(f(jnp.asarray(u.view(np.float32)))).view(np.uint32)
    np.testing.assert_array_equal(got, np.array(list(cases.values()), np.uint32))


def test_not_complete_where_the_range_differs():
    for name in ["float16", "float8_e5m2", "float8_e4m3fn"]:
        fp = fast_plan(plan_of(name, "nearest_even"))
        assert fp is not None and not fp.complete
    assert not fast_plan(plan_of("bfloat16", "nearest_even", np.float64)).complete
    sat = numfmt.parse("bfloat16")
    plan = make_plan(sat, np.dtype(np.float32), numfmt.Rounding.NEAREST_EVEN, numfmt.Overflow.SAT_FINITE, 0)
    assert not fast_plan(plan).complete  # overflow to the max is not what the sequence gives
    with pytest.raises(ValueError, match="not complete"):
        complete_round_bits(NUMPY, np.zeros(1, np.uint32), fast_plan(plan_of("float16", "nearest_even")))


@given(st.sampled_from(list(COMPLETE)), st.sampled_from(["nearest_even", "stochastic"]),
       st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), min_size=1, max_size=64))  # fmt: skip
def test_complete_sequence_on_raw_bits(name, mode, pairs):
    plan = plan_of(name, mode)
    u, r = (np.array(c, np.uint32) for c in zip(*pairs, strict=True))
    rbits = r if plan.is_stochastic else None
    want, _ = round_bits(NUMPY, u, plan, rbits)
    np.testing.assert_array_equal(complete_round_bits(NUMPY, u, fast_plan(plan), rbits), want)
