"""The rounding kernel: one implementation for NumPy and JAX.

It works on the bit patterns of the input, as unsigned integers, and never on
float arithmetic: the result is one correct rounding of the exact input value
whatever the backend does with subnormals (XLA on CPU flushes float32
subnormals in arithmetic) and whatever the input's width.

The idea: a finite input is ``s * 2**e_q`` with an integer significand ``s``.
The target's quantum at that magnitude is ``2**qe``; rounding drops the
``d = qe - e_q`` low bits of ``s``. Because float bit patterns are monotonic
and linear within a binade, the rounded pattern is ``a - rem + (inc << d)``,
where ``rem`` are the dropped bits and ``inc`` the rounding decision; a carry
into the exponent field is the correct next binade.
"""

from __future__ import annotations

import dataclasses
import functools
from fractions import Fraction

import numpy as np

from numfmt.core.rounding import Overflow, Rounding
from numfmt.core.xp import FLOAT_LAYOUTS
from numfmt.float.format import FloatFormat, Specials, Subnormals

__all__ = ["Plan", "decompose", "make_plan", "round_bits"]

_NEAREST = (Rounding.NEAREST_EVEN, Rounding.NEAREST_AWAY)
_SR_VARIANTS = (Rounding.STOCHASTIC, Rounding.STOCHASTIC_A, Rounding.STOCHASTIC_B, Rounding.STOCHASTIC_C)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything static about one (format, input dtype, rounding, overflow)."""

    fmt: FloatFormat
    rounding: Rounding
    overflow: Overflow
    random_bits: int  # N for the stochastic variants, else 0
    # input layout
    width: int  # bits of the input dtype
    container: int  # bits of the unsigned integers the kernel computes in
    in_exp: int
    in_man: int
    in_bias: int
    # derived constants (Python ints)
    need_clz: bool
    qe_sub: int
    q_sub_bits: int
    min_bits: int
    threshold_bits: int  # largest input pattern <= the format's max
    max_bits: int | None  # pattern of the format's max, None if not representable
    inf_bits: int
    nan_bits: int
    inf_like_bits: int | None  # what SAT_NONE overflow becomes; None: the max
    inf_input_bits: int | None  # what an infinite input becomes; None: the max
    carry_overflows: bool  # a carry past the input's max exceeds the format's max
    max_beyond_input: bool  # the format's max exceeds the input dtype's max
    tiny_beyond_input: bool  # the smallest nonzero result (2**qe_sub, or min normal if no_zero) may not fit
    can_be_unrepresentable: bool  # some result may not fit the input dtype

    @property
    def is_stochastic(self) -> bool:
        return self.rounding.is_stochastic

    def round_bits(self, xp, u, rbits=None):
        return round_bits(xp, u, self, rbits)


def _value_bits(v: Fraction, exp_bits: int, man_bits: int, *, round_down: bool = False) -> int | None:
    """Pattern of ``v > 0`` in an IEEE binary format, or None if not exact.

    With ``round_down`` the largest pattern ``<= v`` (the format's max if v is
    above it).
    """
    bias = 2 ** (exp_bits - 1) - 1
    emax, emin = bias, 1 - bias
    e = v.numerator.bit_length() - v.denominator.bit_length()
    if Fraction(2) ** e > v:
        e -= 1
    if e > emax:
        return ((2 * bias + 1) << man_bits) - 1 if round_down else None
    q = max(e, emin) - man_bits
    scaled = v / Fraction(2) ** q
    sig = scaled.numerator // scaled.denominator
    if sig != scaled and not round_down:
        return None
    if e < emin:
        return sig
    return ((e + bias) << man_bits) + sig - (1 << man_bits)


@functools.lru_cache(maxsize=512)
def make_plan(fmt: FloatFormat, dtype: np.dtype, rounding: Rounding, overflow: Overflow, random_bits: int) -> Plan:
    in_exp, in_man = FLOAT_LAYOUTS[np.dtype(dtype)]
    width = np.dtype(dtype).itemsize * 8
    container = 64 if width == 64 else 32
    in_bias = 2 ** (in_exp - 1) - 1
    in_emin = 1 - in_bias
    m, emin = fmt.man_bits, fmt.emin
    sub = fmt.subnormals
    qe_sub = emin if sub is Subnormals.ROUND_TO_NORMAL else emin - m
    inf_bits = ((1 << in_exp) - 1) << in_man
    nan_bits = inf_bits | (1 << (in_man - 1))
    work_max = Fraction(2) ** in_bias * (2 - Fraction(1, 2**in_man))
    fmax = fmt.max_value
    max_bits = _value_bits(fmax, in_exp, in_man)
    threshold_bits = _value_bits(min(fmax, work_max), in_exp, in_man, round_down=True) or 0  # never None
    q_sub_bits = _value_bits(Fraction(2) ** qe_sub, in_exp, in_man) or 0
    min_bits = _value_bits(fmt.smallest_normal, in_exp, in_man) or 0

    if fmt.has_inf:
        inf_like = inf_bits
    elif fmt.specials in (Specials.FN, Specials.FNUZ):
        inf_like = nan_bits
    else:
        inf_like = None
    if overflow is Overflow.SAT_FINITE:
        inf_input = None
    elif fmt.has_inf:
        inf_input = inf_bits
    elif fmt.has_nan and (overflow is Overflow.SAT_PROPAGATE or fmt.specials in (Specials.FN, Specials.FNUZ)):
        inf_input = nan_bits
    else:
        inf_input = None

    # Can rounding carry past the input's largest binade? Not when it never
    # increments, nor for round-to-odd (it only increments an even significand),
    # unless the format has no fraction bits: then the parity is the exponent's.
    # Toward -inf only increments negative values, which unsigned formats make NaN.
    carry_possible = (
        m < in_man
        and rounding is not Rounding.TOWARD_ZERO
        and (rounding is not Rounding.TO_ODD or m == 0)
        and (rounding is not Rounding.TOWARD_NEGATIVE or fmt.signed)
    )
    carry_overflows = Fraction(2) ** (in_bias + 1) > fmax
    finite_overflow = fmax < work_max or (carry_possible and carry_overflows)
    overflow_to_max = (
        overflow is not Overflow.SAT_NONE
        or inf_like is None
        or rounding in (Rounding.TOWARD_ZERO, Rounding.TO_ODD, Rounding.TOWARD_POSITIVE, Rounding.TOWARD_NEGATIVE)
    )
    needs_max = (finite_overflow and overflow_to_max) or inf_input is None
    # Formats whose range starts beyond the input dtype (a bias far below 0):
    # every nonzero result is the smallest one, which the dtype cannot hold.
    if sub is Subnormals.NO_ZERO:
        tiny_beyond = fmt.smallest_normal > work_max
    else:
        # rounding up to it needs an input above half of it in the nearest modes
        reach = Fraction(2) ** (qe_sub - 1) if rounding in _NEAREST else Fraction(0)
        tiny_beyond = sub is not Subnormals.FLUSH and Fraction(2) ** qe_sub > work_max
        tiny_beyond = tiny_beyond and rounding is not Rounding.TOWARD_ZERO and reach <= work_max
    can_be_unrep = (
        (fmax > work_max and carry_possible and not carry_overflows)
        or (needs_max and max_bits is None)
        or tiny_beyond
    )
    return Plan(
        fmt=fmt,
        rounding=rounding,
        overflow=overflow,
        random_bits=random_bits,
        width=width,
        container=container,
        in_exp=in_exp,
        in_man=in_man,
        in_bias=in_bias,
        need_clz=emin < in_emin,
        qe_sub=qe_sub,
        q_sub_bits=q_sub_bits,
        min_bits=min_bits,
        threshold_bits=threshold_bits,
        max_bits=max_bits,
        inf_bits=inf_bits,
        nan_bits=nan_bits,
        inf_like_bits=inf_like,
        inf_input_bits=inf_input,
        carry_overflows=carry_overflows,
        max_beyond_input=fmax > work_max,
        tiny_beyond_input=tiny_beyond,
        can_be_unrepresentable=can_be_unrep,
    )


def _split(xp, v, sh):
    """``v >> sh`` and what it drops: (kept, rem, half) with half = 2**(sh-1) (0 if sh=0)."""
    one = xp.asarray(1, v.dtype)
    return v >> sh, v & ((one << sh) - one), (one << sh) >> one


def _half_even_up(rem, half, parity):
    """Round-half-even decision for dropped bits ``rem`` (``half`` its midpoint)."""
    return (rem > half) | ((rem == half) & (rem != 0) & (parity == 1))


def _sr_up(xp, plan: Plan, rem, d, rbits):
    """Stochastic decision: is ``v * 2**N`` (rounded per variant) + R >= 2**N?"""
    u, n = rem.dtype, plan.random_bits
    lo, hi = xp.asarray(0, d.dtype), xp.asarray(n, d.dtype)
    left = rem << xp.astype(xp.minimum(xp.maximum(n - d, lo), hi), u)
    right_shift = xp.astype(xp.minimum(xp.maximum(d - n, lo), plan.container - 1), u)
    h, e, half = _split(xp, rem, right_shift)
    if plan.rounding is Rounding.STOCHASTIC_B:
        h = h + xp.astype((e != 0) & (e >= half), u)
    elif plan.rounding is Rounding.STOCHASTIC_C:
        h = h + xp.astype(_half_even_up(e, half, h & 1), u)
    v_n = xp.where(d <= n, left, h)
    r_n = rbits >> (plan.container - n)
    return v_n + r_n >= xp.asarray(1 << n, u)


def decompose(xp, u, p):
    """Split patterns into ``(a, neg, s, e_q, e_x)``.

    ``a`` is the magnitude pattern, ``neg`` the sign, and a finite ``|x|`` equals
    ``s * 2**e_q`` with ``2**e_x <= |x| < 2**(e_x+1)`` (``e_x`` is exact where
    the format needs it: below the input's normal range only if ``p.need_clz``).
    """
    U, I = u.dtype, xp.int(p.container)
    sign_bit = xp.asarray(1 << (p.width - 1), U)
    a = u & xp.asarray((1 << (p.width - 1)) - 1, U)
    neg = (u & sign_bit) != 0
    ex = a >> p.in_man
    mant = a & xp.asarray((1 << p.in_man) - 1, U)
    s = xp.where(ex == 0, mant, mant | xp.asarray(1 << p.in_man, U))
    exi = xp.astype(ex, I)
    e_q = xp.maximum(exi, xp.asarray(1, I)) - (p.in_bias + p.in_man)
    if p.need_clz:  # the format reaches below the input's normal range
        t = xp.where(ex == 0, xp.astype(xp.bit_length(mant), I) - 1, xp.asarray(p.in_man, I))
        e_x = e_q + t
    else:
        e_x = exi - p.in_bias
    return a, neg, s, e_q, e_x


def round_bits(xp, u, plan: Plan, rbits=None):
    """Round input patterns ``u`` (unsigned, ``plan.container`` bits) to the format.

    Args:
      xp: the array namespace (``numfmt.core.xp.NUMPY`` or the JAX one).
      u: bit patterns of the inputs, widened to ``plan.container`` bits.
      plan: from :func:`make_plan`.
      rbits: uniform random integers of the same dtype and shape as ``u``
        (stochastic modes only).

    Returns:
      ``(out, unrepresentable)``: the patterns of the rounded values in the
      input's layout, and a boolean mask of results the input dtype cannot
      hold (None when that cannot happen). NaN inputs are returned unchanged.
    """
    p, fmt = plan, plan.fmt
    U, I = u.dtype, xp.int(p.container)
    sign_bit = xp.asarray(1 << (p.width - 1), U)
    a, neg, s, e_q, e_x = decompose(xp, u, p)
    below = e_x < fmt.emin
    qe = xp.where(below, xp.asarray(p.qe_sub, I), e_x - fmt.man_bits)
    d = qe - e_q
    dc = xp.astype(xp.minimum(xp.maximum(d, xp.asarray(0, I)), p.in_man + 2), U)
    kept, rem, half = _split(xp, s, dc)
    inexact = rem != 0
    if fmt.man_bits == 0:  # ties and odd refer to the code: its parity is the exponent's
        offset = 1 if fmt.subnormals is Subnormals.NO_ZERO else 0
        parity = (kept + xp.astype(qe - (fmt.emin + offset), U)) & 1
    else:
        parity = kept & 1

    r = p.rounding
    if r is Rounding.NEAREST_EVEN:
        if fmt.subnormals is Subnormals.ROUND_TO_NORMAL and fmt.man_bits > 0:
            # Below the normals the neighbours are 0 and 2**emin, both even
            # codes: the tie at 2**emin / 2 goes up (chop's rule).
            parity = xp.where(below, xp.asarray(1, U), parity)
        inc = _half_even_up(rem, half, parity)
    elif r is Rounding.NEAREST_AWAY:
        inc = inexact & (rem >= half)
    elif r is Rounding.TOWARD_ZERO:
        inc = inexact & False
    elif r is Rounding.TOWARD_POSITIVE:
        inc = inexact & ~neg
    elif r is Rounding.TOWARD_NEGATIVE:
        inc = inexact & neg
    elif r is Rounding.TO_ODD:
        inc = inexact & (parity == 0)
    elif r is Rounding.STOCHASTIC_EQUAL:
        inc = inexact & ((rbits >> (p.container - 1)) == 1)
    else:
        inc = _sr_up(xp, p, rem, d, rbits)

    res = a - rem + (xp.astype(inc, U) << dc)
    deep = d > p.in_man  # every bit of s dropped: the result is 0 or the smallest quantum
    res = xp.where(deep, xp.where(inc, xp.asarray(p.q_sub_bits, U), xp.asarray(0, U)), res)
    if fmt.subnormals is Subnormals.FLUSH:
        res = xp.where(below, xp.asarray(0, U), res)
    elif fmt.subnormals is Subnormals.NO_ZERO:
        res = xp.where(below, xp.asarray(p.min_bits, U), res)
    tiny = None
    if p.tiny_beyond_input:  # nonzero finite inputs rounding to the smallest result
        tiny = below if fmt.subnormals is Subnormals.NO_ZERO else deep & inc
        tiny = tiny & (a != 0) & (a < xp.asarray(p.inf_bits, U))

    # Overflow: the rounded magnitude is above the format's max (``over``). When
    # the format's max lies beyond the input dtype, a carry past the dtype's max
    # is either an overflow (carry_overflows) or a value the dtype cannot hold.
    unrep = None
    inf_bits = xp.asarray(p.inf_bits, U)
    over = (res > xp.asarray(p.threshold_bits, U)) & (a < inf_bits)
    if not p.carry_overflows and p.max_beyond_input:
        unrep = over
    else:
        if p.overflow is not Overflow.SAT_NONE or r in (Rounding.TOWARD_ZERO, Rounding.TO_ODD):
            to_max = True
        elif p.inf_like_bits is None:  # no inf and no NaN to stand for it
            to_max = True
        elif r is Rounding.TOWARD_POSITIVE:
            to_max = neg
        elif r is Rounding.TOWARD_NEGATIVE:
            to_max = ~neg
        else:
            to_max = False
        max_ = xp.asarray(p.max_bits or 0, U)
        big = xp.where(to_max, max_, xp.asarray(p.inf_like_bits or 0, U))
        res = xp.where(over, big, res)
        if p.max_bits is None:
            unrep = over & to_max

    # Special inputs: NaN passes through; inf per the overflow policy; zero.
    is_inf = a == inf_bits
    if p.inf_input_bits is None:  # becomes the format's max
        res = xp.where(is_inf, xp.asarray(p.max_bits or 0, U), res)
        if p.max_bits is None:
            unrep = is_inf if unrep is None else unrep | is_inf
    else:
        res = xp.where(is_inf, xp.asarray(p.inf_input_bits, U), res)
    if not fmt.has_zero:
        res = xp.where(a == 0, xp.asarray(p.nan_bits, U), res)
    if not fmt.signed:
        out = xp.where(neg & (a != 0), xp.asarray(p.nan_bits, U), res)
    elif fmt.has_negative_zero:
        out = res | (u & sign_bit)
    else:
        out = xp.where(neg & (res != 0), res | sign_bit, res)
    out = xp.where(a > inf_bits, u, out)
    if tiny is not None:
        unrep = tiny if unrep is None else unrep | tiny
    if unrep is not None and not fmt.signed:  # negative inputs give NaN, whatever their magnitude
        unrep = unrep & ~neg
    return out, (unrep if p.can_be_unrepresentable else None)

