"""Conversion between formats and NumPy / ml_dtypes dtypes, both ways."""

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import numfmt
import numfmt.testing
from numfmt.core.names import named_dtype
from numfmt.float.names import _DTYPE_PRESETS
from numfmt.float.reference import round_value
from numfmt.float.reference_codes import encode_value

# float8_e5m3fnu is an ml_dtypes type from 0.7 on; its preset exists on every version.
DTYPES = [dt for dt in map(named_dtype, _DTYPE_PRESETS) if dt is not None]
HAS_E5M3FNU = hasattr(ml_dtypes, "float8_e5m3fnu")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dtype_round_trip(dtype):
    fmt = numfmt.parse(dtype)
    assert str(fmt) == dtype.name
    assert fmt.dtype == dtype
    assert numfmt.parse(dtype.type) is fmt


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dtype_facts_agree_with_finfo(dtype):
    # ml_dtypes.finfo / np.finfo are independent of numfmt's exact facts.
    fmt, fi = numfmt.parse(dtype), ml_dtypes.finfo(dtype)
    assert float(fmt.max_value) == float(fi.max)
    assert float(fmt.smallest_normal) == float(fi.smallest_normal)
    assert float(fmt.eps) == float(fi.eps)
    assert fmt.bits == fi.bits


def test_equal_parameters_share_the_dtype():
    assert numfmt.parse("float(e=4,m=3,specials=fn)").dtype == np.dtype(ml_dtypes.float8_e4m3fn)
    assert numfmt.parse("float(e=4,m=3,specials=fn,overflow=sat_finite)").dtype == np.dtype(ml_dtypes.float8_e4m3fn)
    assert numfmt.parse("float(e=4,m=3,specials=fn,subnormals=flush)").dtype is None
    assert numfmt.parse("tf32").dtype is None
    assert numfmt.parse("binary8p3se").dtype is None


def test_dtype_without_format_is_refused():
    with pytest.raises(ValueError, match="complex64 has no numfmt format"):
        numfmt.parse(np.complex64)
    with pytest.raises(TypeError, match="format object or a string"):
        numfmt.parse(3)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_chop_accepts_the_dtype_as_format(dtype):
    x = np.linspace(-3, 3, 101, dtype=np.float32)
    want = numfmt.chop(x, dtype.name)
    numfmt.testing.assert_bits_equal(numfmt.chop(x, dtype), want)


def test_e5m3fnu_preset_on_every_ml_dtypes():
    # the format's facts, exact: 5 exponent bits, 3 fraction bits, bias 15, unsigned, NaN 0xFF, no inf
    f = numfmt.float8_e5m3fnu
    assert numfmt.parse("e5m3fnu") is f and numfmt.parse("float8_e5m3fnu") is f
    layout = (f.bits, f.exp_bits, f.man_bits, f.bias, f.signed, f.has_inf, f.nan_code)
    assert layout == (8, 5, 3, 15, False, False, 0xFF)
    assert f.max_value == 114688 and f.smallest_normal == Fraction(1, 2**14)
    assert f.smallest_subnormal == Fraction(1, 2**17)
    assert f.num_finite == 255
    if HAS_E5M3FNU:
        assert f.dtype == np.dtype(ml_dtypes.float8_e5m3fnu) and numfmt.parse(ml_dtypes.float8_e5m3fnu) is f
    else:  # ml_dtypes < 0.7: a numfmt format without a dtype
        assert f.dtype is None
        with pytest.raises(ValueError, match="no numfmt format"):
            numfmt.parse(np.complex64)
    x = np.float32([1.0625, -1.0, 120000.0, 2.0**-18, 3 * 2.0**-18, -0.0, np.inf])
    want = np.float32([1.0, np.nan, np.nan, 0.0, 2.0**-16, 0.0, np.nan])  # ties to even, negatives and overflow NaN
    numfmt.testing.assert_bits_equal(numfmt.chop(x, f), want)


def _e5m3fnu_inputs():
    """Every code's value, every midpoint between neighbours, +-1 float32 ulp around
    each, the overflow threshold region, negatives and specials (float32)."""
    fmt = numfmt.float8_e5m3fnu
    values = np.array([float(fmt.code_to_value(c)) for c in range(fmt.max_magnitude_code + 1)], np.float64)
    ulp = 2.0 ** (fmt.emax - fmt.man_bits)
    mids = np.concatenate([(values[:-1] + values[1:]) / 2, values[-1:] + ulp / 2]).astype(np.float32)
    near = np.concatenate([mids, values.astype(np.float32)])
    near = np.concatenate([near, np.nextafter(near, np.float32(np.inf)), np.nextafter(near, np.float32(0))])
    return np.concatenate([near, -near, np.float32([np.inf, -np.inf, 2.0**20])])


def test_e5m3fnu_every_code_and_midpoint_vs_ml_dtypes():
    fmt = numfmt.float8_e5m3fnu
    codes = np.arange(256, dtype=np.uint8)
    x = _e5m3fnu_inputs()
    exact = [round_value(v, fmt) for v in x.astype(np.float64).tolist()]
    exact_codes = [fmt.nan_code if isinstance(r, float) and math.isnan(r) else encode_value(r, fmt) for r in exact]
    np.testing.assert_array_equal(numfmt.encode(x, fmt), np.array(exact_codes, np.uint8))
    if not HAS_E5M3FNU:  # ml_dtypes < 0.7 has no such dtype: the exact reference only
        return
    dt = ml_dtypes.float8_e5m3fnu
    # decode: every code, bits equal to ml_dtypes' widening cast
    numfmt.testing.assert_bits_equal(numfmt.decode(codes, fmt), codes.view(dt).astype(np.float32), fmt=fmt)
    # encode: float32 inputs, codes equal to ml_dtypes' cast (ml_dtypes flags NaN results as invalid)
    with np.errstate(invalid="ignore", over="ignore"):
        want = x.astype(dt).view(np.uint8)
    np.testing.assert_array_equal(numfmt.encode(x, fmt), want)
    numfmt.testing.assert_bits_equal(numfmt.chop(x, dt), want.view(dt).astype(np.float32))
    assert np.count_nonzero(want == 0xFF) > 0 and len(np.unique(want)) == 256  # every code is hit
