"""The fast kernel against the exact scalar reference (Fractions), for
arbitrary formats, every variant, subnormal rule, overflow policy and mode,
on raw float32 and float64 bit patterns. Grouped by regime."""

import itertools
from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import numfmt
from numfmt.core.xp import NUMPY
from numfmt.float.kernel import make_plan, round_bits
from numfmt.float.reference import round_value
from numfmt.testing import assert_bits_equal, float_bits, formats

DETERMINISTIC = ["nearest_even", "nearest_away", "toward_zero", "toward_positive", "toward_negative", "to_odd"]


# the variants of every kind, E <= 9, M <= 12, any bias: values may reach beyond the input dtype
FORMATS = formats(max_bits=22, exact_in=None, exp_bits=(1, 9), man_bits=(0, 12))


def reference_array(x, fmt, mode, **kw):
    out = []
    for v in x.astype(np.float64):
        r = round_value(float(v), fmt, numfmt.Rounding.parse(mode), **kw)
        out.append(float(r))
    return np.array(out, np.float64)


def check(x, fmt, mode):
    try:
        got = numfmt.chop(x, fmt, mode)
    except ValueError:
        return  # result beyond the input dtype: test_errors covers this
    want = reference_array(x, fmt, mode).astype(x.dtype)
    assert_bits_equal(got, want, err_msg=f"{fmt} {mode}: ")


@given(FORMATS, st.sampled_from(DETERMINISTIC), float_bits(np.float32, shape=st.integers(1, 24)))
def test_float32_patterns(fmt, mode, x):
    check(x, fmt, mode)


@given(FORMATS, st.sampled_from(DETERMINISTIC), float_bits(np.float64, shape=st.integers(1, 24)))
def test_float64_patterns(fmt, mode, x):
    check(x, fmt, mode)


@given(FORMATS, st.sampled_from(DETERMINISTIC), st.lists(st.floats(-4, 4, allow_nan=False), min_size=1, max_size=24),
       st.sampled_from(["normal", "subnormal", "underflow", "overflow"]))  # fmt: skip
def test_regimes(fmt, mode, values, regime):
    scale = {
        "normal": Fraction(2) ** ((fmt.emin + fmt.emax) // 2),
        "subnormal": fmt.smallest_normal / 2,
        "underflow": fmt.smallest_subnormal / 4,
        "overflow": fmt.max_value,
    }[regime]
    x = np.array(values, np.float64) * float(scale)
    check(x[np.isfinite(x)], fmt, mode)


@given(FORMATS, st.sampled_from(DETERMINISTIC))
def test_ties_and_specials(fmt, mode):
    vals = [fmt.code_to_value(c) for c in range(min(1 << fmt.bits, 512))]
    vals = sorted({v for v in vals if isinstance(v, Fraction)})
    mids = [float((a + b) / 2) for a, b in itertools.pairwise(vals)]
    x = np.array(mids + [0.0, -0.0, np.inf, -np.inf, np.nan, float(fmt.max_value) * 1.5], np.float64)
    check(x, fmt, mode)


@given(FORMATS, st.sampled_from(["stochastic_a", "stochastic_b", "stochastic_c"]), st.integers(1, 31),
       st.lists(st.tuples(float_bits(np.float32), st.integers(0, 2**32 - 1)), min_size=1, max_size=16))  # fmt: skip
def test_stochastic_with_given_bits(fmt, mode, n, pairs):
    x = np.array([p for p, _ in pairs], np.float32)  # raw float32 bit patterns
    r = np.array([q for _, q in pairs], np.uint32)
    plan = make_plan(fmt, np.dtype(np.float32), numfmt.Rounding.parse(mode), fmt.overflow, n)
    if plan.can_be_unrepresentable:
        return
    out, _ = round_bits(NUMPY, x.view(np.uint32), plan, r)
    want = [
        float(round_value(float(v), fmt, numfmt.Rounding.parse(mode), random_bits=int(q) >> (32 - n), n_bits=n))
        for v, q in zip(x, r, strict=True)
    ]
    assert_bits_equal(out.view(np.float32), np.array(want, np.float64).astype(np.float32))


def test_round_to_normal_tie_goes_to_the_smallest_normal():
    fmt = numfmt.parse("float(e=4,m=3,subnormals=round_to_normal)")
    half = float(fmt.smallest_normal) / 2
    x = np.array([half, -half, np.nextafter(half, 0)], np.float64)
    want = reference_array(x, fmt, "nearest_even")
    np.testing.assert_array_equal(want, [2 * half, -2 * half, 0.0])
    assert_bits_equal(numfmt.chop(x, fmt), want)
    x32 = np.array([half, -half, np.nextafter(np.float32(half), np.float32(0))], np.float32)
    assert_bits_equal(numfmt.chop(x32, fmt), np.float32([2 * half, -2 * half, 0.0]))
