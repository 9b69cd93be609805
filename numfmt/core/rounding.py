"""Rounding modes and overflow policies.

Both are plain :class:`enum.Enum` classes. Strings are accepted at the public
API boundary only (``"nearest_even"``, ``"sat_finite"``, ...); the kernels see
members, never strings or bare integers.
"""

from __future__ import annotations

import difflib
import enum

__all__ = ["Overflow", "Rounding"]


class Rounding(enum.Enum):
    """How a value that is not representable is mapped to a representable one.

    Deterministic modes (IEEE 754-2019 names):

    * ``NEAREST_EVEN``: the nearest value; a tie goes to the value whose code is
      even (for formats with a fraction field: the even significand; for
      precision-1 formats such as P3109 ``binary8p1``: the even code).
    * ``NEAREST_AWAY``: the nearest value; a tie goes away from zero.
    * ``TOWARD_ZERO``: the value of largest magnitude not above ``|x|``.
    * ``TOWARD_POSITIVE``: the smallest value ``>= x``.
    * ``TOWARD_NEGATIVE``: the largest value ``<= x``.
    * ``TO_ODD``: toward zero, then, if inexact, the neighbour whose code is odd
      (von Neumann's jamming; makes a later rounding to fewer bits exact).

    Stochastic modes (need a key). Let ``v`` in ``[0, 1)`` be the distance from
    ``|x|`` to the neighbour below, in units of the gap between the two
    neighbours, and ``R`` uniform on ``[0, 2**N)`` (``N`` random bits):

    * ``STOCHASTIC``: rounds up with probability ``v``. It is variant A with
      ``N`` = 31 random bits (float16/bfloat16/float32 input) or 63 (float64
      input): exact, because every discarded fraction that can occur above the
      format's smallest subnormal has at most that many bits; deeper below it,
      the probability is ``floor(v * 2**N) / 2**N``.
    * ``STOCHASTIC_A``: up iff ``floor(v * 2**N) + R >= 2**N`` (P3109 variant A).
    * ``STOCHASTIC_B``: up iff ``floor(v * 2**(N+1)) + 2R + 1 >= 2**(N+1)``
      (P3109 variant B: ``v * 2**N`` rounded half up before the comparison).
    * ``STOCHASTIC_C``: up iff ``RNE(v * 2**N) + R >= 2**N`` (P3109 variant C).
    * ``STOCHASTIC_EQUAL``: an inexact value goes up or down with probability
      1/2 each, whatever its distance (chop's / CPFloat's mode 6).

    For A, B and C the number of random bits ``N`` is the ``random_bits``
    argument of :func:`numfmt.chop`.
    """

    NEAREST_EVEN = "nearest_even"
    NEAREST_AWAY = "nearest_away"
    TOWARD_ZERO = "toward_zero"
    TOWARD_POSITIVE = "toward_positive"
    TOWARD_NEGATIVE = "toward_negative"
    TO_ODD = "to_odd"
    STOCHASTIC = "stochastic"
    STOCHASTIC_A = "stochastic_a"
    STOCHASTIC_B = "stochastic_b"
    STOCHASTIC_C = "stochastic_c"
    STOCHASTIC_EQUAL = "stochastic_equal"

    @property
    def is_stochastic(self) -> bool:
        """True for the modes that draw random bits."""
        return self.value.startswith("stochastic")

    @classmethod
    def parse(cls, value: Rounding | str) -> Rounding:
        """Return the member for ``value`` (a member or its string name)."""
        return _parse_enum(cls, value, "rounding", _ROUNDING_ALIASES)


class Overflow(enum.Enum):
    """What happens to a value whose rounded magnitude exceeds the format's max.

    Rounding always happens first, with an unbounded exponent range; only a
    rounded magnitude above the largest finite value overflows (IEEE 754 and
    P3109 agree on this).

    * ``SAT_NONE``: IEEE 754 behaviour. Round-to-nearest and stochastic modes
      give infinity; ``TOWARD_ZERO`` and ``TO_ODD`` give the largest finite
      value; ``TOWARD_POSITIVE`` gives +inf for positive and -max for negative
      values, ``TOWARD_NEGATIVE`` the mirror image. In a format without
      infinities, "infinity" means NaN for ``fn``/``fnuz`` formats (what
      ml_dtypes and JAX do for float8_e4m3fn) and the largest finite value for
      formats without NaN or in P3109's finite domain. Infinite inputs stay
      infinite (or become that same substitute).
    * ``SAT_FINITE``: every overflow, infinite inputs included, gives the
      largest finite value of the same sign (P3109 SatFinite; torch's
      saturating float8 casts).
    * ``SAT_PROPAGATE``: finite overflow gives the largest finite value;
      infinite inputs stay infinite, or become NaN in a format without
      infinities (P3109 SatPropagate).
    """

    SAT_NONE = "sat_none"
    SAT_FINITE = "sat_finite"
    SAT_PROPAGATE = "sat_propagate"

    @classmethod
    def parse(cls, value: Overflow | str) -> Overflow:
        """Return the member for ``value`` (a member or its string name)."""
        return _parse_enum(cls, value, "overflow", _OVERFLOW_ALIASES)


_ROUNDING_ALIASES = {
    "rne": "nearest_even",
    "nearest": "nearest_even",
    "rna": "nearest_away",
    "rtz": "toward_zero",
    "up": "toward_positive",
    "down": "toward_negative",
    "rto": "to_odd",
    "sr": "stochastic",
}
_OVERFLOW_ALIASES = {
    "ieee": "sat_none",
    "none": "sat_none",
    "saturate": "sat_finite",
    "finite": "sat_finite",
    "propagate": "sat_propagate",
}


def _parse_enum(cls, value, argname, aliases):
    if isinstance(value, cls):
        return value
    if not isinstance(value, str):
        raise TypeError(
            f"{argname} must be a {cls.__name__} member or one of its names, "
            f"got {value!r} of type {type(value).__name__}"
        )
    key = value.strip().lower().replace("-", "_")
    key = aliases.get(key, key)
    for member in cls:
        if member.value == key:
            return member
    names = [m.value for m in cls]
    close = difflib.get_close_matches(key, names + list(aliases), n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(
        f"unknown {argname} {value!r}; valid names are {', '.join(names)} "
        f"(aliases: {', '.join(sorted(aliases))}).{hint}"
    )
