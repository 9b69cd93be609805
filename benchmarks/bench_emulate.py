"""Compiled emulated training step vs the same step native in float32.

MLP 512 -> 3 x 512 -> 512, batch 256, MSE loss, SGD update, all in one
jax.jit. Reports compile time and median step time of the native float32 step,
the emulated bfloat16 step (round to nearest even) and the emulated stochastic
step, and their ratios (targets: <= 1.5x step, <= 2x compile, SR <= 2x step).

Compile time is the smallest of ``--compiles`` lowerings+compilations of each
step, taken in turn (the first compile of a process also pays JAX's one-time
set-up, so a warm-up compile of the native step runs first).

Run: python benchmarks/bench_emulate.py [--repeats N] [--compiles K] [--clock cpu]
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)  # bfloat16 elementwise emulation computes in float64

from _common import CLOCKS  # noqa: E402
from _jax_timing import compile_once, step_time  # noqa: E402

import numfmt  # noqa: E402


def loss(params, x, y):
    h = x
    for w, b in params[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = params[-1]
    return jnp.mean((h @ w + b - y) ** 2)


def make_step(loss_fn, stochastic):
    def step(params, x, y, key):
        kw = {"key": key} if stochastic else {}
        value, grads = jax.value_and_grad(loss_fn)(params, x, y, **kw)
        return jax.tree.map(lambda p, g: p - np.float32(1e-3) * g, params, grads), value

    return jax.jit(step)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--compiles", type=int, default=3)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    opts = parser.parse_args()
    tick = CLOCKS[opts.clock]
    keys = jax.random.split(jax.random.key(0), 6)
    params = [(jax.random.normal(k, (512, 512), jnp.float32) * np.float32(0.04), jnp.zeros(512, jnp.float32))
              for k in keys[:4]]  # fmt: skip
    x = jax.random.normal(keys[4], (256, 512), jnp.float32)
    y = jax.random.normal(keys[5], (256, 512), jnp.float32)
    args = (params, x, y, jax.random.key(1))
    rne = numfmt.emulate(loss, "compute=bfloat16")
    sr = numfmt.emulate(loss, "compute=bfloat16,rounding=stochastic")
    runs = {
        "native float32": lambda: make_step(loss, False),
        "emulated bfloat16 RNE": lambda: make_step(rne, False),
        "emulated bfloat16 SR": lambda: make_step(sr, True),
    }
    compile_once(runs["native float32"], args, tick)  # warm-up: JAX's one-time set-up
    compiles = {name: [] for name in runs}
    for _ in range(opts.compiles):
        for name, make in runs.items():
            compiles[name].append(compile_once(make, args, tick))
    results = {
        name: (min(c for c, _ in done), step_time(done[-1][1], args, opts.repeats, tick))
        for name, done in compiles.items()
    }
    base_c, base_t = results["native float32"]
    print(f"{'step':26s} {'compile s':>10s} {'ratio':>6s} {'step ms':>9s} {'ratio':>6s}")
    for name, (c, t) in results.items():
        print(f"{name:26s} {c:10.3f} {c / base_c:6.2f} {t * 1e3:9.3f} {t / base_t:6.2f}")


if __name__ == "__main__":
    main()
