"""Training under jax.jit(jax.grad(emulate(...))) with optax: an MLP and a scan RNN.

The tests check the rounding itself (every returned intermediate is a value of
the compute format, every parameter gradient a value of the gradient format),
not only that the loss goes down.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import numfmt

POLICIES = {
    "bf16_rne": ("compute=bfloat16", "bfloat16", None),
    "bf16_sr": ("compute=bfloat16,rounding=stochastic", "bfloat16", None),
    # the FP8 recipe: E4M3 forward and E5M2 backward matmul inputs, bfloat16 outputs (so bfloat16 gradients)
    "fp8_rne": ("compute=bfloat16,matmul_in=float8_e4m3fn,out=bfloat16,bwd.matmul_in=float8_e5m2", "bfloat16",
                "bfloat16"),
    "fp8_sr": ("compute=bfloat16,rounding=stochastic,matmul_in=float8_e4m3fn,out=bfloat16,grad=bfloat16,"
               "grad_rounding=stochastic,bwd.matmul_in=float8_e5m2", "bfloat16", "bfloat16"),
    "e5m2_grads": ("compute=bfloat16,grad=float8_e5m2", "bfloat16", "float8_e5m2"),
}  # fmt: skip


def representable(x, fmt):
    x = np.asarray(x)
    return np.array_equal(x.view(np.uint32), numfmt.chop(x, fmt).view(np.uint32))


def mlp(params, x):
    acts = []
    h = x
    for w, b in params[:-1]:
        h = jax.nn.relu(h @ w + b)
        acts.append(h)
    w, b = params[-1]
    return h @ w + b, acts


def rnn(params, xs):
    wx, wh, wo = params

    def step(h, x):
        h = jnp.tanh(x @ wx + h @ wh)
        return h, h

    _, hs = jax.lax.scan(step, jnp.zeros(wh.shape[0], jnp.float32), xs)
    return hs @ wo, [hs]


def init(key, sizes):
    keys = jax.random.split(key, len(sizes))
    return [
        (jax.random.normal(k, (m, n), jnp.float32) * np.float32(1 / np.sqrt(m)), jnp.zeros(n, jnp.float32))
        for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=False)
    ]


def train(model, params, x, y, policy, steps=25):
    spec, fmt, grad_fmt = POLICIES[policy]
    stochastic = "stochastic" in spec

    def loss(params, x, y):
        pred, acts = model(params, x)
        return jnp.mean((pred - y) ** 2), (pred, acts)

    emulated = numfmt.emulate(loss, spec)
    opt = optax.sgd(0.05, momentum=0.9)  # (optax.adam trips strict dtype promotion on its step count)

    @jax.jit
    def step(params, state, key):
        kw = {"key": key} if stochastic else {}
        (value, aux), grads = jax.value_and_grad(emulated, has_aux=True)(params, x, y, **kw)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(params, updates), state, value, aux, grads

    state = opt.init(params)
    losses = []
    for i in range(steps):
        params, state, value, aux, grads = step(params, state, jax.random.key(i))
        losses.append(float(value))
        if i in (0, steps - 1):
            pred, acts = aux
            assert representable(value, fmt) and representable(pred, fmt)
            assert all(representable(a, fmt) for a in acts)
            if grad_fmt:
                assert all(representable(g, grad_fmt) for g in jax.tree.leaves(grads))
            assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    return losses


@pytest.mark.parametrize("policy", list(POLICIES))
def test_mlp_trains_with_rounded_intermediates(policy):
    key = jax.random.key(0)
    x = jax.random.normal(key, (64, 8), jnp.float32)
    y = jnp.sin(x @ jnp.linspace(-1, 1, 8, dtype=jnp.float32))[:, None]
    losses = train(mlp, init(jax.random.key(1), [8, 16, 16, 1]), x, y, policy)
    assert losses[-1] < 0.6 * losses[0]


@pytest.mark.parametrize("policy", ["bf16_rne", "fp8_sr"])
def test_scan_rnn_trains_with_rounded_intermediates(policy):
    xs = jax.random.normal(jax.random.key(2), (12, 4), jnp.float32)
    ys = jnp.cumsum(xs[:, :1], axis=0) * 0.3
    keys = jax.random.split(jax.random.key(3), 3)
    params = [jax.random.normal(k, s, jnp.float32) * 0.3 for k, s in zip(keys, [(4, 8), (8, 8), (8, 1)], strict=True)]
    losses = train(rnn, params, xs, ys, policy)
    assert losses[-1] < 0.6 * losses[0]
