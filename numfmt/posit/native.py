"""The compiled kernel of the posit family (``numfmt.posit._ckernel``), and its NumPy fallback.

``chop`` of a :class:`~numfmt.posit.format.PositFormat` on a NumPy array runs
the C kernel where it is built: one pass over the data, the arithmetic of
:func:`numfmt.posit.kernel.posit_codes` and ``posit_decode_bits`` on each
element, with the GIL released, every rounding mode, and float16, bfloat16,
float32 and float64 input. On float32 and float64 input (formats with
``n - 3 - es >= 0``) a vector loop rounds the input's pattern directly, the
bit string's dropped bits being the pattern's low bits. Its results are
the NumPy path's bit for bit, stochastic modes included (the counter hash of
:mod:`numfmt.core.random` computed in C, or a NumPy ``Generator``'s words drawn
in Python as the NumPy path draws them).

Loading, the fallback warning and the in-process switch are shared with the
other families' kernels (:mod:`numfmt.core.native`).
"""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np

from numfmt.core.native import Loader, pack_plan
from numfmt.float.native import _ROUNDINGS
from numfmt.posit.kernel import PositPlan

__all__ = ["available", "lane", "run"]

_FIELDS = 13


def _fast_patterns(plan: PositPlan) -> tuple[int, int] | None:
    """Patterns of (maxpos, minpos) for the C kernel's vector loop, or None where it does not apply.

    The loop takes float32/float64 input with ``n - 3 - es >= 0`` (binades
    with a whole exponent field) and a normal minpos.
    """
    fmt = plan.fmt
    if plan.width != plan.container or fmt.n - 3 - fmt.es < 0:
        return None
    if fmt.minpos < Fraction(2) ** (1 - plan.in_bias):
        return None
    dtype, U = np.dtype(f"float{plan.width}"), np.dtype(f"uint{plan.width}")
    # both are values of the input dtype (make_posit_plan checks)
    maxpos, minpos = (int(np.asarray(float(v), dtype).view(U)) for v in (fmt.maxpos, fmt.minpos))
    return maxpos, minpos


def fast_loop(plan: PositPlan) -> bool:
    """Does the plan take the C kernel's vector loop?"""
    return _fast_patterns(plan) is not None


@functools.lru_cache(maxsize=512)
def _packed(plan) -> bytes | None:
    """The plan's constants as the C kernel reads them (None: not a posit plan)."""
    if not isinstance(plan, PositPlan):
        return None
    fmt = plan.fmt
    patterns = _fast_patterns(plan)
    f = [
        plan.width,
        plan.container,
        plan.in_man,
        plan.in_bias,
        fmt.n,
        fmt.es,
        plan.need_clz,
        _ROUNDINGS.index(plan.rounding),
        plan.random_bits,
        plan.nan_bits,
        patterns is not None,
        *(patterns or (0, 0)),
    ]
    return pack_plan(f, _FIELDS)


_KERNEL = Loader("numfmt.posit._ckernel", _FIELDS, _packed)
available = _KERNEL.available
run = _KERNEL.run
lane = _KERNEL.lane
