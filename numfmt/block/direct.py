"""Power-of-two block scales: round the input straight onto the scaled element grid.

:func:`numfmt.block.chop.quantize` divides by the scale ``X = 2**e``, rounds
into the element format and multiplies back, three conversions of bit
patterns. For the result of ``chop`` the detour is not needed: ``X * round(x
/ X)`` is ``x`` rounded onto the element grid scaled by ``X``, whose quantum
at ``x`` is ``2**qe`` with::

    qe = max(e_x, emin + e) - m      (e_x = floor(log2 |x|))

(``emin``, ``m``: the element's smallest normal exponent and fraction bits),
saturated at ``max_elem * X``. This module does that on the input's own bit
patterns, the way :mod:`numfmt.float.kernel` rounds: with ``x = s * 2**e_q`` (``s``
the integer significand), ``d = qe - e_q`` bits of ``s`` are dropped and the
pattern becomes ``a - rem + (inc << d)``; a carry into the exponent field is the
next binade, which is right because patterns are linear within a binade and
from the subnormals into the first binade. When ``d`` exceeds the input's
fraction bits, ``|x| < 2**qe`` and the result is ``0`` or ``2**qe`` (then
``emin + e > e_x``, so ``2**qe`` is the scaled grid's smallest quantum, one
pattern per block). Results are the same bits as the general path's.

It applies (:func:`direct_ok`) to float elements with subnormals, a signed
zero, at least one fraction bit and no other rounding than nearest-even, when
the element grid scaled by every allowed ``X`` is made of values of the input
dtype (``BlockPlan.maybe_lost`` False), so that no result loses bits: only
``max_elem * X`` may exceed the dtype's max; the product then is ``+-inf``
(flagged in the returned mask, as the general path).
"""

from __future__ import annotations

from fractions import Fraction

from numfmt.block.format import InfPolicy
from numfmt.block.scale_bits import layout
from numfmt.core.rounding import Rounding
from numfmt.float.format import FloatFormat, Subnormals

__all__ = ["direct_ok", "direct_round"]


def direct_ok(plan) -> bool:
    """Whether :func:`direct_round` gives ``plan``'s results (see the module docstring)."""
    elem = plan.fmt.elem
    return (
        isinstance(elem, FloatFormat)
        and plan.rounding is Rounding.NEAREST_EVEN
        and elem.subnormals is Subnormals.ON
        and elem.signed
        and elem.has_negative_zero
        and elem.man_bits >= 1
        and not plan.maybe_lost
    )


def _pow2_bits(xp, k, sig: int, top: int, dtype):
    """Patterns (``dtype``'s layout, container ints) of ``sig * 2**(k - top)``.

    ``sig < 2**(top+1)`` with its leading bit at ``top``; the value must be a
    ``dtype`` value or above its max (then: the inf pattern).
    """
    e_bits, m_bits, width, bias = layout(dtype)
    I = k.dtype
    U = xp.uint(I.itemsize * 8)
    frac = (sig << (m_bits - top)) & ((1 << m_bits) - 1)
    normal = ((xp.astype(xp.maximum(k + bias, xp.asarray(1, I)), U)) << xp.asarray(m_bits, U)) | xp.asarray(frac, U)
    sh = xp.astype(xp.minimum(xp.maximum((1 - bias) - k, xp.asarray(0, I)), xp.asarray(I.itemsize * 8 - 1, I)), U)
    sub = xp.asarray(sig << (m_bits - top), U) >> sh
    pat = xp.where(k >= 1 - bias, normal, sub)
    return xp.where(k > bias, xp.asarray(((1 << e_bits) - 1) << m_bits, U), pat)


def direct_round(xp, plan, parts, e, bad):
    """Rounded patterns and the overflow mask.

    Args:
      xp: the array namespace.
      plan: a ``BlockPlan`` with :func:`direct_ok`.
      parts: ``(u, a, neg, sig, t, e_x)`` of the blocked input (container
        ints, see :func:`numfmt.block.scale_bits.unpack`).
      e: per-block scale exponents (signed container ints, shape ``(..., 1)``).
      bad: per-block NaN mask.

    Returns:
      ``(out, over)``: result patterns in the input's layout (container
      ints; NaN blocks NaN) and the mask of finite inputs whose result
      overflows the dtype (those are ``+-inf``).
    """
    e_bits, m_bits, width, bias = layout(plan.dtype)
    u, a, neg, s, t, e_x = parts
    U, I = a.dtype, e.dtype
    elem = plan.fmt.elem
    m = elem.man_bits
    low = e + elem.emin  # the scaled grid's smallest normal exponent
    top = Fraction(elem.max_value)
    max_sig = top / Fraction(2) ** plan.fmt.elem_emax * 2**m  # an integer, leading bit at m
    max_bits = _pow2_bits(xp, e + plan.fmt.elem_emax, int(max_sig), m, plan.dtype)
    q_sub = _pow2_bits(xp, low - m, 1, 0, plan.dtype)
    d = xp.maximum(e_x, low) - m - (e_x - t)  # qe - e_q: |x| = s * 2**(e_x - t)
    dc = xp.astype(xp.minimum(xp.maximum(d, xp.asarray(0, I)), xp.asarray(m_bits + 2, I)), U)
    one = xp.asarray(1, U)
    kept = s >> dc
    rem = s & ((one << dc) - one)
    half = (one << dc) >> one
    inc = (rem > half) | ((rem == half) & (rem != xp.asarray(0, U)) & ((kept & one) == one))
    res = a - rem + (xp.astype(inc, U) << dc)
    res = xp.where(d > m_bits, xp.where(inc, q_sub, xp.asarray(0, U)), res)
    inf_bits = xp.asarray(((1 << e_bits) - 1) << m_bits, U)
    finite = a < inf_bits
    res = xp.minimum(res, max_bits)
    if plan.fmt.inf is InfPolicy.SATURATE:
        res = xp.where(finite, res, max_bits)
    over = (res >= inf_bits) & ~bad
    if plan.fmt.inf is not InfPolicy.SATURATE:
        over = over & finite
    sign = xp.where(neg, xp.asarray(1 << (width - 1), U), xp.asarray(0, U))
    nan = ((1 << e_bits) - 1) << m_bits | 1 << (m_bits - 1)
    out = xp.where(bad, xp.asarray(nan, U), res | sign)
    return out, over
