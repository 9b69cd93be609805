"""Block formats on JAX: eager and jit equal NumPy bit for bit; axes, vmap, grad, encode/decode round trips."""

import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numfmt
from numfmt.testing import assert_bits_equal

PRESETS = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4_e2m1", "mxint8", "nvfp4", "bfp(m=7,block=16)"]
MODES = ["nearest_even", "toward_positive"]


def sample(shape, dtype=np.float32, seed=0):
    """Values over many binades with zeros, subnormals, NaN and inf sprinkled in."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2.0 ** rng.integers(-20, 20, shape)
    flat = x.reshape(-1)
    flat[rng.integers(0, flat.size, 8)] = 0.0
    flat[rng.integers(0, flat.size, 2)] = np.nan
    flat[rng.integers(0, flat.size, 2)] = -np.inf
    flat[rng.integers(0, flat.size, 4)] = 1e-42 if dtype == np.float32 else 1e-310
    return x.astype(dtype)


CASES = [(name, np.float32) for name in PRESETS] + [(n, np.float64) for n in ("mxfp8_e5m2", "mxint8", "mxfp4_e2m1")]


@pytest.mark.parametrize(("name", "dtype"), CASES)
def test_eager_and_jit_equal_numpy(name, dtype):
    x = sample((8, 50), dtype)
    for mode in MODES:
        want = numfmt.chop(x, name, mode)
        xj = jnp.asarray(x)
        assert_bits_equal(numfmt.chop(xj, name, mode), want, nan_payload=True, err_msg=f"eager {mode}: ")
        got = jax.jit(lambda v, mode=mode: numfmt.chop(v, name, mode))(xj)
        assert_bits_equal(got, want, nan_payload=True, err_msg=f"jit {mode}: ")


@pytest.mark.parametrize("name", ["mxfp4_e2m1", "mxint8", "nvfp4"])
def test_stochastic_same_key_same_bits(name):
    x = sample((4, 64))
    key = jax.random.key(5)
    want = numfmt.chop(x, name, "stochastic", key=key)
    got = jax.jit(lambda v, k: numfmt.chop(v, name, "stochastic", key=k))(jnp.asarray(x), key)
    assert_bits_equal(got, want, nan_payload=True)
    other = numfmt.chop(x, name, "stochastic", key=jax.random.key(6))
    assert (other != want)[np.isfinite(want)].any()


def test_stochastic_is_unbiased_within_a_binomial_bound():
    x = np.full((64, 32), 1.25, np.float32)  # e2m1 with scale 1: 1.25 between 1 and 1.5, P(up) = 1/2
    x[:, 0] = 6.0
    got = numfmt.chop(x, "mxfp4_e2m1", "stochastic", key=np.random.default_rng(0))
    ups = int((got[:, 1:] == 1.5).sum())
    n = 64 * 31
    assert set(np.unique(got[:, 1:])) <= {1.0, 1.5}
    assert abs(ups - n / 2) < 4 * np.sqrt(n / 4)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_blocks_along_any_axis(axis):
    x = sample((5, 40, 3), seed=axis + 2)
    f = numfmt.mxfp6_e2m3.replace(axis=axis)
    moved = np.moveaxis(x, axis, -1)
    want = np.moveaxis(numfmt.chop(moved, numfmt.mxfp6_e2m3), -1, axis)
    assert_bits_equal(numfmt.chop(x, f), want, nan_payload=True)
    assert_bits_equal(jax.jit(lambda v: numfmt.chop(v, f))(jnp.asarray(x)), want, nan_payload=True)
    assert str(numfmt.parse(str(f))) == str(f) and numfmt.parse(str(f)) == f


def test_vmap_equals_batched_chop():
    x = jnp.asarray(sample((6, 3, 64)))
    f = numfmt.mxfp4_e2m1
    assert_bits_equal(jax.vmap(lambda v: numfmt.chop(v, f))(x), numfmt.chop(x, f), nan_payload=True)


@pytest.mark.parametrize("name", ["mxfp8_e4m3", "nvfp4"])
def test_grad_is_straight_through(name):
    x = jnp.asarray(sample((2, 32), seed=9))
    x = jnp.where(jnp.isfinite(x), x, 1.0)
    g = jax.grad(lambda v: jnp.sum(numfmt.chop(v, name) * 3.0))(x)
    assert_bits_equal(g, jnp.full_like(x, 3.0))


def test_jit_fuses_into_one_computation():
    hlo = jax.jit(lambda v: numfmt.chop(v, "mxfp4_e2m1")).lower(jnp.ones((64, 64), jnp.float32)).compile().as_text()
    assert hlo.count("fusion") >= 1


CODED = [*PRESETS, "mx(elem=e2m1,nibbles=high_first,axis=0)", "mx(elem=e2m1,nibbles=unpacked)"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", CODED)
def test_encode_decode_round_trip(name, dtype):
    if name == "nvfp4" and dtype == np.float64:
        return
    f = numfmt.parse(name)
    x = sample((6, 34), dtype, seed=4)
    back = numfmt.decode(numfmt.encode(x, f), f, dtype)
    n = x.shape[f.axis]
    back = np.moveaxis(np.moveaxis(back, f.axis, -1)[..., :n], -1, f.axis)
    assert_bits_equal(back, numfmt.chop(x, f))


@pytest.mark.parametrize("name", ["mxfp4_e2m1", "mxint8", "nvfp4"])
def test_jax_encode_decode_equal_numpy(name):
    x = sample((6, 34), np.float32, seed=4)
    codes = numfmt.encode(x, name)
    jcodes = jax.jit(lambda v: numfmt.encode(v, name))(jnp.asarray(x))
    for a, b in zip(jcodes, codes, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert_bits_equal(numfmt.decode(jcodes, name), numfmt.decode(codes, name))


def test_nibble_order():
    x = np.array([0.5, 6.0, -1.0, 0.0], np.float32)  # e2m1 codes 1, 7, 10, 0 at scale 1
    low, _ = numfmt.encode(x, "mxfp4_e2m1")
    high, _ = numfmt.encode(x, "mx(elem=e2m1,nibbles=high_first)")
    flat, _ = numfmt.encode(x, "mx(elem=e2m1,nibbles=unpacked)")
    assert flat.tolist() == [1, 7, 10, 0]
    assert low.tolist() == [0x71, 0x0A] and high.tolist() == [0x17, 0xA0]


def test_errors_are_clear():
    with pytest.raises(ValueError, match="tensor scale .* rounds to 0"):
        numfmt.chop(np.array([1.0, 1e300]), "nvfp4")  # float64 input beyond the float32 tensor scale
    with pytest.raises(ValueError, match="axis=2 is out of range"):
        numfmt.chop(np.ones((2, 3), np.float32), numfmt.mxfp4_e2m1.replace(axis=2))
    with pytest.raises(ValueError, match="block_size=0"):
        numfmt.mxfp4_e2m1.replace(block_size=0)
    with pytest.raises(ValueError, match="overflow="):
        numfmt.chop(np.ones(4, np.float32), "mxfp4_e2m1", overflow="sat_finite")
    with pytest.raises(ValueError, match="needs key="):
        numfmt.chop(np.ones(4, np.float32), "mxfp4_e2m1", "stochastic")
    with pytest.raises(ValueError, match="unknown rule .round.; valid names are floor"):
        numfmt.parse("mx(elem=e2m1,rule=round)")
    with pytest.raises(ValueError, match="mx\\(elem"):
        numfmt.parse("mx(block=32)")
    with pytest.raises(ValueError, match="scalar"):
        numfmt.chop(np.float32(1.0), "mxfp4_e2m1")
    with pytest.raises(ValueError, match="cannot be checked under tracing"):
        jax.jit(lambda v: numfmt.chop(v, "mx(elem=float32)"))(jnp.ones(4, jnp.float32))


def test_overflow_under_jit_is_inf_and_raises_eagerly():
    x = np.array([-3.4e38, 1.0], np.float32)  # MXINT8: -2 * 2**127
    with pytest.raises(ValueError, match="cannot hold"):
        numfmt.chop(jnp.asarray(x), "mxint8")
    got = jax.jit(lambda v: numfmt.chop(v, "mxint8"))(jnp.asarray(x))
    assert np.asarray(got).tolist() == [-np.inf, 0.0]


def test_jax_without_x64_is_refused_clearly():
    # A fresh interpreter: x64 is a process-wide JAX setting that conftest fixes for this one.
    code = (
        "import jax.numpy as jnp, numfmt\n"
        "try:\n    numfmt.chop(jnp.ones(4, jnp.float32), 'mxfp4_e2m1')\n"
        "except ValueError as e:\n    print(e)\n"
    )
    root = pathlib.Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120)
    assert "jax_enable_x64" in out.stdout, out.stdout + out.stderr


def test_nf4_jax_equals_numpy():
    x = sample((4, 128), seed=11)
    want = numfmt.chop(x, "nf4")
    assert_bits_equal(jax.jit(lambda v: numfmt.chop(v, "nf4"))(jnp.asarray(x)), want, nan_payload=True)
    codes = numfmt.encode(x, "nf4")
    jcodes = numfmt.encode(jnp.asarray(x), "nf4")
    for a, b in zip(jcodes, codes, strict=True):
        assert_bits_equal(np.asarray(a).view(np.float32) if a.dtype == np.float32 else np.asarray(a, np.float64),
                          np.asarray(b).view(np.float32) if b.dtype == np.float32 else np.asarray(b, np.float64))
    with pytest.raises(ValueError, match="nearest"):
        numfmt.chop(x, "nf4", "toward_zero")


@pytest.mark.parametrize(
    ("name", "x"),
    [("int8_per_tensor", np.array([1e-43, -3e-44, 5e-44], np.float32)),  # float32 scale 2**-149
     ("int4_g32", np.full(32, 7e-44, np.float32)),
     ("nf4", np.concatenate([np.full(63, 1e-43), [3e-44]]).astype(np.float32)),
     ("nvfp4", np.linspace(-1e45, 1e45, 32))],  # float32 tensor scale 2.688e-42
)  # fmt: skip
def test_float32_subnormal_scales_survive_jax_encode_and_decode(name, x):
    """Regression: XLA:CPU flushes float32 subnormals when it converts them, so
    decode on JAX gave 0 (or inf, dividing by a flushed NVFP4 tensor scale)."""
    codes = numfmt.encode(x, name)
    scale = codes[2] if name == "nvfp4" else codes[1]
    assert 0 < np.abs(scale).min() < np.finfo(np.float32).tiny
    want = numfmt.chop(x, name)
    assert_bits_equal(numfmt.decode(codes, name, dtype=x.dtype), want)
    jcodes = numfmt.encode(jnp.asarray(x), name)
    for a, b in zip(jcodes, codes, strict=True):
        np.testing.assert_array_equal(np.asarray(a).view(f"u{b.itemsize}"), b.view(f"u{b.itemsize}"))
    jdecode = jax.jit(lambda c: numfmt.decode(c, name, dtype=x.dtype))
    for got in (numfmt.decode(jcodes, name, dtype=x.dtype), jdecode(jcodes)):
        assert_bits_equal(np.asarray(got), want)


def test_nf4_decode_without_x64_is_refused_clearly():
    code = (
        "import jax.numpy as jnp, numpy as np, numfmt\n"
        "c = numfmt.encode(np.ones(64, np.float32), 'nf4')\n"
        "try:\n    numfmt.decode(tuple(jnp.asarray(a) for a in c), 'nf4')\n"
        "except ValueError as e:\n    print(e)\n"
    )
    root = pathlib.Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120)
    assert "jax_enable_x64" in out.stdout, out.stdout + out.stderr
