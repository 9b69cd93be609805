"""Convolutions with a rounded accumulator, as an implicit GEMM over ``chunked_dot``.

``chunked_conv`` computes ``lax.conv_general_dilated`` the way a tensor core
running an implicit-GEMM convolution does: each output element is a dot
product of length ``K = kernel taps x input channels per group`` and that dot
product is accumulated by :func:`numfmt.emulation.accumulate.chunked_dot` (chunks of
``chunk`` terms summed exactly, the accumulator rounded after each chunk).

Order of the K terms (the chunk boundaries follow it): kernel taps outer,
input channels inner (fastest), as in the NHWC implicit GEMM. Taps run in
row-major order over the kernel's spatial dimensions, taken in the order the
dimension numbers list them (``lhs_spec[2:]`` / ``rhs_spec[2:]``); tap
``(t_1, ..., t_d)`` reads input position ``o_i * stride_i + t_i * rhs_dilation_i``
of the dilated, padded input (no kernel flip: a cross-correlation, as XLA's).
So with ``chunk <= C_in`` per group a chunk holds consecutive input channels
of one tap.

Groups: with ``feature_group_count = G`` the input channels and output
features are cut into G consecutive groups, one GEMM each; with
``batch_group_count = G`` (the weight gradient of a grouped convolution) the
batch is cut into G consecutive slices, as XLA defines it: output feature
``o`` of group ``g = o // (O / G)`` reads batch slice ``g``.

The patches are built by padding (``lax.pad``: edge padding, possibly
negative, and interior padding for ``lhs_dilation``) and strided slices, one
per kernel tap (a gather where a kernel dimension has more than 16 taps, so
the program's size does not grow with the kernel), pure data movement:
every value, including -0, subnormals, infinities and NaN payloads, is
copied. ``lax.conv_general_dilated_patches`` is not used: it is a
convolution with a 0/1 kernel, so an infinity or NaN in one tap spreads NaN
(``0 * inf``) into the other taps of its patch, -0 becomes +0, and XLA:CPU
flushes float32 subnormals to zero.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from numfmt.emulation.accumulate import chunked_dot

__all__ = ["chunked_conv"]

# Kernels with more taps along one dimension gather their patches (one op) instead of slicing per tap.
_MAX_SLICED_TAPS = 16


def _patches(x, kernel, params):
    """Canonical (N, C, spatial...) input -> (N, out spatial..., taps..., C), values copied."""
    pads = [(lo, hi, d - 1) for (lo, hi), d in zip(params["padding"], params["lhs_dilation"], strict=True)]
    x = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), (0, 0, 0), *pads])
    out_shape = []
    for i, (k, stride, rate) in enumerate(zip(kernel, params["window_strides"], params["rhs_dilation"], strict=True)):
        axis = 2 + 2 * i  # dims already done became (out, tap) pairs
        span = (k - 1) * rate + 1
        n_out = max(0, (x.shape[axis] - span) // stride + 1) if k else 0
        if n_out and k <= _MAX_SLICED_TAPS:  # one strided slice per tap
            last = stride * (n_out - 1) + 1
            x = jnp.stack([lax.slice_in_dim(x, t * rate, t * rate + last, stride, axis) for t in range(k)], axis + 1)
        elif n_out:  # long kernels: one gather, so the program does not grow with the taps
            where = np.arange(n_out)[:, None] * stride + np.arange(k)[None, :] * rate
            x = jnp.take(x, jnp.asarray(where, np.int32), axis=axis, mode="clip")  # in range by construction
        else:
            x = jnp.zeros((*x.shape[:axis], n_out, k, *x.shape[axis + 1 :]), x.dtype)
        out_shape.append(n_out)
    d = len(kernel)
    perm = (0, *(2 + 2 * i for i in range(d)), *(3 + 2 * i for i in range(d)), 1)
    return jnp.transpose(x, perm), out_shape


def chunked_conv(lhs, rhs, params, chunk: int, round_acc, key=None, rounding=None, formats=None, promote=None,
                 round_outer=None):  # fmt: skip
    """``conv_general_dilated(lhs, rhs, **params)`` accumulated in chunks, rounding after each.

    Args:
      lhs, rhs: input and kernel arrays of the work dtype (products and chunk
        sums are computed in it).
      params: the ``conv_general_dilated`` equation's parameters (explicit
        ``padding`` pairs and ``ConvDimensionNumbers``, as in a jaxpr).
      chunk: terms summed before each accumulator rounding (>= 1).
      round_acc: ``round_acc(acc, words) -> acc`` rounds into the accumulator
        format; ``words`` is None or the step's seed words.
      key: None, or four seed words for stochastic accumulator rounding.
      rounding: the accumulator's rounding, for the sum of each step (see
        :func:`numfmt.emulation.accumulate.chunked_dot`); None: round to nearest.
      formats: None, or ``(input format, accumulator format)`` (the float32 fast path, as for chunked_dot).
      promote, round_outer: promotion into a float32 accumulator every
        ``promote`` terms (in the K order above), as for chunked_dot.

    Returns:
      The convolution in the layout of ``params["dimension_numbers"].out_spec``,
      each element accumulated over its K terms in the order given in the
      module docstring (taps outer, input channels inner).
    """
    lhs_spec, rhs_spec, out_spec = params["dimension_numbers"]
    fgroups, bgroups = params["feature_group_count"], params["batch_group_count"]  # XLA: one of them is 1
    groups = fgroups * bgroups
    x = jnp.transpose(lhs, lhs_spec)  # (N, C, spatial...)
    w = jnp.transpose(rhs, rhs_spec)  # (O, C / feature groups, kernel spatial...)
    kernel = w.shape[2:]
    x, out_shape = _patches(x, kernel, params)  # (N, out..., taps..., C)
    n, c, o = x.shape[0] // bgroups, x.shape[-1] // fgroups, w.shape[0]  # per group: batch, channels
    taps, positions = math.prod(kernel), n * math.prod(out_shape)
    # batch group g: the g-th consecutive slice of the batch (XLA's); feature group g: of the channels
    x = x.reshape(bgroups, positions, taps, fgroups, c)
    a = jnp.transpose(x, (0, 3, 1, 2, 4)).reshape(groups, positions, taps * c)
    w = jnp.moveaxis(w, 1, -1)  # (O, kernel..., C / feature groups): taps outer, channels inner
    b = w.reshape(groups, o // groups, taps * c)
    dims = (((2,), (2,)), ((0,), (0,)))
    out = chunked_dot(a, b, dims, chunk, round_acc, key, rounding, formats, promote, round_outer)
    out = out.reshape(groups, n, *out_shape, o // groups)
    out = jnp.moveaxis(out, 0, -2).reshape(n, *out_shape, o)  # feature = g * (O / G) + j
    out = jnp.moveaxis(out, -1, 1)  # canonical (N, O, out...)
    return jnp.transpose(out, [int(d) for d in np.argsort(out_spec)])
