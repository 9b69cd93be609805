"""Throughput of block-format chop (MXFP4, NVFP4, MXFP8, per-channel int8) against the memory-copy floor.

Run: ``python benchmarks/bench_block.py [--n 4096] [--repeat 5] [--no-jax]``

Chops an n x n float32 matrix (blocks along the last axis) and prints, side by
side in one process: the NumPy copy floor (np.copyto into a preallocated
array), numfmt.chop on NumPy, the jitted copy floor (x + 0 under jax.jit) and
numfmt.chop under jax.jit, each with its ratio to its own floor. Best of
``--repeat`` runs, after compilation.
"""

from __future__ import annotations

import _common
import numpy as np

import numfmt

CLOCK = "wall"

FORMATS = ["mxfp4_e2m1", "nvfp4", "mxfp8_e4m3", "int8_per_channel"]


def best(fn, repeat):
    return _common.best(fn, repeat, CLOCK)


def main(argv=None):
    ap = _common.parser(__doc__, 4096)
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = args.clock
    x = np.random.default_rng(0).standard_normal((args.n, args.n)).astype(np.float32)
    dst = np.empty_like(x)
    copy = best(lambda: np.copyto(dst, x), args.repeat)
    jax = None
    if not args.no_jax:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)  # block formats compute on 64-bit patterns
        xj = jnp.asarray(x)
        jcopy_fn = jax.jit(lambda v: v + 0)
        jcopy_fn(xj).block_until_ready()
        jcopy = best(lambda: jcopy_fn(xj).block_until_ready(), args.repeat)
        print(f"device: {jax.devices()[0]}")
    print(f"{args.n} x {args.n} float32; best of {args.repeat}; ms; ratio to the copy floor of the same backend")
    print(f"{'format':12} {'copy':>7} {'numpy':>16} {'jcopy':>7} {'jit':>16}")
    for name in FORMATS:
        t = best(lambda: numfmt.chop(x, name), args.repeat)
        row = f"{name:12} {copy * 1e3:7.2f} {t * 1e3:7.1f} ({t / copy:5.1f}x)"
        if jax:
            f = jax.jit(lambda v: numfmt.chop(v, name))
            f(xj).block_until_ready()
            t = best(lambda: f(xj).block_until_ready(), args.repeat)
            row += f" {jcopy * 1e3:7.2f} {t * 1e3:7.1f} ({t / jcopy:5.1f}x)"
        print(row, flush=True)


if __name__ == "__main__":
    main()
