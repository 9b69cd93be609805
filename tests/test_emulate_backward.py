"""Derivatives of emulated functions are emulated: grad(emulate(f)) and emulate(grad(f)) agree bit for bit.

The derivative arithmetic runs under ``Policy.backward()`` (``grad=``,
``grad_rounding=``, ``bwd.KEY=VALUE``) in both orders: in
``jax.grad(emulate(f))`` by the emulated function's own custom_vjp/custom_jvp
rules, in ``emulate(jax.grad(f))`` on the equations JAX marks as transposed.
The backward formats are checked against NumPy/ml_dtypes references computed
by hand, on values a wrong format would change.
"""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax import lax

import numfmt

RNG = np.random.default_rng(0)


def _bits(tree):
    return [np.asarray(leaf).view(f"u{np.asarray(leaf).dtype.itemsize}") for leaf in jax.tree.leaves(tree)]


def assert_same_bits(a, b):
    la, lb = _bits(a), _bits(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_array_equal(x, y)


def _normal(*shape, scale=1.0):
    return jnp.asarray(RNG.normal(size=shape) * scale, jnp.float32)


# ---------------------------------------------------------------- models: (loss(params, data), params, data)


def mlp():
    def loss(p, data):
        x, labels = data
        h = jnp.tanh(x @ p["w1"] + p["b1"])
        with jax.named_scope("head"):
            logits = h @ p["w2"]
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))

    params = {"w1": _normal(12, 16, scale=0.4), "b1": _normal(16, scale=0.1), "w2": _normal(16, 5, scale=0.4)}
    return loss, params, (_normal(6, 12), jnp.asarray(RNG.integers(0, 5, 6), jnp.int32))


def conv():
    def loss(p, x):
        y = lax.conv_general_dilated(x, p["k"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = jax.nn.relu(y)
        y = lax.reduce_window(y, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4.0
        z = lax.reduce_window(y, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 1, 1, 1), "VALID")
        with jax.named_scope("head"):
            return jnp.sum(z * p["scale"]) / z.size

    return loss, {"k": _normal(3, 3, 2, 4, scale=0.5), "scale": _normal(4)}, _normal(2, 6, 6, 2)


def rnn():
    def loss(p, xs):
        def cell(h, x):
            h = jnp.tanh(h @ p["wh"] + x @ p["wx"])
            return h, jnp.sum(h * h)

        h, ys = lax.scan(cell, jnp.zeros(6, jnp.float32), xs)
        with jax.named_scope("head"):
            return jnp.sum(ys) + jnp.sum(jnp.sin(h))

    return loss, {"wh": _normal(6, 6, scale=0.3), "wx": _normal(3, 6, scale=0.5)}, _normal(5, 3)


def attention():
    def loss(p, x):
        q, k, v = (x @ p[n] for n in ("q", "k", "v"))
        s = q @ k.T / jnp.sqrt(jnp.float32(q.shape[-1]))
        mask = jnp.tril(jnp.ones(s.shape, bool))
        a = jax.nn.softmax(jnp.where(mask, s, -jnp.inf), axis=-1)
        o = a @ v
        mu = jnp.mean(o, -1, keepdims=True)
        o = (o - mu) * lax.rsqrt(jnp.mean((o - mu) ** 2, -1, keepdims=True) + 1e-5)
        with jax.named_scope("head"):
            return jnp.mean(jax.nn.gelu(o) ** 2)

    return loss, {n: _normal(8, 8, scale=0.4) for n in "qkv"}, _normal(7, 8)


MODELS = {"mlp": mlp, "conv": conv, "rnn": rnn, "attention": attention}
POLICIES = [
    "compute=bfloat16",
    "compute=bfloat16,grad=float16",
    "compute=float16,rounding=toward_zero,grad=bfloat16,grad_rounding=to_odd",
    "compute=bfloat16,matmul_in=float8_e4m3fn,accum=float32,out=bfloat16,bwd.matmul_in=float8_e5m2",
    "compute=float8_e4m3fn,matmul=bfloat16,grad=float8_e5m2,bwd.matmul=float16,bwd.transcendental=float32",
    "compute=bfloat16,grad=float32,scope(head)=float16,bwd.reductions=float16@toward_negative",
    "compute=posit16_1,grad=bfloat16",
]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("model", MODELS)
def test_grad_of_emulate_equals_emulate_of_grad(model, policy):
    loss, params, data = MODELS[model]()
    outer = jax.jit(jax.value_and_grad(numfmt.emulate(loss, policy)))(params, data)
    inner = jax.jit(numfmt.emulate(jax.value_and_grad(loss), policy))(params, data)
    assert_same_bits(outer, inner)
    eager = jax.grad(numfmt.emulate(loss, policy))(params, data)
    assert_same_bits(eager, outer[1])
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(eager))


@pytest.mark.parametrize("model", ["mlp", "rnn"])
def test_gradients_are_values_of_the_gradient_format(model):
    loss, params, data = MODELS[model]()
    grads = jax.grad(numfmt.emulate(loss, "compute=bfloat16,grad=float8_e5m2"))(params, data)
    for g in jax.tree.leaves(grads):
        g = np.asarray(g)
        np.testing.assert_array_equal(g, g.astype(ml_dtypes.float8_e5m2).astype(np.float32))
    assert any(np.any(g != 0) for g in jax.tree.leaves(grads))


# ---------------------------------------------------------------- backward formats against hand references

# Values of float8_e4m3fn that float8_e5m2 does not hold: 9, 11, 13 round (to even) to 8, 12, 12 in e5m2.
X_E4M3 = np.array([[9.0, 11.0, 13.0, 7.0], [13.0, 9.0, 3.0, 11.0], [5.0, 13.0, 9.0, 9.0]], np.float32)
C = np.array([[1.0, 2.0], [3.0, -1.0], [2.0, 2.0]], np.float32)


@pytest.mark.parametrize("bwd_in", [None, "float8_e5m2"])
def test_backward_matmul_inputs_take_the_bwd_format(bwd_in):
    """d/dw sum((x @ w) * c) = x^T c: the backward matmul reads x (its residual) in bwd.matmul_in."""
    policy = "compute=float32,matmul_in=float8_e4m3fn" + (f",bwd.matmul_in={bwd_in}" if bwd_in else "")
    w = jnp.ones((4, 2), jnp.float32)

    def loss(w, x, c):
        return jnp.sum((x @ w) * c)

    got = jax.grad(numfmt.emulate(loss, policy))(w, jnp.asarray(X_E4M3), jnp.asarray(C))
    x = X_E4M3 if bwd_in is None else X_E4M3.astype(ml_dtypes.float8_e5m2).astype(np.float64)
    want = x.T.astype(np.float64) @ C.astype(np.float64)  # small integers: exact
    np.testing.assert_array_equal(np.asarray(got, np.float64), want)
    assert_same_bits(got, jax.grad(lambda w: numfmt.emulate(loss, policy)(w, X_E4M3, C))(w))
    assert_same_bits(got, numfmt.emulate(jax.grad(loss), policy)(w, jnp.asarray(X_E4M3), jnp.asarray(C)))


def test_backward_elementwise_arithmetic_takes_the_grad_format():
    """d/dx sum(x * y * c) = (1 * c) * y: under grad=float16 each backward multiply is one float16 rounding.

    A backward operation rounds its operands into its own format, as the forward ones do: y and c
    (an input and a constant, not results of a forward operation) enter it from float32.
    """
    x, y, c = _normal(64), _normal(64), _normal(64)
    got = jax.grad(numfmt.emulate(lambda x, y: jnp.sum(x * y * c), "compute=bfloat16,grad=float16"))(x, y)
    ct = np.asarray(c).astype(np.float16)  # 1 * c: exact
    want = (ct.astype(np.float64) * np.asarray(y).astype(np.float16).astype(np.float64)).astype(np.float16)
    np.testing.assert_array_equal(np.asarray(got).astype(np.float16).view(np.uint16), want.view(np.uint16))
    np.testing.assert_array_equal(np.asarray(got), want.astype(np.float32))
    plain = jax.grad(numfmt.emulate(lambda x, y: jnp.sum(x * y * c), "compute=bfloat16"))(x, y)
    cb = np.asarray(c).astype(ml_dtypes.bfloat16).astype(np.float64)
    want_bf16 = (cb * np.asarray(y).astype(ml_dtypes.bfloat16).astype(np.float64)).astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(np.asarray(plain), want_bf16.astype(np.float32))


def test_forward_values_do_not_depend_on_the_backward_policy():
    loss, params, data = mlp()
    base = "compute=bfloat16,matmul_in=float8_e4m3fn,accum=float32,out=bfloat16"
    v1 = jax.value_and_grad(numfmt.emulate(loss, base))(params, data)
    v2 = jax.value_and_grad(numfmt.emulate(loss, base + ",grad=float16,bwd.matmul_in=float8_e5m2"))(params, data)
    assert_same_bits(v1[0], v2[0])
    assert_same_bits(v1[0], numfmt.emulate(loss, base)(params, data))
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(v1[1]), jax.tree.leaves(v2[1]), strict=True))


# ---------------------------------------------------------------- forward mode, vjp, vmap


@pytest.mark.parametrize("policy", ["compute=bfloat16", "compute=float16,rounding=toward_positive"])
def test_jvp_of_emulate_equals_emulate_of_jvp(policy):
    loss, params, data = attention()
    tangent = jax.tree.map(lambda p: jnp.asarray(RNG.normal(size=p.shape), jnp.float32), params)
    outer = jax.jvp(lambda p: numfmt.emulate(loss, policy)(p, data), (params,), (tangent,))
    inner = numfmt.emulate(lambda p, t: jax.jvp(lambda q: loss(q, data), (p,), (t,)), policy)(params, tangent)
    assert_same_bits(outer, inner)


def test_jvp_tangents_are_computed_in_the_grad_format():
    f = numfmt.emulate(lambda x: jnp.sum(jnp.sin(x) * x), "compute=bfloat16,grad=float8_e5m2")
    x, t = _normal(16), _normal(16)
    primal, tangent = jax.jvp(f, (x,), (t,))
    assert_same_bits(primal, f(x))
    assert float(tangent) == float(np.float32(float(tangent)).astype(ml_dtypes.float8_e5m2))
    jac = jax.jacfwd(f)(x)
    np.testing.assert_array_equal(np.asarray(jac), np.asarray(jac).astype(ml_dtypes.float8_e5m2).astype(np.float32))
    assert_same_bits(jac, jax.jacrev(f)(x))  # sin's rule: one product per element either way


def test_vjp_vmap_and_partial_arguments():
    loss, params, data = mlp()
    policy = "compute=bfloat16,grad=float16"
    f = numfmt.emulate(loss, policy)
    out, pull = jax.vjp(lambda p: f(p, data), params)
    (g,) = pull(jnp.float32(1.0))
    assert_same_bits(g, jax.grad(f)(params, data))
    batched = jax.vmap(jax.grad(f), in_axes=(None, 0))(params, (data[0][None], data[1][None]))
    assert_same_bits(jax.tree.map(lambda v: v[0], batched), jax.grad(f)(params, data))
    gx = jax.grad(lambda x: f(params, (x, data[1])))(data[0])  # differentiated by the data only
    assert gx.shape == data[0].shape and np.all(np.isfinite(gx))


LINEARIZE_POLICIES = [
    "compute=bfloat16",
    "compute=bfloat16,grad=float16",
    "compute=bfloat16,matmul_in=float8_e4m3fn,accum=float32,out=bfloat16,bwd.matmul_in=float8_e5m2",
]


def _tangent_reference(loss, policy, params, data, tangent):
    """The jvp of the emulated loss: emulate(jvp) where no derivative policy is given (the orders coincide).

    With ``grad=``/``bwd.`` the orders differ by design: ``emulate(jax.jvp(f))`` has no transposed equations,
    so its tangents take the forward policy; ``jax.jvp(emulate(f))`` computes them in the derivative policy.
    """
    if numfmt.Policy.parse(policy).backward() == numfmt.Policy.parse(policy):
        return numfmt.emulate(lambda p, t: jax.jvp(lambda q: loss(q, data), (p,), (t,)), policy)(params, tangent)
    return jax.jvp(lambda p: numfmt.emulate(loss, policy)(p, data), (params,), (tangent,))


@pytest.mark.parametrize("policy", LINEARIZE_POLICIES)
def test_linearize_pushes_and_pulls_through_the_emulated_linear_map(policy):
    loss, params, data = attention()
    tangent = jax.tree.map(lambda p: jnp.asarray(RNG.normal(size=p.shape), jnp.float32), params)
    f = numfmt.emulate(loss, policy)
    primal, f_jvp = jax.linearize(lambda p: f(p, data), params)
    reference = _tangent_reference(loss, policy, params, data, tangent)
    assert_same_bits((primal, f_jvp(tangent)), reference)
    assert_same_bits(jax.jit(f_jvp)(tangent), reference[1])
    # its transpose is the emulated pullback: the gradient of either order
    (pulled,) = jax.linear_transpose(f_jvp, params)(jnp.float32(1.0))
    assert_same_bits(pulled, numfmt.emulate(jax.grad(loss), policy)(params, data))
    # mapped over a batch of tangents (the residuals unbatched): the Jacobian, column by column
    g = numfmt.emulate(lambda x: jnp.sin(x) * x, policy)
    x = _normal(5)
    _, g_jvp = jax.linearize(g, x)
    assert_same_bits(jax.vmap(g_jvp, out_axes=1)(jnp.eye(5, dtype=jnp.float32)), jax.jacfwd(g)(x))


@pytest.mark.parametrize("policy", LINEARIZE_POLICIES)
def test_derivatives_taken_outside_a_jit_of_the_emulated_function(policy):
    loss, params, data = attention()
    tangent = jax.tree.map(lambda p: jnp.asarray(RNG.normal(size=p.shape), jnp.float32), params)
    f = jax.jit(numfmt.emulate(loss, policy))  # the call is traced with no differentiation in sight
    reference = _tangent_reference(loss, policy, params, data, tangent)
    assert_same_bits(jax.jvp(lambda p: f(p, data), (params,), (tangent,)), reference)
    inner_grad = numfmt.emulate(jax.value_and_grad(loss), policy)(params, data)
    assert_same_bits(jax.value_and_grad(f)(params, data), inner_grad)
    out, pull = jax.vjp(lambda p: f(p, data), params)
    assert_same_bits((out, pull(jnp.float32(1.0))[0]), inner_grad)
    x = _normal(6)
    g = jax.jit(numfmt.emulate(lambda x: jnp.sin(x) * x, policy))
    assert_same_bits(jax.jacfwd(g)(x), jax.jacfwd(numfmt.emulate(lambda x: jnp.sin(x) * x, policy))(x))
    assert_same_bits(jax.jacrev(g)(x), numfmt.emulate(jax.jacrev(lambda x: jnp.sin(x) * x), policy)(x))


def test_per_example_stochastic_gradients_under_vmap_match_a_loop():
    loss, params, data = mlp()
    f = numfmt.emulate(loss, "compute=bfloat16,rounding=stochastic,grad=bfloat16")
    keys = jax.random.split(jax.random.key(3), 3)
    xs, labels = data[0][:3, None], data[1][:3, None]
    batched = jax.jit(jax.vmap(lambda x, y, k: jax.grad(f)(params, (x, y), key=k)))(xs, labels, keys)
    for i in range(3):
        single = jax.grad(f)(params, (xs[i], labels[i]), key=keys[i])
        assert_same_bits(jax.tree.map(lambda v, i=i: v[i], batched), single)


def test_integer_arguments_and_outputs():
    def fn(w, n):
        return jnp.sum(w * n.astype(jnp.float32)), n + 1

    f = numfmt.emulate(fn, "compute=bfloat16,grad=float16")
    (v, m), g = jax.value_and_grad(f, has_aux=True)(_normal(5), jnp.arange(5, dtype=jnp.int32))
    np.testing.assert_array_equal(np.asarray(g), np.arange(5, dtype=np.float32))
    np.testing.assert_array_equal(np.asarray(m), np.arange(1, 6))


# ---------------------------------------------------------------- stochastic rounding


def test_stochastic_backward_is_reproducible_and_unbiased_in_its_own_stream():
    x = jnp.full((4096,), 1.0 + 2.0**-8, jnp.float32)  # halfway between the bfloat16 values 1 and 1 + 2**-7

    def loss(w):
        return jnp.sum(w * x)

    f = numfmt.emulate(loss, "compute=float32,grad=bfloat16,grad_rounding=stochastic")
    g1 = jax.grad(f)(jnp.ones(4096, jnp.float32), key=jax.random.key(1))
    g2 = jax.grad(f)(jnp.ones(4096, jnp.float32), key=jax.random.key(1))
    g3 = jax.grad(f)(jnp.ones(4096, jnp.float32), key=jax.random.key(2))
    assert_same_bits(g1, g2)
    assert not np.array_equal(np.asarray(g1), np.asarray(g3))
    values = set(np.unique(np.asarray(g1)).tolist())
    assert values == {1.0, 1.0 + 2.0**-7}
    up = float(np.mean(np.asarray(g1) > 1.0))
    assert abs(up - 0.5) < 4 * np.sqrt(0.25 / 4096)  # binomial bound at a fixed seed


# ---------------------------------------------------------------- refusals and errors


@pytest.mark.parametrize(
    "derive",
    [jax.hessian, lambda f: jax.grad(jax.grad(f)), lambda f: jax.jacfwd(jax.jacrev(f))],
    ids=["hessian", "grad-of-grad", "jacfwd-of-jacrev"],
)
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit-inside"])
def test_derivatives_of_derivatives_are_refused(derive, jit):
    f = numfmt.emulate(lambda x: jnp.sum(jnp.sin(x)), "compute=bfloat16")
    f = jax.jit(f) if jit else f  # inside jit the call sees no derivative: the linear part refuses it
    x = jnp.float32(0.5)
    with pytest.raises(ValueError, match=r"emulate\(jax.hessian\(f\), policy\)"):
        derive(f)(x)


def test_forward_mode_through_a_custom_vjp_function_is_refused_clearly():
    @jax.custom_vjp
    def scaled(x):
        return x * 1.1

    scaled.defvjp(lambda x: (x * 1.1, None), lambda _, g: (jnp.clip(g, -0.5, 0.5),))
    f = numfmt.emulate(lambda x: jnp.sum(scaled(x) ** 2), "compute=float16,grad=bfloat16")
    x = jnp.asarray([0.1, 3.0], jnp.float32)
    g = jax.jit(jax.grad(f))(x)  # reverse mode: the function's own pullback, emulated
    assert float(g[1]) == 0.5
    with pytest.raises(NotImplementedError, match="custom_lin.*no pushforward.*reverse mode"):
        jax.jvp(f, (x,), (x,))


def test_the_whole_derivative_can_be_emulated_instead():
    h = numfmt.emulate(jax.hessian(lambda x: jnp.sum(jnp.sin(x) * x)), "compute=bfloat16")(_normal(3))
    assert h.shape == (3, 3) and np.all(np.isfinite(h))
    np.testing.assert_array_equal(np.asarray(h), np.asarray(h).astype(ml_dtypes.bfloat16).astype(np.float32))


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("compute=bfloat16,bwd.compute=float16", "given by grad=FORMAT"),
        ("compute=bfloat16,bwd.rounding=toward_zero", "given by grad_rounding=MODE"),
        ("compute=bfloat16,bwd.chunk=4", "chunk=4 needs an accumulator"),
        ("compute=bfloat16,accum=float32,bwd.chunk=x", "chunk='x' must be a positive integer"),
        ("compute=bfloat16,bwd.matmul_inn=float16", "Did you mean bwd.matmul_in"),
        ("compute=bfloat16,bwd.accum=mxfp8_e4m3", "block/scaled format"),
        ("compute=bfloat16,bwd.prim.expp=float16", "not a JAX primitive"),
        ("compute=bfloat16,bwd.out=float16,bwd.out=float32", "given twice"),
        ("compute=bfloat16,grad_rounding=stochastic", "needs grad=FORMAT"),
        ("compute=bfloat16,scope(head).bwd.out=float16", "unknown policy key"),
    ],
)
def test_bad_backward_items(spec, match):
    with pytest.raises(ValueError, match=match):
        numfmt.Policy.parse(spec)


def test_backward_policy_resolution():
    p = numfmt.Policy.parse(
        "compute=bfloat16,rounding=stochastic,matmul_in=float8_e4m3fn,accum=float32,out=bfloat16,"
        "grad=float16,bwd.matmul_in=float8_e5m2,bwd.transcendental=float32@toward_zero,scope(head)=float32"
    )
    assert str(p.backward()) == (
        "compute=float16,matmul_in=float8_e5m2,accum=float32,out=bfloat16,transcendental=float32@toward_zero"
    )
    head = p.for_scope(("model", "head"))  # scope(P)=SITE: the scope's forward and backward pass
    assert str(head) == "compute=float32" and head.backward() == head
    q = numfmt.Policy.parse("compute=bfloat16,grad=float16,bwd.matmul_in=float8_e5m2,scope(head).compute=float32")
    assert str(q.for_scope("head")) == "compute=float32,grad=float16,bwd.matmul_in=float8_e5m2"
    assert str(q.for_scope("head").backward()) == "compute=float16,matmul_in=float8_e5m2"
    assert p.is_stochastic and not numfmt.Policy.parse("compute=bfloat16,grad=float16").is_stochastic
