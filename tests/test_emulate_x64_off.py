"""emulate with JAX's x64 flag off (users' default): float64 work enabled locally while tracing.

Every policy gives the same bits with the global flag off as with it on, the
flag stays as the user set it, and inputs, results and gradients keep the
user's dtypes, in both orders of ``grad`` and ``emulate``, under ``jvp`` and
``vmap``. (The rest of the suite runs with x64 on, see conftest.py; the
subprocess test at the end runs with it off from the start.)
"""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import numfmt

POLICIES = [
    "compute=bfloat16",
    "compute=posit16_1",
    "compute=float16",
    "compute=bfloat16,rounding=toward_negative",
    "compute=bfloat16,rounding=stochastic",
    "compute=bfloat16,matmul_in=float8_e4m3fn,accum=float32,out=bfloat16",
    "compute=float32,matmul_in=mxfp8_e4m3",
    "compute=float32,matmul_in=nvfp4",
    "compute=float32,matmul_in=int8_per_channel",
    "compute=bfloat16,grad=float8_e5m2",
]


def model(params, x):
    w1, w2 = params
    h = jnp.tanh(x @ w1)
    h = h - jax.nn.logsumexp(h, axis=-1, keepdims=True)
    return jnp.mean(jax.nn.softmax(h @ w2, axis=-1) ** 2) + jnp.sum(jnp.exp(-(h**2))) * 1e-3


def _data():
    rng = np.random.default_rng(11)
    x = jnp.asarray(rng.standard_normal((2, 32)), jnp.float32)  # 32: one MX block along the contraction
    params = (jnp.asarray(rng.standard_normal((32, 16)) * 0.3, jnp.float32),
              jnp.asarray(rng.standard_normal((16, 8)) * 0.3, jnp.float32))  # fmt: skip
    return params, x


def _kw(policy):
    return {"key": jax.random.key(3)} if "stochastic" in policy else {}


def _bits(tree):
    return [np.asarray(a).view(np.uint32) for a in jax.tree.leaves(tree)]


def _both(fn):
    """``fn()`` with the flag off and on: the two results, and the flag seen after the off run."""
    with jax.enable_x64(False):
        off = jax.block_until_ready(fn())
        still_off = not jax.config.read("jax_enable_x64")
    with jax.enable_x64(True):
        on = jax.block_until_ready(fn())
    return off, on, still_off


@pytest.mark.parametrize("policy", POLICIES)
def test_value_and_gradient_bits_do_not_depend_on_the_flag(policy):
    params, x = _data()
    f = numfmt.emulate(model, policy)
    kw = _kw(policy)
    off, on, still_off = _both(lambda: jax.jit(jax.value_and_grad(lambda p: f(p, x, **kw)))(params))
    assert still_off
    assert all(a.dtype == np.float32 for a in jax.tree.leaves(off))
    for a, b in zip(_bits(off), _bits(on), strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(float(off[0]))


@pytest.mark.parametrize("policy", [POLICIES[i] for i in (0, 1, 4, 6)])
def test_emulated_gradient_bits_do_not_depend_on_the_flag(policy):
    params, x = _data()
    g = numfmt.emulate(jax.grad(model), policy)
    kw = _kw(policy)
    off, on, _ = _both(lambda: jax.jit(g)(params, x, **kw))
    assert all(a.dtype == np.float32 for a in jax.tree.leaves(off))
    for a, b in zip(_bits(off), _bits(on), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("policy", ["compute=bfloat16", "compute=posit16_1", "compute=float32,matmul_in=nvfp4"])
def test_jvp_and_vmap_with_the_flag_off_and_higher_derivatives_refused(policy):
    params, x = _data()
    f = numfmt.emulate(model, policy)
    off, on, still_off = _both(lambda: jax.jvp(lambda p: f(p, x), (params,), (params,)))
    assert still_off and off[1].dtype == np.float32
    for a, b in zip(_bits(off), _bits(on), strict=True):
        np.testing.assert_array_equal(a, b)
    # a derivative of a derivative would differentiate the inner rule as plain arithmetic: refused either way
    for flag in (False, True):
        with jax.enable_x64(flag):
            with pytest.raises(ValueError, match=r"emulate\(jax.hessian\(f\), policy\)"):
                jax.hessian(lambda p: f((p, params[1]), x))(params[0])
            with pytest.raises(ValueError, match="a derivative of a derivative of an emulated function"):
                jax.grad(lambda p: jax.grad(lambda q: f(q, x))(p)[0].sum())(params)
    batch = jnp.stack([x, -x])
    off, on, _ = _both(lambda: jax.vmap(lambda xb: f(params, xb))(batch))
    assert off.dtype == np.float32
    np.testing.assert_array_equal(_bits(off)[0], _bits(on)[0])


def test_a_scan_and_a_custom_jvp_function_with_the_flag_off():
    def f(w, xs):
        def step(c, x):
            c = jax.nn.gelu(c * w + x)  # gelu: a custom_jvp-free tanh form; relu below is custom_jvp
            return c, jax.nn.relu(c)

        return jax.lax.scan(step, jnp.zeros_like(xs[0]), xs)[1].sum()

    w = jnp.float32(0.7)
    xs = jnp.linspace(-1.0, 1.0, 24, dtype=jnp.float32).reshape(6, 4)
    e = numfmt.emulate(f, "compute=bfloat16")
    off, on, _ = _both(lambda: jax.jit(jax.value_and_grad(e, argnums=(0, 1)))(w, xs))
    for a, b in zip(_bits(off), _bits(on), strict=True):
        np.testing.assert_array_equal(a, b)


SCRIPT = r"""
import jax, jax.numpy as jnp, numpy as np
import numfmt
from jax import lax
assert not jax.config.read("jax_enable_x64")
w = jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float32).reshape(4, 3)
x = jnp.linspace(0.3, 2.0, 8, dtype=jnp.float32).reshape(2, 4)
f = lambda w, x: jnp.sum(jax.nn.softmax(jnp.tanh(x @ w)) ** 2)
for pol in ("compute=bfloat16", "compute=posit16_1", "compute=float32,matmul_in=mxfp8_e4m3"):
    v, g = jax.jit(jax.value_and_grad(numfmt.emulate(f, pol)))(w, x)
    print(pol, v.dtype, g.dtype, np.asarray(v).view(np.uint32), np.asarray(g).view(np.uint32).sum(dtype=np.uint64))
print("flag", jax.config.read("jax_enable_x64"), jnp.asarray(1.0).dtype)
"""


def test_a_process_with_x64_off_from_the_start_gets_the_x64_on_bits():
    root = pathlib.Path(__file__).resolve().parents[1]
    runs = {}
    for flag in ("0", "1"):
        env = dict(os.environ, JAX_ENABLE_X64=flag, JAX_PLATFORMS="cpu", PYTHONPATH=str(root))
        code = SCRIPT if flag == "0" else SCRIPT.replace("assert not jax", "assert jax")
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        runs[flag] = proc.stdout.splitlines()
    assert runs["0"][-1] == "flag False float32"  # the user's flag and default dtype are untouched
    assert runs["0"][:-1] == runs["1"][:-1]  # same dtypes (float32) and bits
    assert all(" float32 float32 " in line for line in runs["0"][:-1]), runs["0"]


# Primitives whose XLA lowering JAX traces from Python at compile time, after emulate's
# context is gone (select_and_scatter_add pads with a constant of its dtype: a float32
# constant against a float64 operand with the flag off), and their neighbours.
LOWERED_LATE = {
    "max_pool_same": lambda x: jnp.sum(
        lax.reduce_window(x.reshape(1, 8, 1), -jnp.inf, lax.max, (1, 3, 1), (1, 2, 1), "SAME") ** 2
    ),
    "min_pool_valid": lambda x: jnp.sum(
        lax.reduce_window(x.reshape(1, 8, 1), jnp.inf, lax.min, (1, 2, 1), (1, 2, 1), "VALID") ** 2
    ),
    "avg_pool_same": lambda x: jnp.sum(
        lax.reduce_window(x.reshape(1, 8, 1), 0.0, lax.add, (1, 3, 1), (1, 2, 1), "SAME") ** 2
    ),
    "sigmoid": lambda x: jnp.sum(jax.nn.sigmoid(x)),
    "negative_power": lambda x: jnp.sum(x**-2),
    "cumsum": lambda x: jnp.sum(jnp.cumsum(x) * x),
    "sort": lambda x: jnp.sum(jnp.sort(x) * jnp.arange(x.shape[0], dtype=x.dtype)),
    "top_k": lambda x: jnp.sum(lax.top_k(x, 3)[0]),
    "gather_fill": lambda x: jnp.sum(x.at[jnp.array([1, 9])].get(mode="fill", fill_value=2.0)),
    "scatter_clip": lambda x: jnp.sum(x.at[jnp.array([1, 9])].add(1.5, mode="clip") ** 2),
    "erf_inv": lambda x: jnp.sum(jax.scipy.special.erfinv(x / 10)),
}


@pytest.mark.parametrize("order", ["grad(emulate)", "emulate(grad)"])
@pytest.mark.parametrize("name", sorted(LOWERED_LATE))
def test_jitted_gradients_of_late_lowered_primitives_with_the_flag_off(name, order):
    f = LOWERED_LATE[name]
    g = (
        jax.grad(numfmt.emulate(f, "compute=bfloat16"))
        if order == "grad(emulate)"
        else numfmt.emulate(jax.grad(f), "compute=bfloat16")
    )
    x = jnp.linspace(-2.0, 3.0, 8, dtype=jnp.float32) + 0.01
    off, on, _ = _both(lambda: jax.jit(g)(x))
    assert off.dtype == jnp.float32
    np.testing.assert_array_equal(_bits(off)[0], _bits(on)[0])
    assert np.isfinite(np.asarray(off)).all()


def test_an_equinox_cnn_with_max_pooling_trains_jitted_with_the_flag_off():
    eqx = pytest.importorskip("equinox")
    conv = eqx.nn.Conv2d(1, 4, 3, padding=1, key=jax.random.key(0))
    conv = jax.tree.map(lambda a: a.astype(jnp.float32) if eqx.is_array(a) else a, conv)  # made under x64 here
    pool = eqx.nn.MaxPool2d(2, 2)
    x = jnp.linspace(-1.0, 1.0, 2 * 64, dtype=jnp.float32).reshape(2, 1, 8, 8)

    def loss(conv, x):
        return jnp.mean(jax.vmap(lambda im: pool(jax.nn.relu(conv(im))))(x) ** 2)

    def step():  # a new filter_jit per flag setting: its cache does not key on the flag
        return eqx.filter_jit(eqx.filter_value_and_grad(numfmt.emulate(loss, "compute=bfloat16")))(conv, x)

    off, on, _ = _both(step)
    for a, b in zip(_bits(eqx.filter(off, eqx.is_array)), _bits(eqx.filter(on, eqx.is_array)), strict=True):
        np.testing.assert_array_equal(a, b)
