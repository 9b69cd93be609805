"""The complete short sequence: the JAX rounding by numfmt.float.fast alone.

Where the format has the input's exponent range (``FastPlan.complete``),
``numfmt.chop`` on JAX rounds by the short sequence alone (NaN is the only
special case). It must equal the general kernel (``numfmt.float.kernel``) bit for
bit on every input: here on every upper half-pattern with the low bits at each
tie, edge and neighbour, on a stride through all 2**32 patterns and on
hypothesis raw bits, and, for bfloat16 round to nearest even, on ml_dtypes'
float32 -> bfloat16 cast.

Into a narrower exponent range (bfloat16, float16, float8 from float64;
float16, float8 from float32), round to nearest even, the subnormal range takes
the magic-number rounding and overflow a select: equal to the general kernel
bit for bit on every gap of the format (its lower end and tie, each +-1 input
ulp), the landmarks +-1 ulp (half the smallest subnormal, the smallest
subnormal and normal, the max, the overflow threshold), +-0, +-inf, NaN
payloads, the low bits of every format value at each edge, hypothesis raw bits
and boundary values, for every overflow policy, on NumPy and under jax.jit; a
broken magic constant is caught.
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numfmt
from numfmt.core.random import hash_bits
from numfmt.core.xp import NUMPY, jax_namespace
from numfmt.float.fast import complete_round_bits, fast_plan
from numfmt.float.grid import boundary_array, count
from numfmt.float.kernel import make_plan, round_bits
from numfmt.testing import boundary_values, float_bits

COMPLETE = {"bfloat16": 16, "float(e=8,m=10)": 13}  # format: dropped bits d from float32 (same range)


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
        rbits = hash_bits(NUMPY, np.asarray(numfmt.core.random.seed_words(key)), 0, u.size, 32)
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


def test_not_complete_where_it_cannot_be():
    # stochastic rounding into a narrower range is complete (tests/test_fast_complete_sr.py);
    # nearest even with fewer than 3 spare bits has no magic number for its subnormal range
    for name in ["float(e=5,m=22)", "float(e=6,m=22)"]:
        assert not fast_plan(plan_of(name, "nearest_even")).complete
    with pytest.raises(ValueError, match="not complete"):
        complete_round_bits(NUMPY, np.zeros(1, np.uint32), fast_plan(plan_of("float(e=5,m=22)", "nearest_even")))


@given(st.sampled_from(list(COMPLETE)), st.sampled_from(["nearest_even", "stochastic"]),
       st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), min_size=1, max_size=64))  # fmt: skip
def test_complete_sequence_on_raw_bits(name, mode, pairs):
    plan = plan_of(name, mode)
    u, r = (np.array(c, np.uint32) for c in zip(*pairs, strict=True))
    rbits = r if plan.is_stochastic else None
    want, _ = round_bits(NUMPY, u, plan, rbits)
    np.testing.assert_array_equal(complete_round_bits(NUMPY, u, fast_plan(plan), rbits), want)


NARROW = [
    (np.float64, n) for n in ["bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float6_e2m3fn", "float4_e2m1fn"]
]
NARROW += [(np.float32, n) for n in ["float16", "float8_e4m3fn", "float8_e5m2"]]
OVERFLOWS = list(numfmt.Overflow)


def narrow_plan(dtype, name, overflow=None):
    fmt = numfmt.parse(name)
    return make_plan(fmt, np.dtype(dtype), numfmt.Rounding.NEAREST_EVEN, overflow or fmt.overflow, 0)


def uint_of(dtype):
    return np.dtype(f"uint{np.dtype(dtype).itemsize * 8}")


def hard_patterns(dtype, name):
    """Every gap and landmark +-1 ulp, specials, NaN payloads, each format value's low bits at the edges."""
    fmt, U = numfmt.parse(name), uint_of(dtype)
    w = U.itemsize * 8
    man = {32: 23, 64: 52}[w]
    x = boundary_array(fmt, range(count(fmt) - 1), dtype)
    top = (1 << (w - 1)) - (1 << man)  # +inf
    nans = [top + 1, top + (1 << (man - 1)), top + 12345, (1 << (w - 1)) - 1]
    nans = np.array(nans + [n | (1 << (w - 1)) for n in nans], U)
    values = x[np.isfinite(x) & (x >= 0)].astype(dtype).view(U)
    d = man - fmt.man_bits
    low = np.array([1, (1 << (d - 1)) - 1, 1 << (d - 1), (1 << (d - 1)) + 1, (1 << d) - 1], U)
    edges = (values[:, None] & ~U.type((1 << d) - 1)) | low[None, :]
    # the format's subnormal range, patterns drawn uniformly below the smallest normal
    lo = np.array(float(fmt.smallest_normal), dtype).view(U)
    sub = np.random.default_rng(0).integers(0, int(lo), 20000, dtype=U, endpoint=True)
    u = np.concatenate([x.view(U), nans, edges.reshape(-1), sub])
    return np.concatenate([u, u ^ U.type(1 << (w - 1))])


def check_narrow(u, plan, fp, xp=NUMPY):
    want, _ = round_bits(NUMPY, u, plan)
    got = np.asarray(complete_round_bits(xp, xp.asarray(u, u.dtype), fp))
    return int(np.count_nonzero(got != want))


@pytest.mark.parametrize(("dtype", "name"), NARROW)
def test_narrow_nearest_even_is_complete(dtype, name):
    for overflow in OVERFLOWS:
        fp = fast_plan(narrow_plan(dtype, name, overflow))
        assert fp is not None and fp.complete and fp.magic is not None


@pytest.mark.parametrize(("dtype", "name"), NARROW)
def test_narrow_equals_the_general_kernel_at_every_boundary(dtype, name):
    u = hard_patterns(dtype, name)
    jx = jax_namespace()
    for overflow in OVERFLOWS:
        plan = narrow_plan(dtype, name, overflow)
        fp = fast_plan(plan)
        assert check_narrow(u, plan, fp) == 0
        want, _ = round_bits(NUMPY, u, plan)
        got = jax.jit(lambda v, fp=fp: complete_round_bits(jx, v, fp))(jnp.asarray(u))
        np.testing.assert_array_equal(np.asarray(got), want)
    # the chop that numfmt.emulate runs: jitted, default overflow
    want, _ = round_bits(NUMPY, u, narrow_plan(dtype, name))
    got = jax.jit(lambda v: numfmt.chop(v, name))(jnp.asarray(u.view(dtype)))
    np.testing.assert_array_equal(np.asarray(got).view(u.dtype), want)


def test_narrow_regimes_float64_to_bfloat16():
    f = jax.jit(lambda v: numfmt.chop(v, "bfloat16"))
    tiny, normal, big = 2.0**-133, 2.0**-126, (2 - 2.0**-7) * 2.0**127
    cases = {  # float64 input -> bfloat16 result
        tiny / 2: 0.0, np.nextafter(tiny / 2, 1): tiny, 1.5 * tiny: 2 * tiny, 2.5 * tiny: 2 * tiny,
        np.nextafter(normal, 0): normal, -np.nextafter(normal, 0): -normal, 5e-324: 0.0, -5e-324: -0.0,
        1 + 2.0**-8: 1.0, np.nextafter(1 + 2.0**-8, 2): 1 + 2.0**-7, big + 2.0**119: np.inf,
        np.nextafter(big + 2.0**119, 0): big, -big - 2.0**119: -np.inf, -np.inf: -np.inf, 1e300: np.inf,
    }  # fmt: skip
    x = np.array(list(cases), np.float64)
    got = np.asarray(f(jnp.asarray(x)))
    np.testing.assert_array_equal(got.view(np.uint64), np.array(list(cases.values())).view(np.uint64))


@given(st.sampled_from(NARROW), st.sampled_from(OVERFLOWS), st.data())
def test_narrow_on_raw_bits_and_boundary_values(case, overflow, data):
    dtype, name = case
    plan = narrow_plan(dtype, name, overflow)
    raw = data.draw(float_bits(dtype, st.integers(1, 32)))
    near = np.array([data.draw(boundary_values(name, dtype=dtype)) for _ in range(8)], dtype)
    u = np.concatenate([raw.reshape(-1), near]).view(uint_of(dtype))
    assert check_narrow(u, plan, fast_plan(plan)) == 0


@pytest.mark.parametrize("name", ["bfloat16", "float8_e4m3fn"])
def test_a_broken_magic_constant_is_caught(name):
    plan = narrow_plan(np.float64, name)
    fp = fast_plan(plan)
    u = hard_patterns(np.float64, name)
    m = float(fp.magic)
    q = float(numfmt.parse(name).smallest_subnormal)
    for wrong in [m / 2, m * 2, m + q, m - q]:
        magic = {"magic": np.float64(wrong), "magic_bits": np.float64(wrong).view(np.uint64)}
        broken = dataclasses.replace(fp, binade=None, **magic)  # the sequence of saturating policies
        assert check_narrow(u, plan, broken) > 0, wrong


@pytest.mark.parametrize("name", ["bfloat16", "float8_e4m3fn", "float8_e5m2"])
def test_a_broken_overflow_threshold_is_caught(name):
    plan = narrow_plan(np.float64, name)
    fp = fast_plan(plan)
    u = hard_patterns(np.float64, name)
    for wrong in [fp.over_at - np.uint64(1), fp.over_at + np.uint64(1)]:
        assert check_narrow(u, plan, dataclasses.replace(fp, binade=None, over_at=wrong)) > 0, wrong


@pytest.mark.parametrize(("dtype", "name"), [(np.float64, n) for n in ["bfloat16", "float8_e4m3fn", "float8_e5m2"]]
                         + [(np.float32, "float16")])  # fmt: skip
def test_a_broken_binade_constant_is_caught(dtype, name):
    # the default (non-saturating) policy takes the per-binade magic number
    plan = narrow_plan(dtype, name)
    fp = fast_plan(plan)
    assert fp.binade is not None
    assert check_narrow(hard_patterns(dtype, name), plan, fp) == 0
    u = hard_patterns(dtype, name)
    e_lo, e_hi, m_add, exp_mask = fp.binade
    U = type(e_lo)
    one = U(1 << {np.float32: 23, np.float64: 52}[dtype])  # one binade
    for wrong in [(e_lo - one, e_hi, m_add), (e_lo + one, e_hi, m_add), (e_lo, e_hi - one - one, m_add),
                  (e_lo, e_hi, m_add + one), (e_lo, e_hi, m_add - one)]:  # fmt: skip
        assert check_narrow(u, plan, dataclasses.replace(fp, binade=(*wrong, exp_mask))) > 0, wrong
