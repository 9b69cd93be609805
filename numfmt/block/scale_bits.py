"""Exact power-of-two scaling on float bit patterns (one implementation, NumPy and JAX).

Block formats divide by a scale ``2**e`` before rounding and multiply after.
Done with float arithmetic this can lose bits: ``float32 / 2**e`` underflows
into subnormals, and XLA on CPU flushes float32 subnormals. Here the scaled
value is assembled as a float64 bit pattern from the input's integer
significand and exponent, which is exact for float16/bfloat16/float32 input.

For float64 input a scaled value below float64's normal range (``< 2**-1022``)
is replaced by the sentinel ``+-2**-1074``. That is exact in its effect: the
element formats allowed here have no positive value below ``2**-900``, so every
``0 < |y| < 2**-1022`` lies below ``2**-122`` element quanta, and every
rounding mode treats all such values alike (nearest and toward-zero give 0,
directed and to-odd the smallest quantum by sign, the stochastic variants with
at most 63 random bits see ``floor(v * 2**N) = 0``; stochastic_equal sees
"inexact").

The work layout need not be float64: :func:`work_layout` picks float32
patterns (uint32 arithmetic, half the bytes per operation) for float16,
bfloat16 and float32 input when the element format allows it. The same
argument applies: its smallest positive value is at least ``2**-90``
(:data:`SENTINEL_FLOOR32`), so a scaled value below ``2**-126``, replaced by
``+-2**-149``, lies below ``2**-36`` element quanta, which no rounding mode
with at most 31 random bits tells apart from the sentinel; a float32 input
(24 significant bits) times ``2**k`` is exact in float32 whenever the result
is at least ``2**-126``; and the element values and their products with the
scale are exact in float32 when the element precision is at most 24 bits and
the element's range lies within float32's (checked by the caller, which keeps
float64 work otherwise).
"""

from __future__ import annotations

from fractions import Fraction

from numfmt.core.xp import FLOAT_LAYOUTS

__all__ = ["F32_WORK", "F64_WORK", "as_f32", "as_f64", "from_f64", "layout", "require_x64", "to_f64", "unpack"]

SENTINEL_FLOOR = Fraction(1, 2**900)  # element formats need smallest positive value >= this
SENTINEL_FLOOR32 = Fraction(1, 2**90)  # ... for float32 work patterns
F64_WORK = (11, 52, 64)  # (exp_bits, man_bits, width) of the work patterns
F32_WORK = (8, 23, 32)


def layout(dtype) -> tuple[int, int, int, int]:
    """``(exp_bits, man_bits, width, bias)`` of a float dtype."""
    import numpy as np

    e, m = FLOAT_LAYOUTS[np.dtype(dtype)]
    return e, m, np.dtype(dtype).itemsize * 8, 2 ** (e - 1) - 1


def require_x64() -> None:
    """Block formats compute on 64-bit patterns; JAX must have 64-bit types enabled."""
    import jax

    if not jax.config.read("jax_enable_x64"):
        raise ValueError(
            "block formats on JAX compute on 64-bit integer patterns, which need "
            "jax.config.update('jax_enable_x64', True) (set it at startup)"
        )


def _c(xp, v, dtype):
    return xp.asarray(v, dtype)


def unpack(xp, u, e_bits: int, m_bits: int, width: int):
    """Split unsigned patterns of a ``width``-bit float into ``(a, neg, sig, t, e_x)``.

    ``a``: magnitude pattern; ``neg``: sign bit; a finite ``|x| = sig *
    2**(e_x - t)`` with the leading bit of ``sig`` at position ``t`` (``t = -1``
    for zero), so ``e_x = floor(log2 |x|)`` exactly, subnormals included. The
    integers have ``u``'s width (``t`` and ``e_x`` signed).
    """
    U = u.dtype
    I = xp.int(U.itemsize * 8)
    bias = 2 ** (e_bits - 1) - 1
    a = u & _c(xp, (1 << (width - 1)) - 1, U)
    neg = (u >> _c(xp, width - 1, U)) != _c(xp, 0, U)
    ex = a >> _c(xp, m_bits, U)
    mant = a & _c(xp, (1 << m_bits) - 1, U)
    sub = ex == _c(xp, 0, U)
    sig = xp.where(sub, mant, mant | _c(xp, 1 << m_bits, U))
    t = xp.where(sub, xp.astype(xp.bit_length(mant), I) - 1, _c(xp, m_bits, I))
    e_x = xp.where(sub, t + (1 - bias - m_bits), xp.astype(ex, I) - bias)
    return a, neg, sig, t, e_x


def to_f64(xp, neg, sig, t, e_x, k, work=F64_WORK):
    """Patterns of ``x * 2**k`` in the ``work`` layout (default float64; finite x;
    see the module note on underflow). ``sig``'s width must be the work width."""
    we, wm, ww = work
    wb = 2 ** (we - 1) - 1
    U, I = xp.uint(ww), xp.int(ww)
    e_new = e_x + k
    sh = xp.astype(xp.minimum(xp.maximum(wm - t, _c(xp, 0, I)), _c(xp, ww - 1, I)), U)
    frac = (sig << sh) & _c(xp, (1 << wm) - 1, U)
    biased = xp.astype(xp.minimum(xp.maximum(e_new + wb, _c(xp, 1, I)), _c(xp, 2 * wb, I)), U)
    pat = (biased << _c(xp, wm, U)) | frac
    pat = xp.where(e_new >= 1 - wb, pat, _c(xp, 1, U))
    pat = xp.where(sig == _c(xp, 0, U), _c(xp, 0, U), pat)
    return pat | xp.where(neg, _c(xp, 1 << (ww - 1), U), _c(xp, 0, U))


def from_f64(xp, q, k, e_bits: int, m_bits: int, width: int, work=F64_WORK):
    """Patterns (work width) of ``q * 2**k`` in a ``width``-bit float layout, and a
    mask of the values that layout cannot hold exactly (bits lost, or above its
    max: those patterns are +-inf, the IEEE rounding of the product).

    ``q``: patterns in the ``work`` layout (default float64) of finite values
    (zero or normal).
    """
    we, wm, ww = work
    U, I = xp.uint(ww), xp.int(ww)
    bias = 2 ** (e_bits - 1) - 1
    a, neg, sig, _, e_x = unpack(xp, q, we, wm, ww)
    e_new = e_x + k
    emin = 1 - bias
    drop = wm - m_bits
    biased = xp.astype(xp.minimum(xp.maximum(e_new + bias, _c(xp, 1, I)), _c(xp, 2 * bias, I)), U)
    pat_n = (biased << _c(xp, m_bits, U)) | ((sig >> _c(xp, drop, U)) & _c(xp, (1 << m_bits) - 1, U))
    lost_n = sig & _c(xp, (1 << drop) - 1, U)
    shs = xp.astype(xp.minimum(xp.maximum(drop + emin - e_new, _c(xp, 0, I)), _c(xp, ww - 1, I)), U)
    pat_s = sig >> shs
    lost_s = sig & ((_c(xp, 1, U) << shs) - _c(xp, 1, U))
    normal = e_new >= emin
    pat = xp.where(normal, pat_n, pat_s)
    lost = xp.where(normal, lost_n, lost_s) != _c(xp, 0, U)
    zero = a == _c(xp, 0, U)
    over = normal & (e_new > bias) & ~zero
    unrep = (lost & ~zero) | over
    pat = xp.where(zero, _c(xp, 0, U), pat)
    pat = xp.where(over, _c(xp, ((1 << e_bits) - 1) << m_bits, U), pat)  # IEEE: the product overflows to inf
    return pat | xp.where(neg, _c(xp, 1 << (width - 1), U), _c(xp, 0, U)), unrep


def as_f64(xp, v):
    """``v`` (float16, bfloat16, float32 or float64) as float64, exactly, NaN and inf kept.

    From the bits, not by conversion: XLA on CPU flushes float32 subnormals
    when it converts them (a float32 scale of 1e-43 would decode as 0).
    """
    import numpy as np

    if np.dtype(v.dtype) == np.dtype(np.float64):
        return v
    e_bits, m_bits, width, _ = layout(v.dtype)
    U = xp.uint(64)
    u = xp.astype(xp.bitcast(v, xp.uint(width)), U)
    a, neg, sig, t, e_x = unpack(xp, u, e_bits, m_bits, width)
    pat = to_f64(xp, neg, sig, t, e_x, _c(xp, 0, xp.int(64)))
    inf = _c(xp, ((1 << e_bits) - 1) << m_bits, U)
    special = xp.where(a > inf, _c(xp, 0x7FF8 << 48, U), _c(xp, 0x7FF << 52, U))
    special = special | xp.where(neg, _c(xp, 1 << 63, U), _c(xp, 0, U))
    return xp.bitcast(xp.where(a >= inf, special, pat), np.dtype(np.float64))


def as_f32(xp, v):
    """float64 values ``v`` that are float32 values (or NaN, +-inf) as float32, by bits (see :func:`as_f64`)."""
    import numpy as np

    u = xp.bitcast(v, xp.uint(64))
    a = u & _c(xp, (1 << 63) - 1, u.dtype)
    inf = _c(xp, 0x7FF << 52, u.dtype)
    pat, _ = from_f64(xp, xp.where(a >= inf, _c(xp, 0, u.dtype), u), _c(xp, 0, xp.int(64)), 8, 23, 32)
    special = xp.where(a > inf, _c(xp, 0x7FC00000, u.dtype), _c(xp, 0x7F800000, u.dtype))
    special = special | (u >> _c(xp, 63, u.dtype) << _c(xp, 31, u.dtype))
    pat = xp.where(a >= inf, special, pat)
    return xp.bitcast(xp.astype(pat, xp.uint(32)), np.dtype(np.float32))
