"""Emulated vs native training steps of a small model zoo: compile time, step time, HLO size.

Models (flax linen, tiny by default): a Transformer LM at depth 1, 2, 4, 8
(16 with --deep), an MLP, a CNN, a ResNet block and an LSTM. Each step is
``jax.jit(step)``: ``value_and_grad`` of the loss (emulated with
``numfmt.emulate(loss, policy)``, or native float32) and an optax Adam update
outside emulate. For each model and policy the script prints, next to the
native float32 step of the same model in the same process:

- compile time ratio: the smallest of ``--compiles`` lowerings+compilations of
  a fresh ``jax.jit(step)`` (a warm-up compile runs first: the first compile
  of a process also pays JAX's one-time set-up);
- step time ratio: the median of ``--repeats`` calls of the compiled step;
- the optimised HLO's instruction count, emulated / native.

Targets (x = emulated / native): compile <= 2x (bfloat16), <= 3x (stochastic);
step <= 1.5x (bfloat16), <= 2x (stochastic), <= 3x (fp8 inputs, float32
accumulation). JAX's x64 flag stays off, as users have it.

Run: python benchmarks/bench_models.py [--clock cpu] [--repeats N] [--compiles K]
     [--models tfm1,mlp,...] [--deep] [--d-model 64 --seq 32 --batch 8]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from _common import CLOCKS
from _jax_timing import compile_once, step_time

import numfmt

POLICIES = {
    "bf16": ("compute=bfloat16", False),
    "bf16 SR": ("compute=bfloat16,rounding=stochastic", True),
    "fp8 acc32": ("compute=bfloat16,matmul_in=float8_e4m3fn,accum=float32", False),
}
COMPILE_TARGET = {"bf16": 2.0, "bf16 SR": 3.0}
STEP_TARGET = {"bf16": 1.5, "bf16 SR": 2.0, "fp8 acc32": 3.0}


# ---------------------------------------------------------------- models


class Block(nn.Module):
    """Pre-norm Transformer decoder block: causal self-attention and a GELU MLP."""

    heads: int
    mlp_ratio: int = 4

    @nn.compact
    def __call__(self, x):
        d = x.shape[-1]
        mask = nn.make_causal_mask(jnp.ones(x.shape[:2], jnp.int32))
        h = nn.LayerNorm()(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads)(h, h, mask=mask)
        h = nn.LayerNorm()(x)
        h = nn.Dense(self.mlp_ratio * d)(h)
        return x + nn.Dense(d)(nn.gelu(h))


class TransformerLM(nn.Module):
    vocab: int
    d_model: int
    depth: int
    heads: int
    seq: int

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(self.vocab, self.d_model)(tokens)
        pos = self.param("pos", nn.initializers.normal(0.02), (self.seq, self.d_model))
        x = x + pos[: tokens.shape[1]]
        for _ in range(self.depth):
            x = Block(self.heads)(x)
        return nn.Dense(self.vocab)(nn.LayerNorm()(x))


class MLP(nn.Module):
    widths: tuple

    @nn.compact
    def __call__(self, x):
        for w in self.widths[:-1]:
            x = nn.relu(nn.Dense(w)(x))
        return nn.Dense(self.widths[-1])(x)


class CNN(nn.Module):
    """Two conv + relu + average-pool stages and a dense head."""

    classes: int

    @nn.compact
    def __call__(self, x):
        for features in (16, 32):
            x = nn.relu(nn.Conv(features, (3, 3))(x))
            x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.classes)(nn.relu(nn.Dense(64)(x)))


class ResBlock(nn.Module):
    """conv-BN-relu-conv-BN plus the identity, relu; batch statistics from the batch."""

    features: int

    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.BatchNorm(use_running_average=False)(nn.Conv(self.features, (3, 3), use_bias=False)(x)))
        h = nn.BatchNorm(use_running_average=False)(nn.Conv(self.features, (3, 3), use_bias=False)(h))
        return nn.relu(x + h)


class ResNetBlock(nn.Module):
    features: int
    classes: int

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(self.features, (3, 3))(x)
        x = ResBlock(self.features)(x)
        return nn.Dense(self.classes)(jnp.mean(x, axis=(1, 2)))


class LSTMClassifier(nn.Module):
    hidden: int
    classes: int

    @nn.compact
    def __call__(self, x):
        h = nn.RNN(nn.OptimizedLSTMCell(self.hidden))(x)
        return nn.Dense(self.classes)(h[:, -1])


# ---------------------------------------------------------------- model zoo


@dataclass
class Case:
    """A model's loss(params, state, x, y), its parameters, state and one batch."""

    loss: Callable
    params: Any
    state: Any
    x: Any
    y: Any


def _xent(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _case(model, x, y, loss_of_output, mutable=False):
    variables = model.init(jax.random.key(0), x)
    params = variables.pop("params") if hasattr(variables, "pop") else variables["params"]
    state = {k: v for k, v in variables.items() if k != "params"}

    def loss(params, state, x, y):
        if mutable:
            out, _ = model.apply({"params": params, **state}, x, mutable=list(state))
        else:
            out = model.apply({"params": params}, x)
        return loss_of_output(out, y)

    return Case(loss, params, state, x, y)


def make_case(name: str, o) -> Case:
    k1, k2 = jax.random.split(jax.random.key(1))
    b, d = o.batch, o.d_model
    if name.startswith("tfm"):
        depth = int(name[3:])
        model = TransformerLM(o.vocab, d, depth, o.heads, o.seq)
        tokens = jax.random.randint(k1, (b, o.seq), 0, o.vocab)
        return _case(model, tokens[:, :-1], tokens[:, 1:], _xent)
    if name == "mlp":
        x = jax.random.normal(k1, (b, d), jnp.float32)
        y = jax.random.normal(k2, (b, d), jnp.float32)
        return _case(MLP((4 * d, 4 * d, d)), x, y, lambda out, y: jnp.mean((out - y) ** 2))
    labels = jax.random.randint(k2, (b,), 0, 10)
    if name == "cnn":
        x = jax.random.normal(k1, (b, o.image, o.image, 1), jnp.float32)
        return _case(CNN(10), x, labels, _xent)
    if name == "resnet":
        x = jax.random.normal(k1, (b, o.image, o.image, 3), jnp.float32)
        return _case(ResNetBlock(16, 10), x, labels, _xent, mutable=True)
    if name == "lstm":
        x = jax.random.normal(k1, (b, o.seq, d), jnp.float32)
        return _case(LSTMClassifier(d, 10), x, labels, _xent)
    raise ValueError(f"--models: unknown model {name!r}; choose from tfm<depth>, mlp, cnn, resnet, lstm")


# ---------------------------------------------------------------- timing


def make_step(loss_fn, optimizer, stochastic):
    def step(params, opt_state, state, x, y, key):
        kw = {"key": key} if stochastic else {}
        value, grads = jax.value_and_grad(loss_fn)(params, state, x, y, **kw)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return jax.jit(step)


def hlo_instructions(compiled) -> int:
    """Instruction lines of the optimised HLO (``name = type op(...)``)."""
    return sum(1 for line in compiled.as_text().splitlines() if " = " in line and not line.lstrip().startswith("//"))


def run_model(name, o, tick):
    case = make_case(name, o)
    optimizer = optax.adam(1e-3)
    args = (case.params, optimizer.init(case.params), case.state, case.x, case.y, jax.random.key(2))
    runs = {"native": lambda: make_step(case.loss, optimizer, False)}
    for label, (policy, stochastic) in POLICIES.items():
        if label in o.policies:
            emulated = numfmt.emulate(case.loss, policy)
            runs[label] = lambda e=emulated, s=stochastic: make_step(e, optimizer, s)
    compile_once(runs["native"], args, tick)  # warm-up
    compiles: dict = {label: [] for label in runs}
    for _ in range(o.compiles):
        for label, make in runs.items():
            compiles[label].append(compile_once(make, args, tick))
    results = {}
    for label, done in compiles.items():
        compiled = done[-1][1]
        step_s = step_time(compiled, args, o.repeats, tick)
        results[label] = (min(c for c, _ in done), step_s, hlo_instructions(compiled))
    return results


def _mark(ratio, target):
    if target is None:
        return f"{ratio:6.2f}x {'':10s}"
    return f"{ratio:6.2f}x {'<=' + format(target, 'g') + 'x':>5s} {'met' if ratio <= target else 'NOT':>3s}"


def report(name, results):
    base_c, base_t, base_h = results["native"]
    print(f"{name:7s} {'native':9s} {base_c:8.3f} {'':18s} {base_t * 1e3:9.3f} {'':18s} {base_h:7d}", flush=True)
    for label, (c, t, h) in results.items():
        if label == "native":
            continue
        print(
            f"{'':7s} {label:9s} {c:8.3f} {_mark(c / base_c, COMPILE_TARGET.get(label))} "
            f"{t * 1e3:9.3f} {_mark(t / base_t, STEP_TARGET.get(label))} {h:7d} {h / base_h:5.1f}x",
            flush=True,
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--compiles", type=int, default=1)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                    help="cpu: time.process_time (all threads of this process); wall: time.perf_counter")  # fmt: skip
    ap.add_argument("--models", default="tfm1,tfm2,tfm4,tfm8,mlp,cnn,resnet,lstm")
    ap.add_argument("--deep", action="store_true", help="add the depth-16 Transformer (slow to compile)")
    ap.add_argument("--policies", default=",".join(POLICIES), help=f"comma-separated subset of {list(POLICIES)}")
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--seq", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--image", type=int, default=16)
    o = ap.parse_args()
    o.policies = [p.strip() for p in o.policies.split(",")]
    bad = [p for p in o.policies if p not in POLICIES]
    if bad:
        ap.error(f"--policies: unknown {bad}; choose from {list(POLICIES)}")
    models = o.models.split(",") + (["tfm16"] if o.deep else [])
    tick = CLOCKS[o.clock]
    print(f"clock={o.clock} compiles={o.compiles} repeats={o.repeats} d_model={o.d_model} seq={o.seq} "
          f"batch={o.batch} x64={jax.config.read('jax_enable_x64')}")  # fmt: skip
    print(f"{'model':7s} {'step':9s} {'compile s':>8s} {'ratio  target':18s} {'step ms':>9s} "
          f"{'ratio  target':18s} {'HLO ins':>7s} {'ratio':>6s}")  # fmt: skip
    for name in models:
        report(name, run_model(name, o, tick))


if __name__ == "__main__":
    main()
