"""Integer element formats of block formats: MXINT8 and block floating point.

An :class:`IntElement` holds ``k * 2**-frac_bits`` for integers ``k`` in a
range set by the code layout: two's complement ``[-2**(bits-1), 2**(bits-1)-1]``
(MXINT8: ``bits=8, frac_bits=6`` gives ``[-2, 127/64]``) or sign-magnitude
``[-(2**(bits-1)-1), 2**(bits-1)-1]`` (block floating point mantissas).

Rounding reuses the float kernel: a float format with one exponent bit and
``bits-1`` fraction bits is a uniform grid of step ``2**-frac_bits`` (all its
values are at that quantum), wide enough for ``2**bits - 1`` steps; the result
is then clamped, on bit patterns, to the integer range. Rounding then clamping
equals saturating rounding in every mode. NaN stays NaN; +-inf clamps; a
negative value that rounds to zero gives -0 with sign-magnitude codes and +0
with two's complement codes (which have no -0).
"""

from __future__ import annotations

import dataclasses
import functools
from fractions import Fraction

import numpy as np

from numfmt.core.chop import register_elementwise
from numfmt.core.rounding import Overflow, Rounding
from numfmt.core.xp import FLOAT_LAYOUTS
from numfmt.float.format import FloatFormat, Specials
from numfmt.float.kernel import _value_bits, make_plan

__all__ = ["IntElement"]


@dataclasses.dataclass(frozen=True)
class IntElement:
    """Scaled integers ``k * 2**-frac_bits`` with ``bits``-bit codes.

    Args:
      bits: code width, 2..32.
      frac_bits: the binary point: values are multiples of ``2**-frac_bits``
        (may be negative or larger than ``bits``).
      sign_magnitude: False (default) for two's complement codes and the
        asymmetric range ``[-2**(bits-1), 2**(bits-1)-1]``; True for
        sign-magnitude codes and the symmetric range.

    Raises:
      TypeError, ValueError: for parameters of the wrong type or range.

    Examples:
      >>> e = IntElement(8, 6)
      >>> float(e.max_value), float(e.min_value)
      (1.984375, -2.0)
    """

    bits: int
    frac_bits: int
    sign_magnitude: bool = False

    def __post_init__(self):
        for arg in ("bits", "frac_bits"):
            value = getattr(self, arg)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"IntElement {arg} must be an int, got {value!r}")
        if not isinstance(self.sign_magnitude, bool):
            raise TypeError(f"IntElement sign_magnitude must be True or False, got {self.sign_magnitude!r}")
        if not 2 <= self.bits <= 32:
            raise ValueError(f"IntElement bits={self.bits} is out of range; it must be 2..32")
        if abs(self.frac_bits) > 64:
            raise ValueError(f"IntElement frac_bits={self.frac_bits} is out of range; |frac_bits| must be <= 64")

    @property
    def overflow(self) -> Overflow:
        """Integer elements always saturate."""
        return Overflow.SAT_FINITE

    @property
    def quantum(self) -> Fraction:
        """The step ``2**-frac_bits`` (also the smallest positive value)."""
        return Fraction(2) ** -self.frac_bits

    @property
    def max_int(self) -> int:
        return 2 ** (self.bits - 1) - 1

    @property
    def min_int(self) -> int:
        return -self.max_int if self.sign_magnitude else -(2 ** (self.bits - 1))

    @property
    def max_value(self) -> Fraction:
        """Largest value (exact)."""
        return self.max_int * self.quantum

    @property
    def min_value(self) -> Fraction:
        """Most negative value (exact)."""
        return self.min_int * self.quantum

    @property
    def smallest_subnormal(self) -> Fraction:
        """Smallest positive value (named as for float formats)."""
        return self.quantum

    @property
    def grid(self) -> FloatFormat:
        """The float format whose values are ``k * 2**-frac_bits``, ``|k| < 2**bits``."""
        return FloatFormat(1, self.bits - 1, bias=self.frac_bits - self.bits + 2, specials=Specials.FINITE)

    def __str__(self) -> str:
        return f"int(bits={self.bits},frac={self.frac_bits}{',sm' if self.sign_magnitude else ''})"


@dataclasses.dataclass(frozen=True)
class _IntPlan:
    fmt: IntElement
    inner: object  # the grid format's plan
    pos_bits: int  # input-dtype pattern of max_value
    neg_bits: int  # pattern of |min_value|

    def __getattr__(self, name):  # rounding, width, container, is_stochastic, ...
        return getattr(self.inner, name)

    def round_bits(self, xp, u, rbits=None):
        out, unrep = self.inner.round_bits(xp, u, rbits)
        p = self.inner
        sign = xp.asarray(1 << (p.width - 1), u.dtype)
        mag = out & xp.asarray((1 << (p.width - 1)) - 1, u.dtype)
        neg = (out & sign) != 0
        is_nan = mag > xp.asarray(p.inf_bits, u.dtype)
        cap = xp.where(neg, xp.asarray(self.neg_bits, u.dtype), xp.asarray(self.pos_bits, u.dtype))
        clamped = xp.where(is_nan, mag, xp.minimum(mag, cap))
        if not self.fmt.sign_magnitude:  # two's complement has no -0
            neg = neg & (clamped != xp.asarray(0, u.dtype))
        return clamped | xp.where(neg, sign, xp.asarray(0, u.dtype)), unrep


@functools.lru_cache(maxsize=256)
def _plan(fmt: IntElement, dtype: np.dtype, rounding: Rounding, overflow: Overflow, random_bits: int) -> _IntPlan:
    e, m = FLOAT_LAYOUTS[np.dtype(dtype)]
    pos, neg = _value_bits(fmt.max_value, e, m), _value_bits(-fmt.min_value, e, m)
    if pos is None or neg is None or (fmt.quantum < 1 and _value_bits(fmt.quantum, e, m) is None):
        raise ValueError(f"{np.dtype(dtype).name} cannot hold every value of {fmt}; pass float32 or float64 input")
    inner = make_plan(fmt.grid, np.dtype(dtype), rounding, Overflow.SAT_FINITE, random_bits)
    return _IntPlan(fmt, inner, pos, neg)


register_elementwise(IntElement, _plan)
