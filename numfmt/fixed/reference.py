"""Exact scalar reference of fixed point (Python ints and Fractions), for tests.

Written from the definitions, independently of the array kernels:
``x * 2**frac_bits`` is rounded to an integer by the mode, then clamped or
reduced modulo ``2**bits``. The stochastic modes take the random integer
``R`` (``N`` bits) explicitly. Posits: :mod:`numfmt.posit.reference`.
"""

from __future__ import annotations

import math

from numfmt.core.decide import _decide, _stochastic_up
from numfmt.core.rounding import Rounding

__all__ = ["fixed_round"]


def fixed_round(x, fmt, rounding=Rounding.NEAREST_EVEN, r: int = 0, nbits: int = 0, overflow=None) -> int | None:
    """The code of ``x`` in the fixed-point format ``fmt`` (None: no code, i.e.
    NaN, or inf under wrap). ``overflow`` defaults to ``fmt.overflow``."""
    overflow = fmt.overflow if overflow is None else overflow
    wrap = overflow.value == "wrap"
    lo_code = -(1 << fmt.magnitude_bits) if fmt.signed else 0
    hi_code = (1 << fmt.magnitude_bits) - 1
    if isinstance(x, float) and not math.isfinite(x):
        if math.isnan(x) or wrap:
            return None
        k = hi_code if x > 0 else lo_code
    else:
        num, den = x.as_integer_ratio()  # x * 2**frac_bits = num / den, exactly
        if fmt.frac_bits >= 0:
            num <<= fmt.frac_bits
        else:
            den <<= -fmt.frac_bits
        neg, num = num < 0, abs(num)
        lo, rem = divmod(num, den)  # |x| * 2**frac_bits = lo + rem / den

        def sr():
            if rounding is Rounding.STOCHASTIC_EQUAL:
                return r == 1
            floor_n = (rem << nbits) // den
            floor_n1, left = divmod(rem << (nbits + 1), den)
            return _stochastic_up(rounding, floor_n, None, (floor_n1, left == 0), r, nbits)

        up = _decide(rounding, rem != 0, neg, lo & 1, 2 * rem > den, 2 * rem == den, sr)
        k = -(lo + up) if neg else lo + up
        if not wrap:
            k = min(max(k, lo_code), hi_code)
    return k % (1 << fmt.bits)
