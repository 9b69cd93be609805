"""Exact scalar reference of float formats: rounding one value at a time.

This module is the oracle the fast array kernels are tested against. It uses
Python ints and :class:`fractions.Fraction` only, never floating-point
arithmetic on values, and favours being obviously right over being fast.

Algorithm of :func:`round_value` (one rounding of the exact input):

1. Specials first: NaN -> NaN; negative inputs of unsigned formats -> NaN;
   infinities follow the overflow policy; zeros keep their sign where the
   format has -0.
2. Underflow rules that act before rounding: ``subnormals='flush'`` sends
   every ``|x| < 2**emin`` to a signed zero; ``'no_zero'`` sends every
   ``0 < |x| < 2**emin`` to ``2**emin``.
3. The quantum: with ``e = floor(log2 |x|)`` (exact, from the Fraction),
   ``qe = e - man_bits`` in the normal range; below it ``qe = emin - man_bits``
   (gradual underflow) or ``qe = emin`` (``'round_to_normal'``: the candidates
   are 0 and ``2**emin``). The exponent range is unbounded above.
4. The two candidates ``lo = floor(|x| / 2**qe) * 2**qe`` and
   ``hi = lo + 2**qe``, and the discarded fraction ``v = (|x| - lo) / 2**qe``
   in ``[0, 1)``. The rounding mode picks one of them (see
   :class:`numfmt.Rounding`); ties to even and to-odd look at the parity of
   the code of ``lo`` (``hi``'s code is ``lo``'s plus one, except across the
   ``'round_to_normal'`` gap, where the tie goes to ``2**emin``).
5. Overflow: a rounded magnitude above ``max_value`` is replaced according
   to the :class:`numfmt.Overflow` policy and the rounding mode.

Results are a ``Fraction`` for finite nonzero values and a Python ``float``
for ``0.0``, ``-0.0``, ``inf``, ``-inf`` and ``nan``.

NaN handling: a NaN input gives NaN even for formats without a NaN code
(``specials='finite'``), which is what the fast kernels return as well;
:func:`numfmt.float.reference_codes.encode_value` refuses to encode it for
such formats. Codes (encoding, decoding, the list of values) are in
:mod:`numfmt.float.reference_codes`.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

from numfmt.core.names import parse
from numfmt.core.rounding import Overflow, Rounding
from numfmt.float.format import FloatFormat, Specials, Subnormals

__all__ = ["round_value"]

_NAN = float("nan")
_INF = float("inf")
_NEAREST = (Rounding.NEAREST_EVEN, Rounding.NEAREST_AWAY)


# --------------------------------------------------------------- arguments
def _as_format(fmt) -> FloatFormat:
    if isinstance(fmt, FloatFormat):
        return fmt
    if isinstance(fmt, str):
        return parse(fmt)
    raise TypeError(f"fmt must be a FloatFormat or a format string, got {fmt!r}")


def _split(x) -> tuple[bool, Fraction | float]:
    """Return ``(negative, magnitude)``; magnitude is a Fraction, inf or nan.

    ``negative`` is the sign bit (so it is True for -0.0 and for a NaN with its
    sign bit set).
    """
    if isinstance(x, bool) or not isinstance(x, (int, float, Fraction)):
        raise TypeError(
            f"x must be a Python float, int or fractions.Fraction, got {x!r} of type "
            f"{type(x).__name__}; convert it with float() or Fraction() first"
        )
    if isinstance(x, float):
        negative = math.copysign(1.0, x) < 0
        if math.isnan(x):
            return negative, _NAN
        if math.isinf(x):
            return negative, _INF
        return negative, abs(Fraction(x))
    return x < 0, abs(Fraction(x))


def _check_random(rounding: Rounding, random_bits, n_bits) -> None:
    if not rounding.is_stochastic:
        if random_bits is not None or n_bits is not None:
            raise ValueError(
                f"random_bits and n_bits are only used by stochastic rounding modes; "
                f"rounding={rounding.value!r} is deterministic, so leave them as None"
            )
        return
    for name, value in (("random_bits", random_bits), ("n_bits", n_bits)):
        if value is None:
            raise ValueError(
                f"rounding={rounding.value!r} is stochastic and needs {name}; pass "
                "random_bits=R (an int in [0, 2**n_bits)) and n_bits=N (an int >= 1)"
            )
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if n_bits < 1:
        raise ValueError(f"n_bits must be >= 1, got n_bits={n_bits}")
    if not 0 <= random_bits < 1 << n_bits:
        raise ValueError(
            f"random_bits={random_bits} is out of range; it must be in [0, 2**n_bits) = [0, {1 << n_bits})"
        )


# ------------------------------------------------------------ exact helpers
def _floor_log2(q: Fraction) -> int:
    """Exact ``floor(log2(q))`` for a positive Fraction."""
    n, d = q.numerator, q.denominator
    e = n.bit_length() - d.bit_length()
    # Now 2**(e-1) < n/d < 2**(e+1); step down if n/d < 2**e.
    if (n < d << e) if e >= 0 else (n << -e < d):
        e -= 1
    return e


def _pow2(e: int) -> Fraction:
    """Exact ``2**e`` for any int ``e``."""
    return Fraction(1 << e) if e >= 0 else Fraction(1, 1 << -e)


@functools.lru_cache(maxsize=256)
def _limits(fmt: FloatFormat) -> tuple[Fraction, Fraction]:
    """``(max_value, smallest_normal)`` of ``fmt``, computed once per format."""
    return fmt.max_value, fmt.smallest_normal


def _quantum_exponent(mag: Fraction, fmt: FloatFormat) -> int:
    """Exponent of the gap between the two candidates around ``mag > 0``."""
    e = _floor_log2(mag)
    if e >= fmt.emin:
        return e - fmt.man_bits
    if fmt.subnormals is Subnormals.ROUND_TO_NORMAL:
        return fmt.emin
    return fmt.emin - fmt.man_bits


def _magnitude_code(mag: Fraction, fmt: FloatFormat) -> int | None:
    """Code (sign clear) of ``mag >= 0`` on the format's grid, extended without
    bound above; None if ``mag`` is not on the grid (or is 0 without a zero code).
    """
    m = fmt.man_bits
    if mag == 0:
        return 0 if fmt.has_zero else None
    if fmt.subnormals is not Subnormals.NO_ZERO and mag < _limits(fmt)[1]:
        scaled = mag / _pow2(fmt.emin - m)
        return scaled.numerator if scaled.denominator == 1 else None
    e = _floor_log2(mag)
    if e < fmt.emin:
        return None
    frac = (mag / _pow2(e) - 1) * 2**m
    if frac.denominator != 1:
        return None
    e_field = e - fmt.emin + (0 if fmt.subnormals is Subnormals.NO_ZERO else 1)
    return (e_field << m) | frac.numerator


# ---------------------------------------------------------------- rounding
def _round_half_even(q: Fraction) -> int:
    """Round a nonnegative Fraction to the nearest int, ties to even."""
    n = math.floor(q)
    rest = q - n
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and n % 2 == 1):
        return n + 1
    return n


def _rounds_up(
    rounding: Rounding,
    negative: bool,
    v: Fraction,
    lo_code_odd: bool,
    gap_tie_up: bool,
    random_bits: int | None,
    n_bits: int | None,
) -> bool:
    """Whether the magnitude goes to ``hi`` (True) or stays at ``lo``; ``v > 0``."""
    half = Fraction(1, 2)
    if rounding is Rounding.NEAREST_EVEN:
        return v > half or (v == half and (lo_code_odd or gap_tie_up))
    if rounding is Rounding.NEAREST_AWAY:
        return v >= half
    if rounding is Rounding.TOWARD_ZERO:
        return False
    if rounding is Rounding.TOWARD_POSITIVE:
        return not negative
    if rounding is Rounding.TOWARD_NEGATIVE:
        return negative
    if rounding is Rounding.TO_ODD:
        return not lo_code_odd
    r, n = int(random_bits or 0), int(n_bits or 0)  # checked by _check_random for these modes
    if rounding in (Rounding.STOCHASTIC, Rounding.STOCHASTIC_A):
        return math.floor(v * 2**n) + r >= 2**n
    if rounding is Rounding.STOCHASTIC_B:
        return math.floor(v * 2 ** (n + 1)) + 2 * r + 1 >= 2 ** (n + 1)
    if rounding is Rounding.STOCHASTIC_C:
        return _round_half_even(v * 2**n) + r >= 2**n
    if rounding is Rounding.STOCHASTIC_EQUAL:
        return (r >> (n - 1)) & 1 == 1
    raise ValueError(f"unsupported rounding mode {rounding!r}")  # pragma: no cover


def _round_magnitude(mag, negative, fmt, rounding, random_bits, n_bits) -> Fraction:
    """Round ``mag > 0`` onto the grid, exponent unbounded above."""
    qe = _quantum_exponent(mag, fmt)
    ulp = _pow2(qe)
    lo = math.floor(mag / ulp) * ulp
    v = (mag - lo) / ulp
    if v == 0:
        return lo
    lo_code = _magnitude_code(lo, fmt)
    if lo_code is None:  # pragma: no cover - lo is on the grid by construction
        raise RuntimeError(f"internal error: {lo} is not on the grid of {fmt}")
    # Across the round_to_normal gap (man_bits >= 1) both candidates, 0 and
    # 2**emin, have even codes; the tie goes to 2**emin (chop's rule, as the
    # Subnormals docstring states). With man_bits == 0 the codes are 0 and 1.
    gap_tie_up = lo == 0 and fmt.subnormals is Subnormals.ROUND_TO_NORMAL and fmt.man_bits >= 1
    up = _rounds_up(rounding, negative, v, lo_code % 2 == 1, gap_tie_up, random_bits, n_bits)
    return lo + ulp if up else lo


# ------------------------------------------------------------ specials etc.
def _signed(negative: bool, mag: Fraction | float) -> Fraction | float:
    return -mag if negative else mag


def _infinity_substitute(negative: bool, fmt: FloatFormat) -> Fraction | float:
    """What "infinity" means in ``fmt``: inf, NaN (fn/fnuz) or the max."""
    if fmt.has_inf:
        return _signed(negative, _INF)
    if fmt.specials in (Specials.FN, Specials.FNUZ):
        return _NAN
    return _signed(negative, fmt.max_value)


def _overflow_result(negative, fmt, rounding, overflow) -> Fraction | float:
    """Result for a finite input whose rounded magnitude exceeds the max."""
    if overflow in (Overflow.SAT_FINITE, Overflow.SAT_PROPAGATE):
        return _signed(negative, fmt.max_value)
    if rounding in (Rounding.TOWARD_ZERO, Rounding.TO_ODD):
        to_infinity = False
    elif rounding is Rounding.TOWARD_POSITIVE:
        to_infinity = not negative
    elif rounding is Rounding.TOWARD_NEGATIVE:
        to_infinity = negative
    else:  # nearest and stochastic modes
        to_infinity = True
    if to_infinity:
        return _infinity_substitute(negative, fmt)
    return _signed(negative, fmt.max_value)


def _infinite_input(negative, fmt, overflow) -> Fraction | float:
    if overflow is Overflow.SAT_FINITE:
        return _signed(negative, fmt.max_value)
    if fmt.has_inf:
        return _signed(negative, _INF)
    if fmt.has_nan and (overflow is Overflow.SAT_PROPAGATE or fmt.specials in (Specials.FN, Specials.FNUZ)):
        return _NAN
    return _signed(negative, fmt.max_value)


def _zero(negative: bool, fmt: FloatFormat) -> float:
    if not fmt.has_zero:
        return _NAN
    return -0.0 if negative and fmt.has_negative_zero else 0.0


# ------------------------------------------------------------------ public
def round_value(
    x,
    fmt,
    rounding=Rounding.NEAREST_EVEN,
    overflow=None,
    *,
    random_bits=None,
    n_bits=None,
) -> Fraction | float:
    """Round one value into ``fmt`` exactly (the reference for the kernels).

    Args:
      x: a Python float (inf, nan and -0.0 included), int or Fraction; its
        exact value is rounded once.
      fmt: a :class:`numfmt.FloatFormat` or a format string.
      rounding: a :class:`numfmt.Rounding` member or its name.
      overflow: a :class:`numfmt.Overflow` member or name; None means
        ``fmt.overflow``.
      random_bits: for stochastic modes only, the random integer R in
        ``[0, 2**n_bits)``.
      n_bits: for stochastic modes only, the number N >= 1 of random bits.

    Returns:
      A Fraction for a finite nonzero result; a float for 0.0, -0.0 (only
      where the format has -0), inf, -inf and nan. NaN inputs, negative
      nonzero inputs of unsigned formats and zero inputs of formats without
      zero give nan. Overflow follows ``overflow`` as described in
      :class:`numfmt.Overflow`.

    Raises:
      TypeError: for an ``x``, ``fmt``, ``random_bits`` or ``n_bits`` of the
        wrong type.
      ValueError: for an unknown mode name, a stochastic mode without
        ``random_bits``/``n_bits``, random arguments given to a deterministic
        mode, or ``random_bits`` out of range.

    Examples:
      >>> from numfmt.core.names import parse
      >>> round_value(1 + 2**-11, parse("float16"))
      Fraction(1, 1)
      >>> round_value(464.0, parse("e4m3fn")), round_value(465.0, parse("e4m3fn"))
      (Fraction(448, 1), nan)
      >>> round_value(-1e-30, parse("float16"))
      -0.0
    """
    fmt = _as_format(fmt)
    rounding = Rounding.parse(rounding)
    overflow = fmt.overflow if overflow is None else Overflow.parse(overflow)
    _check_random(rounding, random_bits, n_bits)
    negative, mag = _split(x)
    if isinstance(mag, float) and math.isnan(mag):
        return _NAN
    if not fmt.signed and negative:
        return _zero(False, fmt) if mag == 0 else _NAN
    if isinstance(mag, float):
        return _infinite_input(negative, fmt, overflow)
    if mag == 0:
        return _zero(negative, fmt)
    max_value, smallest_normal = _limits(fmt)
    if mag < smallest_normal:
        if fmt.subnormals is Subnormals.FLUSH:
            return _zero(negative, fmt)
        if fmt.subnormals is Subnormals.NO_ZERO:
            return _signed(negative, smallest_normal)
    rounded = _round_magnitude(mag, negative, fmt, rounding, random_bits, n_bits)
    if rounded > max_value:
        return _overflow_result(negative, fmt, rounding, overflow)
    if rounded == 0:
        return _zero(negative, fmt)
    return _signed(negative, rounded)
