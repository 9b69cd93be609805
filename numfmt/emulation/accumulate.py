"""Matrix products with a rounded accumulator (tensor-core style accumulation).

``chunked_dot`` computes ``dot_general`` the way hardware with a narrow
accumulator does: the contraction is split into chunks of ``chunk`` terms;
each chunk's products are summed (exactly, when the work dtype holds the
chunk sum: e.g. float8 or float16 inputs with float64 work and modest chunks),
added to the accumulator, and the sum is rounded to the accumulator format::

    acc_0 = 0;  acc_{j+1} = round_acc(acc_j + sum(products of chunk j))

Chunks run in order of increasing contraction index. With ``chunk=1`` this is
a sequential dot product with one accumulator rounding per term.

With ``promote=N`` (a multiple of ``chunk``) the contraction is cut into
groups of N products, in order (the last one may be shorter); each group is
accumulated as above from +0, and at its end its value is added into a
float32 accumulator that starts at +0, rounded to nearest even::

    outer_0 = 0;  outer_{g+1} = round_float32(outer_g + acc of group g)

as FP8 GEMMs on Hopper GPUs promote the tensor core's limited-precision
partial sums into float32 registers every 128 products (DeepSeek-V3
technical report, 2024, section 3.3.2).

Each step's ``acc + chunk sum`` is rounded to odd in the work dtype where
the accumulator's rounding is not round to nearest, so that its rounding
into the accumulator format is one correct rounding, and an exact zero gets
IEEE 754's sign (toward_negative: -0 unless both ``acc`` and the chunk sum
are +0, a chunk sum being +0 when each of its products is); see
:mod:`numfmt.emulation.sums`. The accumulator starts at +0.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

from numfmt.core import xp as _xp
from numfmt.core.random import derive_words
from numfmt.core.rounding import Rounding
from numfmt.emulation.float32_accum import fast_dot, promotion_groups, sums_dtype
from numfmt.emulation.sums import add_to_odd, all_terms_plus_zero, is_plus_zero, needs_odd, toward_negative_zero

__all__ = ["chunked_dot"]


def _to_bmk(x, batch, contract):
    """Transpose ``x`` to (batch..., free..., contract...) and reshape to (B, F, K)."""
    free = [d for d in range(x.ndim) if d not in batch and d not in contract]
    x = jnp.transpose(x, (*batch, *free, *contract))
    free_shape = list(x.shape[len(batch) : len(batch) + len(free)])
    k = math.prod(x.shape[len(batch) + len(free) :])  # explicit: -1 is ambiguous when B * F = 0
    return x.reshape(math.prod(x.shape[: len(batch)]), math.prod(free_shape), k), free_shape


def chunked_dot(lhs, rhs, dimension_numbers, chunk: int, round_acc, key=None, rounding=None, formats=None,
                promote=None, round_outer=None):  # fmt: skip
    """``dot_general(lhs, rhs)`` accumulated in chunks, rounding after each.

    Args:
      lhs, rhs: arrays of the work dtype (the products and chunk sums are
        computed in it).
      dimension_numbers: ``dot_general``'s ``((lc, rc), (lb, rb))``.
      chunk: terms summed before each accumulator rounding (>= 1).
      round_acc: ``round_acc(acc, words) -> acc`` rounds into the accumulator
        format; ``words`` is None or the step's seed words
        (``derive_words(key, step)``, ``step`` counted within a promotion group).
      key: None, or four seed words for stochastic accumulator rounding.
      rounding: the rounding ``round_acc`` applies (None: round to nearest):
        each step's sum is rounded to odd for the modes that need it, and
        an exact zero gets that mode's sign.
      formats: None, or ``(input format, accumulator format)``: with them a
        float32 accumulator in round to nearest even takes the float32 fast
        path where it is exact (:mod:`numfmt.emulation.float32_accum`).
      promote: None, or the products per promotion group (a multiple of ``chunk``).
      round_outer: with ``promote``, ``round_outer(x) -> x`` rounds the outer
        accumulator to float32 (round to nearest even).

    Returns:
      The result in ``dot_general``'s output layout (batch, lhs free, rhs free).
    """
    (lc, rc), (lb, rb) = dimension_numbers
    a, lfree = _to_bmk(lhs, list(lb), list(lc))
    b, rfree = _to_bmk(rhs, list(rb), list(rc))
    out_shape = [*(lhs.shape[d] for d in lb), *lfree, *rfree]
    k = a.shape[-1]
    fast = None if formats is None else sums_dtype(formats[0], formats[1], rounding, chunk, k)
    if fast is not None:
        return fast_dot(a, b, chunk, fast, promote).reshape(out_shape)
    if promote is None:
        return _accumulate(a, b, chunk, round_acc, key, rounding).reshape(out_shape)
    groups, batch = max(1, -(-k // promote)), a.shape[0]
    a, b = promotion_groups(a, groups, promote), promotion_groups(b, groups, promote)
    inner = _accumulate(a, b, chunk, round_acc, key, rounding)
    inner = inner.reshape(groups, batch, *inner.shape[1:])  # (G, B, M, N)

    def promotion(outer, part):
        return round_outer(add_to_odd(outer, part)), None  # round to odd, then one rounding to float32

    return lax.scan(promotion, jnp.zeros(inner.shape[1:], inner.dtype), inner)[0].reshape(out_shape)


def _accumulate(a, b, chunk, round_acc, key, rounding):
    """The chunked accumulation of ``a`` (B, M, K) and ``b`` (B, N, K) -> (B, M, N), on the general path."""
    k = a.shape[-1]
    steps = max(1, -(-k // chunk))
    pad = steps * chunk - k
    if pad:
        a = jnp.pad(a, ((0, 0), (0, 0), (0, pad)))
        b = jnp.pad(b, ((0, 0), (0, 0), (0, pad)))
    a = a.reshape(a.shape[0], a.shape[1], steps, chunk)
    b = b.reshape(b.shape[0], b.shape[1], steps, chunk)
    if chunk == 1:  # (steps, B, M, N): the products themselves (a dot of one term may turn -0 into +0)
        partial = jnp.moveaxis(a[..., 0], 2, 0)[:, :, :, None] * jnp.moveaxis(b[..., 0], 2, 0)[:, :, None, :]
        plus = is_plus_zero(partial) if rounding is Rounding.TOWARD_NEGATIVE else None
    else:  # (B, steps, M, N): the chunk sums, each an ordinary dot of `chunk` terms.
        dims = (((3,), (3,)), ((0, 2), (0, 2)))
        partial = jnp.moveaxis(lax.dot_general(a, b, dims, preferred_element_type=a.dtype), 1, 0)
        plus = None
        if rounding is Rounding.TOWARD_NEGATIVE:  # XLA's exact zero is +0: is every product of the chunk +0?
            count = lambda u, v: lax.dot_general(u, v, dims, preferred_element_type=jnp.float32)  # noqa: E731
            plus = (partial == 0) & jnp.moveaxis(all_terms_plus_zero(count, a, b), 1, 0)

    def step(carry, xs):
        acc, i = carry
        part, part_plus = xs
        step_key = None if key is None else derive_words(_xp.jax_namespace(), key, i)
        total = add_to_odd(acc, part) if rounding is not None and needs_odd(rounding) else acc + part
        if rounding is Rounding.TOWARD_NEGATIVE:
            total = toward_negative_zero(total, is_plus_zero(acc) & part_plus)
        return (round_acc(total, step_key), i + 1), None

    init = (jnp.zeros(partial.shape[1:], partial.dtype), jnp.zeros((), jnp.int32))
    (acc, _), _ = lax.scan(step, init, (partial, plus))
    return acc
