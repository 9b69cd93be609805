"""Random bits for stochastic rounding, from a key and the element index.

A JAX key is not used to run JAX's own generator over the whole array (that
costs several times the rounding itself, and NumPy input would need a trip
through JAX). Instead the key gives 128 seed bits once (``jax.random.bits``),
and each element's bits are a keyed hash of its flat index, computed over the
array namespace: the same key gives the same bits on NumPy and on JAX, and
under ``jax.jit`` the hash fuses into the rounding kernel.

The hash is two rounds of a bijective 32-bit mixer, each after xoring in a
seed word: ``mix(mix(i ^ k0) ^ k1)``, with ``mix`` Chris Wellons'
``lowbias32`` (xorshift-multiply, constants 0x7feb352d and 0x846ca68b, near-
ideal avalanche). Within one call every element gets distinct, well-mixed
bits; two seeds give unrelated streams. A 64-bit word is two such words, the
second from seed words k2 and k3 (32-bit arithmetic only: 64-bit multiplies
are slow on CPUs without AVX-512). Indices from ``2**32`` on (NumPy only)
fold their high part into k1 and k3.

NumPy ``Generator`` keys keep their own stream: their bits are drawn with
``Generator.integers`` as 64-bit words (a 32-bit word is half of one).
"""

from __future__ import annotations

import numpy as np

from numfmt.core.xp import is_jax_array

__all__ = [
    "check_single_key",
    "derive_words",
    "derive_words_range",
    "generator_bits",
    "hash_bits",
    "random_words",
    "resolve_key",
    "seed_words",
]


def _mix(xp, x):
    """Chris Wellons' ``lowbias32``: a bijection of uint32 with near-ideal avalanche."""
    U = x.dtype
    x = x ^ (x >> xp.asarray(16, U))
    x = x * xp.asarray(0x7FEB352D, U)
    x = x ^ (x >> xp.asarray(15, U))
    x = x * xp.asarray(0x846CA68B, U)
    return x ^ (x >> xp.asarray(16, U))


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
      ValueError: indices at or beyond ``2**32`` on JAX (NumPy folds the high
        index bits into the seed).

    Examples:
      >>> from numfmt.core.xp import NUMPY
      >>> a = hash_bits(NUMPY, [1, 2, 3, 4], 0, 4, 32)
      >>> b = hash_bits(NUMPY, [1, 2, 3, 4], 2, 2, 32)
      >>> bool((a[2:] == b).all()), a.dtype.name
      (True, 'uint32')
    """
    hi = (start + n - 1) >> 32 if n else 0
    if hi != start >> 32:  # the run straddles a multiple of 2**32: split it
        cut = (hi << 32) - start
        return xp.concat([hash_bits(xp, seed, start, cut, bits), hash_bits(xp, seed, start + cut, n - cut, bits)])
    if hi and xp.name != "numpy":
        raise ValueError(
            f"stochastic rounding with a JAX key supports up to 2**32 elements per call, got {start + n}; "
            "split the array"
        )
    W = xp.uint(32)
    k = [xp.asarray(w, W) for w in (seed[0], seed[1], seed[2], seed[3])]
    fold = xp.asarray((hi * 0x9E3779B9) & 0xFFFFFFFF, W)  # 0 below 2**32
    i = xp.iota(n, W) + xp.asarray(start & 0xFFFFFFFF, W)
    word = _mix(xp, _mix(xp, i ^ k[0]) ^ (k[1] ^ fold))
    if bits == 32:
        return word
    low = _mix(xp, _mix(xp, i ^ k[2]) ^ (k[3] ^ fold))
    U = xp.uint(64)
    return (xp.astype(word, U) << xp.asarray(32, U)) | xp.astype(low, U)


def derive_words(xp, seed, index):
    """Four seed words derived from ``seed`` at ``index``: ``hash_bits(xp, seed, 4 * index, 4, 32)``.

    ``index`` may be a traced integer (a loop's iteration number), unlike
    :func:`hash_bits`'s static ``start``. Distinct indices give distinct,
    unrelated words, so numfmt.emulate hands each rounding site, loop
    iteration and nested body its own seed from one key without running the
    key's generator again.

    Examples:
      >>> from numfmt.core.xp import NUMPY
      >>> seed = [5, 6, 7, 8]
      >>> bool((derive_words(NUMPY, seed, 3) == hash_bits(NUMPY, seed, 12, 4, 32)).all())
      True
    """
    W = xp.uint(32)
    i = xp.iota(4, W) + xp.asarray(index, W) * xp.asarray(4, W)
    return _mix(xp, _mix(xp, i ^ xp.asarray(seed[0], W)) ^ xp.asarray(seed[1], W))


def derive_words_range(xp, seed, start: int, n: int):
    """``derive_words(xp, seed, i)`` for ``i = start .. start + n - 1``, as one ``(n, 4)`` array.

    One hash over ``4 n`` words instead of ``n`` separate ones (numfmt.emulate
    derives its sites' seed words in blocks this way, which keeps stochastic
    programs smaller).

    Examples:
      >>> from numfmt.core.xp import NUMPY
      >>> seed = [5, 6, 7, 8]
      >>> bool((derive_words_range(NUMPY, seed, 3, 2)[1] == derive_words(NUMPY, seed, 4)).all())
      True
    """
    W = xp.uint(32)
    i = xp.iota(4 * n, W) + xp.asarray((4 * start) & 0xFFFFFFFF, W)
    return _mix(xp, _mix(xp, i ^ xp.asarray(seed[0], W)) ^ xp.asarray(seed[1], W)).reshape((n, 4))


def seed_words(key):
    """Four ``uint32`` seed words from a ``jax.random`` key (typed or legacy)."""
    import jax
    import jax.numpy as jnp

    if not (isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)):
        if getattr(key, "dtype", None) != jnp.uint32:
            raise TypeError(f"key must be a jax.random key, got {type(key).__name__} of dtype {key.dtype}")
        key = jax.random.wrap_key_data(key)
    check_single_key(key)
    return jax.random.bits(key, (4,), dtype=jnp.uint32)


def check_single_key(key) -> None:
    """Refuse a batch of JAX keys: one key's bits cover a whole array."""
    import jax
    import jax.numpy as jnp

    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        shape = key.shape
    else:  # raw key data: the last axis holds one key (2 words for threefry, 4 for rbg)
        shape = key.shape[:-1]
    if shape != ():
        raise ValueError(
            f"key has shape {key.shape}: chop takes one jax.random key (one key's bits cover the whole array), "
            "not a batch of keys; pass one key, or map over the keys with jax.vmap"
        )


def generator_bits(gen: np.random.Generator, n: int, bits: int) -> np.ndarray:
    """``n`` uniform ``bits``-bit words from a NumPy ``Generator`` (drawn as 64-bit words)."""
    words = gen.integers(0, 2**64, size=(n * bits + 63) // 64, dtype=np.uint64)
    return words.view(np.dtype(f"uint{bits}"))[:n]


def _check_key(key, plan) -> None:
    if plan.is_stochastic and key is None:
        raise ValueError(
            f"rounding={plan.rounding.value!r} needs key=: a jax.random key, or a NumPy Generator or int seed"
        )
    if not plan.is_stochastic and key is not None:
        raise ValueError(
            f"key= was given but rounding={plan.rounding.value!r} is deterministic; "
            "pass rounding='stochastic' (or another stochastic mode) or drop the key"
        )


def resolve_key(key, plan, jax_input: bool = False):
    """``key`` as the kernels take it: None, a NumPy ``Generator`` or one JAX key.

    An int seed ``n >= 0`` means ``np.random.default_rng(n)``, on NumPy and
    on JAX input alike, so both get the same bits (on JAX they are drawn on
    the host: under ``jax.jit`` once, at trace time). A ``Generator`` is
    refused for JAX input (under ``jax.jit`` it would not advance).
    """
    _check_key(key, plan)
    if key is None:
        return None
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        if key < 0:
            raise ValueError(f"key={int(key)} is a negative seed; an int seed must be >= 0")
        return np.random.default_rng(int(key))
    if isinstance(key, np.random.Generator) and not jax_input:
        return key
    if is_jax_array(key):
        check_single_key(key)
        return key
    allowed = "a jax.random key or an int seed" if jax_input else "a NumPy Generator, an int seed or a jax.random key"
    why = " (x is a JAX array)" if isinstance(key, np.random.Generator) else ""
    raise TypeError(f"key must be {allowed}{why}, got {type(key).__name__}")


def random_words(xp, key, shape, bits: int):
    """Uniform ``uint{bits}`` words of ``shape`` in namespace ``xp``: a NumPy ``Generator``'s stream
    (drawn on the host, also for JAX: an int seed), or hashed from a JAX key's seed words."""
    n = int(np.prod(shape, dtype=np.int64))
    if isinstance(key, np.random.Generator):
        words = generator_bits(key, n, bits).reshape(shape)
        return words if xp.name == "numpy" else xp.asarray(words, words.dtype)
    seed = seed_words(key)
    return hash_bits(xp, np.asarray(seed) if xp.name == "numpy" else seed, 0, n, bits).reshape(shape)
