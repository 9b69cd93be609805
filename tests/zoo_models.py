"""A zoo of tiny models for ``numfmt.emulate`` (issue #15), shared by tests/test_emulate_zoo.py and
benchmarks/zoo_table.py.

Each model is a :class:`Model`: float32 parameters, an extra state (flax
``batch_stats`` or ``None``), one synthetic batch and a loss
``loss(params, state, batch) -> (loss, new_state)``. Widths 8-16, one or two
layers, batch 4-8, sequence 8, so that a case compiles and trains in seconds.

:func:`train` runs a few optimizer steps in one of two orders:

- ``"grad(emulate)"``: ``jax.jit(jax.value_and_grad(emulate(loss, policy)))``;
- ``"emulate(grad)"``: ``jax.jit(emulate(jax.value_and_grad(loss), policy))``

with the optimizer (optax SGD with momentum) outside ``emulate`` in both, and
``policy=None`` for the same steps in native float32.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import numfmt

# The JAX x64 mode the zoo runs under (one place decides it): users run with x64 off.
X64 = False


@contextlib.contextmanager
def config():
    """The zoo's JAX settings: x64 per :data:`X64`, standard dtype promotion (flax's ``avg_pool`` divides
    by a NumPy integer, which strict promotion refuses)."""
    with jax.enable_x64(X64), jax.numpy_dtype_promotion("standard"):
        yield


POLICIES = {
    "bf16": "compute=bfloat16",
    "fp8": "compute=bfloat16,matmul_in=float8_e4m3fn,accum=float32,out=bfloat16,bwd.matmul_in=float8_e5m2",
    "bf16_sr": "compute=bfloat16,rounding=stochastic",
    "mxfp8": "compute=float32,matmul_in=mxfp8_e4m3",
    "nvfp4": "compute=float32,matmul_in=nvfp4",
    "int8": "compute=float32,matmul_in=int8_per_channel",
    "posit16": "compute=posit16_1",
    "fp16": "compute=float16",
}
ORDERS = ("grad(emulate)", "emulate(grad)")
# LLVM optimisation level 0 for the zoo's training steps: halves their XLA:CPU compile time (the zoo's cost:
# a step runs in milliseconds) and leaves the float semantics (no fast-math at any level).
COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}
STEPS = 4
LEARNING_RATE = 0.05


class Model(NamedTuple):
    params: Any
    state: Any
    batch: tuple
    loss: Callable


def _f32(tree):
    return jax.tree.map(lambda a: a.astype(jnp.float32) if eqx.is_inexact_array(a) else a, tree)


def _xent(logits, labels):
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))


def _images(key, n, size, channels):
    x = jax.random.normal(key, (n, size, size, channels), jnp.float32)
    labels = (jnp.sum(x[..., 0], axis=(1, 2)) > 0).astype(jnp.int32)
    return x, labels


# -- flax linen ------------------------------------------------------------------


class _CNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(8, (3, 3))(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(8, (3, 3))(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        return nn.Dense(2)(x.reshape(x.shape[0], -1))


class _ResBlock(nn.Module):
    @nn.compact
    def __call__(self, x, train):
        h = nn.Conv(8, (3, 3))(x)
        h = nn.relu(nn.BatchNorm(use_running_average=not train)(h))
        h = nn.BatchNorm(use_running_average=not train)(nn.Conv(8, (3, 3))(h))
        x = nn.relu(x + h)
        return nn.Dense(2)(jnp.mean(x, axis=(1, 2)))


class _Block(nn.Module):
    @nn.compact
    def __call__(self, x, mask):  # (carry, broadcast input) -> (carry, None): the body of nn.scan
        h = nn.MultiHeadDotProductAttention(num_heads=2, qkv_features=16, deterministic=False, dropout_rate=0.1)(
            nn.LayerNorm()(x), mask=mask
        )
        x = x + nn.Dropout(0.1, deterministic=False)(h)
        h = nn.Dense(16)(nn.gelu(nn.Dense(32)(nn.LayerNorm()(x))))
        return x + h, None


class _LM(nn.Module):
    vocab: int = 16

    @nn.compact
    def __call__(self, tokens):
        embed = nn.Embed(self.vocab, 16)
        x = embed(tokens) + self.param("pos", nn.initializers.normal(0.02), (tokens.shape[-1], 16), jnp.float32)
        mask = nn.make_causal_mask(tokens)
        layers = nn.scan(  # two layers, one body: XLA compiles it once
            _Block,
            variable_axes={"params": 0},
            split_rngs={"params": True, "dropout": True},
            in_axes=nn.broadcast,
            length=2,
        )
        x, _ = layers()(x, mask)
        return embed.attend(nn.LayerNorm()(x))


class _RNN(nn.Module):
    @nn.compact
    def __call__(self, xs):
        h = nn.RNN(nn.LSTMCell(8))(xs)
        h = nn.RNN(nn.GRUCell(8))(h)
        return nn.Dense(1)(h)


class _ViT(nn.Module):
    @nn.compact
    def __call__(self, x):
        p = nn.Conv(16, (4, 4), strides=(4, 4), padding="VALID")(x)  # patch embedding
        tokens = p.reshape(p.shape[0], -1, 16)
        tokens = tokens + self.param("pos", nn.initializers.normal(0.02), tokens.shape[1:], jnp.float32)
        return nn.Dense(2)(jnp.mean(nn.LayerNorm()(tokens), axis=1))


def _image_classifier(model, seed, channels):
    """A stateless flax image classifier on its own synthetic 8x8 images."""
    x, labels = _images(jax.random.PRNGKey(seed), 8, 8, channels)
    params = _f32(model.init(jax.random.PRNGKey(0), x)["params"])

    def loss(p, state, batch):
        x, labels = batch
        return _xent(model.apply({"params": p}, x), labels), state

    return Model(params, None, (x, labels), loss)


def cnn():
    return _image_classifier(_CNN(), 1, 1)


def resnet():
    x, labels = _images(jax.random.PRNGKey(2), 8, 8, 8)
    model = _ResBlock()
    variables = _f32(model.init(jax.random.PRNGKey(0), x, train=False))

    def loss(p, state, batch):
        x, labels = batch
        logits, updates = model.apply({"params": p, "batch_stats": state}, x, train=True, mutable=["batch_stats"])
        return _xent(logits, labels), updates["batch_stats"]

    return Model(variables["params"], variables["batch_stats"], (x, labels), loss)


def transformer():
    tokens = jax.random.randint(jax.random.PRNGKey(3), (4, 9), 0, 16, jnp.int32)
    tokens = tokens.at[:, 1::2].set(tokens[:, 0::2][:, :4] % 4)  # something to learn
    model = _LM()
    params = _f32(model.init(jax.random.PRNGKey(0), tokens[:, :-1])["params"])
    dropout = jax.random.PRNGKey(4)  # a raw uint32 key: an ordinary array argument of emulate

    def loss(p, state, batch):
        tokens, rng = batch
        logits = model.apply({"params": p}, tokens[:, :-1], rngs={"dropout": rng})
        return _xent(logits, tokens[:, 1:]), state

    return Model(params, None, (tokens, dropout), loss)


def rnn():
    xs = jax.random.normal(jax.random.PRNGKey(5), (4, 8, 4), jnp.float32)
    ys = jnp.cumsum(xs[..., :1], axis=1) * 0.3
    model = _RNN()
    params = _f32(model.init(jax.random.PRNGKey(0), xs)["params"])

    def loss(p, state, batch):
        xs, ys = batch
        return jnp.mean((model.apply({"params": p}, xs) - ys) ** 2), state

    return Model(params, None, (xs, ys), loss)


def vit():
    return _image_classifier(_ViT(), 6, 3)


# -- equinox ---------------------------------------------------------------------


def _eqx_model(module, batch, loss_of_model):
    params, static = eqx.partition(_f32(module), eqx.is_array)

    def loss(p, state, batch):
        return loss_of_model(eqx.combine(p, static), batch), state

    return Model(params, None, batch, loss)


def eqx_mlp():
    x = jax.random.normal(jax.random.PRNGKey(7), (8, 8), jnp.float32)
    y = jnp.sin(x @ jnp.linspace(-1, 1, 8, dtype=jnp.float32))[:, None]
    module = eqx.nn.MLP(8, 1, 16, 2, key=jax.random.PRNGKey(0))
    return _eqx_model(module, (x, y), lambda m, b: jnp.mean((jax.vmap(m)(b[0]) - b[1]) ** 2))


class _EqxCNN(eqx.Module):
    conv: eqx.nn.Conv2d
    pool: eqx.nn.MaxPool2d
    linear: eqx.nn.Linear

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.conv = eqx.nn.Conv2d(1, 8, 3, padding=1, key=k1)
        self.pool = eqx.nn.MaxPool2d(2, 2)
        self.linear = eqx.nn.Linear(8 * 4 * 4, 2, key=k2)

    def __call__(self, x):
        return self.linear(self.pool(jax.nn.relu(self.conv(x))).reshape(-1))


def eqx_cnn():
    x, labels = _images(jax.random.PRNGKey(8), 8, 8, 1)
    x = jnp.moveaxis(x, -1, 1)  # equinox convolutions are channel-first, unbatched
    return _eqx_model(_EqxCNN(jax.random.PRNGKey(0)), (x, labels), lambda m, b: _xent(jax.vmap(m)(b[0]), b[1]))


MODELS = {
    "cnn": cnn,
    "resnet_bn": resnet,
    "transformer_lm": transformer,
    "lstm_gru": rnn,
    "eqx_mlp": eqx_mlp,
    "eqx_cnn": eqx_cnn,
    "vit_patch": vit,
}


@functools.cache
def model(name: str) -> Model:
    """The model ``name`` (built once per process)."""
    with config():
        return MODELS[name]()


def train(name: str, policy: str | None, order: str = "grad(emulate)", steps: int = STEPS):
    """The losses of ``steps`` SGD steps of model ``name`` under ``policy`` (None: native float32)."""
    with config():
        return _train(name, policy, order, steps)


def _train(name, policy, order, steps):
    m = model(name)
    stochastic = policy is not None and numfmt.Policy.parse(policy).is_stochastic
    value_and_grad = functools.partial(jax.value_and_grad, has_aux=True)
    if policy is None:
        fn = value_and_grad(m.loss)
    elif order == "grad(emulate)":
        fn = value_and_grad(numfmt.emulate(m.loss, policy))
    elif order == "emulate(grad)":
        fn = numfmt.emulate(value_and_grad(m.loss), policy)
    else:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    opt = optax.sgd(LEARNING_RATE, momentum=0.9)

    @functools.partial(jax.jit, compiler_options=COMPILER_OPTIONS)
    def step(params, state, opt_state, key):
        kw = {"key": key} if stochastic else {}
        (value, state), grads = fn(params, state, m.batch, **kw)
        updates, opt_state = opt.update(grads, opt_state)
        return optax.apply_updates(params, updates), state, opt_state, value

    params, state, opt_state = m.params, m.state, opt.init(m.params)
    losses = []
    for i in range(steps):
        params, state, opt_state, value = step(params, state, opt_state, jax.random.key(i))
        losses.append(float(value))
    return np.array(losses)
