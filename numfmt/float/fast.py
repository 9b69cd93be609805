"""A short op sequence for the common case of :func:`numfmt.float.kernel.round_bits`.

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

Complete: right for every input pattern, so that JAX runs the short
sequence alone. Two things make it so:

* Below the format's normal range (``|x| < lo``): where the format has the
  input's exponent range, the dropped bits are ``d`` there too (the same
  quantum), and the formula above is right. Otherwise (nearest even only)
  these elements take a magic-number rounding in the input's float type:
  ``k = bits(t + M) - bits(M)`` and the result ``float(k) * q``, where
  ``t = min(|x|, lo)``, ``M = 3 * 2**(p - 2) * q`` (``p = in_man + 1`` the
  input's precision, ``q = 2**qe_sub`` the format's smallest subnormal).
  Proof that ``k q`` is ``t`` rounded to nearest even among multiples of
  ``q``: ``M`` lies in ``[2**(p-1) q, 2**p q)``, where the input's ulp is
  ``q``; ``M + t < (3 * 2**(p-2) + 2**m) q <= 2**p q`` (``m = man_bits <=
  p - 3``), so ``t + M`` stays in that binade and the float addition rounds
  ``M + t`` to nearest even among multiples of ``q``; ``M / q = 3 * 2**(p-2)``
  is even, so a tie goes where ``t``'s own tie to even goes: ``t + M = M + k q``
  with ``k q`` the rounding of ``t``. Patterns within a binade step by one
  ulp, so the pattern difference is ``k <= 2**m``; ``float(k)`` is exact, and
  so is the product by the power of two ``q`` (it is 0 or at least ``q``, an
  input normal). With ``qe_sub >= in_emin + 1`` an input subnormal is below
  ``q / 2`` and rounds to 0, so the result holds where the backend flushes
  subnormals (XLA on CPU). The clamp to ``lo`` keeps inf and NaN out of the
  float arithmetic (no floating-point exceptions). The textbook ``(t + M) - M``
  is not used: XLA folds it to ``t``.
* Overflow and specials: with a saturating policy the magnitude is clamped to
  the max (above), and an infinite input that does not become the max takes
  a select. Otherwise, for nearest even, every ``|u| > hi`` (inf included)
  becomes the format's overflow pattern (inf, or NaN for ``fn`` formats) by
  a select, unless the pattern after the max is the input's inf
  (``max_bits + 2**d == inf_bits``, as bfloat16 and TF32 from float32): then
  the carry past the max is inf and inf stays inf. Stochastic rounding is
  complete only in that last case. NaN is returned unchanged (a final
  select), sign and payload included, as the general kernel does.

Nearest even into a narrower range without saturation (the default policy of
IEEE-like formats, e.g. bfloat16 from float64, which numfmt.emulate runs at
every site) takes a shorter sequence still: the magic number per binade
(``_binade_round_bits``), one float addition and subtraction for every finite
element, normal or subnormal, then the overflow and NaN selects.

Complete: bfloat16, float16, float8_e4m3fn, float8_e5m2 from float64 and
float16, float8 from float32 (nearest even); bfloat16 and TF32 from float32
(nearest even and stochastic). Stochastic rounding into a narrower exponent
range (the same formats from float64 and float32) is complete by another
sequence, with a per-element shift: :mod:`numfmt.float.fast_sr` (its docstring has
the proof). Everything else is not complete, and JAX runs the general kernel.

The stochastic formula is the general kernel's ``stochastic`` (variant A with
``N = width - 1`` random bits): for ``d <= N`` it rounds up iff
``rem + (r >> (width - d)) >= 2**d``, the same comparison.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from numfmt.core.rounding import Overflow, Rounding
from numfmt.float.fast_sr import NarrowSR, narrow_sr, narrow_sr_round_bits
from numfmt.float.format import Subnormals
from numfmt.float.kernel import Plan

__all__ = ["FastPlan", "complete_round_bits", "fast_plan", "fast_round_bits"]


@dataclasses.dataclass(frozen=True)
class FastPlan:
    """Constants of the short sequence for one :class:`~numfmt.float.kernel.Plan`.

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
    complete: bool  # right for every input (with the selects below; see the module docstring)
    magic: np.generic | None  # M, in the input's float type (the subnormal range; see the module docstring)
    magic_bits: np.generic | None  # M's pattern
    quantum: np.generic | None  # q, the format's smallest subnormal, in the input's float type
    over_at: np.generic | None  # |u| above this becomes over_bits (nearest, sat_none)
    over_bits: np.generic | None  # the format's overflow pattern (inf, or NaN for fn formats)
    inf_to: np.generic | None  # what an infinite input becomes where the clamp does not give it
    narrow_sr: NarrowSR | None = None  # stochastic into a narrower exponent range (numfmt.float.fast_sr)
    # nearest even into a narrower range, no clamp: the per-binade magic number
    # (exponent field clip bounds and the addend that makes M; see complete_round_bits)
    binade: tuple | None = None


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
    U = np.dtype(f"uint{w}").type
    F = np.dtype(f"float{w}").type
    p, in_emin = plan.in_man + 1, 1 - plan.in_bias
    nearest = r is Rounding.NEAREST_EVEN
    # below the normal range: the same quantum, or (nearest even) the magic number
    same_range = fmt.emin == in_emin
    magic = magic_bits = quantum = None
    if not same_range and nearest and plan.qe_sub >= in_emin + 1 and fmt.man_bits <= p - 3:
        magic = F(math.ldexp(3 << (p - 2), plan.qe_sub))  # 3 * 2**(p-2) * q, exact
        magic_bits, quantum = magic.view(U), F(math.ldexp(1, plan.qe_sub))
    # overflow and inf
    over_at = over_bits = inf_to = None
    if saturate:
        top = True
        if plan.inf_input_bits is not None and plan.inf_input_bits != plan.max_bits:
            inf_to = U(plan.inf_input_bits)
    elif plan.max_bits + (1 << d) == plan.inf_bits == plan.inf_like_bits == plan.inf_input_bits:
        top = True  # the carry past the max is inf; inf stays inf
    else:
        top = nearest and plan.inf_input_bits == plan.inf_like_bits
        if top:
            over_at, over_bits = U(hi), U(plan.inf_like_bits)
    narrow = None if same_range or nearest else narrow_sr(plan)
    binade = None
    top_e = fmt.emax + 2  # |x| is clamped to 2**top_e, above every format value
    if (
        magic is not None
        and not saturate
        and inf_to is None
        and over_at is not None
        and top_e + plan.in_man - fmt.man_bits < plan.in_bias  # M stays finite
    ):
        e_lo = plan.qe_sub + fmt.man_bits + plan.in_bias  # the format's emin, as an input exponent field
        e_hi = top_e + plan.in_bias
        m_add = ((plan.in_man - fmt.man_bits) << plan.in_man) | (1 << (plan.in_man - 1))
        exp_mask = ((1 << (w - 1)) - 1) ^ ((1 << plan.in_man) - 1)
        binade = (U(e_lo << plan.in_man), U(e_hi << plan.in_man), U(m_add), U(exp_mask))
    complete = (top and (same_range or magic is not None)) or narrow is not None
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
        magic=magic,
        magic_bits=magic_bits,
        quantum=quantum,
        over_at=over_at,
        over_bits=over_bits,
        inf_to=inf_to,
        narrow_sr=narrow,
        binade=binade,
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
      returned unchanged; inf and overflow per the plan's policy, as the
      general kernel; -0 stays -0).

    Raises:
      ValueError: ``fp`` is not complete (use :func:`fast_round_bits` and the
        general kernel for its rare elements).
    """
    if not fp.complete:
        raise ValueError(f"the short sequence is not complete for {fp.plan.fmt}; use fast_round_bits")
    if fp.narrow_sr is not None:
        return narrow_sr_round_bits(xp, u, fp, rbits)
    if fp.binade is not None:
        return _binade_round_bits(xp, u, fp, fp.binade)
    out, _ = fast_round_bits(xp, u, fp, rbits)
    U = u.dtype
    a = u & xp.asarray(fp.abs_mask, U)
    sign = u ^ a
    if fp.magic is not None:  # below the normal range (see the module docstring)
        F, lo = fp.magic.dtype, xp.asarray(fp.lo, U)
        t = xp.bitcast(xp.minimum(a, lo), F)
        k = xp.bitcast(t + xp.asarray(fp.magic, F), U) - xp.asarray(fp.magic_bits, U)
        sub = xp.bitcast(xp.astype(k, F) * xp.asarray(fp.quantum, F), U)
        out = xp.where(a < lo, sub | sign, out)
    if fp.over_at is not None:
        out = xp.where(a > xp.asarray(fp.over_at, U), xp.asarray(fp.over_bits, U) | sign, out)
    inf = xp.asarray(fp.plan.inf_bits, U)
    if fp.inf_to is not None:
        out = xp.where(a == inf, xp.asarray(fp.inf_to, U) | sign, out)
    return xp.where(a > inf, u, out)


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


def _binade_round_bits(xp, u, fp: FastPlan, binade: tuple):
    """Nearest even into a narrower exponent range: one float addition and subtraction per element.

    ``E``, the exponent of ``t = min(|x|, 2**(emax + 2))``, at least ``emin``, gives
    the format's quantum there, ``q = 2**(E - m)``, and ``M = 3 * 2**(p-2) * q``
    (the magic number of the module docstring, per binade); ``(t + M) - M`` is
    ``t`` rounded to nearest even among multiples of ``q`` (the same proof:
    ``t < 2**(E+1) = 2**(m+1) q`` keeps ``t + M`` in ``M``'s binade, where the
    ulp is ``q``, and the subtraction is exact). Below ``emin`` that is the
    subnormal rounding. The clamp keeps inf and NaN out of the arithmetic (no
    floating-point exceptions); a clamped magnitude gives ``2**(emax + 2)``,
    above the max. A result above the max becomes the overflow pattern; NaN
    is returned unchanged.
    """
    U = u.dtype
    F = np.dtype(f"float{8 * np.dtype(U).itemsize}")
    e_lo, e_hi, m_add, exp_mask = (xp.asarray(c, U) for c in binade)
    a = u & xp.asarray(fp.abs_mask, U)
    t = xp.minimum(a, e_hi)  # keeps inf and NaN out of the arithmetic
    m = xp.bitcast(xp.maximum(t & exp_mask, e_lo) + m_add, F)
    v = xp.bitcast((xp.bitcast(t, F) + m) - m, U)
    out = xp.where(v > xp.asarray(fp.max_bits, U), xp.asarray(fp.over_bits, U), v) | (u ^ a)
    return xp.where(a > xp.asarray(fp.plan.inf_bits, U), u, out)
