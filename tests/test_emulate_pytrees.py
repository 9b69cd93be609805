"""emulate with model pytrees as arguments and results, and grad= under emulate(grad(f)).

Equinox modules hold non-array leaves (activation functions): they are
closed over, not traced. Flax linen variable collections and nnx modules
pass through as pytrees of arrays.
"""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numfmt
from numfmt import chop

eqx = pytest.importorskip("equinox")

POLICY = "compute=bfloat16"


def _bits(tree):
    return [(np.asarray(a).dtype, np.asarray(a).tobytes()) for a in jax.tree.leaves(tree)]


def _mlp():
    model = eqx.nn.MLP(8, 2, 16, 2, key=jax.random.key(0))
    model = jax.tree.map(lambda a: a.astype(jnp.float32) if eqx.is_array(a) else a, model)
    x = jnp.linspace(-1.0, 1.0, 32, dtype=jnp.float32).reshape(4, 8)
    return model, x


def _loss(model, x):
    return jnp.mean(jax.vmap(model)(x) ** 2)


def test_equinox_module_passed_whole_equals_partitioned():
    model, x = _mlp()
    params, static = eqx.partition(model, eqx.is_array)
    got = numfmt.emulate(_loss, POLICY)(model, x)
    want = numfmt.emulate(lambda p, v: _loss(eqx.combine(p, static), v), POLICY)(params, x)
    assert _bits(got) == _bits(want)
    assert got.dtype == jnp.float32 and float(got) == float(chop(np.float64(got), "bfloat16"))


def test_equinox_module_as_result_keeps_its_functions():
    model, _ = _mlp()
    out = numfmt.emulate(lambda m: jax.tree.map(lambda a: a * 2.0 if eqx.is_array(a) else a, m), POLICY)(model)
    assert type(out) is type(model) and out.activation is model.activation
    arrays = [jax.tree.leaves(eqx.filter(m, eqx.is_array)) for m in (out, model)]
    for a, b in zip(*arrays, strict=True):
        np.testing.assert_array_equal(np.asarray(a), chop(2.0 * np.asarray(b, np.float64), "bfloat16"))


@pytest.mark.parametrize("order", ["grad(emulate)", "emulate(grad)"])
def test_equinox_gradients_equal_partitioned(order):
    model, x = _mlp()
    params, static = eqx.partition(model, eqx.is_array)

    def part(p, v):
        return _loss(eqx.combine(p, static), v)

    if order == "grad(emulate)":
        got = eqx.filter_grad(numfmt.emulate(_loss, POLICY))(model, x)
        want = jax.grad(numfmt.emulate(part, POLICY))(params, x)
    else:
        got = numfmt.emulate(eqx.filter_grad(_loss), POLICY)(model, x)
        want = numfmt.emulate(jax.grad(part), POLICY)(params, x)
        for g in jax.tree.leaves(got):  # the backward pass is emulated: bfloat16 values
            np.testing.assert_array_equal(np.asarray(g), chop(np.asarray(g, np.float64), "bfloat16"))
    assert _bits(eqx.filter(got, eqx.is_array)) == _bits(want)


def test_flax_linen_batchnorm_mutable_batch_stats():
    nn = pytest.importorskip("flax.linen")

    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.BatchNorm(use_running_average=False)(nn.Dense(8)(x))

    model = Model()
    x = jnp.linspace(-2.0, 2.0, 32, dtype=jnp.float32).reshape(4, 8)
    variables = model.init(jax.random.key(0), x)

    def step(v, x):
        return model.apply(v, x, mutable=["batch_stats"])

    (y, updates) = numfmt.emulate(step, POLICY)(variables, x)
    assert set(updates) == {"batch_stats"}
    flat = {"/".join(str(k.key) for k in path): a for path, a in jax.tree_util.tree_leaves_with_path(updates)}
    assert set(flat) == {"batch_stats/BatchNorm_0/mean", "batch_stats/BatchNorm_0/var"}
    for a in (y, *flat.values()):
        np.testing.assert_array_equal(np.asarray(a), chop(np.asarray(a, np.float64), "bfloat16"))
    assert not np.array_equal(np.asarray(flat["batch_stats/BatchNorm_0/mean"]), 0.0)  # the stats were updated
    leaves, tree = jax.tree.flatten(variables)
    again = numfmt.emulate(lambda v, x: step(jax.tree.unflatten(tree, v), x), POLICY)(leaves, x)
    assert _bits((y, updates)) == _bits(again)


def test_flax_nnx_module_whole_equals_split():
    nnx = pytest.importorskip("flax.nnx")
    layer = nnx.Linear(8, 4, rngs=nnx.Rngs(0))
    x = jnp.linspace(-1.0, 1.0, 16, dtype=jnp.float32).reshape(2, 8)

    def f(m, v):
        return jnp.sum(m(v) ** 2)

    graph, state = nnx.split(layer)
    got = numfmt.emulate(f, POLICY)(layer, x)
    want = numfmt.emulate(lambda s, v: f(nnx.merge(graph, s), v), POLICY)(state, x)
    assert _bits(got) == _bits(want)


def test_python_scalars_and_strings_are_closed_over_numpy_scalars_traced():
    # as equinox.filter_jit: Python numbers are static (a pooling layer's init must stay concrete)
    calls = []

    def f(x, scale, mode):
        calls.append((mode, "traced" if isinstance(scale, jax.core.Tracer) else type(scale).__name__))
        return x * scale if mode == "mul" else x + scale

    g = numfmt.emulate(f, "compute=float8_e4m3fn")
    x = jnp.float32(1.7)
    want = float(chop(chop(1.7, "float8_e4m3fn") * chop(3.1, "float8_e4m3fn"), "float8_e4m3fn"))
    assert float(g(x, 3.1, "mul")) == want
    assert float(g(x, 3.1, "mul")) == want and calls == [("mul", "float")]  # same value: the trace is reused
    assert float(g(x, 2.9, "mul")) == float(chop(1.75 * 2.875, "float8_e4m3fn"))  # a new value: a new trace
    assert calls == [("mul", "float"), ("mul", "float")]
    g(x, np.float32(2.9), "add")  # a NumPy scalar is an array: traced
    g(x, np.float32(3.9), "add")
    assert calls[2:] == [("add", "traced")]  # one trace for both values


@pytest.mark.parametrize("order", ["grad(emulate)", "emulate(grad)"])
@pytest.mark.parametrize("layer", ["MaxPool2d", "AvgPool2d"])
def test_equinox_pooling_layers_passed_whole(layer, order):
    # their init (-inf, 0) is a Python number: traced, reduce_window's JVP refused it (and an int init the dtype)
    pool = getattr(eqx.nn, layer)(2, 2)
    x = jnp.arange(32.0, dtype=jnp.float32).reshape(2, 4, 4) / 4

    def loss(x, p):
        return jnp.sum(p(x) ** 2)

    g = jax.grad(numfmt.emulate(loss, POLICY)) if order == "grad(emulate)" else numfmt.emulate(jax.grad(loss), POLICY)
    got = np.asarray(g(x, pool))
    want = np.asarray(jax.grad(loss)(x, pool))  # exact here: quarters, window sums of 4 and squares fit bfloat16
    np.testing.assert_array_equal(got, want)
    ref = numfmt.emulate(lambda v: jnp.sum(jax.lax.reduce_window(v, -jnp.inf, jax.lax.max, (2,), (2,), "VALID")),
                         POLICY)  # fmt: skip
    assert float(ref(x[0, 0])) == float(x[0, 0, 1] + x[0, 0, 3])


# -- grad= in both orders ------------------------------------------------------


def _f(w, x):
    return jnp.sum(jnp.tanh(x @ w) * 2.0)


@pytest.mark.parametrize(
    "make",
    [jax.grad, jax.value_and_grad, lambda f: jax.jit(jax.grad(f)), jax.jacrev],
    ids=["grad", "value_and_grad", "jit_grad", "jacrev"],
)
def test_grad_format_applies_in_both_orders(make):
    w = jnp.linspace(-1.0, 1.0, 9, dtype=jnp.float32).reshape(3, 3)
    x = jnp.linspace(0.3, 2.0, 6, dtype=jnp.float32).reshape(2, 3)
    policy = "compute=bfloat16,grad=float8_e5m2"
    inner = numfmt.emulate(make(_f), policy)(w, x)
    outer = make(numfmt.emulate(_f, policy))(w, x)
    for a, b in zip(jax.tree.leaves(inner), jax.tree.leaves(outer), strict=True):
        np.testing.assert_array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32))
    g = jax.tree.leaves(outer)[-1]
    np.testing.assert_array_equal(np.asarray(g), chop(np.asarray(g, np.float64), "float8_e5m2"))


def test_grad_format_applies_to_a_gradient_inside_a_branch():
    w = jnp.linspace(-1.0, 1.0, 9, dtype=jnp.float32)

    def f(w):
        return jax.lax.cond(w[0] > 0, lambda v: v, jax.grad(lambda v: jnp.sum(jnp.sin(v) * 3.0)), w)

    got = np.asarray(numfmt.emulate(f, "compute=bfloat16,grad=float8_e5m2")(w))
    np.testing.assert_array_equal(got, chop(got.astype(np.float64), "float8_e5m2"))
    plain = np.asarray(numfmt.emulate(f, "compute=bfloat16")(w))
    np.testing.assert_array_equal(plain, chop(plain.astype(np.float64), "bfloat16"))
    assert not np.array_equal(got, plain)


SCRIPT = r"""
import jax, jax.numpy as jnp, numpy as np
import numfmt
from numfmt import chop
assert not jax.config.read("jax_enable_x64")
def f(w, x):
    return jnp.sum((x @ w) * 0.5)
w = jnp.linspace(-1.0, 1.0, 9, dtype=jnp.float32).reshape(3, 3)
x = jnp.linspace(0.3, 2.0, 6, dtype=jnp.float32).reshape(2, 3)
for pol, fmt in (("compute=float16,grad=float8_e5m2", "float8_e5m2"),
                 ("compute=float8_e4m3fn,out=float16,grad=float8_e5m2", "float16")):
    g = jax.grad(numfmt.emulate(f, pol))(w, x)
    print("in format", np.array_equal(np.asarray(g), chop(np.asarray(g), fmt)))
    h = numfmt.emulate(jax.grad(f), pol)(w, x)
    print("orders agree", np.array_equal(np.asarray(g).view(np.uint32), np.asarray(h).view(np.uint32)))
"""


def test_x64_off_grad_format_fp8_and_float16_policies():
    # the backward matmul's output takes out= (float16) where the policy has one, else grad=
    root = pathlib.Path(__file__).resolve().parents[1]
    env = dict(os.environ, JAX_ENABLE_X64="0", JAX_PLATFORMS="cpu", PYTHONPATH=str(root))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n").count("in format True") == 2, proc.stdout
    assert proc.stdout.split("\n").count("orders agree True") == 2, proc.stdout


def test_flax_nnx_batchnorm_returned_with_updated_stats_equals_split():
    nnx = pytest.importorskip("flax.nnx")
    bn = nnx.BatchNorm(8, rngs=nnx.Rngs(0))
    x = jnp.linspace(-1.0, 3.0, 32, dtype=jnp.float32).reshape(4, 8)

    def f(m, v):
        return jnp.sum(m(v) ** 2), m  # in-place updates leave through the result (as under jax.jit)

    out, bn2 = numfmt.emulate(f, POLICY)(bn, x)
    assert type(bn2) is type(bn)
    mean = np.asarray(bn2.mean[...])
    assert not np.array_equal(mean, np.asarray(bn.mean[...]))
    np.testing.assert_array_equal(mean, chop(mean.astype(np.float64), "bfloat16"))
    graph, state = nnx.split(bn)

    def g(s, v):
        y, m = f(nnx.merge(graph, s), v)
        return y, nnx.split(m)[1]

    want_out, want_state = numfmt.emulate(g, POLICY)(state, x)
    assert _bits((out, nnx.split(bn2)[1])) == _bits((want_out, want_state))


@pytest.mark.parametrize("order", ["nnx.grad(emulate)", "emulate(nnx.grad)", "nnx.jit(emulate)"])
def test_flax_nnx_module_under_nnx_transforms_equals_split(order):
    nnx = pytest.importorskip("flax.nnx")
    layer = nnx.Linear(8, 4, rngs=nnx.Rngs(0))
    x = jnp.linspace(-1.0, 1.0, 16, dtype=jnp.float32).reshape(2, 8)
    graph, state = nnx.split(layer)

    def f(m, v):
        return jnp.sum(jnp.tanh(m(v)) ** 2)

    def part(s, v):
        return f(nnx.merge(graph, s), v)

    if order == "nnx.grad(emulate)":
        got = nnx.grad(numfmt.emulate(f, POLICY))(layer, x)
        want = jax.grad(numfmt.emulate(part, POLICY))(state, x)
    elif order == "emulate(nnx.grad)":
        got = numfmt.emulate(nnx.grad(f), POLICY)(layer, x)
        want = numfmt.emulate(jax.grad(part), POLICY)(state, x)
        for g in jax.tree.leaves(got):  # the backward pass is emulated: bfloat16 values
            np.testing.assert_array_equal(np.asarray(g), chop(np.asarray(g, np.float64), "bfloat16"))
    else:
        got = nnx.jit(numfmt.emulate(f, POLICY))(layer, x)
        want = numfmt.emulate(part, POLICY)(state, x)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    assert _bits(got) == _bits(want)
