"""Posit formats ``posit<n, es>`` (2022 Posit Standard, and older es choices).

A posit code of ``n`` bits is read as two's complement. The code ``100...0``
is NaR ("not a real"), ``000...0`` is zero, and a positive code ``0 b`` holds
``useed**k * 2**e * (1 + f)`` with ``useed = 2**(2**es)``: after the sign bit
comes the regime (a run of ``r`` equal bits ended by the opposite bit or by
the end of the code: ``k = r - 1`` for a run of ones, ``k = -r`` for zeros),
then up to ``es`` exponent bits (missing low bits read as 0), then the
fraction bits ``f``. The standard fixes ``es = 2``; ``posit8_0`` and
``posit16_1`` (SoftPosit's ``posit8`` and ``posit16``) remain in use.

Grammar (parsed by :func:`numfmt.parse`): ``posit{n}_{es}``, e.g.
``posit16_1``, ``posit32_2``, or ``posit(n=12,es=2)``. ``str(fmt)`` is always
``posit{n}_{es}``.
"""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction

from numfmt.core.names import register_family
from numfmt.core.rounding import Overflow

__all__ = ["PositFormat"]

_MAX_ES = 16


@dataclasses.dataclass(frozen=True)
class PositFormat:
    """A posit format of ``n`` bits with ``es`` exponent bits.

    Args:
      n: total bits, 2 <= n <= 32.
      es: exponent bits, 0 <= es <= 16 (``chop`` and ``decode`` further need
        maxpos to fit the float dtype: es <= 5 for posit32 and float64).
      name: display name; not part of equality or hashing.

    Raises:
      TypeError: non-integer ``n`` or ``es``.
      ValueError: ``n`` or ``es`` out of range.

    Examples:
      >>> import numfmt
      >>> f = numfmt.PositFormat(16, 1)
      >>> f == numfmt.posit16_1, str(f), float(f.maxpos), float(f.eps)
      (True, 'posit16_1', 268435456.0, 0.000244140625)
    """

    n: int
    es: int
    name: str | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self):
        for arg in ("n", "es"):
            value = getattr(self, arg)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"posit {arg} must be an int, got {value!r}")
        if not 2 <= self.n <= 32:
            raise ValueError(f"posit n={self.n} is out of range; numfmt supports 2 <= n <= 32 bits")
        if not 0 <= self.es <= _MAX_ES:
            raise ValueError(
                f"posit es={self.es} is out of range; it must be 0..{_MAX_ES} (the 2022 standard uses es=2)"
            )

    # ----------------------------------------------------------------- facts
    @property
    def bits(self) -> int:
        """Width of a code in bits (``n``)."""
        return self.n

    @property
    def signed(self) -> bool:
        """Posits are signed (two's complement codes)."""
        return True

    @property
    def overflow(self) -> Overflow:
        """Posits saturate to +-maxpos (their only overflow rule)."""
        return Overflow.SAT_FINITE

    @property
    def useed(self) -> int:
        """``2**(2**es)``: the factor one regime step multiplies by."""
        return 2 ** (2**self.es)

    @property
    def max_scale(self) -> int:
        """``log2(maxpos) = (n - 2) * 2**es``."""
        return (self.n - 2) * 2**self.es

    @property
    def maxpos(self) -> Fraction:
        """Largest posit, ``useed**(n-2)`` (exact)."""
        return Fraction(2) ** self.max_scale

    @property
    def minpos(self) -> Fraction:
        """Smallest positive posit, ``useed**-(n-2)`` (exact)."""
        return Fraction(2) ** -self.max_scale

    max_value = maxpos

    @property
    def nar_code(self) -> int:
        """Code of NaR, ``2**(n-1)``."""
        return 1 << (self.n - 1)

    @property
    def eps(self) -> Fraction:
        """Gap between 1 and the next larger posit (exact)."""
        one = 1 << (self.n - 2)
        return Fraction(self.code_to_value(one + 1)) - 1

    @property
    def num_finite(self) -> int:
        """Number of real posits (every code but NaR; zero counted once)."""
        return 2**self.n - 1

    def fraction_bits(self, k: int) -> int:
        """Fraction bits of the posits with regime ``k`` (0 if none fit)."""
        run = k + 2 if k >= 0 else 1 - k
        return max(0, self.n - 1 - min(run, self.n - 1) - self.es)

    def code_to_value(self, code: int) -> Fraction | float:
        """Exact value of one code: a Fraction, or ``nan`` for NaR."""
        n = self.n
        if not 0 <= code < 1 << n:
            raise ValueError(f"code={code} is out of range for {self} (0 <= code < 2**{n})")
        if code == self.nar_code:
            return float("nan")
        if code == 0:
            return Fraction(0)
        negative = code >> (n - 1)
        mag = (-code) % (1 << n) if negative else code
        width = n - 1
        first = (mag >> (width - 1)) & 1
        run = 1
        while run < width and (mag >> (width - 1 - run)) & 1 == first:
            run += 1
        k = run - 1 if first else -run
        left = max(width - run - 1, 0)
        rest = mag & ((1 << left) - 1)
        if left >= self.es:
            exp, frac, fbits = rest >> (left - self.es), rest & ((1 << (left - self.es)) - 1), left - self.es
        else:
            exp, frac, fbits = rest << (self.es - left), 0, 0
        value = Fraction(2) ** (k * 2**self.es + exp) * (1 + Fraction(frac, 2**fbits))
        return -value if negative else value

    # --------------------------------------------------------------- strings
    def __str__(self) -> str:
        return f"posit{self.n}_{self.es}"

    @property
    def spec(self) -> str:
        """The grammar form, ``posit{n}_{es}``."""
        return str(self)


_SHORT = re.compile(r"posit(\d+)_(\d+)")
_EXPLICIT = re.compile(r"posit\((.*)\)")


def _parse(key: str):
    if key in PRESETS:
        return PRESETS[key]
    m = _SHORT.fullmatch(key)
    if m:
        return PositFormat(int(m[1]), int(m[2]))
    m = _EXPLICIT.fullmatch(key)
    if m is None:
        if re.fullmatch(r"posit\d+", key):
            raise ValueError(
                f"format {key!r} does not say es; write e.g. '{key}_2' (2022 standard) or "
                f"'{key}_0'/'{key}_1' (SoftPosit's posit8/posit16), or 'posit(n=N,es=E)'"
            )
        return None
    args = {}
    for item in filter(None, m[1].split(",")):
        k, _, v = item.partition("=")
        if k not in ("n", "es") or not re.fullmatch(r"-?\d+", v) or k in args:
            raise ValueError(
                f"in format {key!r}: {item!r} is not valid; write 'posit(n=N,es=E)' with integers N and E"
            )
        args[k] = int(v)
    if set(args) != {"n", "es"}:
        raise ValueError(f"in format {key!r}: both n and es are required, as in 'posit(n=12,es=2)'")
    return PositFormat(args["n"], args["es"])


PRESETS = {
    name: PositFormat(n, es, name=name)
    for name, n, es in [
        ("posit8_0", 8, 0),
        ("posit8_1", 8, 1),
        ("posit8_2", 8, 2),
        ("posit16_1", 16, 1),
        ("posit16_2", 16, 2),
        ("posit32_2", 32, 2),
    ]
}
register_family(PositFormat, _parse, PRESETS, "'posit{N}_{ES}', 'posit(n=N,es=E)'", family="posit")
