"""The short float sequence for fixed point (numfmt.fixed.fast) and its driver.

Wherever the sequence does not flag an element as rare it must give the
general kernel's bits (numfmt.fixed.kernel), and end to end ``chop`` must
match the exact Fraction/int reference (numfmt.fixed.reference) on every
code, midpoint and neighbour, and on raw bit patterns.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numfmt
from numfmt.core import elementwise as _elementwise
from numfmt.core import xp as _xp
from numfmt.core.xp import NUMPY
from numfmt.fixed.fast import fixed_fast_plan, fixed_fast_round_bits
from numfmt.fixed.format import FixedOverflow
from numfmt.fixed.kernel import make_fixed_plan
from numfmt.fixed.reference import fixed_round
from numfmt.testing import assert_bits_equal, boundary_values, float_bits

UINT = {np.float32: np.uint32, np.float64: np.uint64}
# (spec, overflow): saturating and wrapping, signed and unsigned, negative counts
FAST = [("int8", "saturate"), ("uint8", "saturate"), ("q3.12", "saturate"), ("q3.4", "wrap"), ("int16", "wrap"),
        ("uq2.3", "wrap"), ("q-2.6", "saturate"), ("fixed(i=5,f=-2,signed=false)", "wrap"), ("int4", "saturate"),
        ("fixed(i=7,f=8,overflow=wrap)", "wrap"), ("q7.8", "saturate"), ("uint2", "wrap"),
        ("fixed(i=-130,f=140)", "saturate"), ("fixed(i=100,f=-90)", "wrap")]  # fmt: skip


def plan_of(spec, dtype, overflow, mode="nearest_even"):
    fmt = numfmt.parse(spec)
    return make_fixed_plan(fmt, np.dtype(dtype), numfmt.Rounding.parse(mode), FixedOverflow.parse(overflow), 0)


def expected(x, spec, overflow):
    """Exact reference values: NaN where there is no code."""
    fmt = numfmt.parse(spec)
    ov = FixedOverflow.parse(overflow)
    codes = [fixed_round(float(v), fmt, overflow=ov) for v in x.reshape(-1)]
    vals = [np.nan if c is None else float(fmt.code_to_value(c % (1 << fmt.bits))) for c in codes]
    return np.array(vals, np.float64).astype(x.dtype).reshape(x.shape)


def points(spec, dtype):
    """Every value, every midpoint, +-1 ulp around them, out-of-range and special inputs."""
    fmt = numfmt.parse(spec)
    codes = np.arange(1 << fmt.bits, dtype=np.uint64)
    values = np.sort(numfmt.decode(codes, fmt, dtype=np.float64))
    q = float(fmt.resolution)
    mids = np.concatenate([values + q / 2, [values[0] - q / 2]])
    far = [values[-1] * 3 + q, values[0] * 3 - q, 2.0**40, -(2.0**40), 0.2 * q, -0.2 * q, -0.0, 0.0, np.inf, -np.inf]
    x = np.concatenate([values, mids, far, [np.nan]]).astype(dtype)
    with np.errstate(over="ignore"):
        return np.concatenate([x, np.nextafter(x, dtype(np.inf)), np.nextafter(x, -dtype(np.inf))])


def check_agrees(spec, dtype, overflow, x):
    """The sequence equals the general kernel wherever it does not flag the element; NaN is flagged."""
    plan = plan_of(spec, dtype, overflow)
    fp = fixed_fast_plan(plan)
    assert fp is not None
    u = np.ascontiguousarray(x).view(UINT[dtype])
    want, _ = plan.round_bits(NUMPY, u)
    with np.errstate(all="ignore"):
        got, rare = fixed_fast_round_bits(NUMPY, u, fp)
    np.testing.assert_array_equal(got[~rare], want[~rare])  # unsigned patterns: bits
    assert rare[np.isnan(x)].all()
    return got, rare


# ------------------------------------------------------------ applicability
@pytest.mark.parametrize("dtype", list(UINT), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("spec, overflow", FAST)
def test_the_fast_path_applies(spec, overflow, dtype):
    assert fixed_fast_plan(plan_of(spec, dtype, overflow)) is not None


@pytest.mark.parametrize(
    "spec, dtype, overflow, mode",
    [
        ("int8", np.float32, "saturate", "toward_zero"),  # nearest-even only
        ("int8", np.float32, "saturate", "stochastic"),
        ("int32", np.float32, "saturate", "nearest_even"),  # more bits than float32 holds
        ("fixed(i=20,f=2)", np.float32, "saturate", "nearest_even"),  # 23 bits > p - 2
        ("fixed(i=110,f=-100)", np.float32, "wrap", "nearest_even"),  # 3 * 2**22 * W beyond float32
        ("int8", np.float16, "saturate", "nearest_even"),  # float32 and float64 input only
    ],
)
def test_the_fast_path_declines_what_it_cannot_do(spec, dtype, overflow, mode):
    assert fixed_fast_plan(plan_of(spec, dtype, overflow, mode)) is None


# -------------------------------------------- normal, ties, overflow, specials
@pytest.mark.parametrize("dtype", list(UINT), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("spec, overflow", FAST)
def test_every_code_midpoint_and_neighbour(spec, overflow, dtype):
    x = points(spec, dtype)
    check_agrees(spec, dtype, overflow, x)
    got = numfmt.chop(x, numfmt.parse(spec), overflow=overflow)
    plan = plan_of(spec, dtype, overflow)
    assert_bits_equal(got, _elementwise._chop_block(NUMPY, x, plan, None)[0], nan_payload=True)
    if x.size > 3000:  # 16-bit formats: the Python reference on a sample (the general kernel: all of them)
        pick = np.random.default_rng(0).choice(x.size, 3000, replace=False)
        x, got = x[pick], got[pick]
    assert_bits_equal(got, expected(x, spec, overflow), err_msg=f"{spec} {overflow}")


@given(st.sampled_from(FAST), float_bits(np.float32, st.integers(1, 48)))
def test_raw_float32_patterns_equal_the_general_kernel(case, x):
    check_agrees(case[0], np.float32, case[1], x)


@given(st.sampled_from(FAST), float_bits(np.float64, st.integers(1, 48)))
def test_raw_float64_patterns_equal_the_general_kernel(case, x):
    check_agrees(case[0], np.float64, case[1], x)


@given(st.data())
def test_boundary_values_vs_reference(data):
    spec, overflow = data.draw(st.sampled_from(FAST))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    fmt = numfmt.parse(spec)
    x = np.array(data.draw(st.lists(boundary_values(fmt, dtype=dtype), min_size=1, max_size=32)), dtype)
    check_agrees(spec, dtype, overflow, x)
    assert_bits_equal(numfmt.chop(x, fmt, overflow=overflow), expected(x, spec, overflow))


# --------------------------------------------------------------- the driver
@pytest.mark.parametrize("dtype", list(UINT), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("spec, overflow", [("int8", "saturate"), ("fixed(i=7,f=8,overflow=wrap)", "wrap")])
def test_driver_equals_the_general_kernel_over_many_blocks(spec, overflow, dtype):
    """Blocks with no rare element, a few, and mostly rare ones (the dense fallback); NaN payloads kept."""
    n = 3 * _elementwise._FAST_BLOCK // np.dtype(dtype).itemsize + 123
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(n) * 60).astype(dtype)
    x[n // 3 : n // 2] *= 1e6  # mostly beyond the range: rare under wrap
    special = rng.integers(0, n, 200)
    x[special[:50]] = np.nan
    u = x.view(UINT[dtype])
    u[special[50:100]] = np.asarray(np.inf, dtype).view(u.dtype) | np.asarray(5, u.dtype)  # signaling NaN
    x[special[100:150]] = np.inf
    x[special[150:]] = -0.0
    plan = plan_of(spec, dtype, overflow)
    assert fixed_fast_plan(plan) is not None
    got = numfmt.chop(x, numfmt.parse(spec), overflow=overflow)
    want, _ = _elementwise._chop_block(NUMPY, x, plan, None)
    assert_bits_equal(got, want, nan_payload=True)
    assert_bits_equal(got, expected(x, spec, overflow))


# ---------------------------------------------- minimum/maximum on NumPy
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint32, np.int64])
@pytest.mark.parametrize("n", [1, 255, 256, 1000, 4096])
def test_minimum_maximum_against_a_scalar_are_numpys(dtype, n):
    rng = np.random.default_rng(n)
    a = (rng.standard_normal((2, n)) * 100).astype(dtype)
    if a.dtype.kind == "f":
        a[0, :: 7] = np.nan
        a[1, :: 5] = -0.0
    b = np.asarray(3, dtype)[()]
    for name in ("minimum", "maximum"):
        want = getattr(np, name)(a, b).view(f"u{a.itemsize}")
        np.testing.assert_array_equal(_xp.NUMPY.into(name, a, b).view(want.dtype), want)
        np.testing.assert_array_equal(getattr(_xp.NUMPY, name)(a, b).view(want.dtype), want)


# ------------------------------------------------------- the same code on JAX
@pytest.mark.parametrize("spec, overflow", [("int8", "saturate"), ("q3.4", "wrap"), ("uint8", "saturate")])
def test_jax_runs_the_same_sequence(spec, overflow):
    """Eager JAX gives NumPy's bits (normal-range inputs: XLA may flush subnormals)."""
    jnp = pytest.importorskip("jax.numpy")
    x = np.concatenate([(np.random.default_rng(2).standard_normal(500) * 50), [0.0, -0.0, np.inf, np.nan, 1e30]])
    x = x.astype(np.float32)
    fp = fixed_fast_plan(plan_of(spec, np.float32, overflow))
    with np.errstate(all="ignore"):
        want, want_rare = fixed_fast_round_bits(NUMPY, x.view(np.uint32), fp)
    got, rare = fixed_fast_round_bits(_xp.jax_namespace(), jnp.asarray(x.view(np.uint32)), fp)
    np.testing.assert_array_equal(np.asarray(rare), np.asarray(want_rare) | np.isnan(x))
    np.testing.assert_array_equal(np.asarray(got)[~np.asarray(rare)], want[~np.asarray(rare)])
