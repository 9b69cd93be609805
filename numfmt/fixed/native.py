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
import struct

from numfmt.core.native import Loader
from numfmt.fixed.format import FixedOverflow
from numfmt.fixed.kernel import FixedPlan
from numfmt.float.native import _ROUNDINGS

__all__ = ["available", "lane", "run"]

_FIELDS = 13


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
    ]
    if len(f) != _FIELDS:
        raise AssertionError(f"the C kernel reads {_FIELDS} plan fields, got {len(f)}")
    return struct.pack(f"={_FIELDS}Q", *(int(v) & 0xFFFFFFFFFFFFFFFF for v in f))


_KERNEL = Loader("numfmt.fixed._ckernel", _FIELDS, _packed)
available = _KERNEL.available
run = _KERNEL.run
lane = _KERNEL.lane
