"""The few operations the kernels need beyond the array operators.

Kernels are written once over a namespace ``xp`` that is NumPy or JAX; this
module supplies the two. ``import numfmt`` never imports JAX: the JAX
namespace is built on first use, when a JAX array or key is seen.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping

import numpy as np

__all__ = ["NUMPY", "jax_namespace", "is_jax_array", "namespace_of"]

_UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}
_INT = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}


# NumPy's SIMD loops of minimum/maximum need both operands contiguous: with a
# scalar operand they run 2-4x slower than with an array. Against a scalar,
# they get a cached read-only run of the scalar, as long as a row of the array.
_FILL_MIN, _FILL_MAX = 1 << 8, 1 << 17


@functools.lru_cache(maxsize=64)
def _filled(dtype: str, raw: bytes, size: int) -> np.ndarray:
    run = np.full(size, np.frombuffer(raw, dtype)[0])
    run.setflags(write=False)
    return run


def _operand(a, b):
    """``b`` as a contiguous run shaped for ``a``'s rows where it is a scalar (the same values)."""
    if isinstance(b, np.generic) and isinstance(a, np.ndarray) and a.ndim and a.dtype == b.dtype:
        n = a.shape[-1]
        if _FILL_MIN <= n <= _FILL_MAX:
            return _filled(b.dtype.str, b.tobytes(), 1 << (n - 1).bit_length())[:n]
    return b


def _minimum(a, b, out=None):
    return np.minimum(a, _operand(a, b), out=out)


def _maximum(a, b, out=None):
    return np.maximum(a, _operand(a, b), out=out)


class _Numpy:
    name = "numpy"
    where = staticmethod(np.where)
    minimum = staticmethod(_minimum)
    maximum = staticmethod(_maximum)
    any = staticmethod(np.any)
    max = staticmethod(np.max)
    abs = staticmethod(np.abs)

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
    def into(name, a, b, out=None):
        """``np.<name>(a, b)``, written into ``out`` when given (no allocation)."""
        if name in ("minimum", "maximum"):
            b = _operand(a, b)
        return getattr(np, name)(a, b, out=out)

    @staticmethod
    def iota(n, dtype):
        return np.arange(n, dtype=dtype)

    @staticmethod
    def concat(arrays):
        return np.concatenate(arrays)

    @staticmethod
    def rint(x):
        """Round a float array to integers, ties to even (exact)."""
        return np.rint(x)

    @staticmethod
    def barrier(values):
        """``values`` unchanged; under JAX, computed before (not fused into) their users."""
        return values


NUMPY = _Numpy()


@functools.cache
def jax_namespace():
    import jax.numpy as jnp
    from jax import lax

    class _Jax:
        name = "jax"
        where = staticmethod(jnp.where)
        minimum = staticmethod(jnp.minimum)
        maximum = staticmethod(jnp.maximum)
        any = staticmethod(jnp.any)
        max = staticmethod(jnp.max)
        abs = staticmethod(jnp.abs)
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
        def into(name, a, b, out=None):
            return getattr(jnp, name)(a, b)  # arrays are immutable: ``out`` is a NumPy hint

        @staticmethod
        def iota(n, dtype):
            return lax.iota(dtype, n)

        @staticmethod
        def concat(arrays):
            return jnp.concatenate(arrays)

        @staticmethod
        def rint(x):
            return lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN)

        @staticmethod
        def barrier(values):
            # XLA fuses cheap producers into their consumers, so a per-block value
            # used by an elementwise fusion is recomputed for every element of its
            # block (optimization_barrier does not stop that on CPU). XLA does not
            # fuse an integer division by a non-constant into a consumer that
            # reuses its elements: divide each value by (v >> (w - 1)) | 1, which
            # is 1, so that the values are computed once, in their own fusion.
            def once(v):
                w = v.dtype.itemsize * 8
                u = v if v.dtype.kind == "u" else lax.bitcast_convert_type(v, _UINT[w])
                u = u // ((u >> w - 1) | 1)
                return u if v.dtype.kind == "u" else lax.bitcast_convert_type(u, v.dtype)

            return tuple(once(v) for v in values)

    return _Jax()


def is_jax_array(x) -> bool:
    """True if ``x`` is a JAX array or tracer (without importing JAX)."""
    if "jax" not in sys.modules:
        return False
    import jax

    return isinstance(x, jax.Array)


def namespace_of(x):
    return jax_namespace() if is_jax_array(x) else NUMPY


class _FloatLayouts(Mapping):
    """Float dtypes chop accepts -> (exp_bits, man_bits): float16, bfloat16, float32, float64.

    bfloat16 is ml_dtypes' dtype, whose import costs most of ``import numfmt``:
    it is imported when a bfloat16 dtype is looked up (its owner has imported
    ml_dtypes already) or the mapping is iterated, not before.
    """

    def __init__(self):
        self._known = {np.dtype(np.float16): (5, 10), np.dtype(np.float32): (8, 23), np.dtype(np.float64): (11, 52)}

    def _with_bfloat16(self) -> dict:
        if len(self._known) == 3:
            import ml_dtypes

            known = dict(self._known)
            known[np.dtype(ml_dtypes.bfloat16)] = (8, 7)
            self._known = {d: known[d] for d in sorted(known, key=lambda d: (d.itemsize, d.name != "float16"))}
        return self._known

    def __getitem__(self, dtype):
        found = self._known.get(dtype)
        if found is None and getattr(dtype, "name", None) == "bfloat16":
            found = self._with_bfloat16().get(dtype)
        if found is None:
            raise KeyError(dtype)
        return found

    def __contains__(self, dtype) -> bool:
        try:
            self[dtype]
        except (KeyError, TypeError):
            return False
        return True

    def __iter__(self):
        return iter(self._with_bfloat16())

    def __len__(self) -> int:
        return 4


# Float dtypes chop accepts, with their (exp_bits, man_bits).
FLOAT_LAYOUTS = _FloatLayouts()


def refuse_subclass(x, arg: str, fn: str) -> None:
    """Refuse ndarray subclasses whose meaning a plain result would lose (masked arrays, np.matrix, ...).

    ``np.memmap`` is accepted: it is plain data on disk.
    """
    for a in x if isinstance(x, tuple) else (x,):
        if isinstance(a, np.ndarray) and type(a) is not np.ndarray and not isinstance(a, np.memmap):
            hint = (
                "fill the masked entries and re-apply the mask, e.g. "
                f"np.ma.masked_array(numfmt.{fn}({arg}.filled(0), fmt), mask={arg}.mask)"
                if isinstance(a, np.ma.MaskedArray)
                else f"pass np.asarray({arg})"
            )
            raise TypeError(
                f"{arg} is a {type(a).__module__}.{type(a).__name__}, an ndarray subclass; numfmt works on "
                f"plain arrays and would drop what the subclass adds: {hint}"
            )


def require_jax_x64(what) -> None:
    """Refuse 64-bit integer work on JAX arrays while ``jax_enable_x64`` is off."""
    import jax

    if not jax.config.read("jax_enable_x64"):
        raise ValueError(
            f"{what} computes on 64-bit integers, which JAX has only with "
            "jax.config.update('jax_enable_x64', True) (set it at startup); or pass a NumPy array"
        )
