"""Exact reference for scaled integer formats: one group at a time, in Fractions.

The oracle for :mod:`numfmt.scaled.kernel`; it shares no code with it. From
the definitions in :mod:`numfmt.scaled.format`: ``s = RN_scale(n / D)`` (saturating)
with ``n = amax`` (symmetric) or ``hi - lo``; ``z = clamp(qmin - RNE(lo / s))``;
``q = clamp(round(x / s) + z)``; results ``RN_out((q - z) * s)``. A NaN or
infinity makes the group NaN; ``s = 0`` gives ``z = 0`` and zero codes; zero
results are ``+0``.
"""

from __future__ import annotations

import math
from fractions import Fraction

from numfmt.block.int_element import IntElement
from numfmt.block.reference import round_element
from numfmt.core.rounding import Overflow, Rounding
from numfmt.float.format import FloatFormat
from numfmt.float.reference import round_value
from numfmt.scaled.format import ScaledIntFormat

__all__ = ["quantize_group"]

F32 = FloatFormat(8, 23)
_INT = IntElement(32, 0)  # integers in +-2**31: wider than any code plus zero point


def _round_int(y: Fraction, rounding, random=None, n_bits=None) -> int:
    return int(Fraction(round_element(y, _INT, rounding, random, n_bits)))


def quantize_group(values, fmt: ScaledIntFormat, rounding="nearest_even", *, random=None, n_bits=None,
                   out: FloatFormat = F32):  # fmt: skip
    """Quantize one group exactly.

    Args:
      values: the group's elements as Python floats.
      fmt: the scaled integer format.
      rounding: the element rounding mode; stochastic modes need ``random``
        (one int per element, ``n_bits`` wide) and ``n_bits``.
      out: the format results are rounded into (the input dtype's).

    Returns:
      ``(scale, zero_point, codes, results)``: scale a Fraction (NaN for a NaN
      group), the zero point and codes as ints, results as Fractions or floats
      (``0.0``, ``nan``, ``+-inf`` where ``out`` overflows).
    """
    rounding = Rounding.parse(rounding)
    n = len(values)
    if any(not math.isfinite(v) for v in values):
        return math.nan, 0, [0] * n, [math.nan] * n
    xs = [Fraction(v) for v in values]
    if fmt.symmetric:
        lo, num = Fraction(0), max(abs(x) for x in xs)
    else:
        lo = min(min(xs), Fraction(0))
        num = max(max(xs), Fraction(0)) - lo
    if num == 0:  # s = 0 by definition (also for scale formats without a zero, such as e8m0)
        return Fraction(0), 0, [0] * n, [0.0] * n
    s = Fraction(round_value(num / fmt.divisor, fmt.scale, Rounding.NEAREST_EVEN, Overflow.SAT_FINITE))
    if s == 0:
        return s, 0, [0] * n, [0.0] * n
    z = 0 if fmt.symmetric else min(max(fmt.qmin - _round_int(lo / s, Rounding.NEAREST_EVEN), fmt.qmin), fmt.qmax)
    random = random if random is not None else [None] * n
    codes, results = [], []
    for x, r in zip(xs, random, strict=True):
        q = min(max(_round_int(x / s, rounding, r, n_bits) + z, fmt.qmin), fmt.qmax)
        codes.append(q)
        v = (q - z) * s
        results.append(round_value(v, out, Rounding.NEAREST_EVEN, Overflow.SAT_NONE) if v != 0 else 0.0)
    return s, z, codes, results
