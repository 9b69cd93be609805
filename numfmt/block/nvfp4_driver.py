"""NVFP4's ``chop``/``encode``/``decode``: drivers of :mod:`numfmt.block.nvfp4`, registered as a block variant."""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np

from numfmt.block import native
from numfmt.block.chop import Variant, blocked, blocked_shape, check_axis, register_variant, unblocked
from numfmt.block.chunks import chunks, drawer, in_chunks, rows, unrows
from numfmt.block.nvfp4 import F64_RANDOM_BITS, _check, dequantize, quantize, tensor_scale
from numfmt.block.runner import _rbits, jax_chop, jax_functions, namespaces
from numfmt.block.scale_bits import as_f32, as_f64, layout, require_x64
from numfmt.core import xp as _xp
from numfmt.core.chop import _check_dtype, _check_random_bits, plan_for, resolve_key
from numfmt.core.rounding import Overflow, Rounding

__all__ = ["nvfp4_chop", "nvfp4_decode", "nvfp4_encode"]


def _prepare(x, fmt, rounding, key, random_bits):
    rounding = Rounding.parse(rounding)
    xp, _, x, dtype = namespaces(x)
    _check(fmt, dtype)
    n = _check_random_bits(rounding, random_bits, dtype)
    if dtype.itemsize == 8 and n > F64_RANDOM_BITS:
        raise ValueError(
            f"{fmt} rounds float64 input stochastically with at most {F64_RANDOM_BITS} random bits "
            f"(its quotients carry 50 exact bits), not {n}; pass rounding='stochastic_a' (or _b, _c) "
            f"with random_bits <= {F64_RANDOM_BITS}, or float32 input"
        )
    plan = plan_for(fmt.elem, np.float64, rounding, Overflow.SAT_FINITE, n)
    key = resolve_key(key, plan, xp is not _xp.NUMPY)
    return xp, x, (fmt, dtype, rounding, n), key


def _rbits_checked(xp, x, fmt, static, key):
    """Whole-array random words, after refusing float64 tensors the tensor scale cannot serve."""
    if static[1].itemsize == 8:
        _check_tensor_scale(x, fmt)
    return _rbits(xp, key, blocked_shape(x.shape, fmt))


def _check_tensor_scale(x, fmt, amax=None):
    """Refuse float64 tensors whose float32 tensor scale would round to 0 (every result 0).

    ``amax``: the largest finite magnitude of ``x`` if known (NumPy)."""
    if amax is not None:
        pass
    elif _xp.is_jax_array(x):
        import jax
        import jax.numpy as jnp

        if isinstance(x, jax.core.Tracer):
            return  # under tracing such a tensor gives NaN (see _run)
        amax = float(jnp.max(jnp.where(jnp.isfinite(x), jnp.abs(x), 0.0), initial=0.0))
    else:
        amax = float(np.asarray(_amax_of(_xp.NUMPY, np.dtype(np.float64), x)).view(np.float64))
    limit = fmt.scale.max_value * Fraction(fmt.elem.max_value) * Fraction(2) ** 150
    if amax >= limit:
        raise ValueError(
            f"chop to {fmt}: the largest magnitude {amax!r} is at least {float(limit)!r}, so the float32 "
            "tensor scale (max_scale * max_elem / amax) rounds to 0 and every result would be 0; "
            "scale the input down first"
        )


def _amax_of(xp, dtype, x):
    """The largest finite magnitude of ``x`` as a pattern (uint64 scalar); NumPy: chunk by chunk."""
    if xp is _xp.NUMPY:
        return max((_amax(xp, dtype, c) for c in chunks(rows(x, None)[0])), default=np.uint64(0))
    return _amax(xp, dtype, x)


def _amax(xp, dtype, x):
    e_bits, m_bits, width, _ = layout(dtype)
    U = xp.uint(64)
    a = xp.astype(xp.bitcast(x, xp.uint(width)), U) & xp.asarray((1 << (width - 1)) - 1, U)
    inf_bits = xp.asarray(((1 << e_bits) - 1) << m_bits, U)
    return xp.max(xp.where(a < inf_bits, a, xp.asarray(0, U)), initial=0)  # initial: empty x


def _tensor_scale_of(xp, fmt, dtype, x):
    return tensor_scale(xp, fmt, _amax_of(xp, dtype, x), dtype)


def _run(xp, xm, static, x, rbits):
    """Whole computation: ``(results, overflow mask, s, q, bad, g)`` (blocked except results)."""
    fmt, dtype, rounding, n = static
    g = _tensor_scale_of(xp, fmt, dtype, x)
    out, unrep, s, qe, bad = quantize(xp, fmt, dtype, rounding, n, blocked(xm, x, fmt), None, rbits)
    # g = 0 (float64 input with amax >= 2688 * 2**150) is refused eagerly; traced, the results are NaN
    out = xp.where(g == xp.asarray(0, xp.uint(64)), xp.asarray(np.nan, dtype), out)
    return unblocked(xm, out, fmt, x.shape), unrep, s, qe, bad, g


def _raise(fmt, dtype, count):
    raise ValueError(f"chop to {fmt}: {count} results overflow {dtype.name} (they cannot hold); pass float32 input")


def nvfp4_chop(x, fmt, rounding, *, key=None, random_bits=None):
    xp, x, static, key = _prepare(x, fmt, rounding, key, random_bits)
    if xp is _xp.NUMPY:
        _, dtype, rounding, n = static
        m, shape = rows(x, check_axis(x, fmt))
        done = native.nvfp4_rows(fmt, dtype, rounding, n, m, key)  # the compiled kernel: float32 input
        if done is not None:
            if done[1]:
                _raise(fmt, dtype, done[1])
            return unrows(done[0], shape, fmt.axis)
        amax = _amax_of(xp, dtype, m)
        if dtype.itemsize == 8:
            _check_tensor_scale(x, fmt, float(np.asarray(amax).view(np.float64)))
        g = tensor_scale(xp, fmt, amax, dtype)
        step = lambda b, r: quantize(xp, fmt, dtype, rounding, n, b, g, r)[:2]  # noqa: E731
        out, count = in_chunks(step, m, fmt.block_size, drawer(key))
        if count:
            _raise(fmt, dtype, count)
        return unrows(out, shape, fmt.axis)
    rbits = _rbits_checked(xp, x, fmt, static, key)
    return jax_chop(_jax_fns(static), x, rbits, functools.partial(_raise, fmt, static[1]))


@functools.cache
def _jax_fns(static):
    return jax_functions(_run, _encode, static)


def _encode(xp, xm, static, x, rbits):
    from numfmt.block.codes import _finish
    from numfmt.core.codes import encode

    fmt = static[0]
    _, _, s, qe, bad, g = _run(xp, xm, static, x, rbits)
    f64 = np.dtype(np.float64)
    sc = encode(xp.bitcast(s, f64), fmt.scale)
    sc = xp.where(bad, xp.asarray(fmt.scale.nan_code, sc.dtype), sc)
    elem_codes, scale_codes = _finish(xm, fmt, x.shape, encode(xp.bitcast(qe, f64), fmt.elem), sc)
    return elem_codes, scale_codes, as_f32(xp, xp.bitcast(g, f64))


def nvfp4_encode(x, fmt, rounding, *, key=None, random_bits=None):
    xp, x, static, key = _prepare(x, fmt, rounding, key, random_bits)
    rbits = _rbits_checked(xp, x, fmt, static, key)
    if xp is _xp.NUMPY:
        return _encode(xp, np, static, x, rbits)
    return _jax_fns(static)[2](x, rbits)


def nvfp4_decode(codes, fmt, dtype=None):
    from numfmt.block.codes import check_codes

    elem_codes, scale_codes, g = codes
    dtype = _check_dtype(np.float32 if dtype is None else dtype)
    _check(fmt, dtype)
    check_codes(fmt, elem_codes, scale_codes)
    if not _xp.is_jax_array(elem_codes):
        return _decode(_xp.NUMPY, np, fmt, dtype, np.asarray(elem_codes), np.asarray(scale_codes), np.asarray(g))
    require_x64()
    return _jax_decode(fmt, dtype)(elem_codes, scale_codes, g)


@functools.cache
def _jax_decode(fmt, dtype):
    import jax
    import jax.numpy as jnp

    return jax.jit(functools.partial(_decode, _xp.jax_namespace(), jnp, fmt, dtype))


def _decode(xp, xm, fmt, dtype, elem_codes, scale_codes, g):
    """Results ``RN_dtype(q * s / g)``; an overflow of ``dtype`` gives +-inf (as IEEE arithmetic)."""
    from numfmt.block.codes import decode_elements
    from numfmt.core.codes import decode

    elem_codes, values = decode_elements(xm, fmt, elem_codes)
    vb = xp.bitcast(blocked(xm, values, fmt), xp.uint(64))
    sv = decode(xm.moveaxis(scale_codes, fmt.axis % scale_codes.ndim, -1)[..., None], fmt.scale, np.float64)
    bad = sv != sv
    s = xp.bitcast(xm.where(bad, 0.0, sv), xp.uint(64))
    g64 = xp.bitcast(as_f64(xp, xm.asarray(g, np.float32)), xp.uint(64))  # exact: XLA's cast flushes subnormals
    out, _ = dequantize(xp, fmt, dtype, vb, s, g64)
    out = xp.where(bad, xp.asarray(np.nan, dtype), out)
    return unblocked(xm, out, fmt, elem_codes.shape)


register_variant(Variant(lambda fmt: not fmt.pow2_scale, nvfp4_chop, nvfp4_encode, nvfp4_decode, parts=3))
