"""numfmt.testing for posit, fixed-point and block formats: the strategies
draw what they claim, and every assertion fails on a deliberately wrong
quantizer of each family."""


import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

import numfmt
from numfmt import testing as nt
from numfmt.block.format import BlockFormat
from numfmt.fixed.format import FixedFormat
from numfmt.posit.format import PositFormat
from numfmt.posit.reference import posit_value


# ---------------------------------------------------------------- formats
def test_formats_shrink_to_readable_minimal_examples():
    assert str(find(nt.formats("posit"), lambda f: True)) == "posit2_0"
    assert str(find(nt.formats("posit"), lambda f: f.es >= 2 and f.n >= 8)) == "posit8_2"
    assert str(find(nt.formats("fixed"), lambda f: f.bits >= 8)) == "q7.0"
    assert str(find(nt.formats("block"), lambda f: True)) == "mx(elem=e2m1,block=1)"
    big = find(nt.formats("block"), lambda f: f.block_size >= 32)
    assert big.block_size == 32 and str(big.elem) == "float4_e2m1fn"


@settings(max_examples=100)
@given(st.data())
def test_formats_respect_family_and_size(data):
    lo = data.draw(st.integers(1, 12))
    hi = data.draw(st.integers(lo, 16))
    p = data.draw(nt.formats("posit", min_bits=max(lo, 2), max_bits=max(hi, 2)))
    assert isinstance(p, PositFormat) and max(lo, 2) <= p.n <= max(hi, 2)
    f = data.draw(nt.formats("fixed", min_bits=lo, max_bits=hi))
    assert isinstance(f, FixedFormat) and lo <= f.bits <= hi
    b = data.draw(nt.formats("block", min_bits=max(lo, 4), max_bits=max(hi, 4)))
    assert isinstance(b, BlockFormat) and max(lo, 4) <= b.elem.bits <= max(hi, 4)


@settings(max_examples=30)
@given(st.data())
def test_family_none_draws_every_family_with_the_options(data):
    seen = {type(data.draw(nt.formats(None, max_bits=8))) for _ in range(4)}
    assert seen <= {numfmt.FloatFormat, PositFormat, FixedFormat, BlockFormat, numfmt.ScaledIntFormat}
    assert isinstance(data.draw(nt.formats(None, es=1)), PositFormat)


def test_family_none_reaches_all_four_families():
    for cls in (numfmt.FloatFormat, PositFormat, FixedFormat, BlockFormat, numfmt.ScaledIntFormat):
        assert isinstance(find(nt.formats(None), lambda f, cls=cls: isinstance(f, cls)), cls)


def test_formats_option_errors():
    with pytest.raises(ValueError, match="es="):
        nt.formats("posit", es=(3, 9))
    with pytest.raises(ValueError, match="overflow"):
        nt.formats("fixed", overflow="nope")
    with pytest.raises(ValueError, match="not options of any one family"):
        nt.formats(None, es=1, exp_bits=3)
    with pytest.raises(ValueError, match="exact_in=float32"):
        nt.formats("block", kind="mx", exact_in=np.float32)


# ------------------------------------------------------ posit / fixed values
@settings(max_examples=100)
@given(st.data())
def test_values_are_values_and_fixed_points_of_chop(data):
    fmt = data.draw(nt.formats(["posit", "fixed"], max_bits=12))
    v = data.draw(nt.values(fmt))
    x = np.array([v])
    nt.assert_representable(x, fmt)
    nt.assert_bits_equal(numfmt.chop(x, fmt), x)


@settings(max_examples=100)
@given(st.data())
def test_boundary_values_round_like_the_reference(data):
    fmt = data.draw(nt.formats(["posit", "fixed"], max_bits=12))
    x = np.array(data.draw(st.lists(nt.boundary_values(fmt), min_size=1, max_size=16)))
    y = numfmt.chop(x, fmt)
    keep = ~np.isnan(y)
    nt.assert_representable(y[keep], fmt)


@pytest.mark.parametrize("name", ["posit5_1", "q2.2", "uq3.1", "posit(n=12,es=2)"])
def test_values_reach_the_ends_and_the_values_next_to_zero(name):
    fmt = numfmt.parse(name)
    if isinstance(fmt, PositFormat):
        want = [posit_value(c, fmt.n, fmt.es) for c in (1, 2**(fmt.n - 1) - 1, 2**fmt.n - 1, 2**(fmt.n - 1) + 1)]
    else:
        want = [fmt.max_value, fmt.min_value, fmt.resolution] + ([-fmt.resolution] if fmt.signed else [])
    for v in want:
        assert find(nt.values(fmt, dtype=None), lambda u, v=v: u == v) == v
    assert np.isnan(find(nt.values("posit5_1"), np.isnan))
    with pytest.raises(NoSuchExample):
        find(nt.values("q2.2"), np.isnan)


def test_boundary_values_reach_ties_and_landmarks():
    assert find(nt.boundary_values("q3.4"), lambda v: 0 < v < 0.0625) == 0.03125  # half the quantum
    assert find(nt.boundary_values("posit8_0"), lambda v: 64 < v < np.inf) == 128.0  # twice maxpos
    assert find(nt.boundary_values("posit8_0"), lambda v: 0 < v < 2.0**-6) == 2.0**-7  # half minpos


# ----------------------------------------------------------- assertions
def test_assert_representable_posit_and_fixed():
    nt.assert_representable(np.array([0.0, 1.0, -64.0, np.nan, 2.0**-6]), "posit8_0")
    with pytest.raises(AssertionError, match=r"1 of 2 elements are not values of posit8_0:\n.*neighbouring"):
        nt.assert_representable(np.array([1.0, 1.01]), "posit8_0")
    with pytest.raises(AssertionError, match="beyond the range"):
        nt.assert_representable(np.array([128.0]), "posit8_0")
    with pytest.raises(AssertionError, match="no NaN code"):
        nt.assert_representable(np.array([np.nan]), "int8")
    with pytest.raises(AssertionError, match="no -0"):
        nt.assert_representable(np.array([-0.0]), "q3.4")
    nt.assert_representable(np.array([-8.0, 7.9375, 0.0625]), "q3.4")


@pytest.mark.parametrize("name", ["posit8_0", "posit(n=6,es=2)", "posit16_1"])
def test_rounds_like_posit_passes_chop_fails_flush_to_zero(name):
    fmt = numfmt.parse(name)
    nt.assert_rounds_like(lambda x: numfmt.chop(x, fmt), fmt, max_gaps=512, n_random=512)
    nt.assert_rounds_like(lambda x: numfmt.chop(x, fmt, "toward_zero"), fmt, "toward_zero", max_gaps=256, n_random=256)

    def flush(x):  # wrong: tiny values go to 0 instead of +-minpos
        return np.where(np.abs(x) < float(fmt.minpos), 0.0, numfmt.chop(x, fmt))

    with pytest.raises(AssertionError, match="differ from one nearest_even rounding"):
        nt.assert_rounds_like(flush, fmt, max_gaps=256, n_random=256)


@pytest.mark.parametrize("name", ["q3.4", "uq4.2", "int4", "fixed(i=5,f=-2,signed=true,overflow=wrap)"])
def test_rounds_like_fixed_passes_chop_fails_wrong_overflow(name):
    fmt = numfmt.parse(name)
    nt.assert_rounds_like(lambda x: numfmt.chop(x, fmt), fmt)
    other = "saturate" if fmt.overflow.value == "wrap" else "wrap"
    with pytest.raises(AssertionError, match="differ from one"):
        nt.assert_rounds_like(lambda x: numfmt.chop(x, fmt, overflow=other), fmt)


def test_rounds_like_fixed_fails_truncation():
    with pytest.raises(AssertionError, match="differ"):
        nt.assert_rounds_like(lambda x: numfmt.chop(x, "q7.8", "toward_zero"), "q7.8")


@pytest.mark.parametrize("name", ["posit8_2", "q3.4", "uq4.4"])
def test_assert_unbiased_posit_fixed(name):
    fmt = numfmt.parse(name)
    rng = np.random.default_rng(1)
    x = np.array([0.3, 1.1, 3.3, 0.0, 1.0])
    nt.assert_unbiased(lambda v: numfmt.chop(v, fmt, "stochastic", key=rng), x, 20_000, fmt=fmt)
    with pytest.raises(AssertionError, match="binomial bound|not a neighbour"):
        nt.assert_unbiased(lambda v: numfmt.chop(v, fmt, "toward_zero"), x, 20_000, fmt=fmt)


def test_assert_unbiased_fixed_range():
    with pytest.raises(ValueError, match="range of uq4.4"):
        nt.assert_unbiased(lambda v: v, np.array([-0.5]), 10, fmt="uq4.4")


# ---------------------------------------------------------------- blocks
@settings(max_examples=40)
@given(st.data())
def test_block_values_are_fixed_points_of_chop(data):
    fmt = data.draw(nt.formats("block", max_bits=8))
    x = data.draw(nt.values(fmt))
    nt.assert_representable(x, fmt)
    with np.errstate(over="ignore"):
        nt.assert_bits_equal(numfmt.chop(x, fmt), x)


@settings(max_examples=40)
@given(st.data())
def test_block_chop_is_idempotent(data):
    """The justification of 'representable = fixed point of one rounding':
    every result of chop is itself a fixed point, so the two sets agree."""
    fmt = data.draw(nt.formats("block", max_bits=8))
    x = data.draw(nt.values(fmt)) * data.draw(st.sampled_from([1.0, 1.1, 0.7, 3.0]))
    y = numfmt.chop(x, fmt)
    nt.assert_representable(y, fmt)


def test_block_representable_failure_message():
    x = np.array([240.0] + [0.0] * 31)  # decodable (scale 1, element 240) but chop gives 224
    with pytest.raises(AssertionError, match="not fixed points of one rounding into mxfp8_e4m3"):
        nt.assert_representable(x, "mxfp8_e4m3")
    nt.assert_representable(np.array([224.0] + [0.0] * 31), "mxfp8_e4m3")


def _log2_mx(fmt):
    """A wrong MX quantizer: the scale exponent from a float log2 of amax,
    which rounds up just below powers of two."""
    emax = fmt.elem_emax

    def f(x):
        y = np.moveaxis(x, fmt.axis, -1)
        n = y.shape[-1]
        pad = -n % fmt.block_size
        b = np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, pad)]).reshape(*y.shape[:-1], -1, fmt.block_size)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            amax = np.max(np.abs(b), axis=-1, keepdims=True)
            e = np.clip(np.floor(np.log2(np.where(amax > 0, amax, 1.0))) - emax, -127, 127)
            q = numfmt.chop(b / np.exp2(e), fmt.elem, overflow="sat_finite") * np.exp2(e)
            q = np.where(np.isnan(amax) | np.isinf(amax), np.nan, q)
        q = q.reshape(*y.shape[:-1], -1)[..., :n]
        return np.moveaxis(q, -1, fmt.axis)

    return f


@pytest.mark.parametrize("name", ["mxfp8_e4m3", "mxfp4_e2m1", "mxint8", "mx(elem=e2m3,block=4,axis=0)"])
def test_rounds_like_block_passes_chop_fails_float_log2(name):
    fmt = numfmt.parse(name)
    nt.assert_rounds_like(lambda x: numfmt.chop(x, fmt), fmt, n_random=256)
    with pytest.raises(AssertionError, match="differ from one nearest_even rounding"):
        nt.assert_rounds_like(_log2_mx(fmt), fmt, n_random=256)


def test_block_arguments_refused():
    with pytest.raises(ValueError, match="float64"):
        nt.assert_rounds_like(lambda x: x, "mxfp4_e2m1", dtype=np.float32)
    with pytest.raises(ValueError, match="pass dtype=np.float32"):
        nt.assert_representable(np.zeros(16), "nvfp4")
    with pytest.raises(ValueError, match="stochastic"):
        nt.assert_rounds_like(lambda x: x, "mxfp4_e2m1", "stochastic")
