"""Exact scalar reference of float formats: codes of one value at a time, and the value list.

Encoding, decoding and the list of representable values, with Python ints and
:class:`fractions.Fraction` only (see :mod:`numfmt.float.reference` for the
rounding, which this builds on).
"""

from __future__ import annotations

import math
from fractions import Fraction

from numfmt.float.format import Specials, Subnormals
from numfmt.float.reference import _as_format, _limits, _magnitude_code, _split

__all__ = ["decode_code", "encode_value", "representable_values"]

_REPRESENTABLE_MAX_BITS = 24


def encode_value(v, fmt) -> int:
    """The code of an exactly representable value.

    Args:
      v: a Fraction, int or float (inf, nan and -0.0 included) that ``fmt``
        represents exactly, e.g. a result of :func:`round_value`.
      fmt: a :class:`numfmt.FloatFormat` or a format string.

    Returns:
      The code, an int in ``[0, 2**fmt.bits)``. NaN gives ``fmt.nan_code``,
      with the sign bit set if ``v`` has its sign bit set and the format is
      ``ieee`` or signed ``fn``. -0.0 gives the -0 code where the format has
      one and +0's code otherwise. Subnormal values of ``'flush'`` and
      ``'round_to_normal'`` formats are encoded too (their codes exist and
      decode to them), although rounding never produces them.

    Raises:
      ValueError: if ``fmt`` cannot represent ``v`` exactly (NaN without a NaN
        code, inf without inf, 0 without zero, negative values of unsigned
        formats, values off the grid or above the max).
      TypeError: for a ``v`` or ``fmt`` of the wrong type.

    Examples:
      >>> from numfmt.core.names import parse
      >>> hex(encode_value(448, parse("e4m3fn"))), hex(encode_value(-0.0, parse("e4m3fn")))
      ('0x7e', '0x80')
    """
    fmt = _as_format(fmt)
    negative, mag = _split(v)
    sign = fmt.sign_code if negative else 0
    if isinstance(mag, float) and math.isnan(mag):
        if not fmt.has_nan:
            raise ValueError(f"{fmt} has no NaN code (specials={fmt.specials.value!r})")
        keeps_sign = fmt.specials is Specials.IEEE or (fmt.specials is Specials.FN and fmt.signed)
        return fmt.nan_code | (sign if keeps_sign else 0)
    if negative and not fmt.signed and mag != 0:
        raise ValueError(f"{fmt} is unsigned and cannot encode the negative value {v!r}")
    if isinstance(mag, float):
        if not fmt.has_inf:
            raise ValueError(f"{fmt} has no infinity (specials={fmt.specials.value!r})")
        return fmt.inf_code | sign
    if mag == 0:
        if not fmt.has_zero:
            raise ValueError(f"{fmt} has no zero (subnormals={fmt.subnormals.value!r})")
        return sign if fmt.has_negative_zero else 0
    code = _magnitude_code(mag, fmt)
    if code is None or mag > _limits(fmt)[0]:
        raise ValueError(f"{v!r} is not exactly representable in {fmt}")
    return code | sign


def decode_code(code, fmt) -> Fraction | float:
    """The value of one code: ``fmt.code_to_value`` with float zeros.

    Args:
      code: an int in ``[0, 2**fmt.bits)``.
      fmt: a :class:`numfmt.FloatFormat` or a format string.

    Returns:
      A Fraction for finite nonzero values; the floats 0.0, -0.0 (the -0 code),
      inf, -inf or nan otherwise, matching what :func:`round_value` returns.

    Raises:
      TypeError: if ``code`` is not an int.
      ValueError: if ``code`` is out of range.

    Examples:
      >>> from numfmt.core.names import parse
      >>> decode_code(0x80, parse("e4m3fn")), decode_code(0x80, parse("e4m3fnuz"))
      (-0.0, nan)
    """
    fmt = _as_format(fmt)
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"code must be an int, got {code!r}")
    value = fmt.code_to_value(code)
    if isinstance(value, Fraction) and value == 0:
        return -0.0 if code & fmt.sign_code else 0.0
    return value


def representable_values(fmt) -> list[Fraction]:
    """All finite values ``fmt`` can produce, sorted, zero listed once.

    Subnormal values are left out for ``'flush'`` and ``'round_to_normal'``
    formats (rounding never produces them), so the length is
    ``fmt.num_finite``. Cost is O(2**bits).

    Args:
      fmt: a :class:`numfmt.FloatFormat` or a format string of at most 24 bits.

    Returns:
      A sorted list of Fractions.

    Raises:
      ValueError: if ``fmt`` has more than 24 bits (the list would be huge).

    Examples:
      >>> from numfmt.core.names import parse
      >>> [str(v) for v in representable_values(parse("float4_e2m1fn"))][7:]
      ['0', '1/2', '1', '3/2', '2', '3', '4', '6']
    """
    fmt = _as_format(fmt)
    if fmt.bits > _REPRESENTABLE_MAX_BITS:
        raise ValueError(
            f"{fmt} has {fmt.bits} bits; representable_values lists every value and is "
            f"limited to formats of at most {_REPRESENTABLE_MAX_BITS} bits"
        )
    no_subnormals = fmt.subnormals in (Subnormals.FLUSH, Subnormals.ROUND_TO_NORMAL)
    positive = []
    for code in range(fmt.max_magnitude_code + 1):
        if no_subnormals and 0 < code < 1 << fmt.man_bits:
            continue
        value = fmt.code_to_value(code)
        if isinstance(value, Fraction):
            positive.append(value)
    nonzero = [v for v in positive if v != 0]
    negative = [-v for v in reversed(nonzero)] if fmt.signed else []
    zero = [Fraction(0)] if fmt.has_zero else []
    return negative + zero + nonzero
