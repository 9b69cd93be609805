"""Conversion between formats and NumPy / ml_dtypes dtypes, both ways."""

import ml_dtypes
import numpy as np
import pytest

import numfmt
import numfmt.testing
from numfmt.float.names import _DTYPE_PRESETS

DTYPES = [np.dtype(getattr(ml_dtypes, n, None) or getattr(np, n)) for n in _DTYPE_PRESETS]


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
