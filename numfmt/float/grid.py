"""The value grid of a float format, indexed: what ``numfmt.testing`` samples.

The nonnegative values rounding can produce are numbered ``0 .. count - 1``
in increasing order (``0`` is zero, or ``2**emin`` for ``no_zero`` formats;
the subnormal codes of ``flush`` and ``round_to_normal`` formats are left
out, as rounding never produces them). Gap ``i`` lies between values ``i``
and ``i + 1``. Everything here is exact (Python ints and Fractions) until a
value is placed in a float dtype, and nothing imports hypothesis: the
strategies and the assertions share these helpers.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from numfmt.core.xp import FLOAT_LAYOUTS
from numfmt.float.format import FloatFormat, Subnormals
from numfmt.float.reference import round_value
from numfmt.float.reference_codes import encode_value

__all__ = ["boundary_array", "count", "dtype_format", "fits", "gap_points", "landmarks", "magnitude", "representable"]


def _skips_subnormals(fmt: FloatFormat) -> bool:
    return fmt.subnormals in (Subnormals.FLUSH, Subnormals.ROUND_TO_NORMAL) and fmt.man_bits > 0


def count(fmt: FloatFormat) -> int:
    """Number of nonnegative values rounding into ``fmt`` can produce."""
    skipped = (1 << fmt.man_bits) - 1 if _skips_subnormals(fmt) else 0
    return fmt.max_magnitude_code + 1 - skipped


def magnitude(fmt: FloatFormat, i: int) -> Fraction:
    """The ``i``-th nonnegative value of ``fmt`` (``0 <= i < count(fmt)``)."""
    code = i + (1 << fmt.man_bits) - 1 if i > 0 and _skips_subnormals(fmt) else i
    return Fraction(fmt.code_to_value(code))


def gap_points(fmt: FloatFormat, i: int) -> tuple[Fraction, Fraction]:
    """The lower end and the midpoint (the tie) of gap ``i`` (``0 <= i < count(fmt) - 1``)."""
    lo, hi = magnitude(fmt, i), magnitude(fmt, i + 1)
    return lo, (lo + hi) / 2


def landmarks(fmt: FloatFormat) -> list[Fraction]:
    """Magnitudes where rounding changes regime.

    Half the smallest subnormal (the underflow tie), the smallest subnormal,
    half the smallest normal (the ``round_to_normal`` tie), the smallest
    normal, 1, the largest finite value, the overflow threshold (the tie
    between the max and the next value of an unbounded exponent range) and
    that next value.
    """
    top_ulp = Fraction(2) ** (fmt.emax - fmt.man_bits)
    tiny, normal, big = fmt.smallest_subnormal, fmt.smallest_normal, fmt.max_value
    points = [tiny / 2, tiny, normal / 2, normal, Fraction(1), big, big + top_ulp / 2, big + top_ulp]
    return sorted(set(points))


@functools.cache
def dtype_format(dtype) -> FloatFormat:
    """The :class:`FloatFormat` of a float dtype (float16/bfloat16/float32/float64)."""
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_LAYOUTS:
        raise TypeError(f"dtype must be float16, bfloat16, float32 or float64, got {dtype}")
    return FloatFormat(*FLOAT_LAYOUTS[dtype])


def fits(fmt: FloatFormat, dtype) -> bool:
    """True if ``dtype`` holds every value of ``fmt`` (subnormal codes included) exactly."""
    d = dtype_format(dtype)
    lowest = fmt.emin if fmt.subnormals is Subnormals.NO_ZERO else fmt.emin - fmt.man_bits
    return fmt.man_bits <= d.man_bits and lowest >= d.emin - d.man_bits and fmt.emax <= d.emax


def to_dtype(values, dtype) -> np.ndarray:
    """Place exact values (Fractions or floats) in ``dtype``, each rounded once to nearest."""
    d = dtype_format(dtype)
    out = []
    for v in values:
        if isinstance(v, Fraction):
            try:
                f = float(v)
            except OverflowError:
                f = None
            # exact in float64: the cast to dtype below is the one rounding
            v = f if f is not None and Fraction(f) == v else round_value(v, d)
        out.append(float(v))
    return np.array(out, np.float64).astype(dtype)


def boundary_array(fmt: FloatFormat, gaps, dtype) -> np.ndarray:
    """Boundary inputs of the gaps ``gaps`` (indices) and the landmarks, in ``dtype``.

    For each gap: its lower end and its midpoint (placed in ``dtype`` by one
    rounding to nearest: exact when the dtype has a spare bit), each with its
    two ``dtype`` neighbours; then the landmarks likewise; every point with
    both signs, and +-0, +-inf and NaN. Points beyond the dtype's range become
    +-inf.
    """
    points: list = []
    for i in gaps:
        points += gap_points(fmt, i)
    points += landmarks(fmt)
    inf = np.array(np.inf, dtype)
    with np.errstate(over="ignore"):  # points beyond the dtype become +-inf
        x = to_dtype(points, dtype)
        x = np.concatenate([x, np.nextafter(x, inf), np.nextafter(x, -inf)])
    x = x[x > 0]
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan]).astype(dtype)
    return np.concatenate([x, -x, specials])


def representable(v, fmt: FloatFormat) -> bool:
    """True if rounding into ``fmt`` can produce the float or Fraction ``v``.

    NaN needs a NaN code, +-inf infinities, -0.0 a -0 code; subnormal values
    of ``flush`` and ``round_to_normal`` formats are not produced.
    """
    if isinstance(v, float) and math.isnan(v):
        return fmt.has_nan
    if isinstance(v, float) and v == 0 and math.copysign(1.0, v) < 0 and not fmt.has_negative_zero:
        return False
    if _skips_subnormals(fmt) and v != 0 and not math.isinf(v) and abs(Fraction(v)) < fmt.smallest_normal:
        return False
    try:
        encode_value(v, fmt)
    except ValueError:
        return False
    return True
