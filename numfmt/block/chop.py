"""``chop`` for block formats: one implementation over the array namespace.

Per block (``block_size`` elements along ``fmt.axis``; a trailing partial
block is quantized as if zero-padded, which leaves its amax unchanged):

1. ``amax``: the largest finite magnitude, as a bit pattern (exact).
2. The scale: for power-of-two scales ``X = 2**e`` with ``e`` from the
   :class:`ScaleRule`, clamped to the scale format's range (a zero block gets
   the smallest scale); for other scale formats see :mod:`numfmt.block.nvfp4`.
3. Elements: ``round(x / X)`` into the element format, saturating at its max,
   computed exactly on float64 bit patterns, or on float32 ones for float32
   and narrower input where that is exact (see :mod:`numfmt.block.scale_bits`),
   then ``X * element`` in the input's dtype.

A NaN anywhere in a block makes the whole block NaN; an infinity does too
(:class:`InfPolicy` ``NAN``) or saturates (``SATURATE``).

Results the input dtype cannot hold raise ``ValueError`` (NumPy and eager
JAX). Two cases exist: bits lost below the dtype's precision or range (a
wide element or scale range for a narrow dtype; refused at trace time under
``jax.jit`` when possible), and products above the dtype's max, possible
only within a factor 2 of it (MXINT8's -2, rules other than FLOOR,
``inf=saturate``): under ``jax.jit`` those are +-inf, the IEEE rounding of
the product, as the check cannot run there.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from fractions import Fraction
from typing import Any

import numpy as np

from numfmt.block import native
from numfmt.block.chunks import drawer, in_chunks, rows, unrows
from numfmt.block.direct import direct_ok, direct_round
from numfmt.block.format import BlockFormat, InfPolicy, ScaleRule
from numfmt.block.int_element import IntElement
from numfmt.block.runner import _rbits, namespaces
from numfmt.block.scale_bits import (
    F32_WORK,
    F64_WORK,
    SENTINEL_FLOOR,
    SENTINEL_FLOOR32,
    from_f64,
    layout,
    to_f64,
    unpack,
)
from numfmt.core import xp as _xp
from numfmt.core.chop import (
    _check_random_bits,
    plan_for,
    register_chop,
    resolve_key,
    straight_through,
)
from numfmt.core.random import _check_key
from numfmt.core.rounding import Overflow, Rounding
from numfmt.float.format import FloatFormat

__all__ = ["BlockPlan", "block_chop", "block_plan", "blocked", "chop_blocks", "quantize", "unblocked"]


def elem_precision(elem) -> int | None:
    """Significant bits of the element grid in the binade of its max (None: unknown)."""
    if isinstance(elem, FloatFormat):
        return elem.man_bits + 1
    if isinstance(elem, IntElement):
        return elem.max_int.bit_length()
    return None


@dataclasses.dataclass(frozen=True)
class BlockPlan:
    """Static facts of one (block format, input dtype, rounding)."""

    fmt: BlockFormat
    dtype: np.dtype
    rounding: Rounding
    random_bits: int
    elem_plan: Any  # the element format's plan (see numfmt.core.chop.plan_for)
    e_lo: int  # scale exponent range
    e_hi: int
    threshold: int | None  # significand-fraction threshold of the rule (None: FLOOR)
    strict: bool  # delta = F > threshold (True) or F >= threshold
    maybe_unrep: bool  # some result may not fit the dtype
    maybe_lost: bool  # ... because bits below its precision or range would be lost
    work: tuple = F64_WORK  # layout of the work patterns (numfmt.block.scale_bits)
    direct: bool = False  # chop by numfmt.block.direct

    @property
    def is_stochastic(self) -> bool:
        return self.rounding.is_stochastic


@functools.lru_cache(maxsize=256)
def block_plan(fmt: BlockFormat, dtype: np.dtype, rounding: Rounding, random_bits: int) -> BlockPlan:
    e_bits, m_bits, width, bias = layout(dtype)
    elem = fmt.elem
    emax = fmt.elem_emax
    big_m = Fraction(elem.max_value) / Fraction(2) ** emax
    q_min = Fraction(elem.smallest_subnormal)
    if dtype == np.float64 and q_min < SENTINEL_FLOOR:
        raise ValueError(f"{fmt}: element values below 2**-900 are not supported (element {elem})")
    elem_plan = plan_for(elem, np.float64, rounding, Overflow.SAT_FINITE, random_bits)
    threshold, strict = None, True
    r = fmt.rule
    if r is ScaleRule.CEIL:
        threshold = math.floor((big_m - 1) * 2**m_bits)
    elif r is ScaleRule.RCEIL:
        threshold = math.floor((big_m * (1 + Fraction(1, 2**24)) - 1) * 2**m_bits)
    elif r is ScaleRule.EVEN:
        p = elem_precision(elem)
        if p is None:
            raise ValueError(f"rule='even' needs the element's precision, which {elem} does not state; use 'floor'")
        threshold, strict = math.ceil((1 - Fraction(1, 2**p)) * 2**m_bits), False
    s = fmt.scale
    e_lo, e_hi = s.emin, s.emax
    # Can a result fall outside the dtype? Elements carry at most the element
    # precision, scales start at 2**e_lo, and the floor rule keeps
    # max_elem * X below 2 * 2**floor(log2(amax)).
    d_max = Fraction(2) ** bias * (2 - Fraction(1, 2**m_bits))
    d_tiny = Fraction(2) ** (2 - bias - m_bits - 1)
    p = elem_precision(elem)
    lost = p is None or p > m_bits + 1 or q_min * Fraction(2) ** e_lo < d_tiny
    e_top = min(e_hi, bias - emax + (0 if r is ScaleRule.FLOOR else 1))
    if fmt.inf is InfPolicy.SATURATE:
        e_top = e_hi
    biggest = max(Fraction(elem.max_value), -Fraction(getattr(elem, "min_value", -elem.max_value)))
    over = r is not ScaleRule.FLOOR or biggest * Fraction(2) ** e_top > d_max
    work = F64_WORK
    if width <= 32 and p is not None and p <= 24 and q_min >= SENTINEL_FLOOR32 and biggest <= 2**100:
        work = F32_WORK  # exact: see numfmt.block.scale_bits
        elem_plan = plan_for(elem, np.float32, rounding, Overflow.SAT_FINITE, random_bits)
    plan = BlockPlan(
        fmt, np.dtype(dtype), rounding, random_bits, elem_plan, e_lo, e_hi, threshold, strict, lost or over, lost, work
    )
    return dataclasses.replace(plan, direct=direct_ok(plan))


def check_axis(x, fmt) -> int:
    """``fmt.axis``, after checking that ``x`` has it."""
    if x.ndim == 0:
        raise ValueError(f"block formats need an array with at least one axis, got a scalar for {fmt}")
    if not -x.ndim <= fmt.axis < x.ndim:
        raise ValueError(f"axis={fmt.axis} is out of range for an array of shape {tuple(x.shape)}")
    return fmt.axis


def blocked(xm, x, fmt: BlockFormat):
    """``x`` with ``fmt.axis`` moved last, zero-padded and split: shape ``(..., nb, B)``."""
    y = xm.moveaxis(x, check_axis(x, fmt), -1)
    n, b = y.shape[-1], fmt.block_size
    pad = -n % b
    if pad:
        y = xm.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, pad)])
    return y.reshape(*y.shape[:-1], (n + pad) // b, b)


def unblocked(xm, y, fmt: BlockFormat, shape):
    """Inverse of :func:`blocked` (drops the padding)."""
    ax = fmt.axis % len(shape)
    n = shape[ax]
    y = y.reshape(*y.shape[:-2], y.shape[-2] * y.shape[-1])[..., :n]  # not -1: other axes may be 0
    return xm.moveaxis(y, -1, ax)


def scale_exponent(xp, plan: BlockPlan, amax):
    """Per-block ``e`` (signed, work width) of ``X = 2**e`` from amax patterns (unsigned, work width, finite)."""
    e_bits, m_bits, width, _ = layout(plan.dtype)
    ww = plan.work[2]
    I, U = xp.int(ww), xp.uint(ww)
    _, _, sig, t, e_x = unpack(xp, amax, e_bits, m_bits, width)
    e = e_x - plan.fmt.elem_emax
    if plan.threshold is not None:
        sh = xp.astype(xp.minimum(xp.maximum(m_bits - t, xp.asarray(0, I)), xp.asarray(ww - 1, I)), U)
        frac = (sig << sh) & xp.asarray((1 << m_bits) - 1, U)
        th = xp.asarray(min(plan.threshold, 2**ww - 1), U)
        delta = frac > th if plan.strict else frac >= th
        e = e + xp.astype(delta, I)
    e = xp.minimum(xp.maximum(e, xp.asarray(plan.e_lo, I)), xp.asarray(plan.e_hi, I))
    return xp.where(amax == xp.asarray(0, U), xp.asarray(plan.e_lo, I), e)


def _scales(xp, plan: BlockPlan, xb):
    """Per-element parts and per-block scales of blocked input ``xb``:
    ``((u, a, neg, sig, t, e_x), is_inf, e, bad)``, integers of the work width."""
    e_bits, m_bits, width, _ = layout(plan.dtype)
    ww = plan.work[2]
    U, I = xp.uint(ww), xp.int(ww)
    u = xp.astype(xp.bitcast(xb, xp.uint(width)), U)
    a, neg, sig, t, e_x = unpack(xp, u, e_bits, m_bits, width)
    inf_bits = xp.asarray(((1 << e_bits) - 1) << m_bits, U)
    is_inf = a == inf_bits
    if plan.fmt.inf is InfPolicy.NAN:  # one reduction: a NaN/inf block's scale is never used
        amax = xp.max(a, axis=-1, keepdims=True)
        bad = amax >= inf_bits
        e = scale_exponent(xp, plan, xp.where(bad, xp.asarray(0, U), amax))
    else:
        bad = xp.any(a > inf_bits, axis=-1, keepdims=True)
        has_inf = xp.any(is_inf, axis=-1, keepdims=True)
        amax = xp.max(xp.where(a < inf_bits, a, xp.asarray(0, U)), axis=-1, keepdims=True)
        e = xp.where(has_inf, xp.asarray(plan.e_hi, I), scale_exponent(xp, plan, amax))
    return (u, a, neg, sig, t, e_x), is_inf, e, bad


def quantize(xp, plan: BlockPlan, xb, rbits):
    """Quantize blocked input ``xb`` (shape ``(..., B)``).

    Returns ``(out, unrep, e, q, bad)``: results in ``xb``'s dtype, the mask of
    results the dtype cannot hold, per-block scale exponents (int64, shape
    ``(..., 1)``), element values as patterns of the work layout (float64 or
    float32, see :attr:`BlockPlan.work`), and the mask of NaN blocks (shape
    ``(..., 1)``).
    """
    e_bits, m_bits, width, _ = layout(plan.dtype)
    work = plan.work
    we, wm, ww = work
    U = xp.uint(ww)
    if rbits is not None and ww == 32:  # the same top bits as float64 work uses
        rbits = xp.astype(rbits >> xp.asarray(32, rbits.dtype), U)
    (u, a, neg, sig, t, e_x), is_inf, e, bad = _scales(xp, plan, xb)
    y = to_f64(xp, neg, sig, t, e_x, -e, work)
    w_inf = xp.asarray(((1 << we) - 1) << wm, U) | xp.where(neg, xp.asarray(1 << (ww - 1), U), xp.asarray(0, U))
    y = xp.where(is_inf, w_inf, y)
    q, _ = plan.elem_plan.round_bits(xp, y, rbits)
    q = xp.where(bad, xp.asarray(0, U), q)
    out, unrep = from_f64(xp, q, e, e_bits, m_bits, width, work)
    nan = ((1 << e_bits) - 1) << m_bits | 1 << (m_bits - 1)
    out = xp.where(bad, xp.asarray(nan, U), out)
    unrep = unrep & ~bad
    out = xp.bitcast(xp.astype(out, xp.uint(width)), plan.dtype)
    return out, unrep, xp.astype(e, xp.int(64)), q, bad


def chop_blocks(xp, plan: BlockPlan, xb, rbits):
    """``(results in xb's dtype, mask of results the dtype cannot hold)``: by
    :func:`numfmt.block.direct.direct_round` where it applies, else by :func:`quantize`."""
    if not plan.direct:
        return quantize(xp, plan, xb, rbits)[:2]
    parts, _, e, bad = _scales(xp, plan, xb)
    out, over = direct_round(xp, plan, parts, e, bad)
    width = layout(plan.dtype)[2]
    return xp.bitcast(xp.astype(out, xp.uint(width)), plan.dtype), over


def _raise_unrep(fmt, dtype, count):
    raise ValueError(
        f"chop to {fmt} gives {count} results that {np.dtype(dtype).name} cannot hold exactly "
        "(scaled beyond its range or precision); pass float64 input"
    )


def prepare(x, fmt: BlockFormat, rounding, key, random_bits):
    """Common argument checks: ``(xp, xm, x, plan)``."""
    rounding = Rounding.parse(rounding)
    xp, xm, x, dtype = namespaces(x)
    plan = block_plan(fmt, dtype, rounding, _check_random_bits(rounding, random_bits, dtype))
    _check_key(key, plan)
    return xp, xm, x, plan


@dataclasses.dataclass(frozen=True)
class Variant:
    """Kernels of block formats that the power-of-two driver does not serve."""

    test: Any  # test(fmt) -> bool: does this variant serve the block format fmt?
    chop: Any  # as block_chop, without overflow
    encode: Any  # as numfmt.block.codes.block_encode, without overflow
    decode: Any  # decode(parts, fmt, dtype): parts are the code arrays, split
    parts: int  # how many code arrays a code tuple holds


# Table elements (numfmt.block.nf4) and non-power-of-two scales
# (numfmt.block.nvfp4) register here; the first variant whose test holds wins.
_VARIANTS: list[Variant] = []


def register_variant(variant: Variant) -> None:
    """Route block formats for which ``variant.test(fmt)`` holds to its kernels."""
    _VARIANTS.append(variant)


def variant(fmt: BlockFormat) -> Variant | None:
    """The registered variant serving ``fmt``, or None for the power-of-two driver."""
    return next((v for v in _VARIANTS if v.test(fmt)), None)


def block_chop(x, fmt: BlockFormat, rounding="nearest_even", *, overflow=None, key=None, random_bits=None, out=None):
    """``numfmt.chop`` for block formats (registered with ``register_chop``).

    ``out``: None, or a NumPy array of ``x``'s shape and dtype (checked by the
    caller) that the compiled kernel writes straight into where its rows are a
    C-contiguous view apart from ``x`` and no result can fail; then ``out`` is
    returned, else a new array.
    """
    if overflow is not None:
        raise ValueError(
            f"overflow={overflow!r}: block format elements always saturate at the element max "
            "(OCP MX); leave overflow=None"
        )
    found = variant(fmt)
    if found is not None:  # NF4 tables, NVFP4
        return found.chop(x, fmt, rounding, key=key, random_bits=random_bits)
    xp, xm, x, plan = prepare(x, fmt, rounding, key, random_bits)
    key = resolve_key(key, plan, xp is not _xp.NUMPY)
    if xp is _xp.NUMPY:
        axis = check_axis(x, fmt)
        m, shape = rows(x, axis)
        # out= written directly only where no result can fail (else out stays as it was on the error)
        direct = out is not None and out.dtype == plan.dtype and not plan.maybe_unrep
        dst = _rows_of(out, axis, m) if direct else None
        done = native.chop_rows(plan, m, key, dst)  # the compiled kernel, where built and it takes the plan
        if done is None:
            done = in_chunks(lambda b, r: chop_blocks(xp, plan, b, r), m, fmt.block_size, drawer(key))
        result, count = done
        if count:
            _raise_unrep(fmt, plan.dtype, count)
        return out if dst is not None and result is dst else unrows(result, shape, fmt.axis)
    import jax

    rbits = _rbits(xp, key, blocked_shape(x.shape, fmt))
    if plan.maybe_unrep:
        if not isinstance(x, jax.core.Tracer):
            count = int(_jax_fn(plan, "count")(x, rbits))
            if count:
                _raise_unrep(fmt, plan.dtype, count)
        elif plan.maybe_lost:
            raise ValueError(
                f"chop of {plan.dtype.name} to {fmt} can give results {plan.dtype.name} cannot hold "
                "(scales or elements beyond its precision or range), which cannot be checked under "
                "tracing; pass float64 input"
            )
        # else: only products above the dtype's max are possible; under tracing they are +-inf.
    return _jax_fn(plan, "chop")(x, rbits)


def _rows_of(out, axis, m):
    """``out``'s rows as :func:`rows` lays out ``m``, where they are a C-contiguous view of ``out``
    sharing no memory with ``m`` (the kernel can write them directly), else None."""
    om, _ = rows(out, axis)
    if om.shape != m.shape or not om.flags.c_contiguous or not np.shares_memory(om, out):
        return None
    return None if np.may_share_memory(om, m) else om


def blocked_shape(shape, fmt: BlockFormat) -> tuple:
    """Shape of :func:`blocked`'s result."""
    if not shape or not -len(shape) <= fmt.axis < len(shape):
        return ()  # blocked() raises the error
    ax = fmt.axis % len(shape)
    rest = tuple(d for i, d in enumerate(shape) if i != ax)
    return (*rest, -(-shape[ax] // fmt.block_size), fmt.block_size)


@functools.cache
def _jax_fn(plan, what: str):
    """The jitted whole computation (eager calls then cost one dispatch)."""
    import jax
    import jax.numpy as jnp

    xp = _xp.jax_namespace()
    fmt = plan.fmt
    if what == "chop":
        st = _straight_through(plan)
        return jax.jit(lambda x, rbits: unblocked(jnp, st(blocked(jnp, x, fmt), rbits), fmt, x.shape))
    return jax.jit(lambda x, rbits: jnp.sum(chop_blocks(xp, plan, blocked(jnp, x, fmt), rbits)[1]))


@functools.cache
def _straight_through(plan):
    xp = _xp.jax_namespace()
    return straight_through(lambda xb, rbits: chop_blocks(xp, plan, xb, rbits)[0])


register_chop(BlockFormat, block_chop, takes_out=True)
