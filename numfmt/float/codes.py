"""``encode``/``decode`` of float formats: values to IEEE-style codes and back."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from numfmt.core import xp as _xp
from numfmt.core.chop import _check_dtype
from numfmt.core.codes import chopped_patterns, code_array, code_dtype, is_tracer, require_float64
from numfmt.core.rounding import Overflow, Rounding
from numfmt.float.format import FloatFormat, Subnormals
from numfmt.float.kernel import _value_bits, decompose, make_plan

__all__ = ["decode_float", "encode_float"]


def _code_dtype(fmt: FloatFormat) -> np.dtype:
    return code_dtype(fmt.bits)


def encode_float(x, fmt: FloatFormat, rounding, *, overflow=None, key=None, random_bits=None):
    """:func:`numfmt.encode` for a parsed :class:`~numfmt.FloatFormat` (see there)."""
    xp, y, u, plan = chopped_patterns(x, fmt, rounding, overflow, key, random_bits, _float_plan)
    jax_in = _xp.is_jax_array(y)
    codes_dtype = _code_dtype(fmt)
    wide = max(plan.container, codes_dtype.itemsize * 8)
    U, I = xp.uint(wide), xp.int(wide)
    a, neg, s, e_q, e_x = decompose(xp, u, plan)
    s, e_q, e_x = xp.astype(s, U), xp.astype(e_q, I), xp.astype(e_x, I)
    qe = xp.where(e_x >= fmt.emin, e_x - fmt.man_bits, xp.asarray(fmt.emin - fmt.man_bits, I))
    shift = qe - e_q  # exact: y is a value of the format
    zero = xp.asarray(0, I)
    cap = xp.asarray(wide - 1, I)
    r = xp.where(
        shift >= 0,
        s >> xp.astype(xp.minimum(shift, cap), U),
        s << xp.astype(xp.minimum(-shift, cap), U),
    )
    offset = (1 << fmt.man_bits) if fmt.subnormals is Subnormals.NO_ZERO else 0
    mag = r + (xp.astype(xp.maximum(qe - (fmt.emin - fmt.man_bits), zero), U) << fmt.man_bits) - offset
    mag = xp.where(a == 0, xp.asarray(0, U), mag)
    inf_bits = plan.inf_bits
    inf_bits = xp.asarray(inf_bits, U)
    if fmt.inf_code is not None:
        mag = xp.where(a == inf_bits, xp.asarray(fmt.inf_code, U), mag)
    sign_symmetric_nan = fmt.has_negative_zero and fmt.has_nan  # ieee, fn
    if fmt.has_negative_zero:
        code = mag | xp.where(neg, xp.asarray(fmt.sign_code, U), xp.asarray(0, U))
    else:
        code = xp.where(neg & (mag != 0), mag | xp.asarray(fmt.sign_code, U), mag)
    is_nan = a > inf_bits
    if fmt.has_nan:
        nan = xp.asarray(fmt.nan_code, U)
        if sign_symmetric_nan:
            nan = xp.where(neg, nan | xp.asarray(fmt.sign_code, U), nan)
        code = xp.where(is_nan, nan, code)
    else:
        code = xp.where(is_nan, xp.asarray(0, U), code)
        if not jax_in or not is_tracer(is_nan):
            if bool(xp.any(is_nan)):
                raise ValueError(f"x contains NaN, which {fmt} cannot encode (the format has no NaN)")
    return xp.astype(code, codes_dtype)


def _float_plan(fmt: FloatFormat, dtype: np.dtype):
    return make_plan(fmt, dtype, Rounding.NEAREST_EVEN, Overflow.SAT_NONE, 0)


def _fits(fmt: FloatFormat, dtype: np.dtype) -> bool:
    e, m = _xp.FLOAT_LAYOUTS[dtype]
    smallest = fmt.smallest_normal if fmt.subnormals is Subnormals.NO_ZERO else Fraction(2) ** (fmt.emin - fmt.man_bits)
    return (
        fmt.man_bits <= m
        and _value_bits(fmt.max_value, e, m) is not None
        and _value_bits(smallest, e, m) is not None
    )


def decode_float(codes, fmt: FloatFormat, dtype=None):
    """:func:`numfmt.decode` for a parsed :class:`~numfmt.FloatFormat` (see there)."""
    xp, codes = code_array(codes, fmt.bits, fmt)
    if dtype is None:
        dtype = next((d for d in (np.float32, np.float64) if _fits(fmt, np.dtype(d))), None)
        if dtype is None:
            raise ValueError(f"{fmt} has values float64 cannot hold exactly; decode only to exact dtypes")
    dtype = _check_dtype(dtype)
    if not _fits(fmt, dtype):
        raise ValueError(f"dtype={dtype.name} cannot hold every value of {fmt} exactly; use dtype=None")
    require_float64(xp, dtype, fmt)
    plan = make_plan(fmt, dtype, Rounding.NEAREST_EVEN, Overflow.SAT_NONE, 0)
    wide = max(plan.container, _code_dtype(fmt).itemsize * 8)
    U, I = xp.uint(wide), xp.int(wide)
    def k(value):
        return xp.asarray(value, U)

    c = xp.astype(codes, U) & k((1 << fmt.bits) - 1)
    neg = (c & k(fmt.sign_code)) != 0
    mag = c & k((1 << fmt.bits) - 1 - fmt.sign_code)
    m = fmt.man_bits
    e_field = xp.astype(mag >> m, I)
    frac = mag & k((1 << m) - 1)
    if fmt.subnormals is Subnormals.NO_ZERO:
        sig = frac | k(1 << m)
        q = e_field + (fmt.emin - m)
    else:
        sig = xp.where(e_field == 0, frac, frac | k(1 << m))
        q = xp.maximum(e_field, xp.asarray(1, I)) - 1 + (fmt.emin - m)
    t = xp.astype(xp.bit_length(sig), I) - 1
    e_x = q + t
    in_emin = 1 - plan.in_bias
    normal = e_x >= in_emin
    lift = xp.astype(xp.maximum(plan.in_man - t, xp.asarray(0, I)), U)
    bits_normal = (xp.astype(e_x + plan.in_bias, U) << plan.in_man) + (sig << lift) - k(1 << plan.in_man)
    sub_shift = xp.astype(xp.maximum(q - (in_emin - plan.in_man), xp.asarray(0, I)), U)
    out = xp.where(normal, bits_normal, sig << sub_shift)
    out = xp.where(sig == 0, xp.asarray(0, U), out)
    if fmt.inf_code is not None:
        out = xp.where(mag == k(fmt.inf_code), k(plan.inf_bits), out)
    out = xp.where(neg, out | k(1 << (plan.width - 1)), out)
    if fmt.has_nan:
        is_nan = _nan_mask(c, fmt, k)
        out = xp.where(is_nan, xp.asarray(plan.nan_bits, U), out)
    return xp.bitcast(xp.astype(out, xp.uint(plan.width)), dtype)


def _nan_mask(c, fmt: FloatFormat, k):
    ones = (1 << (fmt.exp_bits + fmt.man_bits)) - 1
    mag = c & k(ones)
    if fmt.inf_code is not None and fmt.has_negative_zero:  # ieee
        return mag > k(fmt.inf_code)
    if fmt.has_negative_zero:  # fn, signed
        return mag == k(ones)
    if not fmt.signed:  # fn or p3109, unsigned: all ones
        return c == k((1 << fmt.bits) - 1)
    return c == k(fmt.sign_code)  # fnuz, signed p3109
