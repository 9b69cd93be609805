"""Matrix products with a rounded accumulator (tensor-core style accumulation).

``chunked_dot`` computes ``dot_general`` the way hardware with a narrow
accumulator does: the contraction is split into chunks of ``chunk`` terms;
each chunk's products are summed (exactly, when the work dtype holds the
chunk sum: e.g. float8 or float16 inputs with float64 work and modest chunks),
added to the accumulator, and the sum is rounded to the accumulator format::

    acc_0 = 0;  acc_{j+1} = round_acc(acc_j + sum(products of chunk j))

Chunks run in order of increasing contraction index. With ``chunk=1`` this is
a sequential dot product with one accumulator rounding per term.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

from numfmt.core import xp as _xp
from numfmt.core.random import derive_words

__all__ = ["chunked_dot"]


def _to_bmk(x, batch, contract):
    """Transpose ``x`` to (batch..., free..., contract...) and reshape to (B, F, K)."""
    free = [d for d in range(x.ndim) if d not in batch and d not in contract]
    x = jnp.transpose(x, (*batch, *free, *contract))
    free_shape = list(x.shape[len(batch) : len(batch) + len(free)])
    k = math.prod(x.shape[len(batch) + len(free) :])  # explicit: -1 is ambiguous when B * F = 0
    return x.reshape(math.prod(x.shape[: len(batch)]), math.prod(free_shape), k), free_shape


def chunked_dot(lhs, rhs, dimension_numbers, chunk: int, round_acc, key=None):
    """``dot_general(lhs, rhs)`` accumulated in chunks, rounding after each.

    Args:
      lhs, rhs: arrays of the work dtype (the products and chunk sums are
        computed in it).
      dimension_numbers: ``dot_general``'s ``((lc, rc), (lb, rb))``.
      chunk: terms summed before each accumulator rounding (>= 1).
      round_acc: ``round_acc(acc, words) -> acc`` rounds into the accumulator
        format; ``words`` is None or the step's seed words
        (``derive_words(key, step)``).
      key: None, or four seed words for stochastic accumulator rounding.

    Returns:
      The result in ``dot_general``'s output layout (batch, lhs free, rhs free).
    """
    (lc, rc), (lb, rb) = dimension_numbers
    a, lfree = _to_bmk(lhs, list(lb), list(lc))
    b, rfree = _to_bmk(rhs, list(rb), list(rc))
    batch_shape = [lhs.shape[d] for d in lb]
    k = a.shape[-1]
    steps = max(1, -(-k // chunk))
    pad = steps * chunk - k
    if pad:
        a = jnp.pad(a, ((0, 0), (0, 0), (0, pad)))
        b = jnp.pad(b, ((0, 0), (0, 0), (0, pad)))
    a = a.reshape(a.shape[0], a.shape[1], steps, chunk)
    b = b.reshape(b.shape[0], b.shape[1], steps, chunk)
    # (B, steps, M, N): the chunk sums, each an ordinary dot of `chunk` terms.
    partial = lax.dot_general(a, b, (((3,), (3,)), ((0, 2), (0, 2))), preferred_element_type=lhs.dtype)
    partial = jnp.moveaxis(partial, 1, 0)

    def step(carry, part):
        acc, i = carry
        step_key = None if key is None else derive_words(_xp.jax_namespace(), key, i)
        return (round_acc(acc + part, step_key), i + 1), None

    init = (jnp.zeros(partial.shape[1:], partial.dtype), jnp.zeros((), jnp.int32))
    (acc, _), _ = lax.scan(step, init, partial)
    return acc.reshape(*batch_shape, *lfree, *rfree)
