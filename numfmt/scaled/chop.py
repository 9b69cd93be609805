"""``chop``/``encode``/``decode`` of scaled integer formats (drivers of :mod:`numfmt.scaled.kernel`).

NumPy runs in chunks of groups; JAX runs one jitted function per static
configuration (straight-through gradient for ``chop``). Code layout: see
:class:`numfmt.ScaledIntFormat` and the docs' scaled-integer section.
"""

from __future__ import annotations

import functools

import numpy as np

from numfmt.block.chunks import drawer, in_chunks, rows, unrows
from numfmt.block.runner import _rbits, jax_chop, jax_functions, namespaces
from numfmt.block.scale_bits import as_f32, as_f64, require_x64
from numfmt.core import xp as _xp
from numfmt.core.chop import _check_dtype, _check_random_bits, register_chop, resolve_key
from numfmt.core.codes import register_codec
from numfmt.core.rounding import Rounding
from numfmt.scaled.format import ScaledIntFormat
from numfmt.scaled.kernel import (
    _check_axis,
    _plans,
    dequantize,
    group_layout,
    group_stats,
    grouped,
    quantize,
    scale_layout,
    ungrouped,
)

__all__ = ["scaled_chop", "scaled_decode", "scaled_encode"]


def _prepare(x, fmt, rounding, key, random_bits):
    """``(xp, xm, x, static, key)`` after the argument checks (a NumPy key as a Generator or JAX key)."""
    rounding = Rounding.parse(rounding)
    xp, xm, x, dtype = namespaces(x)
    _check_axis(fmt, x.shape)
    n = _check_random_bits(rounding, random_bits, dtype)
    if rounding.is_stochastic and n > 51 - fmt.bits:
        raise ValueError(
            f"{fmt}: stochastic rounding of x / s is exact here for at most {51 - fmt.bits} random bits, "
            f"and rounding={rounding.value!r} on {dtype.name} input uses {n}; pass "
            f"rounding='stochastic_a' with random_bits <= {51 - fmt.bits} (or float32 input)"
        )
    plan = _plans(fmt, rounding, n)[0]
    key = resolve_key(key, plan, xp is not _xp.NUMPY)
    return xp, xm, x, (fmt, dtype, rounding, n), key


def _grouped_shape(fmt, shape):
    if fmt.granularity == "tensor":
        return (1, int(np.prod(shape, dtype=np.int64)))
    if fmt.granularity == "channel":
        n = shape[fmt.axis]
        return (n, int(np.prod(shape, dtype=np.int64)) // n if n else 0)
    ax = fmt.axis % len(shape)
    rest = tuple(d for i, d in enumerate(shape) if i != ax)
    return (*rest, -(-shape[ax] // fmt.group_size), fmt.group_size)


def _raise(fmt, dtype, count):
    raise ValueError(
        f"chop to {fmt}: {count} results (q - z) * s overflow {dtype.name}; pass float32 or float64 input"
    )


def _run(xp, xm, static, x, rbits):
    fmt, dtype, rounding, n = static
    out, unrep, s, z, q, bad = quantize(xp, fmt, dtype, rounding, n, grouped(xm, x, fmt), rbits)
    return ungrouped(xm, out, fmt, x.shape), unrep, s, z, q, bad


def scaled_chop(x, fmt, rounding="nearest_even", *, overflow=None, key=None, random_bits=None):
    """``numfmt.chop`` for scaled integer formats (registered with ``register_chop``)."""
    if overflow is not None:
        raise ValueError(f"overflow={overflow!r}: {fmt} codes always saturate at [qmin, qmax]; leave overflow=None")
    xp, xm, x, static, key = _prepare(x, fmt, rounding, key, random_bits)
    if x.size == 0:
        return x
    fmt, dtype, rounding, n = static
    if xp is _xp.NUMPY:
        axis = None if fmt.granularity == "tensor" else fmt.axis
        front = fmt.granularity == "channel"
        m, shape = rows(x, axis, front)
        size = m.shape[1] if fmt.granularity != "group" else fmt.group_size
        out, count = in_chunks(
            lambda b, r, st=None: quantize(xp, fmt, dtype, rounding, n, b, r, st)[:2],
            m,
            size,
            drawer(key),
            lambda b: group_stats(xp, fmt, dtype, b),
        )
        if count:
            _raise(fmt, dtype, count)
        return unrows(out, shape, axis, front)
    rbits = _rbits(xp, key, _grouped_shape(fmt, x.shape))
    return jax_chop(_jax_fns(static), x, rbits, functools.partial(_raise, fmt, dtype))


@functools.cache
def _jax_fns(static):
    return jax_functions(_run, _encode, static)


def code_dtype(fmt) -> np.dtype:
    """int8/int16 codes for signed formats, uint8/uint16 for unsigned ones."""
    return np.dtype(f"{'' if fmt.signed else 'u'}int{8 if fmt.bits <= 8 else 16}")


def _encode(xp, xm, static, x, rbits):
    fmt = static[0]
    _, _, s, z, q, bad = _run(xp, xm, static, x, rbits)
    cd = code_dtype(fmt)
    codes = ungrouped(xm, xp.astype(q, cd), fmt, x.shape)
    s64 = xp.where(bad, xp.asarray(np.nan, np.dtype(np.float64)), xp.bitcast(s, np.dtype(np.float64)))
    scales = as_f32(xp, scale_layout(xm, s64, fmt, x.shape))
    if fmt.symmetric:
        return codes, scales
    return codes, scales, scale_layout(xm, xp.astype(z, cd), fmt, x.shape)


def scaled_encode(x, fmt, rounding="nearest_even", *, overflow=None, key=None, random_bits=None):
    """``numfmt.encode`` for scaled integer formats: ``(codes, scales[, zero_points])``."""
    if overflow is not None:
        raise ValueError(f"overflow={overflow!r}: {fmt} codes always saturate at [qmin, qmax]; leave overflow=None")
    xp, xm, x, static, key = _prepare(x, fmt, rounding, key, random_bits)
    rbits = _rbits(xp, key, _grouped_shape(fmt, x.shape))
    if xp is _xp.NUMPY:
        return _encode(xp, np, static, x, rbits)
    return _jax_fns(static)[2](x, rbits)


def scaled_decode(codes, fmt, dtype=None):
    """``numfmt.decode`` for scaled integer formats: ``RN_dtype((q - z) * s)``.

    ``codes``: ``(codes, scales)`` or ``(codes, scales, zero_points)`` as
    :func:`scaled_encode` gives them; NaN scales decode to NaN.
    """
    want = 2 if fmt.symmetric else 3
    if not isinstance(codes, tuple) or len(codes) != want:
        parts = "(codes, scales)" if fmt.symmetric else "(codes, scales, zero_points)"
        raise TypeError(f"decode of {fmt} takes the tuple {parts} that encode returns, got {type(codes).__name__}")
    q, s = codes[0], codes[1]
    dtype = _check_dtype(np.float32 if dtype is None else dtype)
    if _xp.is_jax_array(q):
        import jax.numpy as xm

        require_x64()
        xp = _xp.jax_namespace()
    else:
        xm, xp = np, _xp.NUMPY
        q, s = np.asarray(q), np.asarray(s)
    _check_axis(fmt, q.shape)
    F = np.dtype(np.float64)
    qg = xp.astype(grouped(xm, q, fmt), F)
    sg = as_f64(xp, group_layout(xm, xm.asarray(s), fmt))  # exact: XLA's cast flushes subnormals
    zg = xp.asarray(0.0, F) if fmt.symmetric else xp.astype(group_layout(xm, xm.asarray(codes[2]), fmt), F)
    bad = sg != sg
    s_bits = xp.bitcast(xp.where(bad, xp.asarray(0.0, F), sg), xp.uint(64))
    out, _ = dequantize(xp, dtype, xp.where(bad, xp.asarray(0.0, F), qg - zg), s_bits)
    out = xp.where(bad, xp.asarray(np.nan, dtype), out)
    return ungrouped(xm, out, fmt, q.shape)


register_chop(ScaledIntFormat, scaled_chop)
register_codec(ScaledIntFormat, scaled_encode, scaled_decode)
