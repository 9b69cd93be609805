"""How block and scaled kernels run on JAX: jitted straight-through functions (NumPy: numfmt.block.chunks)."""

from __future__ import annotations

import functools

import numpy as np

from numfmt.block.scale_bits import require_x64
from numfmt.core import xp as _xp
from numfmt.core.chop import _check_dtype, straight_through
from numfmt.core.random import random_words

__all__ = ["jax_chop", "jax_functions", "namespaces"]

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


def namespaces(x):
    """``(xp, xm, x, dtype)`` for block and scaled chops: JAX input needs x64
    (64-bit patterns)."""
    if _xp.is_jax_array(x):
        import jax.numpy as xm

        require_x64()
        xp = _xp.jax_namespace()
    else:
        xm, xp, x = np, _xp.NUMPY, np.asarray(x)
    return xp, xm, x, _check_dtype(x.dtype)


def _rbits(xp, key, shape):
    if key is None:
        return None
    return random_words(xp, key, shape, 64)
