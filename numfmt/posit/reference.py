"""Exact scalar reference of posits (Python ints and Fractions), for tests.

Written from the definitions, independently of the array kernels: a decoder
that reads the code as a string of bits; rounding picks the two neighbouring
posits from the sorted list of all values (or by bisection for wide formats)
and compares with the bit-string midpoint, which is the posit of ``n + 1``
bits whose code is ``2c + 1`` (posit<n> codes are the even codes of
posit<n+1>). The stochastic distance is the position of ``|x|`` between the
two neighbours along the bit string, found digit by digit the same way. The
stochastic modes take the random integer ``R`` (``N`` bits) explicitly.
"""

from __future__ import annotations

import bisect
import functools
import math
from fractions import Fraction

from numfmt.core.decide import _decide, _stochastic_up
from numfmt.core.rounding import Rounding

__all__ = ["posit_round", "posit_value"]


def posit_value(code: int, n: int, es: int) -> Fraction | None:
    """Exact value of an ``n``-bit posit code (None for NaR)."""
    bits = format(code, f"0{n}b")
    if bits == "1" + "0" * (n - 1):
        return None
    if bits == "0" * n:
        return Fraction(0)
    sign = bits[0] == "1"
    if sign:  # two's complement negation, as a string
        bits = format((1 << n) - code, f"0{n}b")
    body = bits[1:]
    first = body[0]
    run = len(body) - len(body.lstrip(first))
    k = run - 1 if first == "1" else -run
    rest = body[run + 1 :]
    exp_bits = (rest[:es] + "0" * es)[:es]
    frac_bits = rest[es:]
    exponent = int(exp_bits, 2) if es else 0
    fraction = Fraction(int(frac_bits, 2), 2 ** len(frac_bits)) if frac_bits else Fraction(0)
    value = Fraction(2) ** (k * 2**es + exponent) * (1 + fraction)
    return -value if sign else value


@functools.lru_cache(maxsize=64)
def _tables(n: int, es: int) -> tuple[int, list, list]:
    """``(shift, values, mids)``: the positive posits (codes 1, 2, ...) and the
    bit-string midpoints above them, as integer multiples of ``2**-shift``."""
    shift = (n - 1) * 2**es + n + 1  # every posit<n+1> is a multiple of 2**-shift

    def scaled(code, width):
        v = posit_value(code, width, es) * 2**shift
        if v.denominator != 1:
            raise RuntimeError(f"posit<{width},{es}> code {code} is not a multiple of 2**-{shift}")
        return v.numerator

    top = 1 << (n - 1)
    return shift, [scaled(c, n) for c in range(1, top)], [scaled(2 * c + 1, n + 1) for c in range(1, top - 1)]


def _finite_value(code: int, n: int, es: int) -> Fraction:
    """``posit_value`` of a code known not to be NaR."""
    v = posit_value(code, n, es)
    if v is None:
        raise ValueError(f"posit<{n},{es}> code {code} is NaR, not a value")
    return v


def _neighbours(x: Fraction, n: int, es: int) -> tuple[int, int, int]:
    """``(c, sign(x - posit c), sign(x - midpoint above c))`` for minpos < x < maxpos."""
    if n <= 20:
        shift, values, mids = _tables(n, es)
        key, den = x.numerator << shift, x.denominator
        c = bisect.bisect_right(values, key // den)
        lo, mid = values[c - 1] * den, mids[c - 1] * den
        return c, (key > lo) - (key < lo), (key > mid) - (key < mid)
    lo, hi = 1, (1 << (n - 1)) - 1  # bisection over the ordered codes
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _finite_value(mid, n, es) <= x:
            lo = mid
        else:
            hi = mid
    v, m = _finite_value(lo, n, es), _finite_value(2 * lo + 1, n + 1, es)
    return lo, (x > v) - (x < v), (x > m) - (x < m)


def _bitstring_digits(x: Fraction, c: int, n: int, es: int, digits: int) -> tuple[int, bool]:
    """``floor(v * 2**digits)`` and ``v * 2**digits`` exact?, where ``v`` in
    [0, 1) is the position of ``x`` between codes ``c`` and ``c + 1`` along the
    bit string (found by successive bit-string midpoints)."""
    code, width = c, n
    for _ in range(digits):
        mid = _finite_value(2 * code + 1, width + 1, es)
        code, width = 2 * code + (1 if x >= mid else 0), width + 1
    return code - (c << digits), _finite_value(code, width, es) == x


def posit_round(x, n: int, es: int, rounding=Rounding.NEAREST_EVEN, r: int = 0, nbits: int = 0) -> int:
    """The posit code of ``x`` (a float or Fraction) rounded as the kernel's modes.

    ``r`` is the random integer of ``nbits`` bits for the stochastic modes
    (for ``stochastic_equal``: the one random bit, with ``nbits=1``).
    """
    if isinstance(x, float) and not math.isfinite(x):
        return 1 << (n - 1)
    x = Fraction(x)
    if x == 0:
        return 0
    neg, ax = x < 0, abs(x)
    scale = (n - 2) * 2**es
    maxpos, minpos = Fraction(2) ** scale, Fraction(2) ** -scale
    if ax >= maxpos:
        mag = (1 << (n - 1)) - 1
    elif ax <= minpos:
        mag = 1
    else:
        c, to_lo, to_mid = _neighbours(ax, n, es)

        def sr():
            if rounding is Rounding.STOCHASTIC_EQUAL:
                return r == 1
            floor_n, exact_n = _bitstring_digits(ax, c, n, es, nbits)
            half_info = _bitstring_digits(ax, c, n, es, nbits + 1)
            return _stochastic_up(rounding, floor_n, exact_n, half_info, r, nbits)

        up = _decide(rounding, to_lo != 0, neg, c & 1, to_mid > 0, to_mid == 0, sr)
        mag = c + up
    return ((1 << n) - mag) % (1 << n) if neg else mag
