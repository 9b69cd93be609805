"""JAX: eager and jitted results equal NumPy's bit for bit; vmap, grad, fusion."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numfmt
from numfmt.testing import assert_bits_equal

FORMATS = ["bfloat16", "float16", "float8_e4m3fn", "float8_e5m2fnuz", "float4_e2m1fn", "float8_e8m0fnu",
           "binary8p3se", "float(e=5,m=7)", "float(e=9,m=3,subnormals=flush)", "float(e=11,m=4)"]  # fmt: skip
MODES = ["nearest_even", "nearest_away", "toward_zero", "toward_positive", "toward_negative", "to_odd"]
DTYPES = [np.float16, jnp.bfloat16, np.float32, np.float64]


def patterns(dtype, n=1 << 15, seed=0):
    bits = np.dtype(dtype).itemsize * 8
    return np.random.default_rng(seed).integers(0, 2**bits, size=n, dtype=f"uint{bits}").view(dtype)


def numpy_or_none(x, fmt, mode):
    try:
        return numfmt.chop(x, fmt, mode)
    except ValueError:  # a result the dtype cannot hold (checked in test_errors)
        return None


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", FORMATS)
def test_eager_and_jit_equal_numpy(name, dtype):
    x = patterns(dtype)
    for mode in MODES:
        want = numpy_or_none(x, name, mode)
        if want is None:
            continue
        xj = jnp.asarray(x)
        assert_bits_equal(numfmt.chop(xj, name, mode), want, nan_payload=True, err_msg=f"eager {mode}: ")
        jitted = jax.jit(lambda v, mode=mode: numfmt.chop(v, name, mode))
        assert_bits_equal(jitted(xj), want, nan_payload=True, err_msg=f"jit {mode}: ")


@pytest.mark.parametrize("mode", ["stochastic", "stochastic_c", "stochastic_equal"])
def test_stochastic_jax_equals_numpy_with_the_same_key(mode):
    x = patterns(np.float32)
    key = jax.random.key(7)
    extra = {"random_bits": 12} if mode == "stochastic_c" else {}
    want = numfmt.chop(x, "float8_e4m3fn", mode, key=key, **extra)
    got = jax.jit(lambda v, k: numfmt.chop(v, "float8_e4m3fn", mode, key=k, **extra))(jnp.asarray(x), key)
    assert_bits_equal(got, want, nan_payload=True)
    other = numfmt.chop(jnp.asarray(x), "float8_e4m3fn", mode, key=jax.random.key(8), **extra)
    assert (np.asarray(other) != want)[np.isfinite(want)].any()


def test_legacy_uint32_keys_work():
    x = jnp.linspace(0, 1, 100, dtype=jnp.float32)
    a = numfmt.chop(x, "e5m2", "stochastic", key=jax.random.PRNGKey(0))
    assert a.dtype == jnp.float32


def test_vmap_and_batched_keys():
    x = jnp.full((4, 1000), 1.0 + 1 / 16, jnp.float32)  # a quarter of the way from 1 to 1.25 in e5m2
    keys = jax.random.split(jax.random.key(0), 4)
    y = jax.vmap(lambda v, k: numfmt.chop(v, "float8_e5m2", "stochastic", key=k))(x, keys)
    assert y.shape == x.shape
    assert not all(bool((y[0] == y[i]).all()) for i in range(1, 4))  # independent streams
    frac = float((y == 1.25).mean())
    assert 0.2 < frac < 0.3


def test_grad_is_straight_through():
    x = jnp.linspace(-3, 3, 101, dtype=jnp.float32)
    g = jax.grad(lambda v: (numfmt.chop(v, "float4_e2m1fn") * v).sum())(x)
    # d/dv [q(v) * v] with dq/dv = 1 is v + q(v)
    assert_bits_equal(g, x + numfmt.chop(x, "float4_e2m1fn"))
    g2 = jax.jit(jax.grad(lambda v, k: numfmt.chop(v, "e5m2", "stochastic", key=k).sum()))(x, jax.random.key(0))
    assert_bits_equal(g2, jnp.ones_like(x))


def test_chop_fuses_into_one_kernel_under_jit():
    f = jax.jit(lambda v: numfmt.chop(v * 2.0, "float8_e4m3fn") + 1.0)
    hlo = f.lower(jnp.ones(1024, jnp.float32)).compile().as_text()
    # one fusion computation, called once: no extra passes or host round trips
    assert hlo.count("calls=") == 1, hlo
    assert "custom-call" not in hlo and "outfeed" not in hlo


def test_float64_input_is_exact_not_through_float32():
    x = np.float64(1 + 2.0**-8 + 2.0**-40)
    assert float(numfmt.chop(jnp.asarray(x), "bfloat16")) == 1.0078125
    assert float(jax.jit(lambda v: numfmt.chop(v, "bfloat16"))(jnp.asarray(x))) == 1.0078125


def test_float64_numpy_input_never_touches_jax_float32():
    # with x64 off JAX would truncate float64 to float32; NumPy input stays on NumPy
    with jax.enable_x64(False):
        assert float(numfmt.chop(np.float64(1 + 2.0**-8 + 2.0**-40), "bfloat16")) == 1.0078125


def test_traced_unrepresentable_result_is_refused_statically():
    with pytest.raises(ValueError, match="cannot be checked under tracing"):
        jax.jit(lambda v: numfmt.chop(v, "bfloat16"))(jnp.ones(3, jnp.float16))
    with pytest.raises(ValueError, match="cannot hold"):
        numfmt.chop(jnp.asarray(np.float16([65504.0])), "bfloat16")
    assert float(numfmt.chop(jnp.asarray(np.float16([1.0])), "bfloat16")[0]) == 1.0


def test_encode_decode_under_jit_match_numpy():
    x = patterns(np.float32)
    want = numfmt.encode(x[~np.isnan(x)], "float8_e4m3fn")
    got = jax.jit(lambda v: numfmt.encode(v, "float8_e4m3fn"))(jnp.asarray(x[~np.isnan(x)]))
    np.testing.assert_array_equal(np.asarray(got), want)
    codes = np.arange(256, dtype=np.uint8)
    assert_bits_equal(jax.jit(lambda c: numfmt.decode(c, "e4m3fn"))(jnp.asarray(codes)), numfmt.decode(codes, "e4m3fn"))


def test_stochastic_chop_is_one_pass_under_jit():
    for dtype in (jnp.float32, jnp.float64):
        f = jax.jit(lambda v, k: numfmt.chop(v * 2.0, "float8_e4m3fn", "stochastic", key=k) + 1.0)
        hlo = f.lower(jnp.ones(1024, dtype), jax.random.key(0)).compile().as_text()
        # The random bits are hashed inside the kernel: one fusion makes a data-sized
        # array (drawing them with jax.random.bits made four more u32[1024] passes).
        data_sized = [line for line in hlo.splitlines() if re.search(r"= \S*\[1024\]\S* fusion\(", line)]
        assert len(data_sized) == 1, data_sized
        assert "custom-call" not in hlo and "outfeed" not in hlo
