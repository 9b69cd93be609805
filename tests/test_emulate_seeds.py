"""Stochastic emulate sites: seed words per site from one key (numfmt.emulation.sites.Sites.next_seed).

A site's random words are the counter hash seeded by four words derived from
the body's key (not one run of the key's generator per site). These tests
check that the derived path is chop's own (``chop_seeded`` with a key's seed
words is ``chop`` with that key), that each site is unbiased, that sites are
independent of each other and of the key, and that the derivation refuses
what it cannot do. Last, the format tracking of emulate's interpreter: a
value known to be in one format is still rounded for an op of another.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numfmt
from numfmt.core.chop import chop_seeded
from numfmt.core.random import seed_words
from numfmt.testing import assert_unbiased

SR = "compute=bfloat16,rounding=stochastic"
RNG = np.random.default_rng(11)


def bits(x):
    return np.asarray(x).view(np.uint32)


@pytest.mark.parametrize("fmt", ["bfloat16", "float8_e5m2", "float16"])
def test_chop_seeded_is_chop_with_the_key_of_those_seed_words(fmt):
    x = jnp.asarray(RNG.standard_normal(5000), jnp.float32)
    key = jax.random.key(4)
    want = numfmt.chop(x, fmt, "stochastic", key=key)
    got = jax.jit(lambda v, s: chop_seeded(v, fmt, "stochastic", s))(x, seed_words(key))
    np.testing.assert_array_equal(bits(got), bits(want))
    np.testing.assert_array_equal(bits(chop_seeded(x, fmt, "nearest_even", None)), bits(numfmt.chop(x, fmt)))


def test_chop_seeded_refuses_block_formats_and_wrong_seeds():
    x = jnp.ones(32, jnp.float32)
    with pytest.raises(TypeError, match="block format"):
        chop_seeded(x, "mxfp8_e4m3", "stochastic", seed_words(jax.random.key(0)))
    with pytest.raises(ValueError, match="needs seed words exactly when it is stochastic"):
        chop_seeded(x, "bfloat16", "stochastic", None)
    with pytest.raises(ValueError, match="needs seed words exactly when it is stochastic"):
        chop_seeded(x, "bfloat16", "nearest_even", seed_words(jax.random.key(0)))


def test_each_site_is_unbiased():
    x = np.float32([1.0, -3.0, 2.0**-12, 40.0])  # bfloat16 values; x +- h is exact in float32, not in bfloat16
    h = np.float32(3 * 2.0**-10)
    f = numfmt.emulate(lambda v: (v + h, v - h), SR)
    key = jax.random.key(8)
    # site 1 rounds z = x + h (its input z - h = x is exact), site 2 rounds z = x - h
    assert_unbiased(lambda z: f(z - h, key=key)[0], x + h, 20000, fmt=numfmt.bfloat16)
    assert_unbiased(lambda z: f(z + h, key=key)[1], x - h, 20000, fmt=numfmt.bfloat16)


def test_sites_are_pairwise_independent():
    # five add sites giving the same halfway values: every pair agrees about half the time
    n, h = 20000, 2.0**-8  # 1 + h is halfway between bfloat16 neighbours
    x = jnp.ones(n, jnp.float32)
    outs = numfmt.emulate(lambda v: tuple(v + h for _ in range(5)), SR)(x, key=jax.random.key(1))
    ups = [np.asarray(o) > 1.0 for o in outs]
    bound = 5 * np.sqrt(n / 4)  # 5 sigma of a binomial(n, 1/2)
    for i in range(len(ups)):
        assert abs(np.count_nonzero(ups[i]) - n / 2) < bound
        for j in range(i):
            assert abs(np.count_nonzero(ups[i] == ups[j]) - n / 2) < bound, (i, j)


def test_fresh_randomness_per_key_and_per_loop_iteration():
    n, h = 4000, 2.0**-8
    x = jnp.ones(n, jnp.float32)
    f = numfmt.emulate(lambda v: v + h, SR)
    a, b = (np.asarray(f(x, key=jax.random.key(k))) > 1.0 for k in (0, 1))
    assert abs(np.count_nonzero(a == b) - n / 2) < 5 * np.sqrt(n / 4)
    body = lambda i, c, v: jax.lax.dynamic_update_slice_in_dim(c, (v + h)[None], i, 0)  # noqa: E731
    zeros = jnp.zeros((3, n), jnp.float32)
    loop = numfmt.emulate(lambda v: jax.lax.fori_loop(0, 3, lambda i, c: body(i, c, v), zeros), SR)
    rows = np.asarray(loop(x, key=jax.random.key(2))) > 1.0
    for i, j in [(0, 1), (1, 2), (0, 2)]:
        assert abs(np.count_nonzero(rows[i] == rows[j]) - n / 2) < 5 * np.sqrt(n / 4)


def test_a_value_known_in_one_format_is_rounded_again_for_a_narrower_one():
    # a + b is rounded to bfloat16; mul's policy is float8_e4m3fn, so its input a + b
    # (known to be bfloat16) must still be rounded to float8_e4m3fn
    a = jnp.asarray(RNG.standard_normal(3000) * 3, jnp.float32)
    b = jnp.asarray(RNG.standard_normal(3000) * 3, jnp.float32)
    f = numfmt.emulate(lambda u, v: (u + v) * v, "compute=bfloat16,prim.mul=float8_e4m3fn")
    fp8 = lambda t: numfmt.chop(t, "float8_e4m3fn")  # noqa: E731
    s = numfmt.chop(numfmt.chop(a, "bfloat16") + numfmt.chop(b, "bfloat16"), "bfloat16")
    want = fp8(fp8(s) * fp8(b))
    np.testing.assert_array_equal(bits(jax.jit(f)(a, b)), bits(want))
    assert np.count_nonzero(bits(fp8(s)) != bits(s)) > 1000  # the second rounding matters here


def test_nested_bodies_and_scan_iterations_draw_independent_streams():
    # two calls of one custom_jvp function, a checkpointed body and the parent's own
    # site round the same halfway values: every pair agrees about half the time
    n, h = 20000, 2.0**-8
    x = jnp.ones(n, jnp.float32)

    @jax.custom_jvp
    def bump(v):
        return v + h

    bump.defjvp(lambda p, t: (bump(*p), t[0]))

    def f(v):
        ys = jax.lax.scan(lambda c, _: (c, v + h), 0.0, None, length=2)[1]
        return bump(v), bump(v), jax.checkpoint(lambda u: u + h)(v), v + h, ys[0], ys[1]

    outs = numfmt.emulate(f, SR)(x, key=jax.random.key(3))
    ups = [np.asarray(o) > 1.0 for o in outs]
    bound = 5 * np.sqrt(n / 4)
    for i in range(len(ups)):
        assert abs(np.count_nonzero(ups[i]) - n / 2) < bound
        for j in range(i):
            assert abs(np.count_nonzero(ups[i] == ups[j]) - n / 2) < bound, (i, j)


def test_block_format_sites_work_whatever_the_default_generator():
    x = jnp.asarray(RNG.standard_normal((4, 32)), jnp.float32)
    w = jnp.asarray(RNG.standard_normal((32, 3)), jnp.float32)
    policy = "compute=float32,matmul_in=mxfp8_e4m3,rounding=stochastic"
    prev = jax.config.jax_default_prng_impl
    try:
        jax.config.update("jax_default_prng_impl", "rbg")
        f = numfmt.emulate(lambda x, w: x @ w, policy)  # traced under rbg
        got, again = (f(x, w, key=jax.random.key(0)) for _ in range(2))
    finally:
        jax.config.update("jax_default_prng_impl", prev)
    assert got.shape == (4, 3) and bool(jnp.all(jnp.isfinite(got)))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(again))


def test_seed_words_derived_in_blocks_are_those_derived_one_by_one(monkeypatch):
    """Sites derives its seed words BLOCK draws at a time; the bits are those of one derivation per draw.

    The function has more sites than a block, a scan (its iterations' sites), a
    custom_jvp function and a cond (nested bodies with their own blocks), and
    the gradient (the derivative program's own stream).
    """
    from numfmt.emulation.sites import Sites

    def fn(x):
        y = x
        for k in range(18):  # 18 multiplication and 18 addition sites: past the first block of 32
            y = y * 1.0009765625 + 2.0**-k
        y, _ = jax.lax.scan(lambda c, _: (c * 0.99951171875 + 1e-3, None), y, None, length=5)
        y = jax.nn.gelu(y)  # a custom_jvp function body
        y = jax.lax.cond(y[0] > 0, lambda v: v * 3.0, lambda v: v / 3.0, y)
        return jnp.sum(y * y)

    x = jnp.asarray(RNG.standard_normal(300), jnp.float32)
    f = jax.jit(jax.value_and_grad(numfmt.emulate(fn, SR)))
    got = f(x, key=jax.random.key(5))
    monkeypatch.setattr(Sites, "BLOCK", 1)
    want = jax.jit(jax.value_and_grad(numfmt.emulate(fn, SR)))(x, key=jax.random.key(5))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(bits(g), bits(w))
    monkeypatch.setattr(Sites, "BLOCK", 7)  # a block boundary inside the scan and between the bodies
    again = jax.jit(jax.value_and_grad(numfmt.emulate(fn, SR)))(x, key=jax.random.key(5))
    for g, w in zip(again, want, strict=True):
        np.testing.assert_array_equal(bits(g), bits(w))
