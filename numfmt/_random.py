"""Random bits for stochastic rounding, from a key and the element index.

A JAX key is not used to run JAX's own generator over the whole array (that
costs several times the rounding itself, and NumPy input would need a trip
through JAX). Instead the key gives 128 seed bits once (``jax.random.bits``),
and each element's bits are a keyed hash of its flat index, computed over the
array namespace: the same key gives the same bits on NumPy and on JAX, and
under ``jax.jit`` the hash fuses into the rounding kernel.

The hash is two rounds of a bijective integer mixer, each after xoring in a
seed word: ``mix(mix(i ^ k0) ^ k1)``. For 32-bit words ``mix`` is Chris
Wellons' ``lowbias32`` finalizer (xorshift-multiply, constants 0x7feb352d and
0x846ca68b); for 64-bit words it is the SplitMix64 finalizer (Stafford's
"Mix13" constants). Both are bijections with near-ideal avalanche, so within
one call every element gets distinct, well-mixed bits, and two seeds give
unrelated streams.

NumPy ``Generator`` keys keep their own stream: their bits are drawn with
``Generator.integers`` as 64-bit words (a 32-bit word is half of one).
"""

from __future__ import annotations

import numpy as np

__all__ = ["generator_bits", "hash_bits", "seed_words"]

_MIX = {
    32: ((16, 0x7FEB352D), (15, 0x846CA68B), 16),
    64: ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB), 31),
}


def _mix(xp, x, bits):
    (s1, c1), (s2, c2), s3 = _MIX[bits]
    U = x.dtype
    x = x ^ (x >> xp.asarray(s1, U))
    x = x * xp.asarray(c1, U)
    x = x ^ (x >> xp.asarray(s2, U))
    x = x * xp.asarray(c2, U)
    return x ^ (x >> xp.asarray(s3, U))


def hash_bits(xp, seed, start, n: int, bits: int):
    """Uniform ``bits``-bit words for the flat indices ``start .. start + n - 1``.

    Args:
      xp: the array namespace.
      seed: four 32-bit seed words (a ``uint32`` array of shape ``(4,)``, or
        Python ints), from :func:`seed_words`.
      start: the flat index of the first element (a Python int).
      n: how many words.
      bits: 32 or 64, the width of the words.

    Returns:
      A ``uint{bits}`` array of shape ``(n,)``.

    Raises:
      ValueError: 32-bit words are asked for indices at or beyond ``2**32``
        on JAX (NumPy folds the high index bits into the second seed word).

    Examples:
      >>> from numfmt._xp import NUMPY
      >>> a = hash_bits(NUMPY, [1, 2, 3, 4], 0, 4, 32)
      >>> b = hash_bits(NUMPY, [1, 2, 3, 4], 2, 2, 32)
      >>> bool((a[2:] == b).all()), a.dtype.name
      (True, 'uint32')
    """
    U = xp.uint(bits)
    k = [xp.astype(xp.asarray(w, xp.uint(32)), U) for w in (seed[0], seed[1], seed[2], seed[3])]
    if bits == 64:
        k0 = (k[0] << xp.asarray(32, U)) | k[1]
        k1 = (k[2] << xp.asarray(32, U)) | k[3]
        i = xp.iota(n, U) + xp.asarray(start, U)
    else:
        k0, k1 = k[0], k[1]
        hi = (start + n - 1) >> 32 if n else 0
        if hi != start >> 32:  # the block straddles 2**32: split it
            cut = (hi << 32) - start
            return xp.concat([hash_bits(xp, seed, start, cut, bits), hash_bits(xp, seed, start + cut, n - cut, bits)])
        if hi and xp.name != "numpy":
            raise ValueError(
                f"stochastic rounding with a JAX key supports up to 2**32 elements per call for 32-bit "
                f"input words, got {start + n}; split the array or use float64 input"
            )
        k1 = k1 ^ xp.asarray((hi * 0x9E3779B9) & 0xFFFFFFFF, U)
        i = xp.iota(n, U) + xp.asarray(start & 0xFFFFFFFF, U)
    return _mix(xp, _mix(xp, i ^ k0, bits) ^ k1, bits)


def seed_words(key):
    """Four ``uint32`` seed words from a ``jax.random`` key (typed or legacy)."""
    import jax
    import jax.numpy as jnp

    if not (isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)):
        if getattr(key, "dtype", None) != jnp.uint32:
            raise TypeError(f"key must be a jax.random key, got {type(key).__name__} of dtype {key.dtype}")
        key = jax.random.wrap_key_data(key)
    return jax.random.bits(key, (4,), dtype=jnp.uint32)


def generator_bits(gen: np.random.Generator, n: int, bits: int) -> np.ndarray:
    """``n`` uniform ``bits``-bit words from a NumPy ``Generator`` (drawn as 64-bit words)."""
    words = gen.integers(0, 2**64, size=(n * bits + 63) // 64, dtype=np.uint64)
    return words.view(np.dtype(f"uint{bits}"))[:n]
