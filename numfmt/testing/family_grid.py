"""The value grid of a posit or fixed-point format, for ``numfmt.testing``.

The real values of the format are numbered ``0 .. count - 1`` in increasing
order, negatives included (posits: ``-maxpos .. maxpos``; fixed point:
``min_value .. max_value``). Values come from the exact references in
:mod:`numfmt.fixed.reference` (not from the array kernels), as do the
exact roundings. Neither family has -0 or infinities; a posit's NaR is
NaN in a float array, and fixed point has no NaN code. Nothing here imports
hypothesis.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from numfmt.core.rounding import Overflow, Rounding
from numfmt.fixed.format import FixedFormat, FixedOverflow
from numfmt.fixed.kernel import all_values_fit
from numfmt.fixed.reference import fixed_round
from numfmt.float import grid as _grid
from numfmt.posit.format import PositFormat
from numfmt.posit.reference import _finite_value, posit_round, posit_value

__all__ = ["count", "fits", "is_family", "landmarks", "parse_overflow", "representable", "round_exact", "value_at"]


def is_family(fmt) -> bool:
    """True for the formats this module knows (posit and fixed point)."""
    return isinstance(fmt, (PositFormat, FixedFormat))


def count(fmt) -> int:
    """Number of real values of ``fmt`` (every code but NaR)."""
    return 2**fmt.n - 1 if isinstance(fmt, PositFormat) else 2**fmt.bits


def value_at(fmt, i: int) -> Fraction:
    """The ``i``-th smallest real value of ``fmt`` (``0 <= i < count(fmt)``)."""
    if isinstance(fmt, PositFormat):
        j = i - (2 ** (fmt.n - 1) - 1)
        return _finite_value(j % 2**fmt.n, fmt.n, fmt.es)
    lowest = -(2**fmt.magnitude_bits) if fmt.signed else 0
    return (lowest + i) * fmt.resolution


def landmarks(fmt) -> list[Fraction]:
    """Positive magnitudes where rounding changes regime.

    Posits: half of minpos (below it everything nonzero gives minpos),
    minpos, 1, maxpos and twice maxpos. Fixed point: half the quantum, the
    quantum, 1, the largest value, the overflow tie above it (max + quantum/2),
    the first value past it, and the same three around ``|min_value|``.
    """
    if isinstance(fmt, PositFormat):
        return sorted({fmt.minpos / 2, fmt.minpos, Fraction(1), fmt.maxpos, 2 * fmt.maxpos})
    q, top, bottom = fmt.resolution, fmt.max_value, -fmt.min_value
    points = {q / 2, q, Fraction(1), top, top + q / 2, top + q, bottom, bottom + q / 2, bottom + q}
    return sorted(p for p in points if p > 0)


def fits(fmt, dtype) -> bool:
    """True if ``dtype`` holds every value of ``fmt`` exactly."""
    if isinstance(fmt, FixedFormat):
        return all_values_fit(fmt, dtype)
    d = _grid.dtype_format(dtype)
    for k in range(-(fmt.n - 2), fmt.n - 1):  # every regime
        fb = fmt.fraction_bits(k)
        lo = k * 2**fmt.es
        if fb > d.man_bits or lo - fb < d.emin - d.man_bits or lo > d.emax:
            return False
    return True


def parse_overflow(fmt, overflow):
    """``overflow`` (None: the format's own) as the family's overflow type."""
    if isinstance(fmt, FixedFormat):
        return fmt.overflow if overflow is None else FixedOverflow.parse(overflow)
    if overflow is not None and Overflow.parse(overflow) is not Overflow.SAT_FINITE:
        raise ValueError(
            f"overflow={overflow!r}: posits have one overflow rule (saturate to +-maxpos); pass None or 'sat_finite'"
        )
    return Overflow.SAT_FINITE


def round_exact(v, fmt, rounding, overflow=None) -> Fraction | float:
    """One deterministic rounding of ``v`` (a float or Fraction) into ``fmt``.

    Returns a Fraction, or NaN (posit NaR; fixed point: NaN input, or inf
    under ``wrap``), by the exact references.
    """
    rounding = Rounding.parse(rounding)
    value: Fraction | None
    if isinstance(fmt, PositFormat):
        value = posit_value(posit_round(v, fmt.n, fmt.es, rounding), fmt.n, fmt.es)
    else:
        fixed_code = fixed_round(v, fmt, rounding, overflow=parse_overflow(fmt, overflow))
        value = None if fixed_code is None else fmt.code_to_value(fixed_code)
    return math.nan if value is None else value


def representable(v, fmt) -> bool:
    """True if ``v`` (a float or Fraction) is a value of ``fmt``.

    NaN counts for posits (NaR) only; -0.0 and +-inf never count.
    """
    if isinstance(v, float) and math.isnan(v):
        return isinstance(fmt, PositFormat)
    if isinstance(v, float) and (math.isinf(v) or (v == 0 and math.copysign(1.0, v) < 0)):
        return False
    v = Fraction(v)
    if isinstance(fmt, FixedFormat):
        k = v / fmt.resolution
        return k.denominator == 1 and fmt.min_value <= v <= fmt.max_value
    return v == round_exact(v, fmt, Rounding.TOWARD_ZERO)


def why_not(v, fmt) -> str:
    """Why the float or Fraction ``v`` is not a value of ``fmt``."""
    if isinstance(v, float) and math.isnan(v):
        return f"NaN, but {fmt} has no NaN code"
    if isinstance(v, float) and math.isinf(v):
        return f"infinite, but {fmt} has no infinity"
    if isinstance(v, float) and v == 0:
        return f"-0.0, but {fmt} has no -0 (use +0.0)"
    lo, hi = (round_exact(v, fmt, mode) for mode in ("toward_negative", "toward_positive"))
    if lo == hi:
        return f"beyond the range of {fmt}, which ends at {float(lo)!r}"
    return f"between the neighbouring values {float(lo)!r} and {float(hi)!r}"


def boundary_array(fmt, gaps, dtype) -> np.ndarray:
    """Lower ends and midpoints of the gaps ``gaps`` and the landmarks (both
    signs), each with its two ``dtype`` neighbours, then +-0, +-inf and NaN."""
    points = []
    for i in gaps:
        lo, hi = value_at(fmt, i), value_at(fmt, i + 1)
        points += [lo, (lo + hi) / 2]
    marks = landmarks(fmt)
    points += marks + [-m for m in marks]
    inf = np.array(np.inf, dtype)
    with np.errstate(over="ignore"):
        x = _grid.to_dtype(points, dtype)
        x = np.concatenate([x, np.nextafter(x, inf), np.nextafter(x, -inf)])
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan]).astype(dtype)
    return np.concatenate([x, specials])
