"""Fixed-point formats and integers (the zero-fraction case).

A :class:`FixedFormat` holds the values ``c * 2**-frac_bits`` for the integer
codes ``c`` of a ``bits``-bit two's complement (signed) or unsigned integer,
``bits = int(signed) + int_bits + frac_bits`` (Q notation: ``int_bits`` does
not count the sign bit). Either count may be negative: ``int_bits=-2,
frac_bits=10`` is a 9-bit format of multiples of ``2**-10`` in
``[-2**-2, 2**-2)``; ``frac_bits=-3`` gives multiples of 8.

Grammar (parsed by :func:`numfmt.parse`)::

    fixed(i=I,f=F[,signed=true|false][,overflow=saturate|wrap])
    q{I}.{F}  (signed, saturating)     uq{I}.{F}  (unsigned, saturating)
    int1 int2 int4 int8 int16 int32 int64  uint1 uint2 uint4 uint8 uint16 uint32 uint64

``str(fmt)`` is the preset name for presets, ``q``/``uq`` for other
saturating formats and ``fixed(...)`` for wrapping ones.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from fractions import Fraction

from numfmt.core.names import named_dtype, register_family
from numfmt.core.rounding import Overflow, _parse_enum

__all__ = ["FixedFormat", "FixedOverflow"]


class FixedOverflow(enum.Enum):
    """What fixed point does with a rounded value outside its range.

    Rounding happens first; then:

    * ``SATURATE``: clamp to the largest / smallest value (``Overflow.SAT_FINITE``
      and its names are accepted for it).
    * ``WRAP``: keep the integer code modulo ``2**bits`` (two's complement
      wrap-around, as C casts and hardware accumulators do).
    """

    SATURATE = "saturate"
    WRAP = "wrap"

    @classmethod
    def parse(cls, value) -> FixedOverflow:
        """Return the member for ``value`` (a member, ``Overflow.SAT_FINITE`` or a name)."""
        if value is Overflow.SAT_FINITE:
            return cls.SATURATE
        if isinstance(value, Overflow):
            raise ValueError(
                f"fixed point has no inf or NaN, so overflow={value.value!r} does not apply; "
                "use overflow='saturate' (clamp) or 'wrap' (modulo 2**bits)"
            )
        try:
            return _parse_enum(cls, value, "overflow", {"sat": "saturate", "clamp": "saturate"})
        except ValueError:
            try:
                other = Overflow.parse(value)  # a float policy name, e.g. 'sat_none'
            except ValueError:
                other = None
            if other is None:
                raise
            return cls.parse(other)

_MAX_BITS = 64
_MAX_ABS_COUNT = 1100  # beyond this no float64 value is representable anyway


@dataclasses.dataclass(frozen=True)
class FixedFormat:
    """A binary fixed-point format (integers when ``frac_bits == 0``).

    Args:
      int_bits: integer bits, not counting the sign bit (may be negative).
      frac_bits: fraction bits (may be negative).
      signed: two's complement (True) or unsigned (False).
      overflow: a :class:`FixedOverflow` member or name: ``"saturate"``
        (clamp to the range) or ``"wrap"`` (the integer code modulo
        ``2**bits``).
      name: display name of a preset; not part of equality or hashing.

    Raises:
      TypeError: non-integer counts or a non-bool ``signed``.
      ValueError: a total width outside 1..64 bits, or another overflow
        policy.

    Examples:
      >>> import numfmt
      >>> f = numfmt.FixedFormat(3, 4)
      >>> str(f), f.bits, float(f.max_value), float(f.min_value), float(f.resolution)
      ('q3.4', 8, 7.9375, -8.0, 0.0625)
      >>> numfmt.int4 == numfmt.FixedFormat(3, 0)
      True
    """

    int_bits: int
    frac_bits: int
    signed: bool = True
    overflow: FixedOverflow = FixedOverflow.SATURATE
    name: str | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self):
        for arg in ("int_bits", "frac_bits"):
            value = getattr(self, arg)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{arg} must be an int, got {value!r}")
            if abs(value) > _MAX_ABS_COUNT:
                raise ValueError(f"{arg}={value} is out of range; |{arg}| must be <= {_MAX_ABS_COUNT}")
        if not isinstance(self.signed, bool):
            raise TypeError(f"signed must be True or False, got {self.signed!r}")
        object.__setattr__(self, "overflow", FixedOverflow.parse(self.overflow))
        if not 1 <= self.bits <= _MAX_BITS:
            raise ValueError(
                f"fixed point with int_bits={self.int_bits}, frac_bits={self.frac_bits}, signed={self.signed} "
                f"has {self.bits} bits; the total (sign + int_bits + frac_bits) must be 1..{_MAX_BITS}"
            )

    # ----------------------------------------------------------------- facts
    @property
    def bits(self) -> int:
        """Width of a code: ``int(signed) + int_bits + frac_bits``."""
        return int(self.signed) + self.int_bits + self.frac_bits

    @property
    def magnitude_bits(self) -> int:
        """Bits of the largest positive code, ``bits - int(signed)``."""
        return self.bits - int(self.signed)

    @property
    def resolution(self) -> Fraction:
        """The quantum ``2**-frac_bits`` (exact); also the gap at every value."""
        return Fraction(2) ** -self.frac_bits

    eps = resolution

    @property
    def max_value(self) -> Fraction:
        """Largest value, ``(2**magnitude_bits - 1) * 2**-frac_bits``."""
        return (2**self.magnitude_bits - 1) * self.resolution

    @property
    def min_value(self) -> Fraction:
        """Smallest value: ``-2**magnitude_bits * 2**-frac_bits``, or 0 if unsigned."""
        return -(2**self.magnitude_bits) * self.resolution if self.signed else Fraction(0)

    @property
    def num_finite(self) -> int:
        """Number of values, ``2**bits``."""
        return 2**self.bits

    def code_to_value(self, code: int) -> Fraction:
        """Exact value of one code (two's complement if signed)."""
        if not 0 <= code < 1 << self.bits:
            raise ValueError(f"code={code} is out of range for {self} (0 <= code < 2**{self.bits})")
        if self.signed and code >> (self.bits - 1):
            code -= 1 << self.bits
        return code * self.resolution

    @property
    def dtype(self):
        """The NumPy or ml_dtypes integer dtype with this format's values and codes, or None.

        Integers (``frac_bits == 0``) of 1, 2, 4, 8, 16, 32 or 64 bits have one
        (``int1``/``uint1`` need ml_dtypes >= 0.6). The overflow policy is not
        compared: a dtype has none. ``numfmt.parse`` converts the other way.

        Examples:
          >>> import numfmt
          >>> numfmt.parse("int8").dtype, numfmt.parse("q3.4").dtype
          (dtype('int8'), None)
        """
        name = f"{'' if self.signed else 'u'}int{self.bits}"
        if self.frac_bits != 0 or name not in PRESETS:
            return None
        return named_dtype(name)

    parse_overflow = FixedOverflow.parse  # used by numfmt.chop for its overflow argument

    # --------------------------------------------------------------- strings
    def __str__(self) -> str:
        return self.name if self.name is not None else self.spec

    @property
    def spec(self) -> str:
        """The grammar form: ``q{I}.{F}``, ``uq{I}.{F}`` or ``fixed(...)``."""
        if self.overflow is FixedOverflow.SATURATE:
            return f"{'' if self.signed else 'u'}q{self.int_bits}.{self.frac_bits}"
        signed = "true" if self.signed else "false"
        return f"fixed(i={self.int_bits},f={self.frac_bits},signed={signed},overflow=wrap)"


_Q = re.compile(r"(u?)q(-?\d+)\.(-?\d+)")
_EXPLICIT = re.compile(r"fixed\((.*)\)")
_OVERFLOW_WORDS = {"saturate": FixedOverflow.SATURATE, "wrap": FixedOverflow.WRAP}


def _parse(key: str):
    if key in PRESETS:
        return PRESETS[key]
    m = _Q.fullmatch(key)
    if m:
        return FixedFormat(int(m[2]), int(m[3]), signed=not m[1])
    m = _EXPLICIT.fullmatch(key)
    if m is None:
        return None
    args: dict = {}
    for item in filter(None, m[1].split(",")):
        k, _, v = item.partition("=")
        if k in args:
            raise ValueError(f"in format {key!r}: key {k!r} is given twice")
        if k in ("i", "f") and re.fullmatch(r"-?\d+", v):
            args[k] = int(v)
        elif k == "signed" and v in ("true", "false"):
            args[k] = v == "true"
        elif k == "overflow" and v in _OVERFLOW_WORDS:
            args[k] = _OVERFLOW_WORDS[v]
        else:
            raise ValueError(
                f"in format {key!r}: {item!r} is not valid; keys are i and f (integers, required), "
                "signed (true/false) and overflow (saturate/wrap)"
            )
    if "i" not in args or "f" not in args:
        raise ValueError(f"in format {key!r}: i and f are required, as in 'fixed(i=3,f=4)'")
    return FixedFormat(args["i"], args["f"], args.get("signed", True), args.get("overflow", FixedOverflow.SATURATE))


PRESETS = {}
for _bits in (1, 2, 4, 8, 16, 32, 64):
    PRESETS[f"int{_bits}"] = FixedFormat(_bits - 1, 0, True, name=f"int{_bits}")
    PRESETS[f"uint{_bits}"] = FixedFormat(_bits, 0, False, name=f"uint{_bits}")
_FORMS = "'q{I}.{F}', 'uq{I}.{F}', 'fixed(i=I,f=F[,signed=...,overflow=...])', 'int8', 'uint4'"
register_family(FixedFormat, _parse, PRESETS, _FORMS, family="fixed")
