"""numfmt.testing for scaled integer formats: strategies draw what they claim, and the assertions
pass on numfmt.chop and on an independent float64 quantizer, and fail on deliberately wrong ones."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import numfmt
import numfmt.testing as nt
from numfmt import ScaledIntFormat
from numfmt.float.reference import round_value
from numfmt.testing.scaled import _groups, reference_chop

CHOP_FORMATS = ["scaled(bits=8,per=channel,scale=bfloat16)",
                "int8_per_tensor", "int8_per_channel", "uint8_asym_per_channel", "int4_g32", "int4_asym_g128",
                "scaled(bits=3,per=group,axis=0,group=3,sym=true,restricted=false,scale=float8_e4m3fn)",
                "scaled(bits=8,per=tensor,sym=false,scale=float8_e8m0fnu)"]  # fmt: skip


def quant(x, fmt, *, half_away=False, clamp_z=True, scale_in_f32=False, per_tensor=False, recip32=False):
    """A hand-written quantizer (float64 arithmetic, exact for float32 input); the keywords plant bugs."""
    fmt = numfmt.parse(fmt)
    x = np.asarray(x)
    flat, out = x.reshape(-1).astype(np.float64), np.empty(x.size, np.float64)
    for ix in [np.arange(x.size)] if per_tensor else _groups(x.shape, fmt):
        v = flat[ix]
        if not np.all(np.isfinite(v)):
            out[ix] = np.nan
            continue
        lo = Fraction(0) if fmt.symmetric else min(Fraction(float(v.min())), Fraction(0))
        hi = Fraction(float(np.abs(v).max())) if fmt.symmetric else max(Fraction(float(v.max())), Fraction(0))
        num = (hi - lo) / fmt.divisor
        if scale_in_f32:  # torch-style: the quotient in float32, then rounded to the scale format
            with np.errstate(over="ignore"):
                q32 = float(np.float32(float(hi - lo)) / np.float32(fmt.divisor))
            num = Fraction(q32) if math.isfinite(q32) else 2 * fmt.scale.max_value  # saturates
        s = float(round_value(num, fmt.scale, "nearest_even", "sat_finite")) if num else 0.0
        if s == 0:
            out[ix] = 0.0
            continue
        z = 0.0 if fmt.symmetric else fmt.qmin - np.rint(float(lo) / s)
        z = np.clip(z, fmt.qmin, fmt.qmax) if clamp_z else z
        y = (v.astype(np.float32) * (np.float32(1) / np.float32(s))).astype(np.float64) if recip32 else v / s
        r = np.copysign(np.floor(np.abs(y) + 0.5), y) if half_away else np.rint(y)
        q = np.clip(r + z, fmt.qmin, fmt.qmax)
        out[ix] = (q - z) * s
    return out.astype(x.dtype).reshape(x.shape)


# ---- formats ------------------------------------------------------------------------------


def test_formats_shrink_to_int8_per_tensor_and_reach_every_variant():
    assert find(nt.formats("scaled"), lambda f: True) == ScaledIntFormat(8)
    for want in (lambda f: f.granularity == "channel", lambda f: f.granularity == "group",
                 lambda f: not f.symmetric, lambda f: not f.signed, lambda f: not f.restricted,
                 lambda f: f.bits == 2, lambda f: f.bits == 16, lambda f: f.scale.man_bits == 0):  # fmt: skip
        assert want(find(nt.formats("scaled"), want))
    assert isinstance(find(nt.formats(None), lambda f: isinstance(f, ScaledIntFormat)), ScaledIntFormat)


@settings(max_examples=50)
@given(st.data())
def test_formats_options_and_exact_in(data):
    f = data.draw(nt.formats("scaled", min_bits=3, max_bits=6, granularity="group", symmetric=False))
    assert 3 <= f.bits <= 6 and f.granularity == "group" and not f.symmetric
    assert data.draw(nt.formats("scaled", exact_in=np.float16)).bits <= 11
    assert data.draw(nt.formats("scaled", scale="bfloat16")).scale == numfmt.parse("bfloat16")
    with pytest.raises(ValueError, match="granularity"):
        nt.formats("scaled", granularity="row")


# ---- values and boundary_values ---------------------------------------------------------


@settings(max_examples=100)
@given(st.data())
def test_values_are_fixed_points_of_chop_and_the_reference(data):
    dtype = data.draw(st.sampled_from([np.float64, np.float32]))
    f = data.draw(nt.formats("scaled", exact_in=dtype))
    x = data.draw(nt.values(f, dtype=dtype))
    assert x.dtype == dtype and not np.isinf(x).any()
    nt.assert_bits_equal(numfmt.chop(x, f), x, err_msg=f"{f}: ")
    nt.assert_bits_equal(reference_chop(x, f), x)
    nt.assert_representable(x, f)


def test_values_find_nan_groups_and_full_range_codes():
    f = numfmt.parse("int8_per_channel")  # a NaN group is NaN throughout its channel (axis 0)
    x = find(nt.values(f), lambda x: x.ndim == 2 and x.shape[1] > 1 and np.isnan(x).any() and not np.isnan(x).all())
    assert all(np.isnan(row).all() or not np.isnan(row).any() for row in x)
    x = find(nt.values("uint8_asym_per_tensor"), lambda x: x.min() < 0 < x.max())
    assert len({float(v) for v in x}) >= 2 and (x == x.max()).any()


def test_values_refuses_a_dtype_too_narrow_for_the_codes():
    with pytest.raises(ValueError, match="float16 holds 11"):
        nt.values(ScaledIntFormat(16), dtype=np.float16)


@pytest.mark.parametrize("name", CHOP_FORMATS)
@settings(max_examples=15)
@given(st.data())
def test_boundary_values_agree_between_chop_and_the_reference(name, data):
    f = numfmt.parse(name)
    x = data.draw(nt.boundary_values(f, dtype=np.float32))
    want = reference_chop(x, f)
    if not np.isinf(want[np.isfinite(x)]).any():
        nt.assert_bits_equal(numfmt.chop(x, f), want)


def test_boundary_values_hold_exact_integer_ties():
    f = numfmt.parse("int8_per_tensor")

    def has_tie(x):
        a = np.abs(x[np.isfinite(x)].astype(np.float64))
        if a.size == 0 or a.max() == 0:
            return False
        s = Fraction(float(a.max())) / 127
        return any((Fraction(float(v)) / s).denominator == 2 for v in a)

    assert has_tie(find(nt.boundary_values(f, dtype=np.float32), has_tie))


# ---- assertions: pass on correct quantizers ---------------------------------------------


@pytest.mark.parametrize("name", CHOP_FORMATS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chop_passes_assert_rounds_like(name, dtype):
    nt.assert_rounds_like(lambda x: numfmt.chop(x, name), name, dtype=dtype)


@pytest.mark.parametrize("rounding", ["toward_zero", "nearest_away"])
def test_chop_passes_in_other_modes(rounding):
    nt.assert_rounds_like(lambda x: numfmt.chop(x, "int4_g32", rounding), "int4_g32", rounding, dtype=np.float32)


@pytest.mark.parametrize("name", CHOP_FORMATS)
def test_an_independent_float64_quantizer_passes(name):
    nt.assert_rounds_like(lambda x: quant(x, name), name, dtype=np.float32)
    if name == BUGS[3][0]:  # the control of the float32-scale-quotient bug, which is tested on float64
        nt.assert_rounds_like(lambda x: quant(x, name), name, dtype=np.float64)


# ---- assertions: fail on wrong quantizers -------------------------------------------------

BUGS = [
    ("int8_per_tensor", {"recip32": True}),
    ("int8_per_channel", {"half_away": True}),
    ("scaled(bits=8,per=tensor,sym=false,scale=float8_e8m0fnu)", {"clamp_z": False}),
    ("scaled(bits=8,per=channel,scale=bfloat16)", {"scale_in_f32": True}),
    ("int8_per_channel", {"per_tensor": True}),
]


@pytest.mark.parametrize("name, bug", BUGS, ids=[next(iter(b)) for _, b in BUGS])
def test_wrong_quantizers_fail(name, bug):
    # float64 input for the float32 scale quotient: float32 input makes it exact here
    dtype = np.float64 if "scale_in_f32" in bug else np.float32
    with pytest.raises(AssertionError, match=r"elements differ from one nearest_even rounding into") as err:
        nt.assert_rounds_like(lambda x: quant(x, name, **bug), name, dtype=dtype)
    assert "input" in str(err.value) and "want" in str(err.value)


def test_assert_representable_reports_moved_elements():
    f = numfmt.parse("int8_per_tensor")
    nt.assert_representable(np.float32([127.0, -3.0, 0.0]), f)
    with pytest.raises(AssertionError, match=r"1 of 2 elements are not fixed points .* group reference") as err:
        nt.assert_representable(np.float32([1.0, 0.3]), f)
    assert "at (1,)" in str(err.value)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="overflow=.*leave overflow=None"):
        nt.assert_rounds_like(lambda x: x, "int8_per_tensor", overflow="saturate")
    with pytest.raises(ValueError, match="axis"):
        nt.assert_rounds_like(lambda x: x, "int8_per_channel(axis=2)")
    with pytest.raises(ValueError, match="axis"):
        nt.assert_representable(np.float32(1.0), "int8_per_channel")
    assert math.isnan(float(reference_chop(np.float32([np.inf, 1.0]), numfmt.parse("int8_per_tensor"))[1]))
