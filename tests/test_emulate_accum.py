"""Matmul emulation: input/accumulator/output formats and chunked accumulation."""

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numfmt
from numfmt import chop


def test_float16_accumulation_stagnates():
    # Summing ones into a float16 accumulator sticks at 2048: 2048 + 1 rounds back to 2048.
    ones = jnp.ones(4096, jnp.float32)
    dot = numfmt.emulate(jnp.dot, "compute=float32,accum=float16,chunk=1,out=float32")
    assert float(dot(ones, ones)) == 2048.0
    # 32 terms summed exactly per accumulator rounding: 2048 + 32 is representable, no stagnation
    dot32 = numfmt.emulate(jnp.dot, "compute=float32,accum=float16,chunk=32,out=float32")
    assert float(dot32(ones, ones)) == 4096.0
    # without an accumulator format the product is rounded once
    assert float(numfmt.emulate(jnp.dot, "compute=float16")(ones, ones)) == 4096.0


def reference_loop(a, b, chunk, accum, fmt_in, fmt_out):
    """Explicit loop: exact chunk sums (Fractions), accumulator rounded by NumPy's float16 or chop."""
    a, b = chop(np.asarray(a, np.float64), fmt_in), chop(np.asarray(b, np.float64), fmt_in)
    out = np.zeros((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            acc = 0.0
            for s in range(0, a.shape[1], chunk):
                part = sum((Fraction(a[i, k]) * Fraction(b[k, j]) for k in range(s, min(s + chunk, a.shape[1]))),
                           Fraction(0))  # fmt: skip
                exact = Fraction(acc) + part
                assert float(exact) == exact  # the sum is exact in float64 here, so one rounding below
                acc = float(np.float16(float(exact))) if accum == "float16" else float(chop(float(exact), accum))
            out[i, j] = acc
    return chop(out, fmt_out)


CASES = [("float8_e4m3fn", "float16", 1), ("float8_e4m3fn", "float16", 4), ("float8_e5m2", "float16", 16),
         ("float16", "bfloat16", 3)]  # fmt: skip


@pytest.mark.parametrize(("fmt_in", "accum", "chunk"), CASES)
def test_chunked_accumulation_equals_reference_loop(fmt_in, accum, chunk):
    rng = np.random.default_rng(chunk)
    a = rng.standard_normal((3, 37)).astype(np.float32) * 8
    b = rng.standard_normal((37, 4)).astype(np.float32) * 8
    policy = f"compute=float32,matmul_in={fmt_in},accum={accum},chunk={chunk},out=bfloat16"
    got = jax.jit(numfmt.emulate(jnp.matmul, policy))(a, b)
    want = reference_loop(a, b, chunk, accum, fmt_in, "bfloat16")
    np.testing.assert_array_equal(np.asarray(got, np.float64), want)


def test_batched_dot_general_with_two_contracting_dims():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)  # batch 2, free 3, contract (4, 5)
    b = rng.standard_normal((2, 5, 4, 6)).astype(np.float32)  # batch 2, contract (5, 4), free 6
    dims = (((2, 3), (2, 1)), ((0,), (0,)))
    f = lambda x, y: jax.lax.dot_general(x, y, dims)  # noqa: E731
    got = numfmt.emulate(f, "compute=float32,matmul_in=float8_e4m3fn,accum=float16,chunk=3,out=float32")(a, b)
    for n in range(2):
        # contraction order: lhs dims (2, 3) flattened row-major
        lhs = a[n].reshape(3, 20)
        rhs = np.transpose(b[n], (2, 1, 0)).reshape(6, 20).T
        want = reference_loop(lhs, rhs, 3, "float16", "float8_e4m3fn", "float32")
        np.testing.assert_array_equal(np.asarray(got[n], np.float64), want)


def test_matmul_inputs_and_output_formats():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 8)).astype(np.float32)
    b = rng.standard_normal((8, 3)).astype(np.float32)
    got = numfmt.emulate(jnp.matmul, "compute=bfloat16,matmul_in=float8_e4m3fn,out=float16")(a, b)
    want = chop(chop(a, "e4m3fn").astype(np.float64) @ chop(b, "e4m3fn").astype(np.float64), "float16")
    np.testing.assert_array_equal(np.asarray(got, np.float64), want)


def test_stochastic_accumulator_needs_and_uses_the_key():
    a = jnp.ones((1, 300), jnp.float32) * 1.1
    f = numfmt.emulate(jnp.matmul, "compute=float32,rounding=stochastic,accum=float8_e5m2,chunk=1,out=float32")
    r1 = f(a, a.T, key=jax.random.key(0))
    assert bool(r1 == f(a, a.T, key=jax.random.key(0)))
    results = {float(f(a, a.T, key=jax.random.key(k))[0, 0]) for k in range(8)}
    assert len(results) > 1



def test_stochastic_gradient_rounding_with_a_nearest_accumulator():
    # the accumulator's cotangent sites need seeds even when the forward rounding is nearest
    rng = np.random.default_rng(11)
    x = jnp.asarray(rng.standard_normal((4, 8)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((8, 3)), jnp.float32)
    policy = "compute=float32,matmul_in=bfloat16,accum=float16,chunk=2,grad=bfloat16,grad_rounding=stochastic"
    f = numfmt.emulate(lambda x, w: jnp.sum(x @ w), policy)
    g1 = jax.grad(f)(x, w, key=jax.random.key(0))
    g2 = jax.jit(jax.grad(f))(x, w, key=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(g1), np.asarray(g2))
    np.testing.assert_array_equal(np.asarray(g1), chop(np.asarray(g1), "bfloat16"))


@pytest.mark.parametrize("shapes", [((0, 4), (4, 3)), ((5, 4), (4, 0)), ((2, 0), (0, 3))])
def test_empty_operands(shapes):
    a, b = (jnp.ones(s, jnp.float32) for s in shapes)
    got = numfmt.emulate(lambda a, b: a @ b, "compute=float32,accum=float16,chunk=2")(a, b)
    np.testing.assert_array_equal(np.asarray(got), np.zeros((shapes[0][0], shapes[1][1]), np.float32))
