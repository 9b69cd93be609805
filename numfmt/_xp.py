"""The few operations the kernels need beyond the array operators.

Kernels are written once over a namespace ``xp`` that is NumPy or JAX; this
module supplies the two. ``import numfmt`` never imports JAX: the JAX
namespace is built on first use, when a JAX array or key is seen.
"""

from __future__ import annotations

import functools
import sys

import ml_dtypes
import numpy as np

__all__ = ["NUMPY", "jax_namespace", "is_jax_array", "namespace_of"]

_UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}
_INT = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}


class _Numpy:
    name = "numpy"
    where = staticmethod(np.where)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)
    any = staticmethod(np.any)
    max = staticmethod(np.max)

    @staticmethod
    def uint(bits):
        return np.dtype(_UINT[bits])

    @staticmethod
    def int(bits):
        return np.dtype(_INT[bits])

    @staticmethod
    def asarray(x, dtype):
        return np.asarray(x, dtype=dtype)

    @staticmethod
    def astype(x, dtype):
        return x.astype(dtype, copy=False)

    @staticmethod
    def bitcast(x, dtype):
        return x.view(dtype)

    @staticmethod
    def bit_length(u):
        # float64 holds every integer below 2**53 exactly, and frexp's exponent
        # is the bit length; the kernels only ask for values below 2**53.
        return np.frexp(u.astype(np.float64))[1].astype(u.dtype)

    @staticmethod
    def random_bits(key, shape, bits):
        if isinstance(key, np.random.Generator):
            return key.integers(0, 2**bits, size=shape, dtype=_UINT[bits])
        # A JAX key with a NumPy input: draw with JAX, then copy to the host.
        jx = jax_namespace()
        return np.asarray(jx.random_bits(key, shape, bits))


NUMPY = _Numpy()


@functools.cache
def jax_namespace():
    import jax
    import jax.numpy as jnp
    from jax import lax

    class _Jax:
        name = "jax"
        where = staticmethod(jnp.where)
        minimum = staticmethod(jnp.minimum)
        maximum = staticmethod(jnp.maximum)
        any = staticmethod(jnp.any)
        max = staticmethod(jnp.max)
        uint = staticmethod(_Numpy.uint)
        int = staticmethod(_Numpy.int)

        @staticmethod
        def asarray(x, dtype):
            return jnp.asarray(x, dtype=dtype)

        @staticmethod
        def astype(x, dtype):
            return lax.convert_element_type(x, dtype)

        @staticmethod
        def bitcast(x, dtype):
            return lax.bitcast_convert_type(x, dtype)

        @staticmethod
        def bit_length(u):
            return (u.dtype.itemsize * 8 - lax.clz(u)).astype(u.dtype)

        @staticmethod
        def random_bits(key, shape, bits):
            if not (isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)):
                key = jax.random.wrap_key_data(key) if getattr(key, "dtype", None) == jnp.uint32 else key
            return jax.random.bits(key, shape, dtype=_UINT[bits])

    return _Jax()


def is_jax_array(x) -> bool:
    """True if ``x`` is a JAX array or tracer (without importing JAX)."""
    if "jax" not in sys.modules:
        return False
    import jax

    return isinstance(x, jax.Array)


def namespace_of(x):
    return jax_namespace() if is_jax_array(x) else NUMPY


# Float dtypes chop accepts, with their (exp_bits, man_bits).
FLOAT_LAYOUTS = {
    np.dtype(np.float16): (5, 10),
    np.dtype(ml_dtypes.bfloat16): (8, 7),
    np.dtype(np.float32): (8, 23),
    np.dtype(np.float64): (11, 52),
}
