"""Compile and step timing of jitted JAX training steps, shared by the emulate benchmarks."""

import statistics

import jax


def compile_once(make, args, tick):
    """Seconds to lower and compile a fresh ``make()`` (nothing cached from an earlier compile), and the result."""
    step = make()
    t0 = tick()
    compiled = step.lower(*args).compile()
    return tick() - t0, compiled


def step_time(compiled, args, repeats, tick):
    """Median seconds of ``repeats`` calls of ``compiled(*args)``, after one warm-up call."""
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        t0 = tick()
        jax.block_until_ready(compiled(*args))
        times.append(tick() - t0)
    return statistics.median(times)
