"""The float32 fast path of chunked accumulation: ``accum=float32`` in round to nearest even, run in float32.

:func:`numfmt.emulation.accumulate.chunked_dot` computes, for each output
element, ``acc = RN32(acc + s_j)`` over the chunk sums ``s_j`` (``RN32``: round
to nearest even into float32; ``acc`` starts at +0), in float64 work
arithmetic with a rounding kernel per step. When the inputs are values of a
binary float format ``fin`` with precision ``p``, largest value ``M`` and
quantum ``q = 2**(emin - man_bits)`` (every value of ``fin`` is a multiple of
``q``: its subnormal spacing), that chain is float32 arithmetic:

* Every product ``a_k * b_k`` is a multiple of ``q**2`` with ``2p`` significant
  bits: exact in float32 when ``2p <= 24`` and ``M**2`` is below float32's
  overflow threshold.
* Every sum of such products, and every float32 rounding of one, is a multiple
  of ``q**2`` (a multiple of ``q**2`` below ``2**24 * q**2`` in magnitude is a
  float32 value; above it, float32's spacing is itself a multiple of ``q**2``).
  With ``q**2 >= 2**-126`` no nonzero partial sum is below float32's normal
  range, so XLA:CPU's flushing of float32 subnormals never changes a value.
* ``chunk=1``: ``acc + a_k * b_k`` in float32 (or one fused multiply-add: the
  product is exact either way) is ``RN32`` of the exact sum: the float32 chain
  is the sequential accumulation itself. This holds for float8, float6,
  float4 and float16 inputs; not for bfloat16 (its products can fall below
  float32's normal range) nor float32 inputs (their products are not exact).
* ``chunk=c > 1``: a chunk sum is exact in float32 when ``c * M**2 < 2**24 * q**2``
  (float4, float6 formats); else exact in float64 when every partial sum is,
  ``2 * K * M**2 < 2**53 * q**2`` (``|acc| <= (1 + 2**-24)**K * sum |products|``),
  and then ``acc + s_j`` is exact in float64 too, so converting it to float32
  is ``RN32`` of the exact sum (float8 e4m3 up to K = 86000). Other cases
  (float16 or float8 e5m2 inputs with ``chunk > 1``) take the general path.

Signs and specials are those of the general path: ``+0 + -0`` is +0 in
round to nearest, so an exact zero result is +0 (set explicitly: XLA may
fold the chain's first ``+0 + x`` to ``x``); infinities and NaN propagate
as in IEEE arithmetic (NaN results are returned as the canonical NaN, whose
sign x86 would set otherwise).

The derivative is that of the unrounded product: ``dot_general`` of the
tangents in the work dtype (float64). (An emulated function's own derivative
is emulated from JAX's derivative of the user's function, so this rule only
keeps the program differentiable; numfmt.emulation.derivatives.)
"""

from __future__ import annotations

import functools
from fractions import Fraction

import jax
import jax.numpy as jnp
from jax import lax

from numfmt.core.names import parse
from numfmt.core.rounding import Rounding
from numfmt.float.format import FloatFormat

__all__ = ["UNROLL", "fast_dot", "promotion_groups", "sums_dtype"]

UNROLL = 16  # rank-1 updates per loop iteration: fewer loop trips and acc reads (XLA fuses them into one loop)
_FLOAT32 = parse("float32")
_DIMS = (((2,), (2,)), ((0,), (0,)))  # (B, M, K) x (B, N, K) -> (B, M, N)


def sums_dtype(fin, accum, rounding, chunk: int, k: int):
    """The dtype exact chunk sums take on the fast path (float32 or float64), or None: the general path.

    Args:
      fin: the matmul input format (the operands' values are values of it).
      accum: the accumulator format; the fast path needs float32 itself.
      rounding: the accumulator's rounding; the fast path needs round to nearest even.
      chunk: products summed exactly per accumulator rounding.
      k: the contraction length.
    """
    if rounding is not Rounding.NEAREST_EVEN or accum != _FLOAT32 or not isinstance(fin, FloatFormat):
        return None
    quantum, largest = Fraction(2) ** (fin.emin - fin.man_bits), fin.max_value
    if 2 * fin.precision > 24 or quantum**2 < Fraction(2) ** -126 or largest**2 >= 2**127:
        return None
    ratio = largest**2 / quantum**2
    if chunk == 1 or chunk * ratio < 2**24:
        return jnp.float32
    if 2 * max(k, chunk) * ratio < 2**53:
        return jnp.float64
    return None


def promotion_groups(x, groups: int, size: int):
    """(B, F, K) -> (G * B, F, size): the contraction cut into ``groups`` groups (zero padded), group-major."""
    batch, free, k = x.shape
    x = jnp.pad(x, ((0, 0), (0, 0), (0, groups * size - k))).reshape(batch, free, groups, size)
    return jnp.moveaxis(x, 2, 0).reshape(groups * batch, free, size)


def _blocks(x, steps, size):
    """(B, F, K) -> (steps, size, B, F): K padded with zeros to ``steps * size``, in order."""
    batch, free, k = x.shape
    x = jnp.pad(jnp.moveaxis(x, -1, 0), ((0, steps * size - k), (0, 0), (0, 0)))
    return x.reshape(steps, size, batch, free)


def _elementwise_chain(a, b, chunk, dtype):
    """``acc = RN32(acc + chunk sum)`` by rank-1 updates: a (B, M, K), b (B, N, K) float32 -> (B, M, N).

    Each loop trip takes ``per`` chunks (about :data:`UNROLL` products); a
    chunk's products are summed in ``dtype`` (exactly), then added to ``acc``
    and rounded to float32. Zero padding adds +0 terms, which change nothing
    (``acc`` is never -0 in round to nearest).
    """
    k = a.shape[-1]
    per = max(1, UNROLL // chunk)
    trips = -(-k // (per * chunk))
    at, bt = _blocks(a, trips, per * chunk), _blocks(b, trips, per * chunk)

    def body(acc, xs):
        ak, bk = xs
        for c in range(per):
            part = None
            for u in range(c * chunk, (c + 1) * chunk):
                term = ak[u][:, :, None].astype(dtype) * bk[u][:, None, :].astype(dtype)
                part = term if part is None else part + term
            acc = (acc.astype(dtype) + part).astype(jnp.float32)
        return acc, None

    zeros = jnp.zeros((a.shape[0], a.shape[1], b.shape[1]), jnp.float32)
    return lax.scan(body, zeros, (at, bt))[0]


def _dot_chain(a, b, chunk, dtype):
    """``acc = RN32(acc + chunk sum)`` with the chunk sums from one batched dot (long chunks)."""
    batch, m, k = a.shape
    steps = -(-k // chunk)
    pad = steps * chunk - k
    a = jnp.pad(a, ((0, 0), (0, 0), (0, pad))).reshape(batch, m, steps, chunk).astype(dtype)
    b = jnp.pad(b, ((0, 0), (0, 0), (0, pad))).reshape(batch, b.shape[1], steps, chunk).astype(dtype)
    dims = (((3,), (3,)), ((0, 2), (0, 2)))
    parts = lax.dot_general(a, b, dims, precision=lax.Precision.HIGHEST, preferred_element_type=dtype)
    parts = jnp.moveaxis(parts, 1, 0)  # (steps, B, M, N)

    def step(acc, part):
        return (acc.astype(dtype) + part).astype(jnp.float32), None

    return lax.scan(step, jnp.zeros(parts.shape[1:], jnp.float32), parts)[0]


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def fast_dot(a, b, chunk: int, dtype, promote=None):
    """The chunked float32 accumulation of ``a (B, M, K)`` and ``b (B, N, K)`` (float64 values of a format
    :func:`sums_dtype` accepts), returned in their dtype; with ``promote``, group by group, each group's
    sum added into a float32 outer accumulator (float32 addition: round to nearest even)."""
    a32, b32 = a.astype(jnp.float32), b.astype(jnp.float32)  # exact: values of the input format
    chain = _elementwise_chain if chunk <= UNROLL else _dot_chain
    if promote is None:
        acc = chain(a32, b32, chunk, dtype)
    else:
        groups, batch = max(1, -(-a.shape[-1] // promote)), a.shape[0]
        a32, b32 = promotion_groups(a32, groups, promote), promotion_groups(b32, groups, promote)
        inner = chain(a32, b32, chunk, dtype).reshape(groups, batch, a.shape[1], b.shape[1])
        acc = lax.scan(lambda outer, part: (outer + part, None), jnp.zeros(inner.shape[1:], jnp.float32), inner)[0]
    # an exact zero is +0 (XLA may fold the first `+0 + x` to x, which would keep a -0 product's sign)
    acc = jnp.where(acc == 0, jnp.float32(0), jnp.where(jnp.isnan(acc), jnp.float32(jnp.nan), acc))
    return acc.astype(a.dtype)


@fast_dot.defjvp
def _fast_dot_jvp(chunk, dtype, promote, primals, tangents):
    a, b = primals
    ta, tb = tangents
    out = fast_dot(a, b, chunk, dtype, promote)
    return out, lax.dot_general(ta, b, _DIMS) + lax.dot_general(a, tb, _DIMS)
