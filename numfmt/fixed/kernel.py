"""Rounding to fixed point on input bit patterns: one kernel for NumPy and JAX.

A finite ``|x| = s * 2**e_q``; the format's quantum is ``2**-F`` (``F =
frac_bits``), so rounding drops ``d = -F - e_q`` low bits of ``s`` (none when
``d <= 0``) and gives the integer magnitude ``k``. Overflow then works on
integers: saturation clamps ``k`` to the code range, wrapping reduces the
two's complement code modulo ``2**bits``. The value is ``code * 2**-F``.

Special values: NaN stays NaN in ``chop`` (``encode`` refuses it); +-inf
saturates to the max/min value, and under ``wrap`` (where it has no residue)
becomes NaN; -0 and negative values rounding to 0 give +0 (no -0); negative
values of unsigned formats saturate to 0 or wrap around.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from numfmt.core import xp as _xp
from numfmt.core.rounding import Rounding
from numfmt.fixed.format import FixedFormat, FixedOverflow
from numfmt.float.intbits import bit_length, fits_exactly, float_bits, increment
from numfmt.float.kernel import _split, _value_bits, decompose

__all__ = ["FixedPlan", "fixed_codes", "make_fixed_plan"]


@dataclasses.dataclass(frozen=True)
class FixedPlan:
    """Everything static about one (fixed format, input dtype, rounding, overflow)."""

    fmt: FixedFormat
    rounding: Rounding
    overflow: FixedOverflow
    random_bits: int
    width: int
    container: int
    in_exp: int
    in_man: int
    in_bias: int
    need_clz: bool
    can_be_unrepresentable: bool

    @property
    def is_stochastic(self) -> bool:
        return self.rounding.is_stochastic

    @property
    def inf_bits(self) -> int:
        return ((1 << self.in_exp) - 1) << self.in_man

    def round_bits(self, xp, u, rbits=None):
        code, nan = fixed_codes(xp, u, self, rbits)
        U, fmt = u.dtype, self.fmt
        neg, mag = split_code(xp, code, fmt)
        out = float_bits(xp, mag, -fmt.frac_bits, in_man=self.in_man, in_bias=self.in_bias)
        out = xp.where(neg, out | xp.asarray(1 << (self.width - 1), U), out)
        unrep = None
        if self.can_be_unrepresentable:
            # every result is a rounded input (<= in_man + 1 significant bits)
            # or a saturation bound: unrepresentable iff too wide, too large, or
            # with a set bit below the input's smallest subnormal 2**(1-bias-man)
            t = xp.astype(bit_length(xp, mag), xp.int(self.container)) - 1
            low = xp.astype(_trailing_zeros(xp, mag), t.dtype)
            tiny = low - fmt.frac_bits < 1 - self.in_bias - self.in_man
            unrep = ((t - low > self.in_man) | tiny | (t - fmt.frac_bits > self.in_bias)) & (mag != 0) & ~nan
        nan_bits = self.inf_bits | (1 << (self.in_man - 1))
        return xp.where(nan, xp.where(_is_nan(xp, u, self), u, xp.asarray(nan_bits, U)), out), unrep


def _trailing_zeros(xp, m):
    low = m & (~m + xp.asarray(1, m.dtype))  # lowest set bit
    return bit_length(xp, low) - xp.asarray(1, m.dtype)


def _is_nan(xp, u, plan):
    return (u & xp.asarray((1 << (plan.width - 1)) - 1, u.dtype)) > xp.asarray(plan.inf_bits, u.dtype)


def split_code(xp, code, fmt: FixedFormat):
    """(negative mask, magnitude) of two's complement / unsigned codes."""
    U = code.dtype
    if not fmt.signed:
        return code != code, code
    mask = xp.asarray((1 << fmt.bits) - 1, U)
    neg = (code >> xp.asarray(fmt.bits - 1, U)) == xp.asarray(1, U)
    return neg, xp.where(neg, (~code + xp.asarray(1, U)) & mask, code)


def all_values_fit(fmt: FixedFormat, dtype) -> bool:
    """True if ``dtype`` holds every value of ``fmt`` exactly."""
    b, f = fmt.magnitude_bits, fmt.frac_bits
    return fits_exactly([(-f, b - f, max(b, 1))], *_xp.FLOAT_LAYOUTS[np.dtype(dtype)])


@functools.lru_cache(maxsize=256)
def make_fixed_plan(fmt: FixedFormat, dtype, rounding: Rounding, overflow: FixedOverflow, random_bits: int):
    """The plan for ``chop``/``encode`` of ``fmt`` (the ``register_elementwise`` planner)."""
    overflow = FixedOverflow.parse(overflow)
    dtype = np.dtype(dtype)
    in_exp, in_man = _xp.FLOAT_LAYOUTS[dtype]
    width = dtype.itemsize * 8
    in_bias = 2 ** (in_exp - 1) - 1
    if 2 ** -fmt.frac_bits > 2.0 ** in_bias:
        raise ValueError(f"{fmt}: its quantum 2**{-fmt.frac_bits} is beyond {dtype.name}; pass float64 input")
    fits = all_values_fit(fmt, dtype)
    if overflow is FixedOverflow.WRAP and not fits:
        raise ValueError(
            f"chop of {dtype.name} to {fmt} with overflow='wrap' can give values {dtype.name} cannot hold "
            f"exactly ({fmt.bits}-bit codes); "
            + ("pass float64 input" if width < 64 else "use a format of at most 53 significant bits")
        )
    return FixedPlan(
        fmt=fmt,
        rounding=rounding,
        overflow=overflow,
        random_bits=random_bits,
        width=width,
        container=64 if width == 64 or fmt.bits > 30 else 32,
        in_exp=in_exp,
        in_man=in_man,
        in_bias=in_bias,
        need_clz=(1 - in_bias) + fmt.frac_bits >= fmt.magnitude_bits,
        can_be_unrepresentable=not fits
        and (
            _value_bits(fmt.max_value, in_exp, in_man) is None
            or (fmt.signed and _value_bits(-fmt.min_value, in_exp, in_man) is None)
            or 2 ** (fmt.magnitude_bits - fmt.frac_bits) > 2.0**in_bias
        ),
    )


def fixed_codes(xp, u, plan: FixedPlan, rbits=None):
    """Round input patterns ``u`` (container-wide unsigned) to fixed-point codes.

    Returns:
      ``(code, nan)``: codes in ``[0, 2**bits)`` (two's complement if signed)
      and the mask of inputs without a code (NaN; +-inf under wrap).
    """
    fmt, C = plan.fmt, plan.container
    F, B = fmt.frac_bits, fmt.magnitude_bits
    U, I = u.dtype, xp.int(C)

    def k_(v):
        return xp.asarray(v, U)

    a, neg, s, e_q, e_x = decompose(xp, u, plan)
    is_inf = a == k_(plan.inf_bits)
    nan = a > k_(plan.inf_bits)
    d = xp.asarray(-F, I) - e_q
    dc = xp.astype(xp.minimum(xp.maximum(d, xp.asarray(0, I)), plan.in_man + 2), U)
    kept, rem, half = _split(xp, s, dc)
    inc = xp.astype(increment(xp, plan, rem, half, kept & k_(1), neg, d, rbits), U)
    left = xp.astype(xp.minimum(xp.maximum(-d, xp.asarray(0, I)), C - 1), U)
    shifted = xp.where(-d >= C, k_(0), s << left)  # exact below overflow, else mod 2**C
    k = xp.where(d >= 0, kept + inc, shifted)
    k = xp.where(a == 0, k_(0), k)
    mask = k_((1 << fmt.bits) - 1)
    if plan.overflow is FixedOverflow.WRAP:
        code = xp.where(neg, (~k + k_(1)) & mask, k & mask)
        nan = nan | is_inf
    else:
        # |x| >= 2**(B-F) rounds to a magnitude >= 2**B: beyond every code. Found
        # from the exponent, as k itself wraps modulo 2**C when B == C (uint64).
        big = (e_x + F >= B) | is_inf
        top = k_((1 << B) - 1)
        pos = xp.where(big | (k > top), top, k)
        if fmt.signed:
            negmag = xp.where(big | (k > top + k_(1)), top + k_(1), k)
            code = xp.where(neg, (~negmag + k_(1)) & mask, pos)
        else:
            code = xp.where(neg, k_(0), pos)
    return xp.where(nan, k_(0), code), nan


# ------------------------------------------------------------------ codecs
def encode_fixed(x, fmt, rounding="nearest_even", *, overflow=None, key=None, random_bits=None):
    """``numfmt.encode`` for fixed point: integer codes (two's complement if signed)."""
    from numfmt.core.codes import chopped_patterns, code_dtype, is_tracer

    def planner(fmt, dtype):
        return make_fixed_plan(fmt, dtype, Rounding.NEAREST_EVEN, FixedOverflow.SATURATE, 0)

    xp, _, u, plan = chopped_patterns(x, fmt, rounding, overflow, key, random_bits, planner)
    code, nan = fixed_codes(xp, u, plan)  # exact: y holds values of fmt
    if not is_tracer(nan) and bool(xp.any(nan)):
        raise ValueError(
            f"x contains NaN (or inf under overflow='wrap'), which {fmt} cannot encode; "
            "replace it first, e.g. with np.nan_to_num"
        )
    return xp.astype(code, code_dtype(fmt.bits))


def decode_fixed(codes, fmt, dtype=None):
    """``numfmt.decode`` for fixed point: codes in ``[0, 2**bits)`` to values."""
    from numfmt.core.codes import code_array, require_float64

    xp, codes = code_array(codes, fmt.bits, fmt)
    if dtype is None:
        dtype = next((d for d in (np.float32, np.float64) if all_values_fit(fmt, d)), None)
        if dtype is None:
            raise ValueError(f"{fmt} has values float64 cannot hold exactly; decode only to exact dtypes")
    elif np.dtype(dtype) not in _xp.FLOAT_LAYOUTS or not all_values_fit(fmt, dtype):
        raise ValueError(f"dtype={np.dtype(dtype).name} cannot hold every value of {fmt} exactly; use dtype=None")
    dtype = np.dtype(dtype)
    require_float64(xp, dtype, fmt)
    plan = make_fixed_plan(fmt, dtype, Rounding.NEAREST_EVEN, FixedOverflow.SATURATE, 0)
    U = xp.uint(plan.container)
    c = xp.astype(codes, U) & xp.asarray((1 << fmt.bits) - 1, U)
    neg, mag = split_code(xp, c, fmt)
    out = float_bits(xp, mag, -fmt.frac_bits, in_man=plan.in_man, in_bias=plan.in_bias)
    out = xp.where(neg, out | xp.asarray(1 << (plan.width - 1), U), out)
    return xp.bitcast(xp.astype(out, xp.uint(plan.width)), dtype)
