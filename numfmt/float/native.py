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
import os
import struct
import warnings
from typing import Any

import numpy as np

from numfmt.core.random import generator_bits
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
_FIELDS = 39
# A NumPy Generator's words are drawn this many at a time (even: the NumPy path
# draws 32-bit words in pairs, so the stream does not depend on the chunking).
_DRAW = 1 << 16


class ExtensionWarning(RuntimeWarning):
    """numfmt's compiled kernel could not be imported; the NumPy path is used instead."""


_ext: Any = None  # the extension module, once loaded
_state = {"loaded": False, "warned": False, "enabled": True}


def _load():
    global _ext
    _state["loaded"] = True
    if os.environ.get("NUMFMT_DISABLE_EXTENSION", "") not in ("", "0"):
        return
    try:
        from numfmt.float import _ckernel
    except ImportError as err:
        _state["error"] = str(err)
        return
    if _ckernel.FIELDS == _FIELDS:
        _ext = _ckernel
    else:
        _state["error"] = f"it was built from another version of numfmt ({_ckernel.FIELDS} plan fields)"


def available() -> bool:
    """True when chop uses the compiled kernel (built, importable, and not disabled)."""
    if not _state["loaded"]:
        _load()
    if _ext is None and not _state["warned"] and "error" in _state:
        _state["warned"] = True
        warnings.warn(
            f"numfmt's compiled kernel is not available ({_state['error']}); chop uses the slower NumPy path. "
            "Build it with `pip install -e .` (or `python setup.py build_ext --inplace`), or set "
            "NUMFMT_DISABLE_EXTENSION=1 to use the NumPy path without this warning.",
            ExtensionWarning,
            stacklevel=4,
        )
    return _ext is not None and _state["enabled"]


def set_enabled(flag: bool) -> bool:
    """Use (True) or bypass (False) the compiled kernel in this process; returns the previous setting."""
    previous = _state["enabled"]
    _state["enabled"] = bool(flag)
    return previous


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
    if fp is None and plan.rounding in _DIRECTED and plan.width == plan.container:
        # The directed modes take the widened sequence with the constants of nearest
        # even's; below the max (or with the clamp to it) no mode overflows. Toward
        # zero and to odd overflow to the max whatever the policy: they clamp too.
        dtype = np.dtype(f"float{plan.width}")
        fp = fast_plan(make_plan(fmt, dtype, Rounding.NEAREST_EVEN, plan.overflow, 0))
        if fp is not None:
            fast = 3
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
        f += [0] * 8
    else:
        f += [saturate, fp.max_bits, fp.lo, span, fp.shift, fp.bias, fp.keep, fp.abs_mask]
    if len(f) != _FIELDS:
        raise AssertionError(f"the C kernel reads {_FIELDS} plan fields, got {len(f)}")
    return struct.pack(f"={_FIELDS}Q", *(int(v) & 0xFFFFFFFFFFFFFFFF for v in f))


_NO_SEED = (0, 0, 0, 0)


def run(flat: np.ndarray, dest: np.ndarray, plan, rng, seed) -> bool:
    """Round the 1-d contiguous ``flat`` into ``dest`` (same shape and dtype; may be ``flat``).

    ``rng``: None or a NumPy ``Generator``; ``seed``: the four words of a JAX key,
    or None. Returns False, having written nothing, where the compiled kernel
    does not take the plan; and False where a result is one the input dtype
    cannot hold (the caller's NumPy path raises; ``dest`` may then be partly
    written, so it must not be the input).
    """
    if not available():
        return False
    packed = _packed(plan)
    if packed is None:
        return False
    round_into = _ext.round_into
    src, dst = _raw(flat, plan.width), _raw(dest, plan.width)
    if seed is not None:
        key_words = tuple(int(w) for w in np.asarray(seed).reshape(-1))
        return round_into(packed, src, dst, 1, 0, key_words, None) == -1
    if rng is None:
        return round_into(packed, src, dst, 0, 0, _NO_SEED, None) == -1
    if plan.can_be_unrepresentable:  # a failure would leave the stream advanced: the NumPy path draws instead
        return False
    for start in range(0, flat.size, _DRAW):
        stop = min(start + _DRAW, flat.size)
        words = generator_bits(rng, stop - start, plan.container)
        if round_into(packed, src[start:stop], dst[start:stop], 2, 0, _NO_SEED, words) != -1:
            raise RuntimeError("numfmt's compiled kernel refused contiguous arrays (a bug: please report it)")
    return True


def _raw(a: np.ndarray, width: int) -> np.ndarray:
    return a.view(np.dtype(f"uint{width}"))


def lane(plan):
    """A function ``f(x, out) -> result or None`` for deterministic plans the kernel takes.

    It handles a C-contiguous ``x`` with ``out`` None (a fresh result) or a
    writable C-contiguous array of ``x``'s shape and dtype that is ``x`` or does
    not overlap it; anything else (and a result the dtype cannot hold) gives
    None: the caller takes the general path, which checks and raises.
    """
    packed = _packed(plan) if available() and not plan.is_stochastic else None
    if packed is None:
        return None
    round_into = _ext.round_into
    # float16/32/64 arrays export their buffers; bfloat16 (ml_dtypes) is viewed as uint16
    raw = plan.width == 16 and plan.in_exp == 8
    U = np.dtype(f"uint{plan.width}")
    alias_ok = not plan.can_be_unrepresentable

    def run_lane(x, out):
        if not _state["enabled"]:
            return None
        if out is None:
            dest = np.empty_like(x)
        elif (
            type(out) is np.ndarray
            and out.dtype == x.dtype
            and out.shape == x.shape
            and ((out is x and alias_ok) or not np.may_share_memory(out, x))
        ):
            dest = out
        else:
            return None
        # -1: done; -2: x or dest is not C-contiguous (or dest is read-only); >= 0: a result
        # x's dtype cannot hold: the general path checks and raises
        if raw:
            done = round_into(packed, x.view(U), dest.view(U), 0, 0, _NO_SEED, None)
        else:
            done = round_into(packed, x, dest, 0, 0, _NO_SEED, None)
        return dest if done == -1 else None

    return run_lane
