"""Block and scaled-integer matmul inputs of emulate: the axes their blocks run along.

A block format (MX, NVFP4, NF4) or a grouped scaled-integer format as
``matmul_in`` quantizes each operand in blocks along the contraction:

* ``dot_general``: along its contracting dimensions. With several, they are
  flattened row-major in the order of the left operand's axes (the order
  its memory holds them; the right operand's paired dimensions in the same
  order, so both flatten the contraction alike, and the result does not
  depend on the order ``dimension_numbers`` lists the pairs in) and blocks
  run along the flattened product; batch and free dimensions index
  separate blocks.
* ``conv_general_dilated``: along the input-feature dimension of each
  operand (the channels of one kernel tap), within each feature group for
  the input when ``feature_group_count > 1``; a block never spans taps or
  groups. A per-channel scaled integer has one scale per output feature of
  the kernel (its group is the whole kernel input-feature x spatial extent)
  and one per input position (batch and spatial index, and feature group).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp

__all__ = ["operand_layout", "round_blocked"]


def operand_layout(eqn, pos: int, fmt) -> tuple[tuple[int, ...], int]:
    """``(dims, groups)``: operand ``pos``'s blocked axes (flattened in this order) and its group split."""
    if eqn.primitive.name == "dot_general":
        (lc, rc), _ = eqn.params["dimension_numbers"]
        pairs = sorted((int(a), int(b)) for a, b in zip(lc, rc, strict=True))  # the lhs's axis order
        return tuple(p[pos] for p in pairs), 1
    lhs_spec, rhs_spec, _ = eqn.params["dimension_numbers"]
    if pos == 0:
        return (int(lhs_spec[1]),), int(eqn.params["feature_group_count"])
    if getattr(fmt, "granularity", None) == "channel":  # one scale per output feature
        return (*(int(d) for d in rhs_spec[2:]), int(rhs_spec[1])), 1
    return (int(rhs_spec[1]),), 1


def _along(fmt, axis: int, shape):
    along = getattr(fmt, "for_contraction", None)  # scaled integers: per-channel -> one group per row
    return along(axis, shape) if along else dataclasses.replace(fmt, axis=axis)


def round_blocked(x, dims, groups: int, fmt, round_fn):
    """``x`` rounded to block format ``fmt`` blocked along ``dims`` (flattened row-major, split in ``groups``).

    ``round_fn(array, blocked_format, layout)`` rounds an array along the
    format's axis; ``layout`` is None when ``x`` is rounded as it is, else
    ``(dims, groups)`` (the array is a transposed and reshaped ``x``).
    """
    x = jnp.asarray(x)
    if len(dims) == 1 and groups == 1:
        return round_fn(x, _along(fmt, dims[0], x.shape), None)
    rest = [d for d in range(x.ndim) if d not in dims]
    moved = jnp.transpose(x, (*rest, *dims))
    k = math.prod(x.shape[d] for d in dims)
    blocks = moved.reshape(*moved.shape[: len(rest)], groups, k // groups)
    out = round_fn(blocks, _along(fmt, blocks.ndim - 1, blocks.shape), (tuple(dims), groups))
    out = out.reshape(moved.shape)
    inverse = [0] * x.ndim
    for i, d in enumerate((*rest, *dims)):
        inverse[d] = i
    return jnp.transpose(out, inverse)
