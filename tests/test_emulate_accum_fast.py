"""The float32 fast path of accum=float32 (numfmt.emulation.float32_accum) against the general path and an
exact reference loop (Fractions; tests/accum_reference.py), bit for bit."""

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numfmt
import numfmt.emulation.accumulate as accumulate_module
from numfmt import chop
from numfmt.core.rounding import Rounding
from numfmt.emulation.float32_accum import sums_dtype

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # pytest runs with --import-mode=importlib
from accum_reference import reference_matmul, round_f32  # noqa: E402

RNG = np.random.default_rng(0)
F32 = numfmt.parse("float32")


def general_path(monkeypatch):
    """Make chunked_dot (and so chunked_conv) take the general (float64 scan) path."""
    monkeypatch.setattr(accumulate_module, "sums_dtype", lambda *args: None)


def bits(x):
    return np.asarray(x, np.float32).view(np.uint32)


def operands(fmt, shape_a, shape_b, scale=4.0):
    """Values of ``fmt`` with zeros, -0, exact cancellations and repeated values."""
    a = chop(RNG.standard_normal(shape_a) * scale, fmt)
    b = chop(RNG.standard_normal(shape_b) * scale, fmt)
    a.reshape(-1)[::7] = 0.0
    a.reshape(-1)[3::11] = -0.0
    if a.shape[-1] > 4:  # x_0 * y_0 + x_1 * y_1 = 0: the second term cancels the first
        a[..., 1] = -a[..., 0]
        b[..., 1, :] = b[..., 0, :]
    return a.astype(np.float32), b.astype(np.float32)


@pytest.mark.parametrize(
    ("fmt", "chunk", "dtype"),
    [("float8_e4m3fn", 1, jnp.float32), ("float8_e4m3fn", 3, jnp.float64), ("float8_e4m3fn", 16, jnp.float64),
     ("float8_e4m3fn", 40, jnp.float64), ("float8_e5m2", 1, jnp.float32), ("float16", 1, jnp.float32),
     ("float4_e2m1fn", 16, jnp.float32), ("float6_e3m2fn", 3, jnp.float32)],
)  # fmt: skip
def test_fast_path_equals_reference_and_general_path(fmt, chunk, dtype, monkeypatch):
    k = 70
    assert sums_dtype(numfmt.parse(fmt), F32, Rounding.NEAREST_EVEN, chunk, k) == dtype
    a, b = operands(fmt, (5, k), (k, 6), scale=300.0 if fmt == "float16" else 4.0)
    policy = f"compute=float32,matmul_in={fmt},accum=float32,chunk={chunk}"
    fast = jax.jit(numfmt.emulate(jnp.matmul, policy))(a, b)
    want = reference_matmul(a.astype(np.float64), b.astype(np.float64), chunk)
    np.testing.assert_array_equal(bits(fast), bits(want))
    general_path(monkeypatch)
    np.testing.assert_array_equal(bits(fast), bits(numfmt.emulate(jnp.matmul, policy)(a, b)))


@pytest.mark.parametrize("chunk", [1, 3])
def test_ties_and_stagnation_round_to_even(chunk):
    # 256 * 256 = 2**16, 256 of them: 2**24, where float32's spacing is 2; then 1 (a tie: stays 2**24),
    # 1 again, then 3: 2**24 + 3 ties between 2**24 + 2 and 2**24 + 4 -> 2**24 + 4 (even)
    a = np.array([[256.0] * 256 + [1.0, 1.0, 3.0]], np.float32)
    b = np.array([[256.0] * 256 + [1.0, 1.0, 1.0]], np.float32).T
    got = numfmt.emulate(jnp.matmul, f"compute=float32,matmul_in=float8_e4m3fn,accum=float32,chunk={chunk}")(a, b)
    want = reference_matmul(a.astype(np.float64), b.astype(np.float64), chunk)
    np.testing.assert_array_equal(bits(got), bits(want))
    if chunk == 1:
        assert float(got[0, 0]) == 2.0**24 + 4  # exact: 2**24 + 5


def test_long_contraction_with_rounding_and_cancellation(monkeypatch):
    k = 3000
    a = chop(RNG.standard_normal((3, k)) * 100, "e4m3fn").astype(np.float32)
    b = chop(RNG.standard_normal((k, 2)) * 100, "e4m3fn").astype(np.float32)
    a[:, k // 2 :] = -a[:, : k // 2]  # the second half cancels the first, up to the roundings
    f = numfmt.emulate(jnp.matmul, "compute=float32,matmul_in=float8_e4m3fn,accum=float32")
    got = jax.jit(f)(a, b)
    want = reference_matmul(a.astype(np.float64), b.astype(np.float64), 1)
    np.testing.assert_array_equal(bits(got), bits(want))
    exact = a.astype(np.float64) @ b.astype(np.float64)
    assert np.any(want != exact)  # the accumulator rounding is visible
    general_path(monkeypatch)
    np.testing.assert_array_equal(bits(got), bits(jax.jit(f)(a, b)))


def test_signed_zeros_and_specials(monkeypatch):
    a = np.array([[-0.0, -0.0, 0.0], [1.0, -1.0, 0.0], [np.inf, 0.0, 1.0], [np.inf, -np.inf, 1.0],
                  [2.0, np.nan, 1.0], [0.0, 0.0, np.inf]], np.float32)  # fmt: skip
    b = np.array([[1.0, 2.0], [1.0, 2.0], [-1.0, -0.0]], np.float32)
    f = numfmt.emulate(jnp.matmul, "compute=float32,matmul_in=float8_e5m2,accum=float32")
    got = np.asarray(f(a, b))
    np.testing.assert_array_equal(bits(got[:2]), np.zeros((2, 2), np.uint32))  # +0 (from +0, never -0)
    assert np.isposinf(got[2]).all() and np.isnan(got[3:5]).all() and np.isneginf(got[5, 0]) and np.isnan(got[5, 1])
    general_path(monkeypatch)
    np.testing.assert_array_equal(bits(got), bits(f(a, b)))


def test_batch_dims_and_several_contracting_dims(monkeypatch):
    a = chop(RNG.standard_normal((2, 3, 4, 5)) * 4, "e4m3fn").astype(np.float32)  # batch, free, contract (4, 5)
    b = chop(RNG.standard_normal((2, 5, 4, 6)) * 4, "e4m3fn").astype(np.float32)  # batch, contract (5, 4), free
    dims = (((2, 3), (2, 1)), ((0,), (0,)))
    f = lambda x, y: jax.lax.dot_general(x, y, dims)  # noqa: E731
    for chunk in (1, 3):
        g = numfmt.emulate(f, f"compute=float32,matmul_in=float8_e4m3fn,accum=float32,chunk={chunk}")
        got = g(a, b)
        for n in range(2):  # contraction order: lhs dims (2, 3) flattened row-major
            rhs = np.transpose(b[n], (2, 1, 0)).reshape(6, 20).T
            want = reference_matmul(a[n].reshape(3, 20).astype(np.float64), rhs.astype(np.float64), chunk)
            np.testing.assert_array_equal(bits(got[n]), bits(want))
        with monkeypatch.context() as m:
            general_path(m)
            np.testing.assert_array_equal(bits(got), bits(g(a, b)))


@pytest.mark.parametrize("chunk", [1, 5])
def test_convolution(chunk, monkeypatch):
    x = chop(RNG.standard_normal((2, 4, 7, 6)) * 8, "e4m3fn").astype(np.float32)
    w = chop(RNG.standard_normal((6, 2, 3, 3)) * 8, "e4m3fn").astype(np.float32)
    f = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 2), "SAME", feature_group_count=2)  # noqa: E731
    g = numfmt.emulate(f, f"compute=float32,matmul_in=float8_e4m3fn,accum=float32,chunk={chunk}")
    got = jax.jit(g)(x, w)
    general_path(monkeypatch)
    np.testing.assert_array_equal(bits(got), bits(jax.jit(g)(x, w)))


def test_which_policies_take_the_fast_path():
    e4m3, bf16, f16 = (numfmt.parse(n) for n in ("float8_e4m3fn", "bfloat16", "float16"))
    assert sums_dtype(e4m3, F32, Rounding.NEAREST_EVEN, 1, 10**6) == jnp.float32
    assert sums_dtype(bf16, F32, Rounding.NEAREST_EVEN, 1, 8) is None  # products can underflow float32
    assert sums_dtype(F32, F32, Rounding.NEAREST_EVEN, 1, 8) is None  # products are not exact
    assert sums_dtype(f16, F32, Rounding.NEAREST_EVEN, 2, 8) is None  # chunk sums not exact in float64
    assert sums_dtype(e4m3, F32, Rounding.NEAREST_EVEN, 4, 2**17) is None  # nor partial sums, at this length
    assert sums_dtype(e4m3, numfmt.parse("float16"), Rounding.NEAREST_EVEN, 1, 8) is None
    for mode in (Rounding.TOWARD_ZERO, Rounding.TOWARD_NEGATIVE, Rounding.STOCHASTIC, Rounding.NEAREST_AWAY):
        assert sums_dtype(e4m3, F32, mode, 1, 8) is None


def test_directed_rounding_takes_the_general_path():
    # toward_negative: x + (-x) is -0 there; the general path gives it (the fast path would give +0)
    a = np.array([[1.0, -1.0]], np.float32)
    b = np.ones((2, 1), np.float32)
    f = numfmt.emulate(jnp.matmul, "compute=float32,rounding=toward_negative,matmul_in=float8_e4m3fn,accum=float32")
    assert bits(f(a, b))[0, 0] == 0x80000000
    a = np.array([[4096.0, 3.0]], np.float32)  # 2**24 + 3: toward zero 2**24 + 2 (to nearest even: + 4)
    b = np.array([[4096.0], [1.0]], np.float32)
    g = numfmt.emulate(jnp.matmul, "compute=float32,rounding=toward_zero,matmul_in=float16,accum=float32")
    want = reference_matmul(chop(a, "float16").astype(np.float64), b.astype(np.float64), 1,
                            round_acc=lambda v: float(chop(float(v), "float32", "toward_zero")))  # fmt: skip
    np.testing.assert_array_equal(bits(g(a, b)), bits(want))
    assert float(want[0, 0]) == 2.0**24 + 2


def test_gradient_is_that_of_the_unrounded_product(monkeypatch):
    a = chop(RNG.standard_normal((4, 9)), "e4m3fn").astype(np.float32)
    b = chop(RNG.standard_normal((9, 3)), "e4m3fn").astype(np.float32)
    cot = chop(RNG.standard_normal((4, 3)), "e4m3fn").astype(np.float32)
    f = numfmt.emulate(jnp.matmul, "compute=float32,matmul_in=float8_e4m3fn,accum=float32")
    loss = lambda a, b: jnp.sum(f(a, b) * cot)  # noqa: E731
    got = jax.jit(jax.grad(loss, argnums=(0, 1)))(a, b)
    want = (cot.astype(np.float64) @ b.T.astype(np.float64), a.T.astype(np.float64) @ cot.astype(np.float64))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(bits(g), bits(w))  # small exact sums
    general_path(monkeypatch)
    for g, w in zip(got, jax.jit(jax.grad(loss, argnums=(0, 1)))(a, b), strict=True):
        np.testing.assert_array_equal(bits(g), bits(w))


def test_gradient_format_is_the_backward_matmuls_format():
    # the backward matmul of grad(emulate(f)) is emulated: e4m3 inputs (matmul_in, inherited), the float32
    # accumulator (exact here: three products of e4m3 values), output rounded to grad= (its compute format)
    a = jnp.asarray(chop(RNG.standard_normal((4, 9)), "e4m3fn"), jnp.float32)
    b = jnp.asarray(chop(RNG.standard_normal((9, 3)), "e4m3fn"), jnp.float32)
    cot = jnp.asarray(RNG.standard_normal((4, 3)), jnp.float32)
    f = numfmt.emulate(jnp.matmul, "compute=float32,matmul_in=float8_e4m3fn,accum=float32,grad=float8_e5m2")
    ga = jax.grad(lambda a: jnp.sum(f(a, b) * cot))(a)
    rounded = chop(np.asarray(cot, np.float64), "e4m3fn")
    np.testing.assert_array_equal(bits(ga), bits(chop(rounded @ np.asarray(b, np.float64).T, "e5m2")))


def test_round_f32_reference():
    from fractions import Fraction

    assert round_f32(Fraction(2**24 + 1)) == 2.0**24 and round_f32(Fraction(2**24 + 3)) == 2.0**24 + 4
    assert round_f32(Fraction(2) ** -150) == 0.0 and round_f32(Fraction(3, 2**150)) == 2.0**-148  # a tie: even
    assert round_f32(Fraction(5, 2**151)) == 2.0**-149
    assert round_f32(Fraction(2) ** 128) == np.inf and round_f32(-Fraction(2**128 - 2**104)) == -(2.0**128 - 2**104)


def test_convolution_gradient_is_that_of_the_unrounded_convolution(monkeypatch):
    x = chop(RNG.standard_normal((2, 4, 6, 5)), "e4m3fn").astype(np.float32)
    w = chop(RNG.standard_normal((6, 2, 3, 3)), "e4m3fn").astype(np.float32)
    cot = chop(RNG.standard_normal((2, 6, 3, 5)), "e4m3fn").astype(np.float32)
    f = lambda x, w: jax.lax.conv_general_dilated(x, w, (2, 1), "SAME", feature_group_count=2)  # noqa: E731
    g = numfmt.emulate(f, "compute=float32,matmul_in=float8_e4m3fn,accum=float32,chunk=2")
    loss = lambda x, w: jnp.sum(g(x, w) * cot)  # noqa: E731
    got = jax.jit(jax.grad(loss, argnums=(0, 1)))(x, w)
    x64, w64, cot64 = (v.astype(np.float64) for v in (x, w, cot))
    want = jax.grad(lambda x, w: jnp.sum(f(x, w) * cot64), argnums=(0, 1))(x64, w64)  # small exact sums
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(bits(a), bits(b))
    general_path(monkeypatch)  # the general path differentiates through its scan: the same values here
    for a, b in zip(got, jax.jit(jax.grad(loss, argnums=(0, 1)))(x, w), strict=True):
        np.testing.assert_array_equal(bits(a), bits(b))
