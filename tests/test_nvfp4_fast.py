"""NVFP4's float64 quotients (numfmt.block.nvfp4) vs the exact reference, on NumPy and
under jax.jit: raw bit patterns, exact ties of the element grid (x * g / s a
midpoint), +-1 ulp around them, the clamp at 6, subnormal results, zero blocks."""

import functools
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numfmt
from numfmt.block.reference import as_dtype, quantize_block, tensor_scale
from numfmt.float.format import FloatFormat
from numfmt.testing import assert_bits_equal

SIZE = 48  # one shape: one compilation per block size
OUT = {np.dtype(np.float32): FloatFormat(8, 23), np.dtype(np.float64): FloatFormat(11, 52)}
MODES = ["nearest_even", "toward_zero", "toward_positive", "nearest_away", "to_odd"]


def reference(x, f, mode="nearest_even"):
    g = tensor_scale([float(v) for v in x], f)
    res = []
    for start in range(0, x.size, f.block_size):
        block = [float(v) for v in x[start : start + f.block_size]]
        res += quantize_block(block, f, mode, g=g, out=OUT[x.dtype])[2]
    return as_dtype(res, x.dtype)


@functools.cache
def jitted(f, mode):
    return jax.jit(lambda v: numfmt.chop(v, f, mode))


def check(x, f=numfmt.nvfp4, mode="nearest_even", jit=True):
    finite = np.abs(x[np.isfinite(x)])
    if x.dtype == np.float64 and finite.size and finite.max() >= 2688 * 2.0**150:
        with pytest.raises(ValueError, match="rounds to 0"):
            numfmt.chop(x, f, mode)
        return
    want = reference(x, f, mode)
    if want is None:
        with pytest.raises(ValueError, match="overflow"):
            numfmt.chop(x, f, mode)
        return
    assert_bits_equal(numfmt.chop(x, f, mode), want, err_msg=f"{f} {mode} {x.tolist()}: ")
    if jit:
        got = jitted(f, mode)(jnp.asarray(x))
        assert_bits_equal(np.asarray(got), want, err_msg=f"jit {f} {mode} {x.tolist()}: ")


def padded(values, dtype):
    return np.concatenate([np.asarray(values, dtype), np.zeros(SIZE - len(values), dtype)])


def raw32():
    words = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=SIZE)
    centre = st.integers(1, 254)
    item = st.tuples(st.integers(0, 1), st.integers(0, 10), st.integers(0, 2**23 - 1))
    near = st.lists(item, min_size=1, max_size=SIZE)
    clustered = st.builds(lambda c, items: [(s << 31) | (max(c - d, 0) << 23) | m for s, d, m in items], centre, near)
    return st.one_of(words, clustered).map(lambda w: padded(np.array(w, np.uint32).view(np.float32), np.float32))


@given(x=raw32())
def test_raw_float32_patterns_numpy_and_jit(x):
    check(x)


def tie_blocks(g_exp: int):
    """x = T * s / g with T a tie of the e2m1 grid (or a grid point), g = 2**g_exp, and
    block scales s with odd 4-bit significands: the quotient is exactly T."""
    amax_t = Fraction(2688) / Fraction(2) ** g_exp  # g = 2688 / amax_t = 2**g_exp exactly
    g = Fraction(2) ** g_exp
    rows = []
    for sig in (8, 9, 11, 13, 15):
        for j in (-9, -6, -3, 0, 3, 5):
            s = Fraction(sig, 8) * Fraction(2) ** j  # an e4m3 value
            if s > 448:
                continue
            amax_b = 6 * s / g  # s = RN(amax_b * g / 6) exactly
            block = [amax_b]
            for t in (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, 0.5, 3, 4.5, 6):
                block.append(-Fraction(t) * s / g if len(block) % 2 else Fraction(t) * s / g)
            rows.append(block[:16] + [0] * (16 - len(block[:16])))
    rows.append([amax_t] + [0] * 15)
    rows.append([0] * 16)  # a zero block
    flat = [v for r in rows for v in r]
    x = np.array([float(v) for v in flat], np.float32)
    assert all(Fraction(float(a)) == b for a, b in zip(x, flat, strict=True))  # every value exact
    # and +-1 ulp around each
    return x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))


@pytest.mark.parametrize("g_exp", [-20, 0, 7, 30])
def test_exact_ties_and_neighbours(g_exp):
    for x in tie_blocks(g_exp):
        for mode in MODES:
            check(x, mode=mode)


def test_ties_round_to_even():
    x, _, _ = tie_blocks(0)
    q = numfmt.chop(x, "nvfp4")
    # block 1: s = 1 * 2**-9 (sig 8, j -9), g = 1: x / s are the ties; even neighbours win
    s = 2.0**-9
    assert (np.abs(q[1:8]) / s).tolist() == [0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0]


def test_subnormal_results_and_saturated_tensor_scale():
    # amax_t below 2688 / float32 max: g saturates at float32's max, results are subnormal
    x = padded([1e-45, -3e-44, 7e-42, 1.1e-38, -2e-39, 5e-40], np.float32)
    check(x)
    assert np.count_nonzero(numfmt.chop(x, "nvfp4")) > 0


def test_clamp_and_large_values():
    big = np.finfo(np.float32).max
    check(padded([big / 4, big / 5, -big / 7, 1e30, 3.0], np.float32))
    check(padded([6.0, 6.5, 7.0, 100.0, -1000.0, 2688.0, 2689.0], np.float32))


def test_stochastic_thresholds_hit_exactly_under_jit():
    """g = 9 and s = 9: x * g / s = x exactly, a multiple of 2**-31 element quanta;
    the random word at each x's threshold rounds up only if the quotient is exact
    (a product by a rounded reciprocal of 9 can miss it by an ulp)."""
    from numfmt.block import nvfp4 as _nvfp4
    from numfmt.core import xp as _xp
    from numfmt.core.rounding import Rounding

    f, n = numfmt.nvfp4, 31
    amax_t = np.float32(2688 / 9)
    assert tensor_scale([float(amax_t)], f) == 9
    rng = np.random.default_rng(5)
    blocks = [[float(amax_t)] + [0.0] * 15]
    for _ in range(64):
        x = np.float32(6.0) * rng.random(15, np.float32)
        blocks.append([6.0, *x.tolist()])  # s = RN(6 * 9 / 6) = 9
    xb = np.array(blocks, np.float32)
    rbits = np.zeros(xb.shape, np.uint64)
    for i, block in enumerate(blocks):
        for k, v in enumerate(block):
            quantum = Fraction(1, 2) if abs(v) < 2 else Fraction(1) if abs(v) < 4 else Fraction(2)
            frac = (Fraction(v) / quantum) % 1
            rbits[i, k] = ((2**n - int(frac * 2**n)) % 2**n) << (64 - n)  # v_N + R = 2**N when inexact
    want = []
    for block, rb in zip(blocks, rbits, strict=True):
        rnd = [int(r) >> (64 - n) for r in rb]
        want.append(quantize_block(block, f, "stochastic", random=rnd, n_bits=n, g=Fraction(9))[2])
    want = np.array([[float(v) for v in row] for row in want], np.float32)
    jx = _xp.jax_namespace()

    def run(xp, xb, rb):
        return _nvfp4.quantize(xp, f, np.dtype(np.float32), Rounding.STOCHASTIC, n, xb, None, rb)[0]

    assert_bits_equal(run(_xp.NUMPY, xb, rbits), want)
    got = jax.jit(lambda a, b: run(jx, a, b))(jnp.asarray(xb), jnp.asarray(rbits))
    assert_bits_equal(np.asarray(got), want)


def raw64():
    words = st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=SIZE)
    item = st.tuples(st.integers(0, 1), st.integers(0, 12), st.integers(0, 2**52 - 1))
    near = st.lists(item, min_size=1, max_size=SIZE)
    centre = st.integers(1, 2046)
    clustered = st.builds(lambda c, items: [(s << 63) | (max(c - d, 0) << 52) | m for s, d, m in items], centre, near)
    return st.one_of(words, clustered).map(lambda w: padded(np.array(w, np.uint64).view(np.float64), np.float64))


@settings(max_examples=80)  # Fractions of float64 extremes are slow
@given(x=raw64(), mode=st.sampled_from(MODES))
def test_raw_float64_patterns_numpy_and_jit(x, mode):
    check(x, mode=mode)


@settings(max_examples=60)
@given(x=raw64(), mode=st.sampled_from(["stochastic_a", "stochastic_b", "stochastic_c"]), seed=st.integers(0, 2**32))
def test_float64_stochastic_vs_reference(x, mode, seed):
    f, n = numfmt.nvfp4, 47
    if np.abs(x[np.isfinite(x)]).max(initial=0.0) >= 2688 * 2.0**150:
        return  # refused: test_raw_float64_patterns_numpy_and_jit
    nb = -(-x.size // f.block_size)
    rbits = np.random.default_rng(seed).integers(0, 2**64, size=(nb, f.block_size), dtype=np.uint64)
    g = tensor_scale([float(v) for v in x], f)
    want = []
    for i, start in enumerate(range(0, x.size, f.block_size)):
        block = [float(v) for v in x[start : start + f.block_size]]
        rnd = [int(r) >> (64 - n) for r in rbits[i, : len(block)]]
        want += quantize_block(block, f, mode, random=rnd, n_bits=n, g=g, out=OUT[x.dtype])[2]
    assert_bits_equal(numfmt.chop(x, f, mode, key=seed, random_bits=n), as_dtype(want, x.dtype))


def test_float64_ties_and_exact_quotients():
    for x in tie_blocks(3):
        check(x.astype(np.float64))
        # 53-bit neighbours of the ties
        x64 = x.astype(np.float64)
        check(np.nextafter(x64, np.inf))
        check(np.nextafter(x64, -np.inf))


def test_float64_stochastic_random_bits_limit():
    x = np.ones(16)
    with pytest.raises(ValueError, match="at most 47 random bits"):
        numfmt.chop(x, "nvfp4", "stochastic", key=0)
    with pytest.raises(ValueError, match="at most 47 random bits"):
        numfmt.chop(x, "nvfp4", "stochastic_a", key=0, random_bits=48)


@given(raw32())
@settings(max_examples=50)
def test_one_level_variant_has_no_tensor_scale(x):
    # tensor_scale=False: block scale RN_e4m3fn(amax / 6) alone (g = 1), as the reference defines it.
    f = numfmt.nvfp4.replace(tensor_scale=False)
    check(x, f)


def test_float64_tensor_scale_that_rounds_to_zero_gives_nan_under_jit():
    x = padded([2688 * 2.0**151, 1.0, -3.0], np.float64)
    with pytest.raises(ValueError, match="rounds to 0"):
        numfmt.chop(x, numfmt.nvfp4)
    got = np.asarray(jax.jit(lambda v: numfmt.chop(v, numfmt.nvfp4))(jnp.asarray(x)))
    assert np.isnan(got).all()
