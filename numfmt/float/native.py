"""The compiled kernel of the float family (``numfmt.float._ckernel``), and its NumPy fallback.

``chop`` of a float format on a NumPy array runs the C kernel where it is built:
one pass over the data, the general kernel's arithmetic
(:func:`numfmt.float.kernel.round_bits`) on each element, the short sequence of
:mod:`numfmt.float.fast` where that applies, with the GIL released. Its results
are the NumPy path's bit for bit, stochastic modes included: a JAX key's words
are the counter hash of :mod:`numfmt.core.random` computed in C, and a NumPy
``Generator``'s words are drawn in Python as the NumPy path draws them.

Where the extension was not built (or fails to import), numfmt uses the NumPy
path and warns once per process (:class:`ExtensionWarning`); the environment
variable ``NUMFMT_DISABLE_EXTENSION=1`` selects the NumPy path silently. The
switch :func:`set_enabled` does the same in-process (tests compare both paths).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from numfmt.core.native import STATE, ExtensionWarning, Loader, pack_plan, set_enabled
from numfmt.core.rounding import Overflow, Rounding
from numfmt.float.fast import fast_plan
from numfmt.float.format import Subnormals
from numfmt.float.kernel import Plan, make_plan

__all__ = ["ExtensionWarning", "available", "run", "lane", "set_enabled"]

# The order of the C kernel's enums (numfmt/float/_ckernel.c).
_ROUNDINGS = (
    Rounding.NEAREST_EVEN,
    Rounding.NEAREST_AWAY,
    Rounding.TOWARD_ZERO,
    Rounding.TOWARD_POSITIVE,
    Rounding.TOWARD_NEGATIVE,
    Rounding.TO_ODD,
    Rounding.STOCHASTIC,
    Rounding.STOCHASTIC_A,
    Rounding.STOCHASTIC_B,
    Rounding.STOCHASTIC_C,
    Rounding.STOCHASTIC_EQUAL,
)
_DIRECTED = (
    Rounding.NEAREST_AWAY,
    Rounding.TOWARD_ZERO,
    Rounding.TOWARD_POSITIVE,
    Rounding.TOWARD_NEGATIVE,
    Rounding.TO_ODD,
)
_OVERFLOWS = (Overflow.SAT_NONE, Overflow.SAT_FINITE, Overflow.SAT_PROPAGATE)
_SUBNORMALS = (Subnormals.ON, Subnormals.FLUSH, Subnormals.ROUND_TO_NORMAL, Subnormals.NO_ZERO)
_FIELDS = 40


_ext: Any = None  # the extension module, once loaded
_state = STATE  # the switch shared with the other families' kernels (numfmt.core.native)


def available() -> bool:
    """True when chop uses the compiled kernel (built, importable, and not disabled)."""
    global _ext
    ok = _KERNEL.available()
    _ext = _KERNEL.ext
    return ok


@functools.lru_cache(maxsize=512)
def _packed(plan) -> bytes | None:
    """The plan's constants as the C kernel reads them (None: not a float plan)."""
    if not isinstance(plan, Plan):
        return None
    fmt = plan.fmt
    fp = fast_plan(plan)
    fast = 0 if fp is None else (1 if plan.rounding is Rounding.NEAREST_EVEN else 2)
    span: int = 0 if fp is None else int(fp.span)
    saturate: bool = fp is not None and fp.saturate
    if fp is None and plan.rounding in (*_DIRECTED, Rounding.STOCHASTIC_EQUAL) and plan.width == plan.container:
        # The directed modes take the short and widened sequences with the constants of
        # nearest even's; below the max (or with the clamp to it) no mode overflows. Toward
        # zero and to odd overflow to the max whatever the policy: they clamp too.
        dtype = np.dtype(f"float{plan.width}")
        fp = fast_plan(make_plan(fmt, dtype, Rounding.NEAREST_EVEN, plan.overflow, 0))
        if fp is not None:
            fast = 4 if plan.rounding is Rounding.STOCHASTIC_EQUAL else 3
            saturate = fp.saturate or plan.rounding in (Rounding.TOWARD_ZERO, Rounding.TO_ODD)
            top = plan.inf_bits if plan.inf_input_bits is None else plan.inf_bits - 1  # inf: rare unless max
            span = (top if saturate else int(plan.max_bits or 0)) - plan.min_bits  # max_bits: fp implies it

    def opt(v):
        return (0, 0) if v is None else (1, int(v))

    has_max, max_bits = opt(plan.max_bits)
    has_like, like = opt(plan.inf_like_bits)
    has_input, inf_input = opt(plan.inf_input_bits)
    f = [
        plan.width,
        plan.container,
        plan.in_man,
        plan.in_bias,
        fmt.man_bits,
        fmt.emin,
        fmt.signed,
        fmt.has_negative_zero,
        fmt.has_zero,
        _SUBNORMALS.index(fmt.subnormals),
        plan.need_clz,
        plan.qe_sub,
        plan.q_sub_bits,
        plan.min_bits,
        plan.threshold_bits,
        has_max,
        max_bits,
        plan.inf_bits,
        plan.nan_bits,
        has_like,
        like,
        has_input,
        inf_input,
        plan.carry_overflows,
        plan.max_beyond_input,
        plan.tiny_beyond_input,
        plan.can_be_unrepresentable,
        _ROUNDINGS.index(plan.rounding),
        _OVERFLOWS.index(plan.overflow),
        plan.random_bits,
        fast,
    ]
    if fp is None:
        f += [0] * 9
    else:
        magic = 0 if fp.magic_bits is None or fast != 1 else fp.magic_bits  # nearest even's subnormal range
        f += [saturate, fp.max_bits, fp.lo, span, fp.shift, fp.bias, fp.keep, fp.abs_mask, magic]
    return pack_plan(f, _FIELDS)


_KERNEL = Loader("numfmt.float._ckernel", _FIELDS, _packed)
run = _KERNEL.run
lane = _KERNEL.lane
