"""How block and scaled kernels run: NumPy in cache-sized chunks, JAX as jitted straight-through functions."""

from __future__ import annotations

import functools

import numpy as np

from numfmt.block.scale_bits import require_x64
from numfmt.core import xp as _xp
from numfmt.core.chop import _check_dtype, straight_through

__all__ = ["in_chunks", "jax_chop", "jax_functions", "namespaces"]

_CHUNK = 1 << 16  # elements per NumPy pass: the temporaries stay in cache


def in_chunks(fn, xb, rbits):
    """Apply ``fn(blocks, rbits) -> (out, unrep)`` to NumPy blocks a few thousand
    elements at a time; returns ``(out, number of unrepresentable results)``."""
    shape = xb.shape
    flat = xb.reshape(-1, shape[-1])
    rb = None if rbits is None else rbits.reshape(-1, shape[-1])
    out = np.empty_like(flat)
    step = max(1, _CHUNK // shape[-1])
    count = 0
    for i in range(0, flat.shape[0], step):
        o, unrep = fn(flat[i : i + step], None if rb is None else rb[i : i + step])
        out[i : i + step] = o
        count += int(np.count_nonzero(unrep))
    return out.reshape(shape), count


def jax_functions(run, encode, static):
    """Jitted ``(straight-through chop, overflow count, encode)`` of a kernel
    ``run(xp, xm, static, x, rbits) -> (results, overflow mask, ...)`` and its
    ``encode(xp, xm, static, x, rbits)`` (cache the result per ``static``)."""
    import jax
    import jax.numpy as jnp

    xp = _xp.jax_namespace()
    chop = straight_through(lambda x, rbits: run(xp, jnp, static, x, rbits)[0])

    def count(x, rbits):
        return jnp.sum(run(xp, jnp, static, x, rbits)[1])

    return jax.jit(chop), jax.jit(count), jax.jit(functools.partial(encode, xp, jnp, static))


def jax_chop(fns, x, rbits, refuse):
    """Chop with :func:`jax_functions`; eagerly, ``refuse(count)`` raises for
    results the dtype cannot hold (under tracing they are +-inf, as IEEE)."""
    import jax

    if not isinstance(x, jax.core.Tracer):
        count = int(fns[1](x, rbits))
        if count:
            refuse(count)
    return fns[0](x, rbits)


def namespaces(x, key=None):
    """``(xp, xm, x, dtype)`` for block and scaled chops: JAX input needs x64
    (64-bit patterns) and, when ``key`` is given, a JAX key."""
    if _xp.is_jax_array(x):
        import jax.numpy as xm

        require_x64()
        xp = _xp.jax_namespace()
        if key is not None and not _xp.is_jax_array(key):
            raise TypeError(f"x is a JAX array, so key must be a jax.random key, got {type(key).__name__}")
    else:
        xm, xp, x = np, _xp.NUMPY, np.asarray(x)
    return xp, xm, x, _check_dtype(x.dtype)


def _rbits(xp, key, shape):
    if key is None:
        return None
    return xp.random_bits(key, shape, 64)
