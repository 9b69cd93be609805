"""promote=N: the accumulator added into a float32 accumulator every N products (FP8 GEMMs on Hopper GPUs),
against the exact reference loop of tests/accum_reference.py, bit for bit."""

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numfmt
import numfmt.emulation.accumulate as accumulate_module
from numfmt import chop

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # pytest runs with --import-mode=importlib
from accum_reference import reference_matmul, round_f32  # noqa: E402
from test_emulate_conv_accum import conv_params, reference_conv  # noqa: E402

RNG = np.random.default_rng(0)


def bits(x):
    return np.asarray(x, np.float32).view(np.uint32)


def exact(value):
    assert float(value) == value  # the reference's sums are exact in float64 here: one rounding follows
    return float(value)


def rounder(accum):
    if accum == "float32":
        return round_f32
    return lambda v: float(chop(np.float64(exact(v)), accum))


CASES = [  # (input format, accumulator, chunk, promote, K)
    ("float8_e4m3fn", "float32", 1, 8, 45),  # float32 fast path, a short last group
    ("float8_e4m3fn", "float32", 4, 16, 64),  # float32 fast path, float64 chunk sums
    ("float8_e4m3fn", "float(e=8,m=13)", 1, 16, 50),  # a 14-bit accumulator, as reported for Hopper's FP8 MMA
    ("float8_e4m3fn", "bfloat16", 4, 12, 50),
    ("float8_e5m2", "float16", 2, 32, 70),
    ("float8_e4m3fn", "float16", 3, 300, 70),  # promote > K: one group, then one float32 rounding
]


@pytest.mark.parametrize(("fmt", "accum", "chunk", "promote", "k"), CASES)
def test_promote_equals_reference_loop(fmt, accum, chunk, promote, k):
    a = chop(RNG.standard_normal((4, k)) * 16, fmt).astype(np.float32)
    b = chop(RNG.standard_normal((k, 3)) * 16, fmt).astype(np.float32)
    a[0, ::5] = -0.0
    policy = f"compute=float32,matmul_in={fmt},accum={accum},chunk={chunk},promote={promote}"
    got = jax.jit(numfmt.emulate(jnp.matmul, policy))(a, b)
    want = reference_matmul(a.astype(np.float64), b.astype(np.float64), chunk, rounder(accum), promote)
    np.testing.assert_array_equal(bits(got), bits(want))
    plain = numfmt.emulate(jnp.matmul, f"compute=float32,matmul_in={fmt},accum={accum},chunk={chunk}")(a, b)
    if promote < k and accum != "float32":
        assert np.any(bits(got) != bits(plain))  # the promotion is visible


def test_promotion_stops_stagnation():
    # ones into a float16 accumulator stagnate at 2048; promoted every 1024 products into float32, they do not
    ones = jnp.ones((1, 8192), jnp.float32)
    f = numfmt.emulate(jnp.matmul, "compute=float32,accum=float16,promote=1024")
    assert float(f(ones, ones.T)[0, 0]) == 8192.0
    g = numfmt.emulate(jnp.matmul, "compute=float32,accum=float16,promote=4096")
    assert float(g(ones, ones.T)[0, 0]) == 4096.0  # 2048 per group of 4096


def test_fast_and_general_paths_agree(monkeypatch):
    a = chop(RNG.standard_normal((2, 3, 200)) * 30, "e4m3fn").astype(np.float32)
    b = chop(RNG.standard_normal((2, 200, 5)) * 30, "e4m3fn").astype(np.float32)
    f = numfmt.emulate(jnp.matmul, "compute=float32,matmul_in=float8_e4m3fn,accum=float32,promote=64")
    fast = f(a, b)
    monkeypatch.setattr(accumulate_module, "sums_dtype", lambda *args: None)  # the general path
    np.testing.assert_array_equal(bits(fast), bits(f(a, b)))
    for n in range(2):
        want = reference_matmul(a[n].astype(np.float64), b[n].astype(np.float64), 1, promote=64)
        np.testing.assert_array_equal(bits(fast[n]), bits(want))


@pytest.mark.parametrize(("accum", "chunk", "promote"), [("float16", 2, 10), ("float32", 1, 7)])
def test_convolution_with_promote(accum, chunk, promote):
    x = chop(RNG.standard_normal((2, 4, 6, 5)) * 8, "e4m3fn").astype(np.float32)
    w = chop(RNG.standard_normal((6, 2, 3, 3)) * 8, "e4m3fn").astype(np.float32)
    f = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=2)  # noqa: E731
    policy = f"compute=float32,matmul_in=float8_e4m3fn,accum={accum},chunk={chunk},promote={promote}"
    got = jax.jit(numfmt.emulate(f, policy))(x, w)
    params, shape = conv_params(f, x, w)
    round_acc = "float32" if accum == "float32" else accum
    want = reference_conv(x.astype(np.float64), w.astype(np.float64), params, shape[2:], chunk, round_acc, promote)
    np.testing.assert_array_equal(bits(got), bits(want))


def test_stochastic_accumulator_with_promote_is_reproducible():
    a = jnp.full((2, 300), 1.1, jnp.float32)
    f = numfmt.emulate(jnp.matmul, "compute=float32,rounding=stochastic,accum=float8_e5m2,promote=50,out=float32")
    first = f(a, a.T, key=jax.random.key(0))
    np.testing.assert_array_equal(bits(first), bits(f(a, a.T, key=jax.random.key(0))))
    assert len({float(f(a, a.T, key=jax.random.key(k))[0, 0]) for k in range(6)}) > 1


def test_scope_rule_sets_promote():
    a = jnp.ones((1, 4096), jnp.float32)

    def model(x):
        with jax.named_scope("head"):
            y = x @ x.T
        return y, x @ x.T

    f = numfmt.emulate(model, "compute=float32,accum=float16,scope(head).promote=1024")
    head, rest = f(a)
    assert float(head[0, 0]) == 4096.0 and float(rest[0, 0]) == 2048.0
