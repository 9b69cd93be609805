"""The scaled integer quantizer: one implementation over the array namespace.

Each quotient is rounded once from its exact value, on integer significands:

* the scale ``s = RN_scale(n / D)`` (``n = amax`` or ``hi - lo``, ``D = qmax``
  or ``qmax - qmin``): ``hi - lo`` is summed rounded to odd at 62 bits and
  divided to a 53-bit round-to-odd quotient, which decides every rounding to
  a scale format of at most 24 bits correctly; the scale saturates at the
  scale format's max, and a quotient below half its smallest value gives
  ``s = 0``;
* ``x / s`` as a 53-bit round-to-odd quotient, then rounded to an integer in
  the requested mode (stochastic modes: exact for ``random_bits <= 51 - bits``;
  more is refused); the zero point uses nearest-even for ``lo / s``;
* results ``RN_dtype((q - z) * s)``: the product is exact in float64 (at most
  17 x 24 bits) and rounded once to the input dtype (it can need more bits
  than float32 or bfloat16 hold).

PyTorch and torchao compute ``x / s`` (or ``x * (1 / s)``) and ``(hi - lo) /
D`` in float32, each operation rounded; their codes can differ from these
exact ones where a float32 rounding moves a quotient across a half-integer.

Specials: a NaN or infinity anywhere in a group makes the group NaN (scale
NaN, zero point 0, codes 0, results NaN). A group with ``s = 0`` (all zeros,
or too small for the scale format) has ``z = 0`` and zero codes. Zero results
are ``+0`` (integer codes have no ``-0``). Results the input dtype cannot hold
(above its max) raise ``ValueError`` in NumPy and eager JAX, and are ``+-inf``
under ``jax.jit``.
"""

from __future__ import annotations

import functools
import types

import numpy as np

from numfmt.block.chop import blocked, unblocked
from numfmt.block.int_element import IntElement
from numfmt.block.scale_bits import from_f64, layout, to_f64, unpack
from numfmt.core.chop import plan_for
from numfmt.core.rounding import Overflow, Rounding
from numfmt.float.format import FloatFormat
from numfmt.float.kernel import make_plan
from numfmt.scaled.format import ScaledIntFormat

__all__ = ["dequantize", "group_stats", "grouped", "quantize", "ungrouped"]


# ---- shapes: groups along the last axis -------------------------------------------------


def _proxy(fmt):
    return types.SimpleNamespace(axis=fmt.axis, block_size=fmt.group_size, __str__=lambda: str(fmt))


def _check_axis(fmt, shape):
    if fmt.granularity != "tensor":
        if len(shape) == 0:
            raise ValueError(f"{fmt} needs an array with at least one axis, got a scalar")
        if not -len(shape) <= fmt.axis < len(shape):
            raise ValueError(
                f"axis={fmt.axis} of {fmt} is out of range for an array of shape {tuple(shape)}; "
                f"use an axis in {-len(shape)}..{len(shape) - 1}"
            )


def grouped(xm, x, fmt):
    """``x`` as groups along the last axis: ``(1, n)``, ``(channels, n)`` or ``(..., nb, group_size)``."""
    if fmt.granularity == "tensor":
        return x.reshape(1, -1)
    if fmt.granularity == "channel":
        n = x.shape[fmt.axis]
        return xm.moveaxis(x, fmt.axis, 0).reshape(n, x.size // n if n else 0)  # not -1: x may be empty
    return blocked(xm, x, _proxy(fmt))


def ungrouped(xm, y, fmt, shape):
    """Inverse of :func:`grouped`."""
    if fmt.granularity == "tensor":
        return y.reshape(shape)
    if fmt.granularity == "channel":
        ax = fmt.axis % len(shape)
        moved = (shape[ax], *(d for i, d in enumerate(shape) if i != ax))
        return xm.moveaxis(y.reshape(moved), 0, ax)
    return unblocked(xm, y, _proxy(fmt), shape)


def scale_layout(xm, s, fmt, shape):
    """Per-group values (``(..., 1)``) in the documented layout: ``()``, ``(channels,)`` or
    ``shape`` with ``axis`` replaced by the number of groups."""
    if fmt.granularity == "tensor":
        return s.reshape(())
    if fmt.granularity == "channel":
        return s.reshape(-1)
    return xm.moveaxis(s[..., 0], -1, fmt.axis % len(shape))


def group_layout(xm, s, fmt):
    """Inverse of :func:`scale_layout` (``s`` broadcastable against :func:`grouped`)."""
    if fmt.granularity == "tensor":
        return s.reshape(1, 1)
    if fmt.granularity == "channel":
        return s.reshape(-1, 1)
    return xm.moveaxis(s, fmt.axis % s.ndim, -1)[..., None]


# ---- exact arithmetic on significands ---------------------------------------------------


def _div53(xp, num, den, nb: int, db: int):
    """``(Q, sh)``: ``Q * 2**-sh`` is ``num / den`` rounded to odd at 53 bits.

    ``num < 2**nb`` (nb <= 63), ``2**(db-1) <= den < 2**db`` (db <= 24); two
    steps of long division with a sticky bit.
    """
    U, I = xp.uint(64), xp.int(64)
    sh1 = 63 - nb
    n1 = num << xp.asarray(sh1, U)
    den = xp.where(den == xp.asarray(0, U), xp.asarray(1, U), den)  # callers discard x / 0
    q1 = n1 // den
    r1 = n1 - q1 * den
    sh2 = xp.minimum(xp.maximum(53 - xp.astype(xp.bit_length(q1), I), xp.asarray(0, I)), xp.asarray(63 - db, I))
    sh2u = xp.astype(sh2, U)
    n2 = r1 << sh2u
    q2 = n2 // den
    q = (q1 << sh2u) | q2
    q = q | xp.astype(n2 - q2 * den != xp.asarray(0, U), U)
    return q, sh2 + sh1


def _f64(xp, neg, q, k):
    """float64 patterns of ``+-q * 2**k`` (``q < 2**53`` integers, ``k`` int64)."""
    bits = xp.bitcast(xp.astype(q, np.dtype(np.float64)), xp.uint(64))
    _, _, sig, t, e_x = unpack(xp, bits, 11, 52, 64)
    return to_f64(xp, neg, sig, t, e_x, k)


def _sig(xp, a, dtype):
    """``(sigN, k)`` with ``|x| = sigN * 2**k``, ``sigN`` normalized to ``m_bits + 1`` bits."""
    e_bits, m_bits, width, _ = layout(dtype)
    _, _, sig, t, e_x = unpack(xp, a, e_bits, m_bits, width)
    I = xp.int(64)
    sh = xp.astype(xp.minimum(xp.maximum(m_bits - t, xp.asarray(0, I)), xp.asarray(63, I)), xp.uint(64))
    return sig << sh, e_x - m_bits


def _odd_sum(xp, a, b, dtype):
    """``(S, k)``: ``|a| + |b|`` (magnitude patterns) rounded to odd at 62 bits, ``S * 2**k``."""
    U, I = xp.uint(64), xp.int(64)
    p = layout(dtype)[1] + 1
    g = 62 - p
    big, small = xp.maximum(a, b), xp.minimum(a, b)
    bs, bk = _sig(xp, big, dtype)
    ss, sk = _sig(xp, small, dtype)
    d = xp.where(small == xp.asarray(0, U), xp.asarray(0, I), bk - sk)
    far = d > xp.asarray(62, I)
    du = xp.astype(xp.minimum(d, xp.asarray(62, I)), U)
    s_sh = ss << xp.asarray(g, U)
    part = xp.where(far, xp.asarray(0, U), s_sh >> du)
    lost = xp.where(far, s_sh != xp.asarray(0, U), (s_sh & ((xp.asarray(1, U) << du) - xp.asarray(1, U))) != 0)
    return ((bs << xp.asarray(g, U)) + part) | xp.astype(lost, U), bk - g


# ---- the quantizer ------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _plans(fmt: ScaledIntFormat, rounding: Rounding, random_bits: int):
    wide = IntElement(fmt.bits + 2, 0)
    elem = plan_for(wide, np.float64, rounding, Overflow.SAT_FINITE, random_bits)
    zero = plan_for(wide, np.float64, Rounding.NEAREST_EVEN, Overflow.SAT_FINITE, 0)
    scale = make_plan(fmt.scale, np.dtype(np.float64), Rounding.NEAREST_EVEN, Overflow.SAT_FINITE, 0)
    return elem, zero, scale


def _scale(xp, fmt, dtype, amax, lo):
    """float64 pattern of the scale: ``RN_scale(amax / D)`` or ``RN_scale((hi + |lo|) / D)``."""
    U = xp.uint(64)
    D = fmt.divisor
    if fmt.symmetric:
        num, k = _sig(xp, amax, dtype)
        nb = layout(dtype)[1] + 1
    else:
        num, k = _odd_sum(xp, amax, lo, dtype)
        nb = 63
    q, sh = _div53(xp, num, xp.asarray(D, U), nb, D.bit_length())
    s = _f64(xp, xp.asarray(False, bool), q, k - sh)
    s = _plans(fmt, Rounding.NEAREST_EVEN, 0)[2].round_bits(xp, s)[0]
    return xp.where((amax | lo) == xp.asarray(0, U), xp.asarray(0, U), s)


def _quotient(xp, neg, num, k, nb, s):
    """float64 patterns of ``+-num * 2**k / s`` (``s`` nonzero float64 scale patterns)."""
    U = xp.uint(64)
    _, _, s_sig, _, s_e = unpack(xp, s, 11, 52, 64)
    q, sh = _div53(xp, num, s_sig >> xp.asarray(29, U), nb, 24)
    return _f64(xp, neg, q, k - sh - (s_e - 23))


def _parts(xp, dtype, xb):
    """``(neg, fin, bad)``: signs, finite magnitude patterns (0 for NaN/inf), NaN/inf groups."""
    e_bits, m_bits, width, _ = layout(dtype)
    U = xp.uint(64)
    u = xp.astype(xp.bitcast(xb, xp.uint(width)), U)
    a = u & xp.asarray((1 << (width - 1)) - 1, U)
    neg = (u >> xp.asarray(width - 1, U)) != xp.asarray(0, U)
    inf_bits = xp.asarray(((1 << e_bits) - 1) << m_bits, U)
    bad = xp.any(a >= inf_bits, axis=-1, keepdims=True)
    return neg, xp.where(a < inf_bits, a, xp.asarray(0, U)), bad


def group_stats(xp, fmt, dtype, xb):
    """``(amax, lo, bad)`` of groups ``xb``: largest positive (symmetric: any) finite magnitude,
    largest negative one (symmetric: 0), NaN/inf groups. Each combines over pieces by maximum."""
    neg, fin, bad = _parts(xp, dtype, xb)
    zero_u = xp.asarray(0, xp.uint(64))
    if fmt.symmetric:
        return xp.max(fin, axis=-1, keepdims=True, initial=0), xp.where(bad, zero_u, zero_u), bad
    amax = xp.max(xp.where(neg, zero_u, fin), axis=-1, keepdims=True, initial=0)
    return amax, xp.max(xp.where(neg, fin, zero_u), axis=-1, keepdims=True, initial=0), bad


def quantize(xp, fmt, dtype, rounding, random_bits, xb, rbits, stats=None):
    """Groups ``xb`` (``(..., B)``) -> ``(out, unrep, s, z, q, bad)``.

    ``s``: scale patterns (float64, ``(..., 1)``); ``z``, ``q``: zero points and
    codes as float64 values; ``bad``: NaN groups. ``stats``: the groups'
    :func:`group_stats` when ``xb`` holds pieces of them (None: from ``xb``).
    """
    e_bits, m_bits, width, _ = layout(dtype)
    U, F = xp.uint(64), np.dtype(np.float64)
    elem_plan, zero_plan, _ = _plans(fmt, rounding, random_bits)
    neg, fin, bad = _parts(xp, dtype, xb)
    zero_u = xp.asarray(0, U)
    if stats is not None:
        amax, lo, bad = stats
    elif fmt.symmetric:
        amax, lo = xp.max(fin, axis=-1, keepdims=True, initial=0), zero_u  # initial: empty groups
    else:
        amax = xp.max(xp.where(neg, zero_u, fin), axis=-1, keepdims=True, initial=0)
        lo = xp.max(xp.where(neg, fin, zero_u), axis=-1, keepdims=True, initial=0)
    s = _scale(xp, fmt, dtype, amax, lo)
    s_zero = s == zero_u
    s_safe = xp.where(s_zero, xp.asarray(0x3FF0000000000000, U), s)
    nb = m_bits + 1
    x_sig, x_k = _sig(xp, fin, dtype)
    y = _quotient(xp, neg, x_sig, x_k, nb, s_safe)
    y = xp.where((fin == zero_u) | s_zero, zero_u, y)
    r = xp.bitcast(elem_plan.round_bits(xp, y, rbits)[0], F)
    qmin, qmax = xp.asarray(float(fmt.qmin), F), xp.asarray(float(fmt.qmax), F)
    if fmt.symmetric:
        z = xp.asarray(0.0, F)
    else:
        lo_sig, lo_k = _sig(xp, lo, dtype)
        ylo = _quotient(xp, xp.asarray(True, bool), lo_sig, lo_k, nb, s_safe)
        ylo = xp.where((lo == zero_u) | s_zero, zero_u, ylo)
        rlo = xp.bitcast(zero_plan.round_bits(xp, ylo)[0], F)
        z = xp.where(s_zero, xp.asarray(0.0, F), xp.minimum(xp.maximum(qmin - rlo, qmin), qmax))
    q = xp.minimum(xp.maximum(r + z, qmin), qmax)
    q = xp.where(bad, xp.asarray(0.0, F), q)
    z = xp.where(bad, xp.asarray(0.0, F), z)
    out, unrep = dequantize(xp, dtype, q - z, s)
    out = xp.where(bad, xp.asarray(np.nan, dtype), out)
    return out, unrep & ~bad, s, z, q, bad


def dequantize(xp, dtype, qz, s):
    """``RN_dtype((q - z) * s)`` (float64 values ``qz``, scale patterns ``s``): ``(values, overflow mask)``."""
    e_bits, m_bits, width, _ = layout(dtype)
    U = xp.uint(64)
    prod = xp.bitcast(qz * xp.bitcast(s, np.dtype(np.float64)), U)  # exact: <= 18 x 24 bits, >= 2**-149
    prod = xp.where(qz == 0, xp.asarray(0, U), prod)  # +0
    if width < 64:
        plan = make_plan(FloatFormat(e_bits, m_bits), np.dtype(np.float64), Rounding.NEAREST_EVEN, Overflow.SAT_NONE, 0)
        prod = plan.round_bits(xp, prod)[0]
    mag = prod & xp.asarray((1 << 63) - 1, U)
    over = mag == xp.asarray(0x7FF << 52, U)
    out, _ = from_f64(xp, xp.where(over, xp.asarray(0, U), prod), xp.asarray(0, xp.int(64)), e_bits, m_bits, width)
    inf = xp.asarray(((1 << e_bits) - 1) << m_bits, U)
    out = xp.where(over, out | inf, out)
    return xp.bitcast(xp.astype(out, xp.uint(width)), dtype), over
