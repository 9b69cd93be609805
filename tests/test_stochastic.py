"""Stochastic rounding: exact values stay, frequencies, variants A/B/C, keys.

Frequency checks use a fixed seed and ``numfmt.testing.assert_unbiased``
(Bernstein bound: a false failure has probability below 1e-6 per check).
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numfmt
from numfmt.core.xp import NUMPY
from numfmt.float.kernel import make_plan, round_bits
from numfmt.testing import assert_bits_equal, assert_unbiased, float_bits

SR_MODES = ["stochastic", "stochastic_a", "stochastic_b", "stochastic_c", "stochastic_equal"]


def kwargs(mode):
    return {"random_bits": 20} if mode[-2:] in ("_a", "_b", "_c") else {}


@pytest.mark.parametrize("mode", SR_MODES)
@pytest.mark.parametrize("name", ["float8_e4m3fn", "bfloat16", "float4_e2m1fn", "binary8p1se"])
def test_exact_values_never_move(name, mode):
    fmt = numfmt.parse(name)
    codes = np.arange(1 << fmt.bits, dtype=np.uint32)
    values = numfmt.decode(codes, fmt, dtype=np.float32)
    values = values[np.isfinite(values)]
    for seed in range(3):
        assert_bits_equal(numfmt.chop(values, fmt, mode, key=seed, **kwargs(mode)), values)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("v", [0.03125, 0.25, 0.5, 0.8125, 0.96875])
def test_probability_of_rounding_up_is_the_distance(v, dtype):
    lo, hi, n = 1.0, 1.125, 200_000  # neighbours in float8_e4m3fn
    x = np.array([lo + v * (hi - lo), -(lo + v * (hi - lo))], dtype)
    # every result is lo or hi (with x's sign), and P(up) = v within a binomial bound
    rng = np.random.default_rng(123)
    assert_unbiased(lambda y: numfmt.chop(y, "float8_e4m3fn", "stochastic", key=rng), x, n, fmt="float8_e4m3fn")


@pytest.mark.parametrize("name", ["float16", "float8_e5m2", "float(e=5,m=7)"])
def test_mean_is_unbiased(name):
    rng = np.random.default_rng(5)
    x = rng.uniform(-3, 3, size=64).astype(np.float64)
    assert_unbiased(lambda y: numfmt.chop(y, name, "stochastic", key=rng), x, 4000, fmt=name)


def test_equal_probability_mode_ignores_the_distance():
    # 1.001 is near 1 in float8_e4m3fn, yet stochastic_equal goes up half the
    # time: exactly the up-frequency an unbiased rounding has at the midpoint
    # 1.0625, so the results are checked as if they were roundings of 1.0625.
    far = np.full(100_000, 1.0 + 0.001, np.float32)
    results = numfmt.chop(far, "float8_e4m3fn", "stochastic_equal", key=0)
    assert_unbiased(lambda y: results.reshape(y.shape), np.float32([1.0625]), far.size, fmt="float8_e4m3fn")
    with pytest.raises(AssertionError, match="binomial bound"):  # as a rounding of 1.001 it is biased
        assert_unbiased(lambda y: results.reshape(y.shape), np.float32([1.001]), far.size, fmt="float8_e4m3fn")


def test_same_key_same_bits_and_different_keys_differ():
    x = np.random.default_rng(0).standard_normal(10_000).astype(np.float32)
    a = numfmt.chop(x, "float8_e5m2", "stochastic", key=42)
    b = numfmt.chop(x, "float8_e5m2", "stochastic", key=np.random.default_rng(42))
    c = numfmt.chop(x, "float8_e5m2", "stochastic", key=43)
    assert_bits_equal(a, b)
    assert (a != c).any()


def definition_up(v: Fraction, r: int, n: int, mode: str) -> bool:
    """The P3109 definitions, from the text, with exact arithmetic."""
    scaled = v * 2**n
    if mode in ("stochastic", "stochastic_a"):
        return int(scaled) + r >= 2**n
    if mode == "stochastic_b":
        return int(v * 2 ** (n + 1)) + 2 * r + 1 >= 2 ** (n + 1)
    if mode == "stochastic_c":
        return round(scaled) + r >= 2**n  # Python's round on a Fraction is half-even
    return v != 0 and (r >> (n - 1)) & 1 == 1  # stochastic_equal: the top random bit


@given(
    st.sampled_from(["float8_e4m3fn", "float8_e5m2", "float(e=3,m=1)", "binary8p1se", "bfloat16"]),
    st.sampled_from(SR_MODES),
    st.integers(1, 31),
    st.lists(st.tuples(float_bits(np.float32), st.integers(0, 2**32 - 1)), min_size=1, max_size=16),
)
def test_variants_follow_the_definitions(name, mode, n, pairs):
    fmt = numfmt.parse(name)
    x = np.array([p for p, _ in pairs], np.float32)  # raw float32 bit patterns
    rbits = np.array([r for _, r in pairs], np.uint32)
    x, rbits = x[np.isfinite(x)], rbits[np.isfinite(x)]
    if mode == "stochastic":
        n = 31
    if mode == "stochastic_equal":
        n = 32
    plan = make_plan(fmt, np.dtype(np.float32), numfmt.Rounding.parse(mode), fmt.overflow, min(n, 31))
    out, _ = round_bits(NUMPY, x.view(np.uint32), plan, rbits)
    got = out.view(np.float32)
    lo = numfmt.chop(x, fmt, "toward_zero")
    hi = np.where(x < 0, numfmt.chop(x, fmt, "toward_negative"), numfmt.chop(x, fmt, "toward_positive"))
    for xi, li, hi_, r, g in zip(x, lo, hi, rbits, got, strict=True):
        if li == hi_:
            assert g == li or (np.isnan(g) and np.isnan(li))
            continue
        if not (np.isfinite(li) and np.isfinite(hi_)) or abs(hi_) > float(fmt.max_value):
            continue  # overflow: covered by the overflow tests
        v = (Fraction(float(xi)) - Fraction(float(li))) / (Fraction(float(hi_)) - Fraction(float(li)))
        r_n = int(r) >> (32 - n)
        want = hi_ if definition_up(abs(v), r_n, n, mode) else li
        assert g == want, (float(xi), mode, n, int(r))
