"""IEEE-like binary floating-point formats of any exponent/fraction split.

A :class:`FloatFormat` is a small frozen, hashable dataclass: it can be a
``jax.jit`` static argument or a dict key. Every derived fact (max, eps, codes)
is a property computed exactly (Python ints and Fractions) from the parameters.
"""

from __future__ import annotations

import dataclasses
import enum
from fractions import Fraction

from numfmt.core.rounding import Overflow, _parse_enum

__all__ = ["FloatFormat", "Specials", "Subnormals"]


class Specials(enum.Enum):
    """Which codes hold NaN, infinity and -0 (names follow ml_dtypes/LLVM).

    * ``IEEE``: the top exponent field is reserved; fraction 0 is +-inf, any
      other fraction is NaN (float16, bfloat16, float8_e5m2).
    * ``FN``: finite; only the all-ones magnitude ``S.111...1`` is NaN, so the
      largest value uses the top exponent (float8_e4m3fn: max 448). Unsigned
      formats (float8_e8m0fnu) have the one NaN code ``111...1``.
    * ``FNUZ``: finite, unsigned zero; the single NaN is the code of -0,
      ``1000...0``; every other code is finite (float8_e4m3fnuz).
    * ``FINITE``: no NaN and no infinity; every code is a number (float4_e2m1fn,
      float6_e2m3fn, float6_e3m2fn).
    * ``P3109``: IEEE P3109 extended domain. Signed: NaN is ``1000...0``,
      +inf ``0111...1``, -inf ``1111...1``, no -0. Unsigned: NaN ``111...1``,
      +inf ``111...10``.
    * ``P3109_FINITE``: P3109 finite domain: as ``P3109`` but the infinity codes
      hold finite values.
    """

    IEEE = "ieee"
    FN = "fn"
    FNUZ = "fnuz"
    FINITE = "finite"
    P3109 = "p3109"
    P3109_FINITE = "p3109_finite"


class Subnormals(enum.Enum):
    """How values below the smallest normal number are treated.

    * ``ON``: gradual underflow: the subnormal codes hold values
      ``f * 2**(emin - man_bits)``.
    * ``FLUSH``: flush to zero: every input whose magnitude is below the
      smallest normal becomes +-0 (in every rounding mode); subnormal codes are
      never produced.
    * ``ROUND_TO_NORMAL``: the representable set is {0} U normals and values are
      rounded onto it by the rounding mode, e.g. round-to-nearest sends
      ``[2**emin / 2, 2**emin)`` to ``2**emin``: the exact tie ``2**emin / 2``
      goes up, to ``2**emin`` (MATLAB chop's rule for "subnormals off").
      CPFloat's "subnormals off" differs at that one tie: it sends
      ``2**emin / 2`` to 0 (and agrees everywhere else).
    * ``NO_ZERO``: there are no subnormal codes and no zero: exponent field 0 is
      an ordinary binade, so ``emin = -bias`` (float8_e8m0fnu). Every positive
      input below the smallest value rounds to it; 0 becomes NaN, as in
      ml_dtypes.
    """

    ON = "on"
    FLUSH = "flush"
    ROUND_TO_NORMAL = "round_to_normal"
    NO_ZERO = "no_zero"


def _default_bias(exp_bits: int, specials: Specials) -> int:
    unsigned_zero = specials in (Specials.FNUZ, Specials.P3109, Specials.P3109_FINITE)
    return 2 ** (exp_bits - 1) - (0 if unsigned_zero else 1)


_MAX_EXP_BITS = 20
_MAX_MAN_BITS = 1024
_MAX_ABS_BIAS = 2**24


@dataclasses.dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format: sign, ``exp_bits`` exponent bits and
    ``man_bits`` fraction bits (the hidden bit is not counted).

    Args:
      exp_bits: exponent field width E, 1 <= E <= 20.
      man_bits: fraction field width M >= 0 (precision p = M + 1).
      bias: exponent bias; ``None`` means the variant's default: ``2**(E-1) - 1``
        (ieee, fn, finite) or ``2**(E-1)`` (fnuz, P3109).
      specials: a :class:`Specials` member or its name.
      subnormals: a :class:`Subnormals` member or its name.
      signed: False for unsigned formats (allowed with ``fn``, ``p3109`` and
        ``p3109_finite``); unsigned formats turn negative inputs into NaN.
      overflow: the format's default :class:`Overflow` policy.
      name: display name of a preset; not part of equality or hashing.

    Raises:
      ValueError: for parameters outside the ranges above, or a combination
        that leaves no room for the variant's special codes.
      TypeError: for parameters of the wrong type.

    Examples:
      >>> import numfmt
      >>> f = numfmt.FloatFormat(4, 3, specials="fn")
      >>> f == numfmt.float8_e4m3fn, float(f.max_value)
      (True, 448.0)
    """

    exp_bits: int
    man_bits: int
    bias: int = None  # type: ignore[assignment]  # resolved in __post_init__
    specials: Specials = Specials.IEEE
    subnormals: Subnormals = Subnormals.ON
    signed: bool = True
    overflow: Overflow = Overflow.SAT_NONE
    name: str | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self):
        for arg in ("exp_bits", "man_bits"):
            value = getattr(self, arg)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{arg} must be an int, got {value!r}")
        specials = _parse_enum(Specials, self.specials, "specials", {})
        subnormals = _parse_enum(Subnormals, self.subnormals, "subnormals", {})
        overflow = Overflow.parse(self.overflow)
        object.__setattr__(self, "specials", specials)
        object.__setattr__(self, "subnormals", subnormals)
        object.__setattr__(self, "overflow", overflow)
        if not isinstance(self.signed, bool):
            raise TypeError(f"signed must be True or False, got {self.signed!r}")
        e, m = self.exp_bits, self.man_bits
        if not 1 <= e <= _MAX_EXP_BITS:
            raise ValueError(
                f"exp_bits={e} is out of range; it must be 1..{_MAX_EXP_BITS} "
                "(use a fixed-point or integer format for exp_bits=0)"
            )
        if not 0 <= m <= _MAX_MAN_BITS:
            raise ValueError(f"man_bits={m} is out of range; it must be 0..{_MAX_MAN_BITS}")
        if self.bias is None:
            object.__setattr__(self, "bias", _default_bias(e, specials))
        elif not isinstance(self.bias, int) or isinstance(self.bias, bool):
            raise TypeError(f"bias must be an int or None, got {self.bias!r}")
        elif abs(self.bias) > _MAX_ABS_BIAS:
            raise ValueError(f"bias={self.bias} is out of range; |bias| must be <= 2**24")
        if not self.signed and specials not in (Specials.FN, Specials.P3109, Specials.P3109_FINITE):
            raise ValueError(
                f"signed=False needs specials 'fn', 'p3109' or 'p3109_finite' (a NaN code "
                f"for negative inputs), got specials={specials.value!r}"
            )
        if specials is Specials.IEEE and (e < 2 or m < 1):
            raise ValueError(
                f"specials='ieee' reserves the top exponent for inf and NaN, which needs "
                f"exp_bits >= 2 and man_bits >= 1; got exp_bits={e}, man_bits={m}. "
                "Use specials='fn' or 'finite' for such formats."
            )
        if subnormals is Subnormals.NO_ZERO and specials not in (Specials.FN, Specials.IEEE):
            raise ValueError(
                "subnormals='no_zero' turns 0 into NaN and needs specials 'fn' or 'ieee', "
                f"got specials={specials.value!r}"
            )
        if self.max_magnitude_code < 1:
            raise ValueError(
                f"{self.spec} has no positive finite value: its special codes take every code"
            )

    # ----------------------------------------------------------------- layout
    @property
    def bits(self) -> int:
        """Total width of a code in bits."""
        return self.exp_bits + self.man_bits + int(self.signed)

    @property
    def sign_code(self) -> int:
        """The sign bit of a code (0 for unsigned formats)."""
        return 1 << (self.bits - 1) if self.signed else 0

    @property
    def has_inf(self) -> bool:
        """True if the format has infinities."""
        return self.specials in (Specials.IEEE, Specials.P3109)

    @property
    def has_nan(self) -> bool:
        """True if the format has a NaN code."""
        return self.specials is not Specials.FINITE

    @property
    def has_negative_zero(self) -> bool:
        """True if -0 is a distinct code."""
        return self.signed and self.specials in (Specials.IEEE, Specials.FN, Specials.FINITE)

    @property
    def has_zero(self) -> bool:
        """False only for ``subnormals='no_zero'`` formats (float8_e8m0fnu)."""
        return self.subnormals is not Subnormals.NO_ZERO

    @property
    def _magnitude_bits(self) -> int:
        return self.exp_bits + self.man_bits

    @property
    def max_magnitude_code(self) -> int:
        """Code (sign bit clear) of the largest finite value."""
        ones = (1 << self._magnitude_bits) - 1
        sp = self.specials
        if sp is Specials.IEEE:
            return ((1 << self.exp_bits) - 1 << self.man_bits) - 1
        if sp is Specials.FN:
            return ones - 1
        if sp in (Specials.FNUZ, Specials.FINITE):
            return ones
        # P3109: the top one (signed) or two (unsigned) magnitudes are special.
        specials_at_top = (1 if self.signed else 2) if sp is Specials.P3109 else (0 if self.signed else 1)
        return ones - specials_at_top

    @property
    def inf_code(self) -> int | None:
        """Code of +inf, or None."""
        if self.specials is Specials.IEEE:
            return (1 << self.exp_bits) - 1 << self.man_bits
        if self.specials is Specials.P3109:
            return self.max_magnitude_code + 1
        return None

    @property
    def nan_code(self) -> int | None:
        """The canonical (positive, quiet) NaN code, or None."""
        sp = self.specials
        if sp is Specials.IEEE:
            return self.max_magnitude_code + 1 | (1 << (self.man_bits - 1))  # inf_code | quiet bit
        if sp is Specials.FN or (not self.signed and sp in (Specials.P3109, Specials.P3109_FINITE)):
            return (1 << self._magnitude_bits) - 1
        if sp in (Specials.FNUZ, Specials.P3109, Specials.P3109_FINITE):
            return self.sign_code
        return None

    def is_nan_code(self, code: int) -> bool:
        """True if ``code`` (an int in ``[0, 2**bits)``) encodes NaN."""
        mag = code & ~self.sign_code
        sp = self.specials
        if sp is Specials.IEEE:
            return mag > self.max_magnitude_code + 1  # above the inf code
        if sp is Specials.FN:
            return mag == (1 << self._magnitude_bits) - 1
        if self.signed and sp in (Specials.FNUZ, Specials.P3109, Specials.P3109_FINITE):
            return code == self.sign_code
        if not self.signed and sp in (Specials.P3109, Specials.P3109_FINITE):
            return code == (1 << self.bits) - 1
        return False

    # ------------------------------------------------------------------ facts
    @property
    def precision(self) -> int:
        """Significand precision p = man_bits + 1 (hidden bit included)."""
        return self.man_bits + 1

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal value: 1 - bias (-bias for no_zero)."""
        return -self.bias if self.subnormals is Subnormals.NO_ZERO else 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest finite value."""
        return self.emin + (self.max_magnitude_code >> self.man_bits) - (
            0 if self.subnormals is Subnormals.NO_ZERO else 1
        )

    @property
    def max_value(self) -> Fraction:
        """Largest finite value (exact)."""
        return Fraction(self.code_to_value(self.max_magnitude_code))

    @property
    def smallest_normal(self) -> Fraction:
        """Smallest positive normal value, ``2**emin`` (exact)."""
        return Fraction(2) ** self.emin

    @property
    def smallest_subnormal(self) -> Fraction:
        """Smallest positive value the format can produce (exact).

        ``2**(emin - man_bits)`` with subnormals on; the smallest normal
        otherwise.
        """
        if self.subnormals is Subnormals.ON:
            return Fraction(2) ** (self.emin - self.man_bits)
        return self.smallest_normal

    @property
    def eps(self) -> Fraction:
        """Gap between 1 and the next larger value, ``2**-man_bits``."""
        return Fraction(1, 2**self.man_bits)

    @property
    def unit_roundoff(self) -> Fraction:
        """Relative error bound of round-to-nearest in the normal range, ``2**-p``."""
        return self.eps / 2

    @property
    def num_finite(self) -> int:
        """Number of distinct finite values (+0 and -0 counted once)."""
        positive = self.max_magnitude_code + (0 if self.has_zero else 1)  # nonzero values
        if self.subnormals in (Subnormals.FLUSH, Subnormals.ROUND_TO_NORMAL):
            positive -= (1 << self.man_bits) - 1  # subnormal codes are never produced
        return positive * (2 if self.signed else 1) + int(self.has_zero)

    def code_to_value(self, code: int) -> Fraction | float:
        """Exact value of one code: a Fraction, or float inf / nan."""
        if not 0 <= code < 1 << self.bits:
            raise ValueError(f"code={code} is out of range for a {self.bits}-bit format")
        if self.is_nan_code(code):
            return float("nan")
        negative = bool(code & self.sign_code)
        mag = code & ~self.sign_code
        if mag == self.inf_code:
            return float("-inf") if negative else float("inf")
        e_field, frac = mag >> self.man_bits, mag & ((1 << self.man_bits) - 1)
        if self.subnormals is Subnormals.NO_ZERO:
            value = Fraction(2**self.man_bits + frac) * Fraction(2) ** (e_field + self.emin - self.man_bits)
        elif e_field == 0:
            value = Fraction(frac) * Fraction(2) ** (self.emin - self.man_bits)
        else:
            value = Fraction(2**self.man_bits + frac) * Fraction(2) ** (e_field - 1 + self.emin - self.man_bits)
        return -value if negative else value

    @property
    def dtype(self):
        """The NumPy or ml_dtypes dtype with this format's values and codes, or None.

        The overflow policy is not compared (a dtype has none; its casts follow
        ml_dtypes). ``numfmt.parse`` converts the other way.

        Examples:
          >>> import numfmt
          >>> numfmt.parse("e4m3fn").dtype
          dtype(float8_e4m3fn)
          >>> numfmt.parse("tf32").dtype is None
          True
        """
        from numfmt.core.names import dtype_for

        return dtype_for(self)

    # ---------------------------------------------------------------- strings
    def __str__(self) -> str:
        if self.name is not None:
            return self.name
        return self.spec

    @property
    def spec(self) -> str:
        """The explicit grammar form, ``float(e=...,m=...,...)``; see ``numfmt.parse``."""
        parts = [f"e={self.exp_bits}", f"m={self.man_bits}"]
        if self.bias != _default_bias(self.exp_bits, self.specials):
            parts.append(f"bias={self.bias}")
        if self.specials is not Specials.IEEE:
            parts.append(f"specials={self.specials.value}")
        if self.subnormals is not Subnormals.ON:
            parts.append(f"subnormals={self.subnormals.value}")
        if not self.signed:
            parts.append("signed=false")
        if self.overflow is not Overflow.SAT_NONE:
            parts.append(f"overflow={self.overflow.value}")
        return f"float({','.join(parts)})"

    def replace(self, **changes) -> FloatFormat:
        """A copy with some parameters changed (the preset name is dropped)."""
        changes.setdefault("name", None)
        return dataclasses.replace(self, **changes)
