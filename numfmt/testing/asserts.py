"""Bit-exact assertions: equal bits; and the helpers the other assertions share.

Failures list the first differing elements with their values, their bit
patterns and, given a format, their codes in it.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from numfmt.core.names import parse
from numfmt.core.xp import FLOAT_LAYOUTS
from numfmt.float import grid as _grid
from numfmt.float.format import FloatFormat
from numfmt.float.reference_codes import encode_value

__all__ = ["assert_bits_equal"]

_SHOW = 8


def float_array(x, argname: str) -> np.ndarray:
    """``x`` as a NumPy array of a float dtype numfmt handles (JAX arrays are copied)."""
    a = np.asarray(x)
    if a.dtype not in FLOAT_LAYOUTS:
        raise TypeError(f"{argname} must be a float16/bfloat16/float32/float64 array, got dtype {a.dtype}")
    return a


def float_format(fmt, what: str) -> FloatFormat:
    """Parse ``fmt``; the checks here know float formats only so far."""
    fmt = parse(fmt)
    if not isinstance(fmt, FloatFormat):
        raise ValueError(f"{what} supports float formats (FloatFormat) so far, got {fmt!r}")
    return fmt


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(f"uint{a.dtype.itemsize * 8}")


def exact(v) -> Fraction | float:
    """A float in round_value's convention: Fraction if finite and nonzero."""
    v = float(v)
    return Fraction(v) if math.isfinite(v) and v != 0 else v


def describe(v, pattern: int, width: int, fmt: FloatFormat | None) -> str:
    """``value (0xbits)``, with the code in ``fmt`` when given."""
    text = f"{float(v)!r} (0x{int(pattern):0{width}x})"
    if fmt is None:
        return text
    e = exact(v)
    if not _grid.representable(e, fmt):
        return f"{text} [not a value of {fmt}]"
    return f"{text} [code 0x{encode_value(e, fmt):0{(fmt.bits + 3) // 4}x}]"


def mismatches(actual: np.ndarray, desired: np.ndarray, nan_payload: bool) -> np.ndarray:
    """Mask of elements whose bits differ (NaN equals NaN unless ``nan_payload``)."""
    bad = bits(actual) != bits(desired)
    if not nan_payload:
        with np.errstate(invalid="ignore"):
            bad &= ~(np.isnan(actual.astype(np.float64)) & np.isnan(desired.astype(np.float64)))
    return bad


def report(bad: np.ndarray, columns: dict, fmt, header: str) -> str:
    """Failure text: ``header`` then one line per shown element of ``bad``."""
    lines = [header]
    for ix in np.argwhere(bad)[:_SHOW]:
        ix = tuple(int(i) for i in ix)
        parts = []
        for name, (arr, use_fmt) in columns.items():
            width = arr.dtype.itemsize * 2
            parts.append(f"{name} {describe(arr[ix], bits(arr)[ix], width, fmt if use_fmt else None)}")
        lines.append(f"  at {ix}: " + ", ".join(parts))
    return "\n".join(lines)


def assert_bits_equal(actual, desired, *, fmt=None, nan_payload: bool = False, err_msg: str = "") -> None:
    """Assert two float arrays are equal bit for bit.

    -0.0 and +0.0 differ. NaNs compare equal to NaNs regardless of sign and
    payload unless ``nan_payload`` is set.

    Args:
      actual: array (NumPy or JAX) of a float dtype.
      desired: array of the same dtype and shape.
      fmt: optional format; the failure message then shows each element's
        code in it (or that it is not a value of it).
      nan_payload: also require NaN bit patterns to match.
      err_msg: prepended to the failure message.

    Raises:
      AssertionError: if dtypes or shapes differ, or listing the number of
        differing elements and the first few with their values, hex bit
        patterns and codes.
      TypeError: for arrays of a dtype other than float16, bfloat16, float32
        and float64.

    Examples:
      >>> import numpy as np
      >>> assert_bits_equal(np.float32([0.0, np.nan]), np.float32([0.0, -np.nan]))
      >>> assert_bits_equal(np.float32([1.0, 0.0]), np.float32([1.0, -0.0]), fmt="float8_e4m3fn")
      Traceback (most recent call last):
      ...
      AssertionError: 1 of 2 elements differ in their bits:
        at (1,): actual 0.0 (0x00000000) [code 0x00], desired -0.0 (0x80000000) [code 0x80]
    """
    a, d = float_array(actual, "actual"), float_array(desired, "desired")
    if a.dtype != d.dtype or a.shape != d.shape:
        raise AssertionError(f"{err_msg}dtype/shape differ: {a.dtype}{a.shape} vs {d.dtype}{d.shape}")
    fmt = None if fmt is None else parse(fmt)
    fmt = fmt if isinstance(fmt, FloatFormat) else None  # codes are shown for float formats only
    bad = mismatches(a, d, nan_payload)
    if bad.any():
        header = f"{err_msg}{int(bad.sum())} of {bad.size} elements differ in their bits:"
        raise AssertionError(report(bad, {"actual": (a, True), "desired": (d, True)}, fmt, header))


def elementwise_lines(a: np.ndarray, fmt, err_msg: str, representable, why_not) -> list[str]:
    """Failure lines of ``assert_representable`` for an elementwise ``fmt`` (empty: passes).

    ``representable(value, fmt)`` and ``why_not(value, fmt)`` judge one exact
    value (a Fraction, or a float for NaN/inf); each distinct bit pattern is
    judged once.
    """
    flat = bits(a.reshape(-1))
    unique, inverse = np.unique(flat, return_inverse=True)
    with np.errstate(invalid="ignore"):  # signalling NaN patterns
        as_float = unique.view(a.dtype).astype(np.float64)
    ok = np.array([representable(exact(v), fmt) for v in as_float], dtype=bool)
    bad = ~ok[inverse.reshape(-1)]
    if not bad.any():
        return []
    lines = [f"{err_msg}{int(bad.sum())} of {bad.size} elements are not values of {fmt}:"]
    width = a.dtype.itemsize * 2
    for i in np.flatnonzero(bad)[:_SHOW]:
        ix = tuple(int(j) for j in np.unravel_index(i, a.shape))
        v = as_float[inverse.reshape(-1)[i]]
        lines.append(f"  at {ix}: {float(v)!r} (0x{int(flat[i]):0{width}x}): {why_not(exact(v), fmt)}")
    return lines


def _call(f, x: np.ndarray, name: str) -> np.ndarray:
    y = np.asarray(f(x))
    if y.dtype != x.dtype or y.shape != x.shape:
        raise AssertionError(
            f"{name} must return an array of the input's dtype and shape: given {x.dtype}{x.shape}, "
            f"it returned {y.dtype}{y.shape}"
        )
    return y
