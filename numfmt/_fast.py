"""A short op sequence for the common case of :func:`numfmt._kernel.round_bits`.

When the input is float32 or float64 and the format's normal range lies
inside the input's (and its max is an input value), then for every input
whose magnitude lies in the format's normal range and does not overflow, the
number of dropped bits is the constant ``d = in_man - man_bits``, and the
rounded pattern is, sign bit included::

    nearest_even:  (u + (2**(d-1) - 1) + ((u >> d) & 1)) & ~(2**d - 1)
    stochastic:    (u + (r >> (width - d))) & ~(2**d - 1)

(``r`` the element's random word; the carry into the exponent field is the
correct next binade): five or three integer passes instead of the general
kernel's thirty. Every other element is flagged ``rare``: zero (the sequence
gets it right; a caller may drop it from the rare set), subnormal in the
format, overflowing, inf or NaN. Where every overflow gives the format's max
(saturating policies, formats without inf/NaN), magnitudes are first clamped
to the max, and only NaN (and inf, unless it becomes the max) is rare at the
top. The caller rounds the rare elements with the general kernel, with the
same random words: the result is bit for bit the general kernel's (tested in
tests/test_fast_path.py). The NumPy driver uses it block by block; under
``jax.jit`` both branches of a select would be computed, so JAX runs it only
where it is *complete* (below): then NaN is the only rare element.

Complete: the format has the input's exponent range (same smallest normal,
so the dropped bits are ``d`` for input subnormals too, and the same
quantum below it), IEEE inf and NaN, overflow to inf (``sat_none``), and the
pattern after its max is the input's inf (``max_bits + 2**d == inf_bits``):
then a carry past the max is inf, and inf stays inf (its low ``d`` bits are
zero). bfloat16 and TF32 from float32 are complete; float16 from float32 is
not (its normal range starts higher).

The stochastic formula is the general kernel's ``stochastic`` (variant A with
``N = width - 1`` random bits): for ``d <= N`` it rounds up iff
``rem + (r >> (width - d)) >= 2**d``, the same comparison.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from numfmt._float import Subnormals
from numfmt._kernel import Plan
from numfmt._rounding import Overflow, Rounding

__all__ = ["FastPlan", "complete_round_bits", "fast_plan", "fast_round_bits"]


@dataclasses.dataclass(frozen=True)
class FastPlan:
    """Constants of the short sequence for one :class:`~numfmt._kernel.Plan`.

    ``lo <= |u| <= lo + span`` is handled here (``lo``: the format's smallest
    normal). The constants are NumPy scalars of the input's unsigned type
    (JAX takes them as they are), made once per plan: building them per call
    costs more than a pass over a block.
    """

    plan: Plan
    drop: int  # d, the dropped bits
    saturate: bool  # every overflow gives the max: clamp the magnitude to it first
    abs_mask: np.generic
    max_bits: np.generic
    lo: np.generic
    span: np.generic
    shift: np.generic  # d (nearest) or width - d (stochastic)
    one: np.generic
    bias: np.generic  # 2**(d-1) - 1
    keep: np.generic  # ~(2**d - 1)
    complete: bool  # right for every input but NaN (see the module docstring)


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
    d, w = plan.in_man - fmt.man_bits, plan.width
    # Does every finite overflow give the max (as round_bits decides it)?
    saturate = plan.overflow is not Overflow.SAT_NONE or plan.inf_like_bits is None
    if saturate:  # clamping to the max is exact; inf is rare unless it becomes the max too
        hi = plan.inf_bits if plan.inf_input_bits is None else plan.inf_bits - 1
    elif r is Rounding.NEAREST_EVEN:
        half, odd = 1 << (d - 1), (plan.max_bits >> d) & 1
        hi = min(plan.max_bits + half - odd, plan.inf_bits - 1)  # the largest that rounds to <= max
    else:
        hi = plan.max_bits  # anything above may round up past the max
    complete = (
        not saturate
        and fmt.emin == 1 - plan.in_bias
        and plan.inf_like_bits == plan.inf_bits
        and plan.inf_input_bits == plan.inf_bits
        and plan.max_bits + (1 << d) == plan.inf_bits
    )
    U = np.dtype(f"uint{w}").type
    return FastPlan(
        plan=plan,
        drop=d,
        saturate=saturate,
        abs_mask=U((1 << (w - 1)) - 1),
        max_bits=U(plan.max_bits),
        lo=U(plan.min_bits),
        span=U(hi - plan.min_bits),
        shift=U(d if r is Rounding.NEAREST_EVEN else w - d),
        one=U(1),
        bias=U((1 << (d - 1)) - 1),
        keep=U(((1 << w) - 1) ^ ((1 << d) - 1)),
        complete=complete,
    )


def complete_round_bits(xp, u, fp: FastPlan, rbits=None):
    """Round patterns ``u`` by the short sequence alone, for a complete ``fp``.

    Args:
      xp: the array namespace.
      u: the input's bit patterns (unsigned, the input's width).
      fp: from :func:`fast_plan`, with ``fp.complete``.
      rbits: random words like ``u`` (stochastic only).

    Returns:
      The rounded patterns: the general kernel's for every input (NaN is
      returned unchanged, inf stays inf, overflow gives inf, -0 stays -0).
    """
    if not fp.complete:
        raise ValueError(f"the short sequence is not complete for {fp.plan.fmt}; use fast_round_bits")
    out, _ = fast_round_bits(xp, u, fp, rbits)
    inf = xp.asarray(fp.plan.inf_bits, u.dtype)
    return xp.where((u & xp.asarray(fp.abs_mask, u.dtype)) > inf, u, out)


def fast_round_bits(xp, u, fp: FastPlan, rbits=None, work=None):
    """Round patterns ``u`` (unsigned, the input's width) by the short sequence.

    Args:
      xp: the array namespace.
      u: the input's bit patterns.
      fp: from :func:`fast_plan`.
      rbits: random words like ``u`` (stochastic only).
      work: NumPy only, optional: ``(out, t1, t2, flags)``, arrays shaped
        like ``u`` (three of its dtype, one bool) that the passes write into
        instead of allocating; ``out`` receives the result, ``flags`` the
        rare mask.

    Returns:
      ``(out, rare)``: the rounded patterns, right wherever ``rare`` is False,
      and the boolean mask of elements to round with the general kernel.
      NaN is rare; so are zeros, though ``out`` is right for them (a caller
      may leave them out of the rare set).
    """
    res, t1, t2, flags = work if work is not None else (None,) * 4
    a = xp.into("bitwise_and", u, fp.abs_mask, t1)
    if fp.saturate:
        sign = xp.into("bitwise_xor", u, a, res)  # ``res`` is free until the rounding below
        u = xp.into("minimum", a, fp.max_bits, t2)
        u |= sign  # in place on NumPy: ``u`` is a work array (or fresh) now
    a -= fp.lo  # likewise
    rare = xp.into("greater", a, fp.span, flags)
    if fp.plan.rounding is Rounding.NEAREST_EVEN:
        out = xp.into("right_shift", u, fp.shift, res)
        out &= fp.one
        out += u
        out += fp.bias
    else:
        out = xp.into("right_shift", rbits, fp.shift, res)
        out += u
    out &= fp.keep
    return out, rare
