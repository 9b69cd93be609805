"""The values of a policy's items, checked: formats, rounding modes, sites and counts (chunk, promote).

Used by :mod:`numfmt.emulation.policy`; each check names the item, the bad
value and what it accepts.
"""

from __future__ import annotations

import difflib

from numfmt.core.chop import is_elementwise
from numfmt.core.names import parse as parse_format
from numfmt.core.rounding import Rounding
from numfmt.emulation.primitives import GROUPS, TABLE
from numfmt.float.format import FloatFormat

__all__ = ["count", "override_key", "policy_format", "policy_rounding", "site"]

_NEED_BITS = (Rounding.STOCHASTIC_A, Rounding.STOCHASTIC_B, Rounding.STOCHASTIC_C)
_POLICY_ROUNDINGS = [r for r in Rounding if r not in _NEED_BITS]
SITES = frozenset().union(*GROUPS.values())  # the primitives emulate rounds; prim.NAME overrides name one
_COUNTS = {"chunk": "terms summed exactly per accumulator rounding",
           "promote": "products per promotion into the float32 accumulator"}  # fmt: skip


def policy_rounding(value, argname: str) -> Rounding:
    rounding = Rounding.parse(value)
    if rounding not in _POLICY_ROUNDINGS:
        raise ValueError(
            f"{argname}={rounding.value!r} needs a random_bits count, which policies do not take; "
            "use 'stochastic' (exact probabilities) or 'stochastic_equal'"
        )
    return rounding


def policy_format(value, argname: str):
    """``value`` parsed as a format for policy item ``argname``, refused where it cannot work.

    Only ``matmul_in`` takes a block or scaled-integer format (its elements
    are quantized along the contraction); every other item names the format
    of elementwise results. A format without zero (float8_e8m0fnu) or without
    a sign would turn zeros or negative values into NaN at every site.
    """
    try:
        fmt = parse_format(value)
    except (ValueError, TypeError) as err:
        raise type(err)(f"policy {argname}: {err}") from None
    if argname != "matmul_in" and not is_elementwise(fmt):
        raise ValueError(
            f"policy {argname}={fmt}: {type(fmt).__name__} {fmt} is a block/scaled format, which only "
            "matmul_in= takes (its blocks run along the contraction); an accumulator, output, gradient or "
            "operation result is rounded element by element: use an elementwise format such as float32, "
            "bfloat16 or float8_e4m3fn here"
        )
    if isinstance(fmt, FloatFormat) and not (fmt.signed and fmt.has_zero):
        lost = "every zero" if not fmt.has_zero else "every negative value"
        raise ValueError(
            f"policy {argname}={fmt}: {fmt} has no {'zero' if not fmt.has_zero else 'sign'}, so rounding "
            f"results to it turns {lost} into NaN; use a signed format with zero (e.g. float8_e4m3fn, bfloat16)"
        )
    return fmt


def site(value, key: str):
    """``format``, ``"format@rounding"`` or ``(format, rounding)`` -> (format, rounding | None)."""
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ValueError(f"override {key}={value!r}: a tuple must be (format, rounding)")
        return policy_format(value[0], key), policy_rounding(value[1], key)
    if isinstance(value, str) and "@" in value:
        fmt, _, rounding = value.rpartition("@")
        return policy_format(fmt, key), policy_rounding(rounding, key)
    return policy_format(value, key), None


def count(value, key: str) -> int:
    """``value`` of item ``key`` (chunk, promote) as a positive int; digit strings are accepted."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{key}={value!r} must be a positive integer ({_COUNTS[key]})")
    return value


def override_key(key, keys) -> str:
    """``key`` checked as an override key: a group or ``prim.NAME`` of a rounded primitive (``keys``: for hints)."""
    if not isinstance(key, str):
        raise TypeError(f"override keys are strings, got {key!r}")
    key = key.strip().lower()
    if key in GROUPS:
        return key
    if key.startswith("prim.") and len(key) > 5:
        _check_primitive(key[5:], key)
        return key
    close = difflib.get_close_matches(key, [*GROUPS, *keys], n=2)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(
        f"unknown policy key {key!r}; valid keys are {', '.join(keys)}, the groups "
        f"{', '.join(GROUPS)}, or 'prim.NAME' for one primitive (e.g. prim.exp).{hint}"
    )


def _check_primitive(name: str, key: str) -> None:
    """Refuse ``prim.NAME`` unless NAME is a primitive emulate rounds (a misspelt key would do nothing)."""
    if name in SITES:
        return
    import jax.extend.core as jcore  # noqa: PLC0415  # jax only when a prim. key is checked
    import jax.extend.core.primitives as jprims  # noqa: PLC0415

    known = set(TABLE) | {p.name for p in vars(jprims).values() if isinstance(p, jcore.Primitive)}
    sites = ", ".join(sorted(SITES))
    if name in known:
        raise ValueError(
            f"policy key {key!r}: {name!r} is not a rounding site of numfmt.emulate (its kind is "
            f"{TABLE.get(name, 'unclassified')!r}: it computes exactly on rounded inputs, moves data, is "
            "integer/bit-level or control flow, or is not supported), so an override would do nothing; "
            f"prim.NAME takes one of: {sites}"
        )
    close = difflib.get_close_matches(name, sorted(SITES | known), n=3)
    hint = f" Did you mean {', '.join(repr('prim.' + c) for c in close)}?" if close else ""
    raise ValueError(f"policy key {key!r}: {name!r} is not a JAX primitive name.{hint} prim.NAME takes one of: {sites}")
