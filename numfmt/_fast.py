"""A short op sequence for the common case of :func:`numfmt._kernel.round_bits`.

When the input is float32 or float64 and the format's normal range lies
inside the input's (and its max is an input value), then for every input
whose magnitude lies in the format's normal range and does not overflow, the
number of dropped bits is the constant ``d = in_man - man_bits``, and the
rounded pattern is, sign bit included::

    nearest_even:  (u + (2**(d-1) - 1) + ((u >> d) & 1)) & ~(2**d - 1)
    stochastic:    (u + (r >> (width - d))) & ~(2**d - 1)

(``r`` the element's random word; the carry into the exponent field is the
correct next binade). That is five or three integer passes instead of the
general kernel's thirty. Every other element is flagged ``rare``: zero (the
sequence gets it right; a caller may drop it from the rare set), subnormal in
the format, overflowing, inf or NaN. Where every overflow gives the format's
max (saturating policies, formats without inf/NaN), magnitudes are first
clamped to the max, and only NaN (and inf, unless it becomes the max) is rare
at the top. The caller rounds the rare elements with the general kernel, with the
same random words: the result is bit for bit the general kernel's (tested).

The stochastic formula is the general kernel's ``stochastic`` (variant A with
``N = width - 1`` random bits): for ``d <= N`` it rounds up iff
``rem + (r >> (width - d)) >= 2**d``, the same comparison.
"""

from __future__ import annotations

import dataclasses
import functools

from numfmt._float import Subnormals
from numfmt._kernel import Plan
from numfmt._rounding import Overflow, Rounding

__all__ = ["FastPlan", "fast_plan", "fast_round_bits"]


@dataclasses.dataclass(frozen=True)
class FastPlan:
    """Constants of the short sequence for one :class:`~numfmt._kernel.Plan`."""

    plan: Plan
    drop: int  # d, the dropped bits
    lo: int  # smallest magnitude pattern handled here (the format's smallest normal)
    span: int  # handled: lo <= |u| <= lo + span
    saturate: bool  # overflow gives the max: clamp the magnitude to it first


@functools.lru_cache(maxsize=256)
def fast_plan(plan) -> FastPlan | None:
    """The short sequence's constants, or None where it does not apply."""
    if not isinstance(plan, Plan):
        return None
    fmt, r = plan.fmt, plan.rounding
    if r is Rounding.STOCHASTIC:
        if plan.random_bits != plan.container - 1:
            return None
    elif r is not Rounding.NEAREST_EVEN:
        return None
    if (
        plan.width != plan.container
        or fmt.subnormals is not Subnormals.ON
        or not 1 <= fmt.man_bits < plan.in_man
        or not (fmt.signed and fmt.has_negative_zero)
        or plan.need_clz
        or plan.max_bits is None
        or plan.max_beyond_input
        or plan.can_be_unrepresentable
        or plan.min_bits == 0
    ):
        return None
    d = plan.in_man - fmt.man_bits
    # Does every finite overflow give the max (as round_bits decides it)?
    saturate = plan.overflow is not Overflow.SAT_NONE or plan.inf_like_bits is None
    if saturate:  # clamping to the max is exact; inf is rare unless it becomes the max too
        hi = plan.inf_bits if plan.inf_input_bits is None else plan.inf_bits - 1
    elif r is Rounding.NEAREST_EVEN:
        half, odd = 1 << (d - 1), (plan.max_bits >> d) & 1
        hi = min(plan.max_bits + half - odd, plan.inf_bits - 1)  # the largest that rounds to <= max
    else:
        hi = plan.max_bits  # anything above may round up past the max
    return FastPlan(plan=plan, drop=d, lo=plan.min_bits, span=hi - plan.min_bits, saturate=saturate)


def fast_round_bits(xp, u, fp: FastPlan, rbits=None):
    """Round patterns ``u`` (unsigned, the input's width) by the short sequence.

    Args:
      xp: the array namespace.
      u: the input's bit patterns.
      fp: from :func:`fast_plan`.
      rbits: random words like ``u`` (stochastic only).

    Returns:
      ``(out, rare)``: the rounded patterns, right wherever ``rare`` is False,
      and the boolean mask of elements to round with the general kernel.
      NaN is rare; so are zeros, though ``out`` is right for them (a caller
      may leave them out of the rare set).
    """
    U = u.dtype
    d = xp.asarray(fp.drop, U)
    a = u & xp.asarray((1 << (fp.plan.width - 1)) - 1, U)
    if fp.saturate:
        sign = u ^ a
        u = xp.minimum(a, xp.asarray(fp.plan.max_bits, U))
        u |= sign  # ``u`` is a fresh array now
    a -= xp.asarray(fp.lo, U)  # in place on NumPy: ``a`` is a fresh array
    rare = a > xp.asarray(fp.span, U)
    if fp.plan.rounding is Rounding.NEAREST_EVEN:
        out = u >> d
        out &= xp.asarray(1, U)
        out += u
        out += xp.asarray((1 << (fp.drop - 1)) - 1, U)
    else:
        out = rbits >> xp.asarray(fp.plan.width - fp.drop, U)
        out += u
    out &= xp.asarray(((1 << fp.plan.width) - 1) ^ ((1 << fp.drop) - 1), U)
    return out, rare
