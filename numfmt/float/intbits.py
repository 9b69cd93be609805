"""Integer helpers shared by the posit and fixed-point kernels.

Both families compute an integer significand ``m`` and an exponent ``q`` with
value ``m * 2**q``; :func:`float_bits` turns that into the bit pattern of a
float dtype using integer operations only (no float arithmetic, so XLA's
flushing of float32 subnormals cannot interfere).
"""

from __future__ import annotations

from fractions import Fraction

from numfmt.core.rounding import Rounding
from numfmt.float.kernel import _half_even_up, _sr_up

__all__ = ["bit_length", "fits_exactly", "float_bits", "increment"]


def increment(xp, plan, rem, half, parity, neg, d, rbits):
    """Rounding decision on a magnitude: add one unit of the last kept bit?

    ``rem`` are the ``d`` dropped bits (``half`` their midpoint, 0 if none),
    ``parity`` the last kept bit, ``neg`` the sign of the input; ``rbits``
    the random bits of the stochastic modes (see :class:`numfmt.Rounding`).
    """
    r = plan.rounding
    inexact = rem != 0
    if r is Rounding.NEAREST_EVEN:
        return _half_even_up(rem, half, parity)
    if r is Rounding.NEAREST_AWAY:
        return inexact & (rem >= half)
    if r is Rounding.TOWARD_ZERO:
        return inexact & False
    if r is Rounding.TOWARD_POSITIVE:
        return inexact & ~neg
    if r is Rounding.TOWARD_NEGATIVE:
        return inexact & neg
    if r is Rounding.TO_ODD:
        return inexact & (parity == 0)
    if r is Rounding.STOCHASTIC_EQUAL:
        return inexact & ((rbits >> (plan.container - 1)) == 1)
    return inexact & _sr_up(xp, plan, rem, d, rbits)


def bit_length(xp, m):
    """Exact bit length of unsigned integers ``m`` (any width up to 64)."""
    if m.dtype.itemsize == 8 and xp.name == "numpy":
        # NumPy's bit_length goes through float64, exact only below 2**53.
        hi = m >> 32
        lo = m & xp.asarray(0xFFFFFFFF, m.dtype)
        return xp.where(hi != 0, xp.bit_length(hi) + xp.asarray(32, m.dtype), xp.bit_length(lo))
    return xp.bit_length(m)


def _clamp(xp, v, lo, hi, dtype):
    return xp.astype(xp.minimum(xp.maximum(v, xp.asarray(lo, v.dtype)), xp.asarray(hi, v.dtype)), dtype)


def float_bits(xp, m, q, *, in_man: int, in_bias: int):
    """Bit patterns of the nonnegative values ``m * 2**q`` in a float layout.

    Args:
      xp: the array namespace.
      m: unsigned integer significands (the container dtype).
      q: signed integer exponents of the same width (array or Python int).
      in_man, in_bias: fraction bits and bias of the target float layout.

    Returns:
      Unsigned patterns (same dtype as ``m``). The caller guarantees every
      value is exactly representable in the layout; ``m == 0`` gives +0.
    """
    U = m.dtype
    cap = U.itemsize * 8 - 1
    one = xp.asarray(1, U)
    signed = xp.int(U.itemsize * 8)
    q = xp.asarray(q, signed) if isinstance(q, int) else q
    t = xp.astype(bit_length(xp, m), signed) - 1
    e = q + t
    emin = 1 - in_bias
    up = _clamp(xp, in_man - t, 0, cap, U)
    down = _clamp(xp, t - in_man, 0, cap, U)
    sig = xp.where(t <= in_man, m << up, m >> down)
    normal = (xp.astype(e + in_bias, U) << xp.asarray(in_man, U)) + sig - (one << xp.asarray(in_man, U))
    sh = q - (emin - in_man)
    sub = xp.where(sh >= 0, m << _clamp(xp, sh, 0, cap, U), m >> _clamp(xp, -sh, 0, cap, U))
    out = xp.where(e >= emin, normal, sub)
    return xp.where(m == 0, xp.asarray(0, U), out)


def fits_exactly(values_lo_hi_prec, in_exp: int, in_man: int) -> bool:
    """True if a float layout holds ``m * 2**q`` for the given families.

    Args:
      values_lo_hi_prec: iterable of ``(q_min, e_max, precision)``: values
        ``m * 2**q`` with ``q >= q_min``, magnitude below ``2**(e_max + 1)``
        and at most ``precision`` significant bits.
      in_exp, in_man: exponent and fraction bits of the float layout.
    """
    bias = 2 ** (in_exp - 1) - 1
    for q_min, e_max, prec in values_lo_hi_prec:
        if e_max > bias or q_min < 1 - bias - in_man or prec > in_man + 1:
            return False
    return True


def pow2(e: int) -> Fraction:
    """Exact ``2**e`` for any integer ``e``."""
    return Fraction(2) ** e
