"""Compiled emulated training step vs the same step native in float32.

MLP 512 -> 3 x 512 -> 512, batch 256, MSE loss, SGD update, all in one
jax.jit. Reports compile time and median step time of the native float32 step,
the emulated bfloat16 step (round to nearest even) and the emulated stochastic
step, and their ratios (targets: <= 1.5x step, <= 2x compile, SR <= 2x step).

Run: python benchmarks/bench_emulate.py [--repeats N]
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)  # bfloat16 elementwise emulation computes in float64

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


def measure(step, args, repeats):
    t0 = time.perf_counter()
    compiled = step.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0)
    return compile_s, statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    repeats = parser.parse_args().repeats
    keys = jax.random.split(jax.random.key(0), 6)
    params = [(jax.random.normal(k, (512, 512), jnp.float32) * np.float32(0.04), jnp.zeros(512, jnp.float32))
              for k in keys[:4]]  # fmt: skip
    x = jax.random.normal(keys[4], (256, 512), jnp.float32)
    y = jax.random.normal(keys[5], (256, 512), jnp.float32)
    args = (params, x, y, jax.random.key(1))
    runs = {
        "native float32": make_step(loss, False),
        "emulated bfloat16 RNE": make_step(numfmt.emulate(loss, "compute=bfloat16"), False),
        "emulated bfloat16 SR": make_step(numfmt.emulate(loss, "compute=bfloat16,rounding=stochastic"), True),
    }
    results = {name: measure(step, args, repeats) for name, step in runs.items()}
    base_c, base_t = results["native float32"]
    print(f"{'step':26s} {'compile s':>10s} {'ratio':>6s} {'step ms':>9s} {'ratio':>6s}")
    for name, (c, t) in results.items():
        print(f"{name:26s} {c:10.3f} {c / base_c:6.2f} {t * 1e3:9.3f} {t / base_t:6.2f}")


if __name__ == "__main__":
    main()
