"""A short float sequence for fixed point, nearest-even: the common case of ``fixed_codes``.

Let ``p`` be the input's fraction bits, ``q = 2**-F`` the format's quantum and
``M = 3 * 2**(p-1) * q``. For a float ``x`` with ``|x| <= 2**(p-1) * q``
the sum ``x + M`` lies in ``[2**p * q, 2**(p+1) * q)``, where the floats are
the multiples of ``q``: the one correct rounding of the sum is ``M + k*q``
with ``k*q`` the multiple of ``q`` nearest ``x``, ties to the even ``k``
(``M / q = 3 * 2**(p-1)`` is even, so the parity of ``M/q + k`` is that of
``k``). Then ``(x + M) - M = k*q`` exactly (Sterbenz: both operands lie
within a factor of 2). So two float additions round to fixed point, the
quantum ``q`` never multiplied in or out, and ``-0`` or a negative ``x``
rounding to zero gives ``+0`` (``M - M = +0``), as fixed point has no -0.

* saturate: ``x`` is first clamped to ``[min_value, max_value]``; the bounds
  are multiples of ``q``, so clamping commutes with the (monotone) rounding,
  and it maps +-inf to the bounds as the general kernel does. With
  ``magnitude_bits <= p - 2`` the clamped ``|x| <= 2**(p-2) * q``. Four
  passes: maximum, minimum, add, subtract.
* wrap: ``y = k*q`` as above for ``|x| <= T = 2**(p-2) * q``; the code
  range starts at ``lo`` (``-2**(bits-1) * q`` or 0) and has width ``W =
  2**bits * q``. ``floor((y - lo) / W) * W`` is the multiple of ``W``
  nearest ``z = y - c``, ``c = lo + (W - q)/2``: ``z`` lies strictly inside
  half a ``W`` of it, never at a tie, and is exact (a multiple of ``q/2``
  below ``2**(p-1) * q`` in magnitude, with ``bits <= p - 2``). The same
  magic-number rounding, with ``3 * 2**(p-1) * W``, finds it; ``y`` minus it
  is the wrapped value, exact (integers times ``q`` below ``2**p * q``).

The sums stay in normal binades: the plan needs ``M`` and the wrap constant
to be normal floats, and every value of the format to be a float of the
input dtype. Elements outside ``[-T, T]`` under wrap, and NaN, are flagged
``rare`` and rounded by the general kernel (``numfmt.fixed.kernel``) with
the driver's fallback; NaN under saturate is found by a maximum over the block
(NaN iff some element is NaN: NumPy's maximum propagates NaN) and only then
flagged. Only the NumPy driver uses this path (under ``jax.jit`` the
general kernel fuses into one pass anyway); it is written over the array
namespace and is tested bit for bit against the general kernel.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from numfmt.core.rounding import Rounding
from numfmt.fixed.format import FixedOverflow
from numfmt.fixed.kernel import FixedPlan, all_values_fit

__all__ = ["FixedFastPlan", "fixed_fast_plan", "fixed_fast_round_bits"]


@dataclasses.dataclass(frozen=True)
class FixedFastPlan:
    """Constants of the short sequence for one :class:`~numfmt.fixed.kernel.FixedPlan`.

    The constants are NumPy scalars of the input's float dtype (``abs_mask``
    and ``limit`` of its unsigned type), made once per plan.
    """

    plan: FixedPlan
    float_dtype: np.dtype
    wrap: bool
    lo: np.generic  # min_value (saturate) or c = lo + (W - q)/2 (wrap)
    hi: np.generic  # max_value (saturate)
    magic: np.generic  # 3 * 2**(p-1) * q
    magic_w: np.generic  # 3 * 2**(p-1) * W (wrap)
    abs_mask: np.generic
    limit: np.generic  # bits of T = 2**(p-2) * q (wrap)


def _exact(dtype, value: float, normal: bool = False):
    """``value`` in ``dtype`` if it is held exactly there (and is 0 or normal, if asked), else None."""
    with np.errstate(over="ignore"):
        v = dtype.type(value)
    if float(v) != value or not np.isfinite(v) or (normal and value != 0 and abs(v) < np.finfo(dtype).tiny):
        return None
    return v


@functools.lru_cache(maxsize=256)
def fixed_fast_plan(plan) -> FixedFastPlan | None:
    """The short sequence's constants, or None where it does not apply."""
    if not isinstance(plan, FixedPlan) or plan.rounding is not Rounding.NEAREST_EVEN:
        return None
    fmt, p = plan.fmt, plan.in_man
    if plan.width not in (32, 64):
        return None
    dtype = np.dtype(f"float{plan.width}")
    if fmt.bits > p - 2 or not all_values_fit(fmt, dtype):
        return None
    q = 2.0**-fmt.frac_bits
    wrap = plan.overflow is FixedOverflow.WRAP
    W = 2.0**fmt.bits * q
    lo = float(fmt.min_value)
    lo_c = _exact(dtype, lo + (W - q) / 2 if wrap else lo)
    hi = _exact(dtype, float(fmt.max_value))
    magic = _exact(dtype, 3 * 2.0 ** (p - 1) * q, normal=True)
    magic_w = _exact(dtype, 3 * 2.0 ** (p - 1) * W, normal=True) if wrap else dtype.type(0)
    limit = _exact(dtype, 2.0 ** (p - 2) * q)
    if any(c is None for c in (lo_c, hi, magic, magic_w, limit)):
        return None
    U = np.dtype(f"uint{plan.width}").type
    return FixedFastPlan(
        plan=plan,
        float_dtype=dtype,
        wrap=wrap,
        lo=lo_c,
        hi=hi,
        magic=magic,
        magic_w=magic_w,
        abs_mask=U((1 << (plan.width - 1)) - 1),
        limit=limit.view(U),
    )


def fixed_fast_round_bits(xp, u, fp: FixedFastPlan, rbits=None, work=None):
    """Round input patterns ``u`` to fixed point by the short sequence.

    Args:
      xp: the array namespace.
      u: the input's bit patterns (unsigned, the input's width).
      fp: from :func:`fixed_fast_plan`.
      rbits: unused (nearest-even only); accepted for the driver's signature.
      work: NumPy only, optional: ``(out, t1, t2, flags)`` as in
        :func:`numfmt.float.fast.fast_round_bits`.

    Returns:
      ``(out, rare)``: the patterns of the rounded values, right wherever
      ``rare`` is False, and the mask of elements for the general kernel
      (NaN; under wrap also ``|x| > T``, inf included). Floating-point
      warnings of the rare elements' lanes are the caller's to silence.

    Examples:
      >>> import numpy as np, numfmt
      >>> from numfmt.core.xp import NUMPY
      >>> from numfmt.fixed.kernel import make_fixed_plan
      >>> plan = make_fixed_plan(numfmt.parse("q3.4"), np.float32, numfmt.Rounding.NEAREST_EVEN, "saturate", 0)
      >>> x = np.array([0.03125, 0.09375, -0.01, 100.0], np.float32)
      >>> out, rare = fixed_fast_round_bits(NUMPY, x.view(np.uint32), fixed_fast_plan(plan))
      >>> out.view(np.float32), rare
      (array([0.    , 0.125 , 0.    , 7.9375], dtype=float32), array([False, False, False, False]))
    """
    res, t1, t2, flags = work if work is not None else (None,) * 4
    F = fp.float_dtype
    x = xp.bitcast(u, F)
    f1 = None if t1 is None else xp.bitcast(t1, F)
    out = None if res is None else xp.bitcast(res, F)
    if fp.wrap:
        a = xp.into("bitwise_and", u, fp.abs_mask, t1)
        rare = xp.into("greater", a, fp.limit, flags)  # NaN and inf included
        y = xp.into("add", x, fp.magic, f1)
        y = xp.into("subtract", y, fp.magic, y if f1 is not None else None)
        z = xp.into("subtract", y, fp.lo, None if t2 is None else xp.bitcast(t2, F))
        z = xp.into("add", z, fp.magic_w, z if t2 is not None else None)
        z = xp.into("subtract", z, fp.magic_w, z if t2 is not None else None)
        out = xp.into("subtract", y, z, out)
        return xp.bitcast(out, u.dtype), rare
    y = xp.into("maximum", x, fp.lo, f1)
    y = xp.into("minimum", y, fp.hi, y if f1 is not None else None)
    y = xp.into("add", y, fp.magic, y if f1 is not None else None)
    out = xp.into("subtract", y, fp.magic, out)
    if xp.name == "numpy":
        top = np.maximum.reduce(out)  # NaN iff some element is NaN (maximum propagates NaN)
        if top == top:
            rare = flags if flags is not None else np.empty(u.shape, bool)
            rare[...] = False
            return xp.bitcast(out, u.dtype), rare
    rare = xp.into("not_equal", x, x, flags)
    return xp.bitcast(out, u.dtype), rare
