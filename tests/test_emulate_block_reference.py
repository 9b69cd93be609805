"""emulate's block-format matmul inputs against a reference written from the format definitions.

The reference does not call numfmt: each operand is quantized here in NumPy
(ml_dtypes only for the element/scale casts, float64 input, one rounding),
from the OCP MX v1.0 rules (blocks of 32, E8M0 scale
``2**(floor(log2 amax) - emax_elem)``, elements RNE saturated), the NVFP4
two-level rule (float32 tensor scale ``448 * 6 / amax``, e4m3 block scales
over blocks of 16, e2m1 elements) and symmetric int8 per channel
(``s = RN_f32(amax / 127)``, ``q = clamp(RNE(x / s), -127, 127)``). Each
operand is blocked along the contraction of its own product: for
``x @ W`` along ``x``'s last and ``W``'s first axis; in
``emulate(jax.grad(f))`` the backward products ``g @ W.T`` (over the output
features) and ``x.T @ g`` (over the batch) block ``W`` along its output axis
and ``x`` and ``g`` along the batch, as MX training does (each GEMM's
operands quantized along its own reduction). A convolution's operands are
blocked along the input channels of each tap. Products are summed exactly
(Veltkamp products and ``math.fsum``) and rounded once to float32.
"""

import math

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax import lax

import numfmt

POLICY = "compute=float32,matmul_in={}"
FORMATS = ["mxfp8_e4m3", "mxfp4_e2m1", "nvfp4", "int8_per_channel"]
_MX = {"mxfp8_e4m3": (ml_dtypes.float8_e4m3fn, 448.0, 8), "mxfp4_e2m1": (ml_dtypes.float4_e2m1fn, 6.0, 2)}


def bits(a):
    return np.asarray(a, np.float32).view(np.uint32)


def _cast(v, dtype, top):
    """``v`` (float64) rounded to nearest even into ``dtype``, saturated at ``+-top``."""
    return np.clip(v, -top, top).astype(dtype).astype(np.float64)


def _mx(x, dtype, top, emax, block=32):
    """Rows of ``x`` (last axis = contraction) quantized to MX, blocks of ``block`` (zero padded)."""
    k = x.shape[-1]
    pad = -k % block
    xb = np.pad(x.astype(np.float64), [(0, 0)] * (x.ndim - 1) + [(0, pad)])
    xb = xb.reshape(*x.shape[:-1], (k + pad) // block, block)
    amax = np.abs(xb).max(-1, keepdims=True)
    e = np.frexp(amax)[1] - 1 - emax  # floor(log2 amax) from the exponent bits
    e = np.where(amax == 0, -127, np.clip(e, -127, 127))
    scale = np.ldexp(1.0, e)
    q = _cast(xb / scale, dtype, top) * scale
    return q.reshape(*x.shape[:-1], k + pad)[..., :k]


def _nvfp4(x, block=16):
    """Rows of float32 ``x`` quantized to NVFP4: tensor scale over all of ``x``, e4m3 scales per block."""
    x = x.astype(np.float32)
    amax_t = float(np.abs(x).max())
    g = np.float64(np.float32(448.0 * 6.0 / amax_t)) if amax_t > 0 else 1.0
    k = x.shape[-1]
    pad = -k % block
    xb = np.pad(x.astype(np.float64), [(0, 0)] * (x.ndim - 1) + [(0, pad)])
    xb = xb.reshape(*x.shape[:-1], (k + pad) // block, block)
    s = _cast(np.abs(xb).max(-1, keepdims=True) * g / 6.0, ml_dtypes.float8_e4m3fn, 448.0)
    q = np.where(s == 0, 0.0, _cast(xb * g / np.where(s == 0, 1.0, s), ml_dtypes.float4_e2m1fn, 6.0))
    out = (q * s / g).astype(np.float32).astype(np.float64)  # results rounded to the operand's dtype
    return out.reshape(*x.shape[:-1], k + pad)[..., :k]


def _int8_rows(x):
    """Rows of ``x`` quantized to symmetric int8, one float32 scale per row."""
    x = x.astype(np.float64)
    amax = np.abs(x).max(-1, keepdims=True)
    s = (amax / 127.0).astype(np.float32).astype(np.float64)
    q = np.clip(np.rint(x / np.where(s == 0, 1.0, s)), -127, 127)
    return np.where(s == 0, 0.0, q) * s


def quantize(x, fmt, axis):
    """``x`` quantized to ``fmt`` in blocks along ``axis`` (int8_per_channel: one scale per row along it)."""
    moved = np.moveaxis(np.asarray(x), axis, -1)
    if fmt in _MX:
        out = _mx(moved, *_MX[fmt])
    elif fmt == "nvfp4":
        out = _nvfp4(moved)
    else:
        out = _int8_rows(moved)
    return np.moveaxis(out, -1, axis)


def _split(a):
    """Veltkamp: ``a = hi + lo`` with 26-bit halves, so products of halves are exact in float64."""
    c = a * 134217729.0  # 2**27 + 1
    hi = c - (c - a)
    return hi, a - hi


def exact_matmul(a, b):
    """``a @ b`` (float64, 2-D) summed exactly and rounded once to float32."""
    ah, al = _split(a)
    bh, bl = _split(b)
    out = np.empty((a.shape[0], b.shape[1]), np.float32)
    for i in range(a.shape[0]):
        terms = np.concatenate([(p[i][:, None] * q).reshape(-1, q.shape[1]) for p in (ah, al) for q in (bh, bl)])
        for j in range(b.shape[1]):
            out[i, j] = _round32(terms[:, j])
    return out


def _round32(terms):
    """The exact sum of float64 ``terms`` rounded to nearest even float32."""
    s = math.fsum(terms)
    r = math.fsum([*terms, -s])  # the sign of the exact sum's remainder past s
    f = np.float32(s)
    if float(f) != s and r != 0:  # s may be a float32 tie the remainder breaks
        other = np.nextafter(f, np.float32(np.inf) if float(f) < s else np.float32(-np.inf))
        if float(other) + float(f) == 2 * s and (r > 0) == (float(other) > float(f)):
            f = other
    return f


def mlp_data(seed=0, n=8, k=64, m=48):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, k)).astype(np.float32)
    w = (rng.standard_normal((k, m)) / 8).astype(np.float32)
    return x, w


@pytest.mark.parametrize("fmt", FORMATS)
def test_dense_forward_equals_the_reference(fmt):
    x, w = mlp_data()
    got = jax.jit(numfmt.emulate(jnp.matmul, POLICY.format(fmt)))(x, w)
    want = exact_matmul(quantize(x, fmt, 1), quantize(w, fmt, 0))
    np.testing.assert_array_equal(bits(got), bits(want))


def test_the_reference_quantizers_give_the_spec_vectors():
    # /work/shared/FORMATS.md "Block vectors": the reference itself, checked against published values
    v = np.array([1, -2, 3, 0.5, 0.3, -7, 100, 0.01], np.float32)
    np.testing.assert_array_equal(quantize(v, "mxfp8_e4m3", 0), [1, -2, 3, 0.5, 0.3125, -7, 96, 0.009765625])
    np.testing.assert_array_equal(quantize(v, "mxfp4_e2m1", 0), [0, -0.0, 0, 0, 0, -8, 96, 0])
    np.testing.assert_array_equal(quantize(np.array([500, 1, -3], np.float32), "mxfp8_e4m3", 0), [448, 1, -3])
    np.testing.assert_array_equal(quantize(np.array([7, 1, -0.6], np.float32), "mxfp4_e2m1", 0), [6, 1, -0.5])
    got = quantize(np.array([10, -5, 1, 0.8, 2.4], np.float32), "nvfp4", 0)
    g = np.float64(np.float32(2688 / 10))  # block scale 0x7E = 448: codes [6, -3, 0.5, 0.5, 1.5] x 448 / g
    np.testing.assert_array_equal(got, (np.array([6, -3, 0.5, 0.5, 1.5]) * 448 / g).astype(np.float32))
    np.testing.assert_array_equal(exact_matmul(np.array([[1.0, 2.0**-60]]), np.array([[1.0], [1.0]])), [[1.0]])


@pytest.mark.parametrize("fmt", FORMATS)
def test_batched_einsum_equals_the_reference(fmt):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 5, 48)).astype(np.float32)
    b = (rng.standard_normal((3, 48, 7)) * 4).astype(np.float32)
    got = jax.jit(numfmt.emulate(lambda p, q: jnp.einsum("bij,bjk->bik", p, q), POLICY.format(fmt)))(a, b)
    qa, qb = quantize(a, fmt, 2), quantize(b, fmt, 1)  # NVFP4: one tensor scale over all batches
    want = np.stack([exact_matmul(qa[i], qb[i]) for i in range(3)])
    np.testing.assert_array_equal(bits(got), bits(want))


def _patches(x, kh, kw):
    """(N, H, W, C) -> (N * Ho * Wo, kh * kw * C): VALID, stride 1, taps outer, channels inner."""
    n, h, w, c = x.shape
    ho, wo = h - kh + 1, w - kw + 1
    p = np.stack([x[:, a : a + ho, b : b + wo, :] for a in range(kh) for b in range(kw)], axis=3)
    return p.reshape(n * ho * wo, kh * kw * c), (n, ho, wo)


def _conv(xq, wq):
    """Exact NHWC x HWIO VALID convolution of quantized operands, rounded once to float32."""
    kh, kw, c, o = wq.shape
    p, (n, ho, wo) = _patches(xq, kh, kw)
    return exact_matmul(p, wq.reshape(kh * kw * c, o)).reshape(n, ho, wo, o)


def _kernel(w, fmt, out_axis, in_axis):
    """A conv kernel quantized: blocks along ``in_axis`` (the channels of one tap); per channel: one scale
    per ``out_axis`` index over the taps and ``in_axis``."""
    if fmt != "int8_per_channel":
        return quantize(w, fmt, in_axis)
    moved = np.moveaxis(w, out_axis, 0)
    return np.moveaxis(quantize(moved.reshape(moved.shape[0], -1), fmt, 1).reshape(moved.shape), 0, out_axis)


def conv_data(seed=2):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 6, 6, 40)).astype(np.float32)  # 40 channels: a full and a short MX block
    w = (rng.standard_normal((3, 3, 40, 8)) / 16).astype(np.float32)
    return x, w


def conv(x, w):
    return lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_conv_forward_equals_the_reference_blocked_along_input_channels(fmt):
    x, w = conv_data()
    got = jax.jit(numfmt.emulate(conv, POLICY.format(fmt)))(x, w)
    want = _conv(quantize(x, fmt, 3), _kernel(w, fmt, 3, 2))
    np.testing.assert_array_equal(bits(got), bits(want))


def mlp(x, w1, w2):
    return 0.5 * jnp.sum((jax.nn.relu(x @ w1) @ w2) ** 2)


@pytest.mark.parametrize("fmt", FORMATS)
def test_emulated_gradient_of_an_mlp_quantizes_each_backward_product_along_its_own_contraction(fmt):
    x, w1 = mlp_data(3, 8, 64, 64)
    w2 = (np.random.default_rng(4).standard_normal((64, 16)) / 8).astype(np.float32)
    got = jax.jit(numfmt.emulate(jax.grad(mlp, argnums=(0, 1, 2)), POLICY.format(fmt)))(x, w1, w2)

    def mm(a, b, a_axis, b_axis):  # a @ b, each operand quantized along the given axis (its contraction)
        return exact_matmul(quantize(a, fmt, a_axis), quantize(b, fmt, b_axis)).astype(np.float64)

    h = mm(x, w1, 1, 0)
    act = np.maximum(h, 0.0)
    g = mm(act, w2, 1, 0)  # d loss / d out = out
    dw2 = mm(act.T, g, 1, 0)  # over the batch: act and g blocked along the batch
    gh = mm(g, w2.T, 1, 0) * (h > 0)  # over the output features: w2 blocked along its output axis
    dw1 = mm(x.T, gh, 1, 0)
    dx = mm(gh, w1.T, 1, 0)
    for got_i, want_i in zip(got, (dx, dw1, dw2), strict=True):
        np.testing.assert_array_equal(bits(got_i), bits(want_i))


def conv_loss(x, w):
    return 0.5 * jnp.sum(conv(x, w) ** 2)


@pytest.mark.parametrize("fmt", FORMATS)
def test_emulated_gradient_of_a_conv_blocks_along_the_transposed_convs_input_features(fmt):
    # input gradient: a conv of the padded cotangent with the flipped kernel over the output channels
    # (blocks along O, per tap); kernel gradient: a conv whose input features are the batch (blocks along N,
    # per position: short blocks of N = 2, not the N x Ho x Wo flattening a GEMM-lowered wgrad would use)
    x, w = conv_data(5)
    got_dx, got_dw = jax.jit(numfmt.emulate(jax.grad(conv_loss, argnums=(0, 1)), POLICY.format(fmt)))(x, w)
    g = _conv(quantize(x, fmt, 3), _kernel(w, fmt, 3, 2)).astype(np.float64)
    kh, kw, c, o = w.shape
    gq = np.pad(quantize(g, fmt, 3), [(0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)])
    wq = _kernel(w, fmt, 2, 3)[::-1, ::-1].transpose(0, 1, 3, 2)  # (kh, kw, O, C): flipped, O contracted
    np.testing.assert_array_equal(bits(got_dx), bits(_conv(gq, wq)))
    xq = quantize(x, fmt, 0)
    if fmt == "int8_per_channel":  # the kernel operand g: one scale per output channel over N, Ho, Wo
        gq = quantize(g.reshape(-1, o), fmt, 0).reshape(g.shape)
    else:
        gq = quantize(g, fmt, 0)
    n, ho, wo, _ = g.shape
    want = np.stack(
        [exact_matmul(xq[:, a : a + ho, b : b + wo, :].reshape(-1, c).T, gq.reshape(-1, o))
         for a in range(kh) for b in range(kw)]
    ).reshape(kh, kw, c, o)  # fmt: skip
    np.testing.assert_array_equal(bits(got_dw), bits(want))


@pytest.mark.parametrize("fmt", FORMATS)
def test_gradient_of_the_emulated_function_quantizes_each_backward_product_too(fmt):
    # jax.grad(emulate(f)) emulates the backward products as emulate(jax.grad(f)) does: each quantizes its
    # operands along its own contraction, d/dx sum(c * (x @ w)) = Q(c) @ Q(w.T) and d/dw = Q(x.T) @ Q(c)
    # (c is the cotangent of x @ w), each summed exactly and rounded once to float32
    x, w = mlp_data(6, 8, 64, 48)
    c = np.random.default_rng(7).standard_normal((8, 48)).astype(np.float32)
    loss = lambda a, b: jnp.sum(c * (a @ b))  # noqa: E731
    dx, dw = jax.jit(jax.grad(numfmt.emulate(loss, POLICY.format(fmt)), argnums=(0, 1)))(x, w)

    def mm(a, b):
        return exact_matmul(quantize(a, fmt, 1), quantize(b, fmt, 0))

    np.testing.assert_array_equal(bits(dx), bits(mm(c, w.T)))
    np.testing.assert_array_equal(bits(dw), bits(mm(x.T, c)))
    inner = jax.jit(numfmt.emulate(jax.grad(loss, argnums=(0, 1)), POLICY.format(fmt)))(x, w)
    np.testing.assert_array_equal(bits(dx), bits(inner[0]))
    np.testing.assert_array_equal(bits(dw), bits(inner[1]))


@pytest.mark.parametrize("fmt", FORMATS)
def test_block_quantization_has_an_identity_jacobian(fmt):
    # the element holding a block's amax (which sets the scale) included: no scale-dependent term
    x = mlp_data(8, 2, 48, 1)[0]
    blocked = numfmt.parse(fmt)  # blocks along axis -1; int8_per_channel: one scale per row
    blocked = blocked.for_contraction(1, x.shape) if hasattr(blocked, "for_contraction") else blocked
    jac = jax.jacfwd(lambda v: numfmt.chop(v, blocked))(x)
    np.testing.assert_array_equal(np.asarray(jac).reshape(x.size, x.size), np.eye(x.size))
