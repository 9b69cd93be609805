"""assert_unbiased without ``fmt``: neighbours read off the results.

It passes numfmt's stochastic rounding (float, posit, fixed point) and fails
round-to-nearest, a rounding whose probability is off, and a rounding that
gives only one neighbour for some elements; its precondition bound is checked
against the exact binomial probabilities.
"""

import math

import numpy as np
import pytest

import numfmt
from numfmt.testing import assert_unbiased
from numfmt.testing.unbiased import single_value_floor


def sr(name, mode="stochastic", seed=0):
    rng = np.random.default_rng(seed)
    return lambda v: numfmt.chop(v, name, mode, key=rng)


def inside_gaps(name, count, seed=1, lo=-4.0, hi=4.0):
    """Values at a uniform position in [0.1, 0.9] of random gaps of ``name`` (plus exact ones)."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(lo, hi, count)
    down, up = numfmt.chop(v, name, "toward_negative"), numfmt.chop(v, name, "toward_positive")
    t = rng.uniform(0.1, 0.9, count)
    x = np.where(up > down, down + t * (up - down), v)
    return np.concatenate([x, numfmt.chop(v[:4], name)])


@pytest.mark.parametrize("name", ["float8_e4m3fn", "bfloat16", "posit8_1", "q3.4", "float4_e2m1fn"])
def test_numfmt_sr_passes_without_fmt(name):
    x = inside_gaps(name, 64)
    assert_unbiased(sr(name), x, 5000)
    assert_unbiased(sr(name, seed=2), x.astype(np.float32), 5000)


def test_round_to_nearest_fails_without_fmt():
    x = inside_gaps("float8_e4m3fn", 32)
    with pytest.raises(AssertionError, match="one result other than x in all 2000 draws"):
        assert_unbiased(lambda v: numfmt.chop(v, "float8_e4m3fn"), x, 2000)


def floor_sr(name, offset, seed=0):
    """Round up when ``floor(p + offset * u) >= 1``: offset 1 is correct SR;
    offset 0.5 rounds up with probability ``max(0, 2 p - 1)``."""
    rng = np.random.default_rng(seed)

    def f(v):
        lo, hi = numfmt.chop(v, name, "toward_negative"), numfmt.chop(v, name, "toward_positive")
        p = np.where(hi > lo, (v - lo) / np.where(hi > lo, hi - lo, 1), 0)
        up = np.floor(p + offset * rng.random(v.shape)) >= 1
        return np.where(up, hi, lo).astype(v.dtype)

    return f


def test_probability_off_fails_without_fmt():
    x = np.float64([1.07, 1.3, -2.6, 5.5, 0.013])  # P(up) between 0.2 and 0.8
    assert_unbiased(floor_sr("float8_e4m3fn", 1.0), x, 20_000)  # the same code, correct: passes
    with pytest.raises(AssertionError, match="outside the binomial bound|one result other than x"):
        assert_unbiased(floor_sr("float8_e4m3fn", 0.5), x, 20_000)  # P(up) = max(0, 2p - 1)
    x = np.float64([1.09375, 2.6875, 0.01513671875])  # P(up) = 0.75: the counts are wrong
    with pytest.raises(AssertionError, match="outside the binomial bound"):
        assert_unbiased(floor_sr("float8_e4m3fn", 0.5), x, 20_000)
    with pytest.raises(AssertionError, match="outside the binomial bound"):
        assert_unbiased(sr("float8_e4m3fn", "stochastic_equal"), x, 4000)


def test_one_neighbour_for_some_elements_fails_without_fmt():
    x = inside_gaps("bfloat16", 200)
    good = sr("bfloat16")

    def partly_down(v):
        out = good(v)
        cols = out.reshape(out.shape[0], -1)
        cols[:, ::10] = numfmt.chop(v, "bfloat16", "toward_zero").reshape(cols.shape)[:, ::10]
        return out

    with pytest.raises(AssertionError, match="one result other than x"):
        assert_unbiased(partly_down, x, 4000)


@pytest.mark.parametrize(
    ("f", "message"),
    [
        (lambda v: v * np.array([0.5, 1.0, 1.5])[np.arange(v.shape[0]) % 3][:, None], "more than two"),
        (lambda v: np.where(np.arange(v.shape[0])[:, None] % 2 == 0, v * 2, v * 3), "do not bracket"),
        (lambda v: np.where(np.arange(v.shape[0])[:, None] % 2 == 0, v, v * 2), "do not bracket"),
        (lambda v: np.full_like(v, np.nan), "NaN"),
    ],
)  # fmt: skip
def test_results_that_cannot_be_sr_fail_without_fmt(f, message):
    with pytest.raises(AssertionError, match=message):
        assert_unbiased(f, np.float64([1.25, 3.0]), 100)


def test_exact_elements_without_fmt():
    x = np.float64([1.0, -0.0, 0.5, 448.0])
    assert_unbiased(sr("float8_e4m3fn"), x, 100)
    assert_unbiased(lambda v: v.copy(), x, 100)  # an identity is unbiased on any x
    with pytest.raises(ValueError, match="finite"):
        assert_unbiased(lambda v: v.copy(), np.float64([np.inf]), 10)


@pytest.mark.parametrize(("n", "m", "alpha"), [(1000, 1, 1e-6), (10_000, 100, 1e-6), (400, 7, 1e-3)])
def test_single_value_bound_holds(n, m, alpha):
    """Documented precondition: with P(up) = q (the worst case in [q, 1 - q]),
    m elements all give one value with probability at most alpha / 2."""
    q = single_value_floor(n, m, alpha)
    assert 0 < q < 0.5
    assert m * (q**n + (1 - q) ** n) <= alpha / 2
    assert math.isclose(q, math.log(4 * m / alpha) / n)
