"""The compiled kernel of the fixed-point family (``numfmt.fixed._ckernel``), and its NumPy fallback.

``chop`` of a :class:`~numfmt.fixed.format.FixedFormat` on a NumPy array runs
the C kernel where it is built: one pass over the data, the arithmetic of
:func:`numfmt.fixed.kernel.fixed_codes` and ``FixedPlan.round_bits`` on each
element, with the GIL released, every rounding mode and overflow policy, and
float16, bfloat16, float32 and float64 input. Its results are the NumPy path's
bit for bit, stochastic modes included (the counter hash of
:mod:`numfmt.core.random` computed in C, or a NumPy ``Generator``'s words drawn
in Python as the NumPy path draws them).

Loading, the fallback warning and the in-process switch are shared with the
float family's kernel (:mod:`numfmt.core.native`).
"""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np

from numfmt.core.native import Loader, pack_plan
from numfmt.core.rounding import Rounding
from numfmt.fixed.fast import fixed_fast_plan
from numfmt.fixed.format import FixedOverflow
from numfmt.fixed.kernel import FixedPlan, all_values_fit
from numfmt.float.native import _ROUNDINGS

__all__ = ["available", "lane", "run"]

_FIELDS = 22


@functools.lru_cache(maxsize=512)
def _packed(plan) -> bytes | None:
    """The plan's constants as the C kernel reads them (None: not a fixed-point plan)."""
    if not isinstance(plan, FixedPlan):
        return None
    fmt = plan.fmt
    f = [
        plan.width,
        plan.container,
        plan.in_man,
        plan.in_bias,
        fmt.frac_bits,
        fmt.magnitude_bits,
        fmt.bits,
        fmt.signed,
        plan.overflow is FixedOverflow.WRAP,
        plan.need_clz,
        plan.can_be_unrepresentable,
        _ROUNDINGS.index(plan.rounding),
        plan.random_bits,
        *_fast_constants(plan),
    ]
    return pack_plan(f, _FIELDS)


def _fast_constants(plan: FixedPlan) -> tuple:
    """(fast, max_value, -min_value, quantum, M) as input patterns, where the input dtype holds them all.

    fast: 0 (one element at a time), 1 (the integer sequence on patterns), 2
    (nearest even by two float additions of ``M = 3 * 2**(p-1) * q``, as in
    :mod:`numfmt.fixed.fast`: every clamped ``|x| <= 2**(p-1) * q``, and ``q``
    at least twice the smallest normal, so that subnormal inputs round to 0) or
    3 (nearest even under wrap: :mod:`numfmt.fixed.fast`'s wrap sequence, whose
    constants follow, with the same condition on ``q``); last, whether the
    integer sequence reduces wrapping codes itself (else they go one at a time).
    """
    if plan.width != plan.container or plan.width not in (32, 64):
        return (0,) * 9
    dtype = np.dtype(f"float{plan.width}")
    fmt, p = plan.fmt, plan.in_man
    if not all_values_fit(fmt, dtype):
        return (0,) * 9
    q = Fraction(2) ** -fmt.frac_bits
    values = (fmt.max_value, -fmt.min_value, q, 3 * Fraction(2) ** (p - 1) * q)
    with np.errstate(over="ignore"):
        floats = [dtype.type(float(v)) if v < 2**1023 else dtype.type(np.inf) for v in values]
    exact = [np.isfinite(f) and Fraction(float(f)) == v for f, v in zip(floats, values, strict=True)]
    if not all(exact[:3]):
        return (0,) * 9
    normal_q = q >= Fraction(2) ** (2 - plan.in_bias)
    short = plan.rounding is Rounding.NEAREST_EVEN and exact[3] and fmt.magnitude_bits <= p - 1 and normal_q
    U = np.dtype(f"uint{plan.width}")
    kind, wrap = 2 if short else 1, (0, 0, 0)
    fp = fixed_fast_plan(plan)
    if short and fp is not None and fp.wrap:
        kind, wrap = 3, (int(fp.lo.view(U)), int(fp.magic_w.view(U)), int(fp.limit))
    pats = (int(np.asarray(f).view(U)) if e else 0 for f, e in zip(floats, exact, strict=True))
    # wrapv: the integer sequences run unclamped and reduce the codes modulo 2**bits themselves
    wrapv = kind == 1 and plan.overflow is FixedOverflow.WRAP and normal_q and fmt.bits <= p + 1
    return (kind, *pats, *wrap, wrapv)


_KERNEL = Loader("numfmt.fixed._ckernel", _FIELDS, _packed)
available = _KERNEL.available
run = _KERNEL.run
lane = _KERNEL.lane
