"""emulate: equality with hand-written chop-after-every-op code, MPFR, transforms, keys, errors."""

import gmpy2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numfmt
from numfmt import chop

FORMATS = ["float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "float(e=6,m=5)", "binary8p3se"]
RNG = np.random.default_rng(7)
X = RNG.standard_normal(300).astype(np.float32) * 3
Y = RNG.standard_normal(300).astype(np.float32) * 3
Z = RNG.standard_normal(300).astype(np.float32)


def bits(a):
    a = np.asarray(a)
    return a.view({4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def chain(x, y, z):
    return (x * y + z) / (jnp.sqrt(jnp.abs(x)) + 1.0) - y * y


def chain_by_hand(x, y, z, fmt):
    """The same chain in float64 NumPy with chop after every op (inputs and constants too)."""
    c = lambda v: chop(np.asarray(v, np.float64), fmt)  # noqa: E731
    x, y, z, one = c(x), c(y), c(z), c(1.0)
    return c(c(c(c(x * y) + z) / c(c(np.sqrt(np.abs(x))) + one)) - c(y * y))


@pytest.mark.parametrize("fmt", FORMATS)
def test_chain_equals_chop_after_every_op(fmt):
    got = jax.jit(numfmt.emulate(chain, f"compute={fmt}"))(X, Y, Z)
    want = chain_by_hand(X, Y, Z, fmt).astype(np.float32)
    np.testing.assert_array_equal(bits(got), bits(want))


def _mpfr_context(fmt):
    f = numfmt.parse(fmt)
    return gmpy2.context(precision=f.precision, emin=f.emin - f.precision + 2, emax=f.emax + 1, subnormalize=True)


@pytest.mark.parametrize("fmt", ["float16", "bfloat16", "float8_e5m2", "float8_e4m3"])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "sqrt"])
def test_single_ops_equal_mpfr(fmt, op):
    # gmpy2/MPFR with the format's precision and exponent range is the oracle
    x, y = chop(X, fmt), chop(Y, fmt)
    fn = {"add": jnp.add, "sub": jnp.subtract, "mul": jnp.multiply, "div": jnp.divide,
          "sqrt": lambda a, b: jnp.sqrt(jnp.abs(a))}[op]  # fmt: skip
    got = np.asarray(jax.jit(numfmt.emulate(fn, f"compute={fmt}"))(x, y)).astype(np.float64)
    with _mpfr_context(fmt) as ctx:
        for a, b, g in zip(x.astype(float), y.astype(float), got, strict=True):
            a, b = gmpy2.mpfr(a), gmpy2.mpfr(b)
            r = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b, "sqrt": gmpy2.sqrt(abs(a))}[op]
            r = ctx.check_range(r)
            assert float(r) == g or (gmpy2.is_nan(r) and np.isnan(g)), (op, a, b, r, g)


def test_constants_are_rounded_like_inputs():
    f = numfmt.emulate(lambda x: x + 0.1, "compute=float8_e4m3fn")
    # 0.1 -> 0.1015625 in e4m3fn; 1 + 0.1015625 -> 1.125
    assert float(f(jnp.float32(1.0))) == 1.125
    w = jnp.asarray([0.3, 0.7], jnp.float32)
    g = numfmt.emulate(lambda x: x * w, "compute=float8_e4m3fn")  # a captured array
    np.testing.assert_array_equal(g(jnp.ones(2, jnp.float32)), chop(np.asarray(w), "float8_e4m3fn"))


def test_integer_and_comparison_ops_pass_through():
    def f(x, n):
        k = n * 3 + 1  # integer ops: untouched
        return jnp.where(x > 0.1, x * 2.0, -x), k, jnp.argmax(x)

    x = jnp.asarray([0.09, 0.11, 0.3], jnp.float32)
    out, k, i = numfmt.emulate(f, "compute=float8_e4m3fn")(x, jnp.int32(1_000_001))
    assert int(k) == 3_000_004 and int(i) == 2
    # 0.1 rounds to 0.1015625 and 0.09 to 0.08984375, 0.11 to 0.109375: comparisons see rounded values
    np.testing.assert_array_equal(out, chop(np.where(chop(np.asarray(x), "e4m3fn") > 0.1015625,
                                                     chop(np.asarray(x), "e4m3fn") * 2, -chop(np.asarray(x), "e4m3fn")),
                                            "e4m3fn"))  # fmt: skip


# -- transforms ---------------------------------------------------------------

POLICY = "compute=bfloat16"


def model(x):
    def step(c, xi):
        c = jnp.tanh(c * 0.9 + xi)
        return c, jax.nn.gelu(c) * 2.0

    c, ys = jax.lax.scan(step, jnp.zeros(x.shape[1:], x.dtype), x)
    h = jax.nn.relu(ys) + jax.nn.softmax(ys, axis=-1)
    h = jax.checkpoint(lambda a: jnp.exp(-a * a))(h)
    h = jax.lax.cond(jnp.sum(c) > 0, lambda a: a * 3.0, lambda a: a / 3.0, h)
    h = jax.lax.switch(1, [jnp.sin, jnp.cos, jnp.tanh], h)
    h = jax.jit(lambda a: jnp.sqrt(a + 1.0))(h)
    return jnp.sum(h) + jax.nn.logsumexp(ys)


def model_by_hand(x, fmt="bfloat16"):
    """``model`` with numfmt.chop (JAX, straight-through) after every float op."""
    c_ = lambda v: chop(v, fmt)  # noqa: E731
    x = c_(x)

    def step(c, xi):
        c = c_(jnp.tanh(c_(c_(c * c_(0.9)) + xi)))
        return c, c_(c_(jax.nn.gelu(c, approximate=True)) * 2.0)

    c, ys = jax.lax.scan(step, jnp.zeros(x.shape[1:], x.dtype), x)
    return c, ys


def test_scan_body_equals_hand_written_chop():
    x = jnp.asarray(RNG.standard_normal((5, 8)), jnp.float32)

    def scan_only(x):
        def step(c, xi):
            c = jnp.tanh(c * 0.9 + xi)
            return c, c * 2.0

        return jax.lax.scan(step, jnp.zeros(8, jnp.float32), x)

    def by_hand(x):
        c_ = lambda v: chop(v, "bfloat16")  # noqa: E731
        x = c_(x)

        def step(c, xi):
            c = c_(jnp.tanh(c_(c_(c * c_(jnp.float32(0.9))) + xi)))
            return c, c_(c * 2.0)

        return jax.lax.scan(step, jnp.zeros(8, jnp.float32), x)

    got, want = numfmt.emulate(scan_only, POLICY)(x), by_hand(x)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(bits(g), bits(w))
    # the gradient's backward scan is emulated too: the same bits in both orders, bfloat16 values
    loss = lambda x: jnp.sum(scan_only(x)[1] ** 2)  # noqa: E731
    g1 = jax.grad(numfmt.emulate(loss, POLICY))(x)
    np.testing.assert_array_equal(bits(g1), bits(numfmt.emulate(jax.grad(loss), POLICY)(x)))
    np.testing.assert_array_equal(bits(g1), bits(chop(g1, "bfloat16")))
    np.testing.assert_allclose(g1, jax.grad(loss)(x), rtol=0.1, atol=0.1)


def test_all_orders_of_composition_agree():
    x = jnp.asarray(RNG.standard_normal((4, 6)), jnp.float32)
    e = numfmt.emulate(model, POLICY)
    ref = e(x)
    assert float(ref) != float(model(x))  # emulation changed something
    for variant in (jax.jit(e), numfmt.emulate(jax.jit(model), POLICY)):
        assert bits(variant(x)) == bits(ref)
    batched = jax.vmap(e)(jnp.stack([x, 2 * x]))
    assert bits(batched[0]) == bits(ref)
    assert bits(batched[1]) == bits(numfmt.emulate(jax.vmap(model), POLICY)(jnp.stack([x, 2 * x]))[1])
    g = jax.jit(jax.grad(e))(x)
    assert np.all(np.isfinite(g)) and np.any(g != 0)


def test_emulate_of_grad_rounds_the_backward_pass():
    x = jnp.asarray(RNG.standard_normal((4, 6)), jnp.float32)
    g = numfmt.emulate(jax.grad(model), POLICY)(x)
    # every output of an emulated op is a bfloat16 value
    np.testing.assert_array_equal(bits(g), bits(chop(g, "bfloat16")))


def test_while_loop_and_intermediates_are_rounded():
    f = lambda x: jax.lax.while_loop(lambda v: v < 100.0, lambda v: v * 1.1 + 0.1, x)  # noqa: E731
    got = float(numfmt.emulate(f, "compute=float8_e4m3fn")(jnp.float32(1.0)))
    v = 1.0
    while v < float(chop(100.0, "e4m3fn")):  # the constant 100 is rounded too: to 96
        v = float(chop(chop(v * 1.125, "e4m3fn") + 0.1015625, "e4m3fn"))
    assert got == v


def test_custom_jvp_rules_are_kept():
    # relu's own rule gives gradient 0 at 0 (differentiating max(x, 0) would give 0.5)
    assert float(jax.grad(numfmt.emulate(jax.nn.relu, POLICY))(jnp.float32(0.0))) == 0.0
    x = jnp.asarray([1.0, 2.0, 3.0], jnp.float32)
    g = jax.grad(numfmt.emulate(lambda v: jax.nn.logsumexp(v), POLICY))(x)
    np.testing.assert_allclose(g, jax.nn.softmax(x), rtol=2e-2)


def test_custom_vjp_function():
    @jax.custom_vjp
    def clip_grad(x):
        return x * 1.1

    clip_grad.defvjp(lambda x: (x * 1.1, None), lambda _, g: (jnp.clip(g, -0.5, 0.5),))
    e = numfmt.emulate(lambda x: jnp.sum(clip_grad(x) ** 2), "compute=float16")
    x = jnp.asarray([0.1, 3.0], jnp.float32)
    assert float(e(x)) == float(chop(chop(chop(0.1 * chop(1.1, "float16"), "float16") ** 2, "float16")
                                     + chop(chop(3.0 * chop(1.1, "float16"), "float16") ** 2, "float16"), "float16"))
    g = jax.grad(e)(x)  # the function's own backward rule clips the cotangent 2y
    assert float(g[1]) == 0.5
    np.testing.assert_allclose(float(g[0]), 2 * float(chop(0.1 * float(chop(1.1, "float16")), "float16")), rtol=1e-3)


# -- keys -----------------------------------------------------------------------

SR = "compute=bfloat16,rounding=stochastic"


def test_same_key_reproduces_and_different_keys_differ():
    x = jnp.asarray(RNG.standard_normal(1000), jnp.float32)
    f = numfmt.emulate(lambda v: jnp.exp(v) * 1.3, SR)
    a = f(x, key=jax.random.key(0))
    assert bits(a) == bits(f(x, key=jax.random.key(0))) if a.ndim == 0 else np.array_equal(
        bits(a), bits(f(x, key=jax.random.key(0))))  # fmt: skip
    np.testing.assert_array_equal(bits(jax.jit(f)(x, key=jax.random.key(0))), bits(a))
    assert np.count_nonzero(bits(f(x, key=jax.random.key(1))) != bits(a)) > 100
    np.testing.assert_array_equal(bits(a), bits(chop(a, "bfloat16")))


def test_sites_and_iterations_draw_independent_streams():
    x = jnp.ones(2000, jnp.float32)
    h = 2.0**-8  # 1 + h is halfway between bfloat16 neighbours: up with probability 1/2
    two = numfmt.emulate(lambda v: (v + h, v + h), SR)(x, key=jax.random.key(3))
    assert np.count_nonzero(bits(two[0]) != bits(two[1])) > 700
    scan = lambda v: jax.lax.scan(lambda c, xi: (c, xi + h), 0.0, jnp.stack([v, v]))[1]  # noqa: E731
    ys = numfmt.emulate(scan, SR)(x, key=jax.random.key(3))
    assert np.count_nonzero(bits(ys[0]) != bits(ys[1])) > 700
    assert 850 < np.count_nonzero(np.asarray(two[0]) > 1.0) < 1150


def test_typed_and_raw_keys_agree():
    x = jnp.asarray(RNG.standard_normal(100), jnp.float32)
    f = numfmt.emulate(lambda v: v * 3.3, SR)
    np.testing.assert_array_equal(bits(f(x, key=jax.random.key(5))), bits(f(x, key=jax.random.PRNGKey(5))))


# -- errors -----------------------------------------------------------------------


def test_missing_and_unexpected_keys():
    x = jnp.ones(3, jnp.float32)
    with pytest.raises(ValueError, match="needs a key: call the emulated function with key=jax.random.key"):
        numfmt.emulate(lambda v: v * 2.0, SR)(x)
    with pytest.raises(ValueError, match="key= was given but policy 'compute=bfloat16' is deterministic"):
        numfmt.emulate(lambda v: v * 2.0, "compute=bfloat16")(x, key=jax.random.key(0))
    with pytest.raises(TypeError, match="key must be a jax.random key"):
        numfmt.emulate(lambda v: v * 2.0, SR)(x, key=3)


def test_unsupported_primitive_is_named():
    with pytest.raises(NotImplementedError, match="primitive 'nextafter': .* Workaround: "):
        numfmt.emulate(lambda v: jnp.nextafter(v, v + 1), "compute=float16")(jnp.ones(3, jnp.float32))
    with pytest.raises(NotImplementedError, match="primitive 'scatter' only without an update function"):
        numfmt.emulate(lambda v: v.at[0].apply(jnp.exp), "compute=float16")(jnp.ones(3, jnp.float32))  # scatter_apply


def test_format_wider_than_the_traced_dtype():
    with pytest.raises(ValueError, match="stores this value as float16, which cannot hold every value of bfloat16"):
        numfmt.emulate(lambda v: v * 2.0, "compute=bfloat16")(jnp.ones(3, jnp.float16))


def test_bad_policy_is_reported_at_wrap_time():
    with pytest.raises(ValueError, match="unknown policy key 'matmull'"):
        numfmt.emulate(lambda v: v, "compute=bfloat16,matmull=float16")


@pytest.mark.parametrize(
    "fn",
    [
        lambda z: z * z,
        lambda z: z + 1.0,
        lambda z: jnp.sum(z),
        lambda z: jnp.abs(z),
        lambda z: jnp.real(z) * 2.0,
    ],
)
def test_complex_arithmetic_is_refused_not_passed_through(fn):
    z = jnp.asarray([1.1 + 2.3j], jnp.complex64)
    with pytest.raises(NotImplementedError, match=r"complex arithmetic: primitive '\w+' has a complex64 operand"):
        numfmt.emulate(fn, "compute=float8_e4m3fn")(z)


def test_complex_built_inside_is_refused():
    f = numfmt.emulate(lambda a, b: jax.lax.complex(a, b) * 2.0, "compute=bfloat16")
    with pytest.raises(NotImplementedError, match="'complex' has a complex64 operand or result.*real arrays"):
        f(jnp.float32([1.0]), jnp.float32([2.0]))


def test_out_format_the_output_dtype_cannot_hold_is_refused():
    f = numfmt.emulate(lambda u, v: u @ v, "compute=float8_e4m3fn,out=float32")
    with pytest.raises(ValueError, match="dot_general output: .* as float16, which cannot hold every value of float32"):
        f(jnp.ones((2, 2), jnp.float16), jnp.ones((2, 2), jnp.float16))
