"""A short sequence for posits, nearest-even: the common case of ``posit_codes``.

A posit in the binade ``2**E <= |x| < 2**(E+1)``, ``E = k * 2**es + ex``,
has ``fb = n - 3 - es - kk`` fraction bits, ``kk = k`` for ``k >= 0`` and
``-k - 1`` otherwise (the regime is ``kk + 2`` bits long). Where ``fb >= 1``
the last kept bit of the posit bit string is a fraction bit, so rounding to
nearest-even along the bit string is rounding ``x`` to ``fb`` fraction bits,
ties to an even last bit; a carry out of the binade gives ``2**(E+1)``, the
next posit (it keeps a whole exponent field while ``fb >= 1`` in binade E).

That rounding is two float additions: with ``M = 3 * 2**(E - fb + p - 1)``
(``p`` the input's fraction bits) and ``fb <= p - 2``, ``x + M`` lies in
``[2**(E-fb+p), 2**(E-fb+p+1))`` for either sign of ``x``, where the floats
are the multiples of ``2**(E-fb)``, the posit spacing: its one rounding is
``M`` plus ``x`` rounded to that spacing, ties to even (``M`` is an even
multiple of it), and ``(x + M) - M`` is exact (Sterbenz). ``M`` is built per
element from the exponent field with integer operations: ``kk = k ^ (k >>
(w - 1))`` on signed ``w``-bit integers (``k >> (w - 1)`` is -1 or 0), and
``M``'s exponent field is ``E + bias - fb + p``, linear in ``E`` and ``kk``.

Elements outside the binades where ``1 <= fb``, inside the input's normal
range with ``M`` finite, are flagged ``rare``: zero (the sequence gives +0
for +-0, as posits have no -0), subnormal inputs, the binades near minpos and
maxpos where the exponent field is cut short, inf and NaN. The driver rounds
them with the general kernel (``numfmt.posit.kernel``). The plan needs every
``fb <= p - 2``: posit32 on float32 input (27 fraction bits) has no fast path.
Only the NumPy driver uses it; it is written over the array namespace and is
tested bit for bit against the general kernel.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from numfmt.core.rounding import Rounding
from numfmt.posit.kernel import PositPlan

__all__ = ["PositFastPlan", "posit_fast_plan", "posit_fast_round_bits"]


@dataclasses.dataclass(frozen=True)
class PositFastPlan:
    """Constants of the short sequence for one :class:`~numfmt.posit.kernel.PositPlan`.

    ``elo <= e <= elo + span`` (``e`` the biased exponent field) is handled
    here. The constants are NumPy scalars, made once per plan.
    """

    plan: PositPlan
    float_dtype: np.dtype
    shift: np.generic  # p + 1: the exponent field of ``u << 1``
    elo: np.generic
    span: np.generic
    k_off: np.generic  # bias - elo, as a signed integer
    es: np.generic
    sign_shift: np.generic  # width - 1
    man: np.generic  # p
    m_const: np.generic  # ((elo + p - (n - 3 - es)) << p) | 2**(p-1)


@functools.lru_cache(maxsize=256)
def posit_fast_plan(plan) -> PositFastPlan | None:
    """The short sequence's constants, or None where it does not apply."""
    if not isinstance(plan, PositPlan) or plan.rounding is not Rounding.NEAREST_EVEN:
        return None
    if plan.width not in (32, 64) or plan.container != plan.width:
        return None
    n, es, p, bias = plan.fmt.n, plan.fmt.es, plan.in_man, plan.in_bias
    top_fb = n - 3 - es  # the fraction bits next to 1
    if top_fb < 1 or top_fb > p - 2:
        return None
    kk_max = top_fb - 1  # fb >= 1
    e_lo = -(kk_max + 1) * 2**es  # k = -kk_max - 1
    e_hi = (kk_max + 1) * 2**es - 1  # k = kk_max, the top exponent value
    e_lo, e_hi = max(e_lo, 1 - bias), min(e_hi, bias - p)  # normal inputs, M and 2**(E+1) finite
    if e_lo > e_hi:
        return None
    U = np.dtype(f"uint{plan.width}").type
    S = np.dtype(f"int{plan.width}").type
    elo = e_lo + bias
    c = p - top_fb  # M = 1.5 * 2**(E - fb + p): its exponent field is e + kk + c
    return PositFastPlan(
        plan=plan,
        float_dtype=np.dtype(f"float{plan.width}"),
        shift=U(p + 1),
        elo=U(elo),
        span=U(e_hi - e_lo),
        k_off=S(bias - elo),
        es=S(es),
        sign_shift=S(plan.width - 1),
        man=U(p),
        m_const=U((((elo + c) << p) | (1 << (p - 1))) % (1 << plan.width)),
    )


def posit_fast_round_bits(xp, u, fp: PositFastPlan, rbits=None, work=None):
    """Round input patterns ``u`` to posits by the short sequence.

    Args:
      xp: the array namespace.
      u: the input's bit patterns (unsigned, the input's width).
      fp: from :func:`posit_fast_plan`.
      rbits: unused (nearest-even only); accepted for the driver's signature.
      work: NumPy only, optional: ``(out, t1, t2, flags)`` as in
        :func:`numfmt.float.fast.fast_round_bits`.

    Returns:
      ``(out, rare)``: the patterns of the rounded values, right wherever
      ``rare`` is False and for +-0 (which give +0), and the mask of elements
      for the general kernel. Floating-point warnings of the rare elements'
      lanes are the caller's to silence.

    Examples:
      >>> import numpy as np, numfmt
      >>> from numfmt.core.xp import NUMPY
      >>> from numfmt.posit.kernel import make_posit_plan
      >>> plan = make_posit_plan(numfmt.parse("posit16_1"), np.float32, numfmt.Rounding.NEAREST_EVEN,
      ...                        numfmt.Overflow.SAT_FINITE, 0)
      >>> x = np.array([1 + 2.0**-13, 1 + 3 * 2.0**-13, -3.0, 1e9], np.float32)
      >>> out, rare = posit_fast_round_bits(NUMPY, x.view(np.uint32), posit_fast_plan(plan))
      >>> out.view(np.float32)[:3], rare
      (array([ 1.       ,  1.0004883, -3.       ], dtype=float32), array([False, False, False,  True]))
    """
    res, t1, t2, flags = work if work is not None else (None,) * 4
    S = fp.k_off.dtype
    t = xp.into("left_shift", u, fp.man.dtype.type(1), t1)
    t = xp.into("right_shift", t, fp.shift, t if t1 is not None else None)
    t = xp.into("subtract", t, fp.elo, t if t1 is not None else None)  # e - elo, wrapping below elo
    rare = xp.into("greater", t, fp.span, flags)
    ts = xp.bitcast(t, S)
    k = xp.into("subtract", ts, fp.k_off, None if t2 is None else xp.bitcast(t2, S))  # E
    if fp.plan.fmt.es:
        k = xp.into("right_shift", k, fp.es, k if t2 is not None else None)  # the regime value k
    s = xp.into("right_shift", k, fp.sign_shift, None if res is None else xp.bitcast(res, S))
    k = xp.into("bitwise_xor", k, s, k if t2 is not None else None)  # kk
    k = xp.into("add", k, ts, k if t2 is not None else None)
    m = xp.bitcast(k, u.dtype)
    m = xp.into("left_shift", m, fp.man, m if t2 is not None else None)
    m = xp.into("add", m, fp.m_const, m if t2 is not None else None)
    F = fp.float_dtype
    x, mf = xp.bitcast(u, F), xp.bitcast(m, F)
    y = xp.into("add", x, mf, None if t1 is None else xp.bitcast(t1, F))
    out = xp.into("subtract", y, mf, None if res is None else xp.bitcast(res, F))
    return xp.bitcast(out, u.dtype), rare
