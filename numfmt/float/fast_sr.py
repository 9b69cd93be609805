"""A complete short sequence for stochastic rounding into a narrower exponent range.

The general kernel's ``stochastic`` (variant A, ``N = w - 1`` random bits, ``w``
the input's width; :func:`numfmt.float.kernel.round_bits`) rounds a finite input
``x = s * 2**e_q`` by dropping ``d = qe - e_q`` bits of ``s`` and rounds up iff
``v + (r >> 1) >= 2**N``, where ``r`` is the element's random word and ``v``
is the dropped part scaled to ``N`` bits: ``rem * 2**(N - d)`` for ``d <= N``
(``rem`` the dropped bits), ``floor(s / 2**(d - N))`` beyond. Where the format
has a narrower exponent range than the input (bfloat16, float16, float8 from
float64; float16, float8 from float32), ``d`` is not constant: it is
``d_n = in_man - man_bits`` in the format's normal range and grows by one per
binade below it. With ``E`` the input's exponent field, ``D0 = qe_sub +
in_bias + in_man`` (``qe_sub`` the exponent of ``q``, the format's smallest
subnormal) and ``m`` the magnitude pattern (clamped to the format's max for a
saturating policy, as in :mod:`numfmt.float.fast`), three regimes:

* ``q <= |x|`` (``m >= bits(q)``): ``d = D0 - clip(E, D0 - in_man, D0 - d_n)``,
  which is ``qe - e_q`` exactly (``E >= D0 - in_man`` is ``|x| >= q``; ``E >=
  D0 - d_n`` is the format's normal range, where ``d = d_n``), and ``1 <= d <=
  in_man``. As in :mod:`numfmt.float.fast`, ``d <= in_man`` dropped bits of ``s`` are
  the low ``d`` bits of ``m``, patterns are linear within a binade and a carry
  into the exponent field is the next binade, so the result is
  ``(m + (r >> (w - d))) & ~(2**d - 1)``: the carry out of the low ``d`` bits
  is 1 iff ``rem + (r >> (w - d)) >= 2**d``, which is ``rem * 2**(N - d) +
  (r >> 1) >= 2**N`` (``r >> (w - d) = (r >> 1) >> (N - d)`` and ``2**d - rem``
  is an integer). Two integer shifts by a per-element count (``w - d = E - (D0
  - w)`` and ``d``), both in ``[1, w - 1]`` for every pattern thanks to the clip.
* ``|x| < q``: every bit of ``s`` is dropped (``d > in_man``) and the result is
  0 or ``q``; the kernel's ``v`` is ``floor(s * 2**(N - d)) = floor(x / q *
  2**N)`` in both of its cases. Here it is the float product ``y = x *
  2**(N - qe_sub)`` in the input's type, converted to the unsigned type
  (truncation, that is floor): for an input normal ``x`` the product is a
  power-of-two scaling to ``2**(in_emin + N - qe_sub) <= y < 2**N``, a normal
  below the input's max, so it is exact (``N - qe_sub <= in_bias``), and
  ``y < 2**N`` converts exactly (signed or unsigned). For an input subnormal
  ``x < 2**in_emin`` the kernel's ``v`` is 0 (``qe_sub >= in_emin + N``, so
  ``x / q * 2**N < 1``), and so is ``y``'s floor whether or not the backend
  flushes ``x`` to zero (XLA on CPU does): the result is right where
  subnormals are flushed. The magnitude is clamped to ``bits(q) - 1`` first,
  so inf and NaN never enter the float arithmetic (no floating-point
  exceptions, no out-of-range conversion). The result is ``bits(q)`` iff
  ``v + (r >> 1) > 2**N - 1`` (no wrap: both are below ``2**N``), else 0.
* Specials and overflow: a saturating policy has clamped the magnitude to the
  max (the max has no dropped bits, so it stays the max); an infinite input
  that does not become the max takes a select. Otherwise every result
  magnitude above the max (inf included: inf's low ``d_n`` bits are 0, so the
  first regime gives inf) becomes the overflow pattern (inf, or NaN for
  ``fn`` formats), which is then the pattern of an infinite input too (the
  kernel's ``threshold_bits`` is the max here). The sign is OR-ed back (-0
  stays -0; the formats have a negative zero), and NaN is returned unchanged
  by a final select, sign and payload included.

The random words are the kernel's, used the same way, so the result bits are
the kernel's for every input pattern and word (tested in
tests/test_fast_complete_sr.py): 26 jaxpr operations against the general
kernel's 65 (float64 -> bfloat16, float32 -> float16 alike).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from numfmt.core.rounding import Overflow, Rounding
from numfmt.float.kernel import Plan

__all__ = ["NarrowSR", "narrow_sr", "narrow_sr_round_bits"]


@dataclasses.dataclass(frozen=True)
class NarrowSR:
    """Constants of the narrow-range stochastic sequence (see the module docstring).

    Unsigned NumPy scalars of the input's width, except ``scale`` (its float type).
    """

    exp_shift: np.generic  # in_man: the exponent field is m >> in_man
    exp_lo: np.generic  # D0 - in_man: the field of q
    exp_hi: np.generic  # D0 - d_n: the field of the format's smallest normal
    r_base: np.generic  # D0 - w: w - d = E - r_base
    d_base: np.generic  # D0: d = D0 - E
    all_ones: np.generic
    q_bits: np.generic  # q's pattern
    below_q: np.generic  # bits(q) - 1: the clamp before the float product
    scale: np.generic  # 2**(N - qe_sub), in the input's float type
    one: np.generic
    top: np.generic  # 2**N - 1


def narrow_sr(plan: Plan) -> NarrowSR | None:
    """The constants for ``plan``, or None where the sequence does not apply.

    It applies to variant A stochastic rounding with ``N = w - 1`` random bits
    into a format whose exponent range is narrower than the input's, with
    ``qe_sub >= in_emin + N`` (input subnormals round to 0 for every word);
    the caller (:func:`numfmt.float.fast.fast_plan`) has checked the rest (float32
    or float64 input, subnormals, a representable max, a negative zero).
    """
    if plan.rounding is not Rounding.STOCHASTIC or plan.random_bits != plan.width - 1:
        return None
    w, n, in_man = plan.width, plan.width - 1, plan.in_man
    in_emin = 1 - plan.in_bias
    saturate = plan.overflow is not Overflow.SAT_NONE or plan.inf_like_bits is None
    if plan.fmt.emin == in_emin or plan.qe_sub < in_emin + n or n - plan.qe_sub > plan.in_bias:
        return None
    if not saturate and plan.inf_input_bits != plan.inf_like_bits:
        return None
    U, F = np.dtype(f"uint{w}").type, np.dtype(f"float{w}").type
    d0 = plan.qe_sub + plan.in_bias + in_man
    return NarrowSR(
        exp_shift=U(in_man),
        exp_lo=U(d0 - in_man),
        exp_hi=U(d0 - (in_man - plan.fmt.man_bits)),
        r_base=U(d0 - w),
        d_base=U(d0),
        all_ones=U((1 << w) - 1),
        q_bits=U(plan.q_sub_bits),
        below_q=U(plan.q_sub_bits - 1),
        scale=F(math.ldexp(1, n - plan.qe_sub)),
        one=U(1),
        top=U((1 << n) - 1),
    )


def narrow_sr_round_bits(xp, u, fp, rbits):
    """Round patterns ``u`` stochastically by the narrow-range sequence alone.

    Args:
      xp: the array namespace.
      u: the input's bit patterns (unsigned, the input's width).
      fp: a :class:`numfmt.float.fast.FastPlan` with ``fp.narrow_sr`` set.
      rbits: random words like ``u``, the general kernel's.

    Returns:
      The general kernel's result patterns for every input: NaN unchanged
      (sign and payload), -0 stays -0, inf and overflow per the plan's policy.

    Examples:
      >>> import numpy as np
      >>> import numfmt
      >>> from numfmt.float.fast import fast_plan
      >>> from numfmt.float.kernel import make_plan
      >>> from numfmt.core.xp import NUMPY
      >>> plan = make_plan(numfmt.parse("bfloat16"), np.dtype(np.float64), numfmt.Rounding.STOCHASTIC,
      ...                  numfmt.Overflow.SAT_NONE, 63)
      >>> u = np.array([1 + 2.0**-8, 1 + 2.0**-8, 2.0**-140]).view(np.uint64)  # a tie; q / 128
      >>> r = np.array([2**63 - 1, 2**63, 2**64 - 2**57], np.uint64)
      >>> narrow_sr_round_bits(NUMPY, u, fast_plan(plan), r).view(np.float64).tolist()
      [1.0, 1.0078125, 9.183549615799121e-41]
    """
    c, U = fp.narrow_sr, u.dtype

    def k(v):
        return xp.asarray(v, U)

    a = u & xp.asarray(fp.abs_mask, U)
    sign = u ^ a
    m = xp.minimum(a, k(fp.max_bits)) if fp.saturate else a
    # q <= |x|: a variable shift by d = D0 - E, clipped to [d_n, in_man]
    e = xp.maximum(xp.minimum(m >> k(c.exp_shift), k(c.exp_hi)), k(c.exp_lo))
    out = (m + (rbits >> (e - k(c.r_base)))) & (k(c.all_ones) << (k(c.d_base) - e))
    # |x| < q: 0 or q, by the exact scaled product floor(x / q * 2**N)
    F = c.scale.dtype
    v = xp.astype(xp.bitcast(xp.minimum(m, k(c.below_q)), F) * xp.asarray(c.scale, F), U)
    up = (v + (rbits >> k(c.one))) > k(c.top)
    out = xp.where(m < k(c.q_bits), xp.where(up, k(c.q_bits), k(0)), out)
    if not fp.saturate:  # past the max (inf included): the overflow pattern
        out = xp.where(out > k(fp.max_bits), k(fp.plan.inf_like_bits), out)
    out = out | sign
    inf = k(fp.plan.inf_bits)
    if fp.inf_to is not None:
        out = xp.where(a == inf, xp.asarray(fp.inf_to, U) | sign, out)
    return xp.where(a > inf, u, out)
