"""Values emulate computes once (numfmt.emulation.sites.materialize).

XLA fuses cheap elementwise chains into each of their consumers, so a
rounding chain whose value two operations read (or one broadcast reads many
times) was computed once per consumer, and per element of a broadcast. emulate
stores such values through an integer division XLA cannot see is by one. These
tests check that the round trip is the identity on every bit pattern of every
float dtype, that derivatives pass through it, and that the optimised HLO of
an emulated function computes a shared rounding chain once, not once per
consumer.
"""

import re

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import numfmt
from numfmt.emulation.sites import materialize

RNG = np.random.default_rng(23)


@pytest.mark.parametrize(
    "dtype, udtype",
    [(jnp.float16, np.uint16), (jnp.bfloat16, np.uint16), (jnp.float32, np.uint32), (jnp.float64, np.uint64)],
)
def test_materialize_keeps_every_bit_pattern(dtype, udtype):
    bits = np.dtype(udtype).itemsize * 8
    if bits == 16:
        u = np.arange(2**16, dtype=udtype)
    else:  # landmarks (zeros, subnormals, infinities, NaN payloads, signs) and random patterns
        top = np.array(1, udtype) << np.array(bits - 1, udtype)
        specials = np.array([0, 1, 2, 3, (top >> np.array(1, udtype)) - np.array(1, udtype)], udtype)
        u = np.concatenate(
            [specials, specials | top, RNG.integers(0, 2**bits - 1, 100_000, dtype=udtype, endpoint=True)]
        )
    x = u.view(ml_dtypes.bfloat16 if dtype is jnp.bfloat16 else np.dtype(dtype))
    with jax.enable_x64(True):
        got = np.asarray(jax.jit(materialize)(jnp.asarray(x)))
    np.testing.assert_array_equal(got.view(udtype), u)


def test_materialize_of_empty_and_scalar_arrays():
    assert materialize(jnp.zeros((0, 3), jnp.float32)).shape == (0, 3)
    assert float(jax.jit(materialize)(jnp.float32(-0.0))) == 0.0
    assert np.signbit(jax.jit(materialize)(jnp.float32(-0.0)))


def test_derivatives_pass_through_materialize():
    f = lambda x: jnp.sum(materialize(x * x) * 3.0)  # noqa: E731
    x = jnp.asarray(RNG.standard_normal(17), jnp.float32)
    np.testing.assert_array_equal(np.asarray(jax.grad(f)(x)), np.asarray(6.0 * x))
    np.testing.assert_array_equal(np.asarray(jax.jit(jax.vmap(jax.grad(f)))(x[None])), np.asarray(6.0 * x[None]))


def _hash_multiplies(text, n):
    # each stochastic rounding of an n-element array multiplies uint32 words by the hash's constants
    return len(re.findall(rf"= u32\[{n}\]\{{0\}} multiply\(", text))


CONSUMERS = {
    "sum": lambda h, idx, w: jnp.sum(h, axis=0),
    "scatter": lambda h, idx, w: jnp.zeros((8, 96), h.dtype).at[idx].add(h),
    "max": lambda h, idx, w: jnp.max(h, axis=1),
    "broadcast": lambda h, idx, w: jnp.sum(h[:, :, None] * w[:, None, :5], axis=(0, 1)),
}


def _compiled_hash_multiplies(names):
    x = jnp.asarray(RNG.standard_normal((64, 96)), jnp.float32)
    w = jnp.asarray(RNG.standard_normal((64, 96)), jnp.float32)
    idx = jnp.asarray(RNG.integers(0, 8, 64))

    def fn(x, w, idx):
        h = (x * w + 1.0) * w  # three stochastic rounding sites
        return tuple(CONSUMERS[name](h, idx, w) for name in names)

    f = jax.jit(numfmt.emulate(fn, "compute=bfloat16,rounding=stochastic"))
    return _hash_multiplies(f.lower(x, w, idx, key=jax.random.key(0)).compile().as_text(), x.size)


@pytest.mark.parametrize("names", [("sum", "scatter"), ("sum", "max", "broadcast"), ("scatter", "max")])
def test_a_rounded_value_read_by_several_operations_is_computed_once(names):
    """XLA would copy the rounding chains into each consumer's fusion (measured: twice the hash work)."""
    once = _compiled_hash_multiplies(("sum",))
    assert once > 0
    assert _compiled_hash_multiplies(names) == once
