"""Block and scaled-integer matmul_in on convolutions and multi-axis contractions, bit for bit.

Reference: the operands quantized with ``numfmt.chop`` along the documented
axes (numfmt/emulation/contraction.py, docs/emulate.md), multiplied in float64 (exact
for these inputs) and rounded once to the output format.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import numfmt
from numfmt import chop

FORMATS = ["mxfp8_e4m3", "mxfp4_e2m1", "nvfp4", "int8_per_channel", "int4_g32", "int8_per_tensor"]


def bits(a):
    return np.asarray(a).view(np.uint32)


def along(fmt, axis, shape):
    """``fmt`` blocked along ``axis`` of an operand of ``shape`` (scaled integers: per-channel -> one group)."""
    fmt = numfmt.parse(fmt)
    if hasattr(fmt, "for_contraction"):
        return fmt.for_contraction(axis, shape)
    return dataclasses.replace(fmt, axis=axis)


def quantize(x, fmt, axis):
    """``x`` (float32) quantized to block format ``fmt`` along ``axis`` (float64 result)."""
    f = numfmt.parse(fmt)
    wide = np.float32 if getattr(f, "pow2_scale", True) is False else np.float64  # NVFP4: the operand's dtype
    return chop(x.astype(wide), along(fmt, axis, x.shape)).astype(np.float64)


@pytest.mark.parametrize("fmt", FORMATS)
def test_dot_general_with_two_contracting_dims_and_a_batch_dim(fmt):
    # (batch, seq, heads, head_dim) x (batch, heads, head_dim, out): contract heads and head_dim
    a = (np.random.default_rng(44).standard_normal((2, 5, 4, 16)) * 3).astype(np.float32)
    b = (np.random.default_rng(45).standard_normal((2, 4, 16, 3)) * 3).astype(np.float32)
    dn = (((2, 3), (1, 2)), ((0,), (0,)))
    swapped = (((3, 2), (2, 1)), ((0,), (0,)))  # the same product, pairs listed the other way round
    policy = f"compute=float32,matmul_in={fmt}"
    got = jax.jit(numfmt.emulate(lambda p, q: lax.dot_general(p, q, dn), policy))(a, b)
    got2 = jax.jit(numfmt.emulate(lambda p, q: lax.dot_general(p, q, swapped), policy))(a, b)
    # blocks run along heads x head_dim flattened in the left operand's axis order (heads outer)
    qa = quantize(a.reshape(2, 5, 64), fmt, 2).reshape(a.shape)
    qb = quantize(b.transpose(0, 3, 1, 2).reshape(2, 3, 64), fmt, 2).reshape(2, 3, 4, 16).transpose(0, 2, 3, 1)
    want = chop(np.einsum("bshd,bhdo->bso", qa, qb), "float32").astype(np.float32)
    np.testing.assert_array_equal(bits(got), bits(want))
    np.testing.assert_array_equal(bits(got2), bits(want))


def test_flax_dense_general_output_projection():
    # flax attention's out projection: DenseGeneral(features, axis=(-2, -1)) contracts (heads, head_dim)
    x = (np.random.default_rng(61).standard_normal((3, 7, 2, 32)) * 2).astype(np.float32)
    k = (np.random.default_rng(62).standard_normal((2, 32, 8)) * 0.3).astype(np.float32)
    dense = lambda x, k: lax.dot_general(x, k, (((2, 3), (0, 1)), ((), ())))  # noqa: E731
    got = jax.jit(numfmt.emulate(dense, "compute=bfloat16,matmul_in=mxfp8_e4m3,out=float32"))(x, k)
    qx = quantize(x.reshape(3, 7, 64), "mxfp8_e4m3", 2)
    qk = quantize(k.reshape(64, 8), "mxfp8_e4m3", 0)
    np.testing.assert_array_equal(bits(got), bits(chop(qx @ qk, "float32").astype(np.float32)))


def conv(x, w, groups=1, dn=("NHWC", "HWIO", "NHWC")):
    return lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn, feature_group_count=groups)


@pytest.mark.parametrize("fmt", FORMATS)
def test_conv_blocks_along_input_features(fmt):
    x = (np.random.default_rng(76).standard_normal((2, 5, 5, 40)) * 2).astype(np.float32)
    w = (np.random.default_rng(77).standard_normal((3, 3, 40, 6)) * 0.5).astype(np.float32)
    got = jax.jit(numfmt.emulate(conv, f"compute=float32,matmul_in={fmt}"))(x, w)
    qx = quantize(x, fmt, 3)  # blocks along C; a per-channel scale per (n, h, w) position
    if getattr(numfmt.parse(fmt), "granularity", None) == "channel":  # one scale per output feature
        qw = quantize(w.transpose(3, 0, 1, 2).reshape(6, -1), fmt, 1).reshape(6, 3, 3, 40).transpose(1, 2, 3, 0)
    else:
        qw = quantize(w, fmt, 2)  # blocks along I
    want = chop(np.asarray(conv(jnp.asarray(qx), jnp.asarray(qw))), "float32").astype(np.float32)
    np.testing.assert_array_equal(bits(got), bits(want))


def test_grouped_conv_blocks_stay_inside_a_group():
    # 2 groups of 24 channels: input blocks are [0, 24) and [24, 48), not [0, 32) and [32, 48)
    x = (np.random.default_rng(90).standard_normal((1, 4, 4, 48)) * 2).astype(np.float32)
    w = (np.random.default_rng(91).standard_normal((3, 3, 24, 4)) * 0.5).astype(np.float32)
    f = lambda x, w: conv(x, w, groups=2)  # noqa: E731
    got = jax.jit(numfmt.emulate(f, "compute=float32,matmul_in=mxfp8_e4m3"))(x, w)
    qx = quantize(x.reshape(1, 4, 4, 2, 24), "mxfp8_e4m3", 4).reshape(x.shape)
    qw = quantize(w, "mxfp8_e4m3", 2)
    want = chop(np.asarray(f(jnp.asarray(qx), jnp.asarray(qw))), "float32").astype(np.float32)
    np.testing.assert_array_equal(bits(got), bits(want))


def test_conv_nchw_with_the_chunked_accumulator_and_its_gradient():
    x = np.random.default_rng(101).standard_normal((2, 32, 6, 6)).astype(np.float32)
    w = (np.random.default_rng(102).standard_normal((8, 32, 3, 3)) * 0.3).astype(np.float32)
    f = lambda x, w: conv(x, w, dn=("NCHW", "OIHW", "NCHW"))  # noqa: E731
    policy = "compute=bfloat16,matmul_in=mxfp8_e4m3,accum=float64,chunk=32,out=float32"
    got = jax.jit(numfmt.emulate(f, policy))(x, w)
    qx, qw = quantize(x, "mxfp8_e4m3", 1), quantize(w, "mxfp8_e4m3", 1)
    want = chop(np.asarray(f(jnp.asarray(qx), jnp.asarray(qw))), "float32").astype(np.float32)
    np.testing.assert_array_equal(bits(got), bits(want))  # float64 accumulation: exact here
    loss = lambda w: jnp.sum(f(jnp.asarray(x), w) ** 2)  # noqa: E731
    g = jax.jit(jax.grad(numfmt.emulate(loss, "compute=bfloat16,matmul_in=mxfp8_e4m3,out=float32")))(w)
    assert np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).max() > 0
