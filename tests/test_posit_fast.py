"""The short sequence for posits (numfmt.posit.fast) and its driver.

Wherever the sequence does not flag an element as rare it must give the
general kernel's bits (numfmt.posit.kernel); zeros must be right although
flagged; end to end ``chop`` must match the exact reference
(numfmt.fixed.reference) and SoftPosit.
"""

import numpy as np
import pytest
import softposit as sp
from hypothesis import given
from hypothesis import strategies as st

import numfmt
from numfmt.core import elementwise as _elementwise
from numfmt.core.xp import NUMPY
from numfmt.posit.fast import posit_fast_plan, posit_fast_round_bits
from numfmt.posit.format import PositFormat
from numfmt.posit.kernel import make_posit_plan
from numfmt.posit.reference import posit_round
from numfmt.testing import assert_bits_equal, boundary_values, float_bits

UINT = {np.float32: np.uint32, np.float64: np.uint64}
FAST = ["posit16_1", "posit16_2", "posit8_0", "posit8_2", "posit(n=13,es=3)", "posit(n=12,es=0)", "posit(n=5,es=1)"]


def plan_of(name, dtype, mode="nearest_even"):
    fmt = numfmt.parse(name)
    return make_posit_plan(fmt, np.dtype(dtype), numfmt.Rounding.parse(mode), numfmt.Overflow.SAT_FINITE, 0)


def expected(x, name):
    """Exact reference values (NaN for NaR)."""
    fmt = numfmt.parse(name)
    codes = np.array([posit_round(float(v), fmt.n, fmt.es) for v in x.reshape(-1)], np.uint64)
    return numfmt.decode(codes, fmt, dtype=np.float64).astype(x.dtype).reshape(x.shape)


def regime_points(name, dtype):
    """Every value, every bit-string midpoint, +-1 ulp around them, and specials."""
    fmt = numfmt.parse(name)
    values = numfmt.decode(np.arange(1 << fmt.n, dtype=np.uint64), fmt, dtype=np.float64)
    wider = PositFormat(fmt.n + 1, fmt.es)
    mids = numfmt.decode(np.arange(1, 1 << wider.n, 2, dtype=np.uint64), wider, dtype=np.float64)
    with np.errstate(over="ignore"):
        x = np.concatenate([values, mids, [np.inf, -np.inf, 0.0, -0.0, 1e300, -1e-300, np.nan]]).astype(dtype)
        return np.concatenate([x, np.nextafter(x, dtype(np.inf)), np.nextafter(x, -dtype(np.inf))])


def check_agrees(name, dtype, x):
    plan = plan_of(name, dtype)
    fp = posit_fast_plan(plan)
    assert fp is not None
    u = np.ascontiguousarray(x).view(UINT[dtype])
    want, _ = plan.round_bits(NUMPY, u)
    with np.errstate(all="ignore"):
        got, rare = posit_fast_round_bits(NUMPY, u, fp)
    np.testing.assert_array_equal(got[~rare], want[~rare])  # unsigned patterns: bits
    assert rare[~np.isfinite(x)].all()
    zero = x == 0
    np.testing.assert_array_equal(got[zero], want[zero])  # +-0 give +0 although flagged


# ------------------------------------------------------------ applicability
@pytest.mark.parametrize("dtype", list(UINT), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", FAST)
def test_the_fast_path_applies(name, dtype):
    assert posit_fast_plan(plan_of(name, dtype)) is not None


def test_the_fast_path_declines_what_it_cannot_do():
    assert posit_fast_plan(plan_of("posit32_2", np.float32)) is None  # 27 fraction bits > p - 2
    assert posit_fast_plan(plan_of("posit16_1", np.float32, "toward_zero")) is None
    assert posit_fast_plan(plan_of("posit8_0", np.float16)) is None  # float32 and float64 input only
    assert posit_fast_plan(plan_of("posit(n=4,es=1)", np.float32)) is None  # no fraction bits anywhere


# ------------------------------------------ regimes, ties, saturation, specials
@pytest.mark.parametrize("dtype", list(UINT), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", FAST)
def test_every_code_midpoint_and_neighbour(name, dtype):
    x = regime_points(name, dtype)
    check_agrees(name, dtype, x)
    got = numfmt.chop(x, name)
    assert_bits_equal(got, _elementwise._chop_block(NUMPY, x, plan_of(name, dtype), None)[0], nan_payload=True)
    if x.size > 3000:  # 16-bit formats: the Python reference on a sample (the general kernel: all of them)
        pick = np.random.default_rng(0).choice(x.size, 3000, replace=False)
        x, got = x[pick], got[pick]
    assert_bits_equal(got, expected(x, name), err_msg=name)


@given(st.sampled_from(FAST), float_bits(np.float32, st.integers(1, 48)))
def test_raw_float32_patterns_equal_the_general_kernel(name, x):
    check_agrees(name, np.float32, x)


@given(st.sampled_from(FAST + ["posit32_2"]), float_bits(np.float64, st.integers(1, 48)))
def test_raw_float64_patterns_equal_the_general_kernel(name, x):
    check_agrees(name, np.float64, x)


@given(st.data())
def test_boundary_values_vs_reference(data):
    name = data.draw(st.sampled_from(FAST))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    x = np.array(data.draw(st.lists(boundary_values(name, dtype=dtype), min_size=1, max_size=32)), dtype)
    check_agrees(name, dtype, x)
    assert_bits_equal(numfmt.chop(x, name), expected(x, name))


def test_posit16_1_chop_equals_softposit():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.integers(0, 2**32, 3000, dtype=np.uint32).view(np.float32),
                        (rng.standard_normal(3000) * 100).astype(np.float32)])  # fmt: skip
    codes = np.array([sp.convertDoubleToP16(float(v)).v for v in x], np.uint64)
    want = numfmt.decode(codes, numfmt.posit16_1, dtype=np.float64).astype(np.float32)
    assert_bits_equal(numfmt.chop(x, "posit16_1"), want)


# --------------------------------------------------------------- the driver
@pytest.mark.parametrize("dtype", list(UINT), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", ["posit16_1", "posit8_0"])
def test_driver_equals_the_general_kernel_over_many_blocks(name, dtype):
    """Blocks with no rare element, a few, and mostly rare ones (the dense fallback)."""
    n = 3 * _elementwise._FAST_BLOCK // np.dtype(dtype).itemsize + 123
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(n) * 4).astype(dtype)
    x[n // 3 : n // 2] *= 1e12  # beyond maxpos: rare
    special = rng.integers(0, n, 200)
    x[special[:50]] = np.nan
    x[special[50:100]] = np.inf
    x[special[100:150]] = -0.0
    x[special[150:]] = np.finfo(dtype).smallest_subnormal
    plan = plan_of(name, dtype)
    assert posit_fast_plan(plan) is not None
    got = numfmt.chop(x, name)
    assert_bits_equal(got, _elementwise._chop_block(NUMPY, x, plan, None)[0], nan_payload=True)


# ------------------------------------------------------- the same code on JAX
@pytest.mark.parametrize("name", ["posit16_1", "posit8_0"])
def test_jax_runs_the_same_sequence(name):
    """Eager JAX gives NumPy's bits and flags."""
    jnp = pytest.importorskip("jax.numpy")
    from numfmt.core.xp import jax_namespace

    x = np.concatenate([(np.random.default_rng(2).standard_normal(500) * 50), [0.0, -0.0, np.inf, np.nan, 1e30]])
    x = x.astype(np.float32)
    fp = posit_fast_plan(plan_of(name, np.float32))
    with np.errstate(all="ignore"):
        want, want_rare = posit_fast_round_bits(NUMPY, x.view(np.uint32), fp)
    got, rare = posit_fast_round_bits(jax_namespace(), jnp.asarray(x.view(np.uint32)), fp)
    np.testing.assert_array_equal(np.asarray(rare), want_rare)
    np.testing.assert_array_equal(np.asarray(got)[~want_rare], want[~want_rare])
