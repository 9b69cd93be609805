"""Exact rounding decisions of each mode on integers: the rule the scalar references share."""

from __future__ import annotations

from numfmt.core.rounding import Rounding

__all__: list[str] = []  # _decide and _stochastic_up, for the posit and fixed-point references


def _stochastic_up(rounding: Rounding, floor_n: int, exact_n: bool, half_info, r: int, nbits: int) -> bool:
    one = 1 << nbits
    if rounding in (Rounding.STOCHASTIC, Rounding.STOCHASTIC_A):
        return floor_n + r >= one
    floor_n1, exact_n1 = half_info
    if rounding is Rounding.STOCHASTIC_B:
        return floor_n1 + 2 * r + 1 >= 2 * one
    # C: v * 2**N rounded to nearest even
    frac_half = floor_n1 & 1
    rne = floor_n + (1 if frac_half and (not exact_n1 or floor_n & 1) else 0)
    return rne + r >= one


def _decide(rounding, inexact, neg, lo_odd, above_half, at_half, sr):
    """Round up (away from zero) by the deterministic modes, or via ``sr()``."""
    if not inexact:
        return False
    if rounding is Rounding.NEAREST_EVEN:
        return above_half or (at_half and lo_odd)
    if rounding is Rounding.NEAREST_AWAY:
        return above_half or at_half
    if rounding is Rounding.TOWARD_ZERO:
        return False
    if rounding is Rounding.TOWARD_POSITIVE:
        return not neg
    if rounding is Rounding.TOWARD_NEGATIVE:
        return neg
    if rounding is Rounding.TO_ODD:
        return not lo_odd
    return sr()
