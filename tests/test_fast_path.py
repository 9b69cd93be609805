"""The short op sequence (numfmt.float.fast) and the counter-hash random bits.

The short sequence must give the general kernel's bits wherever it does not
flag an element as rare, with the same random words; the driver must fire it
(and its dense-block fallback) and agree with the general kernel end to end.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numfmt
from numfmt.core import elementwise as _elementwise
from numfmt.core.random import generator_bits, hash_bits
from numfmt.core.xp import NUMPY
from numfmt.float import native
from numfmt.float.fast import fast_plan, fast_round_bits
from numfmt.float.kernel import make_plan, round_bits
from numfmt.testing import assert_bits_equal

FAST_FORMATS = ["bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "float6_e3m2fn",
                "float6_e2m3fn", "float(e=5,m=7)", "float(e=8,m=1)", "float(e=3,m=1,specials=finite)"]  # fmt: skip
MODES = ["nearest_even", "stochastic"]
DTYPES = {np.float32: np.uint32, np.float64: np.uint64}


def plan_of(name, dtype, mode, overflow=None):
    fmt = numfmt.parse(name)
    rounding = numfmt.Rounding.parse(mode)
    bits = np.dtype(dtype).itemsize * 8 - 1 if rounding.is_stochastic else 0
    return make_plan(fmt, np.dtype(dtype), rounding, fmt.overflow if overflow is None else overflow, bits)


@pytest.mark.parametrize("dtype", list(DTYPES), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", FAST_FORMATS)
def test_the_fast_path_applies(name, mode, dtype):
    assert fast_plan(plan_of(name, dtype, mode)) is not None


@pytest.mark.parametrize(
    "name", ["float8_e4m3fnuz", "binary8p3se", "float8_e8m0fnu", "float(e=9,m=3)", "float(e=5,m=2,subnormals=flush)"]
)
def test_the_fast_path_declines_what_it_cannot_do(name):
    assert fast_plan(plan_of(name, np.float32, "nearest_even")) is None
    assert fast_plan(plan_of("float8_e4m3fn", np.float32, "toward_zero")) is None
    assert fast_plan(plan_of("bfloat16", np.float16, "nearest_even")) is None


def check_agrees(name, dtype, mode, overflow, patterns, words):
    plan = plan_of(name, dtype, mode, overflow)
    fp = fast_plan(plan)
    assert fp is not None
    u = np.asarray(patterns, DTYPES[dtype])
    rbits = np.asarray(words, DTYPES[dtype]) if plan.is_stochastic else None
    want, _ = round_bits(NUMPY, u, plan, rbits)
    got, rare = fast_round_bits(NUMPY, u, fp, rbits)
    np.testing.assert_array_equal(got[~rare], want[~rare])  # unsigned patterns: bits
    is_nan = (u << np.asarray(1, u.dtype)) > np.asarray(plan.inf_bits << 1, u.dtype)
    assert rare[is_nan].all()  # NaN never goes through the short sequence
    zero = (u << np.asarray(1, u.dtype)) == 0
    np.testing.assert_array_equal(got[zero], want[zero])  # zeros are right although flagged


def raw(bits):
    return st.lists(st.tuples(st.integers(0, 2**bits - 1), st.integers(0, 2**bits - 1)), min_size=1, max_size=64)


@given(
    st.sampled_from(FAST_FORMATS),
    st.sampled_from(MODES),
    st.sampled_from(["sat_none", "sat_finite", "sat_propagate"]),
    raw(32),
)
def test_fast_equals_general_float32(name, mode, overflow, pairs):
    check_agrees(name, np.float32, mode, numfmt.Overflow.parse(overflow), *zip(*pairs, strict=True))


@given(
    st.sampled_from(FAST_FORMATS),
    st.sampled_from(MODES),
    st.sampled_from(["sat_none", "sat_finite", "sat_propagate"]),
    raw(64),
)
def test_fast_equals_general_float64(name, mode, overflow, pairs):
    check_agrees(name, np.float64, mode, numfmt.Overflow.parse(overflow), *zip(*pairs, strict=True))


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float4_e2m1fn", "float(e=5,m=7)"])
@pytest.mark.parametrize("dtype", list(DTYPES), ids=lambda d: np.dtype(d).name)
def test_edges_around_max_and_smallest_normal(name, dtype):
    """Every pattern near the max, its overflow threshold and the smallest normal."""
    for mode in MODES:
        plan = plan_of(name, dtype, mode)
        fp = fast_plan(plan)
        centres = [plan.max_bits, int(fp.lo) + int(fp.span), plan.min_bits, plan.inf_bits]
        around = [0, 1 << (fp.drop - 1), 1 << fp.drop, 3 << (fp.drop - 1)]  # ties and carries
        steps = np.unique([s * c + k for c in around for s in (1, -1) for k in range(-16, 17)])
        u = np.concatenate([c + steps for c in centres]).astype(DTYPES[dtype])
        u = np.concatenate([u, u | DTYPES[dtype](1 << (plan.width - 1))])
        words = np.random.default_rng(1).integers(0, 2**63, size=u.size).astype(DTYPES[dtype])
        check_agrees(name, dtype, mode, plan.overflow, u, words)


def general_chop(x, name, mode, rbits):
    plan = plan_of(name, x.dtype, mode)
    out, _ = round_bits(NUMPY, x.view(DTYPES[x.dtype.type]), plan, rbits)
    return out.view(x.dtype)


@pytest.mark.parametrize("dtype", list(DTYPES), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", MODES)
def test_driver_blocks_sparse_and_dense_rare_elements(mode, dtype, monkeypatch):
    """Whole arrays: blocks with few rare elements, blocks of them, zeros, NaN (the NumPy driver)."""
    monkeypatch.setattr(_elementwise, "_BLOCK", 256)
    monkeypatch.setitem(native._state, "enabled", False)  # the compiled kernel has tests/test_ckernel.py
    rng = np.random.default_rng(3)
    parts = [rng.standard_normal(2000), rng.standard_normal(700) * 1e4, np.zeros(600), rng.standard_normal(900) * 1e-3,
             rng.standard_normal(1500), np.array([np.nan, np.inf, -np.inf, -0.0] * 10)]  # fmt: skip
    x = np.concatenate(parts).astype(dtype)
    for name in ["float8_e4m3fn", "float4_e2m1fn", "float16"]:
        key = 11 if mode == "stochastic" else None
        rbits = generator_bits(np.random.default_rng(11), x.size, x.itemsize * 8) if key else None
        assert_bits_equal(numfmt.chop(x, name, mode, key=key), general_chop(x, name, mode, rbits), nan_payload=True)


def test_hash_bits_are_uniform_and_independent_of_blocking():
    seed = [0x12345678, 0x9ABCDEF0, 7, 8]
    whole = hash_bits(NUMPY, seed, 0, 1 << 16, 32)
    blocks = np.concatenate([hash_bits(NUMPY, seed, s, 4096, 32) for s in range(0, 1 << 16, 4096)])
    np.testing.assert_array_equal(blocks, whole)
    # each bit is set in half the words (6 sigma), and no two words repeat
    ones = ((whole[:, None] >> np.arange(32, dtype=np.uint32)) & 1).sum(axis=0)
    assert np.all(np.abs(ones - whole.size / 2) <= 6 * np.sqrt(whole.size / 4))
    assert np.unique(whole).size == whole.size
    wide = hash_bits(NUMPY, seed, 0, 1 << 16, 64)
    ones = ((wide[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).sum(axis=0)
    assert np.all(np.abs(ones - wide.size / 2) <= 6 * np.sqrt(wide.size / 4))


def test_hash_bits_past_two_to_the_32_differ_from_the_start():
    seed = [1, 2, 3, 4]
    straddle = hash_bits(NUMPY, seed, 2**32 - 2, 4, 32)
    np.testing.assert_array_equal(straddle[:2], hash_bits(NUMPY, seed, 2**32 - 2, 2, 32))
    np.testing.assert_array_equal(straddle[2:], hash_bits(NUMPY, seed, 2**32, 2, 32))
    assert (hash_bits(NUMPY, seed, 2**32, 64, 32) != hash_bits(NUMPY, seed, 0, 64, 32)).all()


def test_seed_and_generator_give_the_same_stream():
    x = np.random.default_rng(0).standard_normal(50_000).astype(np.float32)
    a = numfmt.chop(x, "float8_e4m3fn", "stochastic", key=5)
    b = general_chop(x, "float8_e4m3fn", "stochastic", generator_bits(np.random.default_rng(5), x.size, 32))
    assert_bits_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("v", [0.03125, 0.25, 0.5, 0.96875])
def test_hashed_bits_round_up_with_probability_the_distance(v, dtype):
    """A JAX key (hashed bits), NumPy and jitted JAX input: binomial bounds at 6 sigma."""
    import jax
    import jax.numpy as jnp

    lo, hi, n = 1.0, 1.125, 200_000  # neighbours in float8_e4m3fn
    x = np.full(n, lo + v * (hi - lo), dtype)
    key = jax.random.key(2024)
    y = numfmt.chop(x, "float8_e4m3fn", "stochastic", key=key)
    count = int((y == hi).sum())
    assert abs(count - n * v) <= 6 * np.sqrt(n * v * (1 - v)) + 1
    yj = jax.jit(lambda a, k: numfmt.chop(a, "float8_e4m3fn", "stochastic", key=k))(jnp.asarray(x), key)
    assert_bits_equal(np.asarray(yj), y)
    # neighbouring elements are not correlated: pairs (up, up) occur with probability v**2
    up = (y == hi)[: n - n % 2].reshape(-1, 2)
    both = int(up.all(axis=1).sum())
    m = up.shape[0]
    assert abs(both - m * v * v) <= 6 * np.sqrt(m * v * v * (1 - v * v)) + 1


def test_random_words_agree_between_numpy_and_jax():
    import jax

    from numfmt.core.random import random_words
    from numfmt.core.xp import jax_namespace

    key = jax.random.key(9)
    for bits in (32, 64):
        a = random_words(NUMPY, key, (3, 50), bits)
        b = np.asarray(jax.jit(lambda k, bits=bits: random_words(jax_namespace(), k, (3, 50), bits))(key))
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.dtype(f"uint{bits}") and a.shape == (3, 50)
    gen = random_words(NUMPY, np.random.default_rng(4), (2, 5), 32)
    np.testing.assert_array_equal(gen.reshape(-1), generator_bits(np.random.default_rng(4), 10, 32))
