"""Throughput of numfmt.chop for posits and fixed point against the copy floor.

Run: ``python benchmarks/bench_families.py [--n 10000000] [--repeat 5] [--no-jax]``

For 10^7 float32 values (standard normal * 100) it times, side by side in one
process: ``np.copyto`` into a preallocated array (the NumPy floor), numfmt.chop
on NumPy, a jitted copy (``x + 0``, the JAX floor) and numfmt.chop inside
``jax.jit``, and prints each time with its ratio to the floor of the same
backend. Best of ``--repeat`` runs. Targets (issue 4): posits within 4x and
fixed point within 2x of the copy floor. It also prints one NumPy pass into a
fresh array (``np.add(x, 0)``): the output's first-touch page faults cost
about one copy, so a NumPy ``chop``, which returns a new array, cannot get
below about 2x.
"""

from __future__ import annotations

import _common
import numpy as np

import numfmt

CLOCK = "wall"

FORMATS = ["posit16_1", "posit32_2", "posit8_0", "int8", "q3.12", "fixed(i=7,f=8,overflow=wrap)"]


def best(fn, repeat):
    return _common.best(fn, repeat, CLOCK)


def main(argv=None):
    ap = _common.parser(__doc__, 10_000_000)
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = args.clock
    jax = None
    if not args.no_jax:
        import jax
        import jax.numpy as jnp

    x = (np.random.default_rng(0).standard_normal(args.n) * 100).astype(np.float32)
    dst = np.empty_like(x)
    copy = best(lambda: np.copyto(dst, x), args.repeat)
    print(f"n = {args.n:,} float32; best of {args.repeat}; ms (ratio to the copy floor of the same backend)")
    fresh = best(lambda: np.add(x, 0), args.repeat)
    print(f"one pass into a new array (np.add(x, 0), what any chop returning a fresh array pays): "
          f"{fresh * 1e3:.1f} ms ({fresh / copy:.1f}x)")  # fmt: skip
    header = f"{'format':30} {'copy':>6} {'numpy RNE':>15}"
    if jax:
        xj = jnp.asarray(x)
        jcopy_fn = jax.jit(lambda v: v + 0)
        jcopy_fn(xj).block_until_ready()
        jcopy = best(lambda: jcopy_fn(xj).block_until_ready(), args.repeat)
        header += f" {'jcopy':>6} {'jit RNE':>15} {'jit SR':>15}"
    print(header)
    for name in FORMATS:
        t = best(lambda: numfmt.chop(x, name), args.repeat)
        row = f"{name:30} {copy * 1e3:6.1f} {t * 1e3:7.1f} ({t / copy:4.1f}x)"
        if jax:
            f_rne = jax.jit(lambda v: numfmt.chop(v, name))
            f_sr = jax.jit(lambda v, k: numfmt.chop(v, name, "stochastic", key=k))
            key = jax.random.key(0)
            f_rne(xj).block_until_ready()
            f_sr(xj, key).block_until_ready()
            t = best(lambda: f_rne(xj).block_until_ready(), args.repeat)
            row += f" {jcopy * 1e3:6.1f} {t * 1e3:7.1f} ({t / jcopy:4.1f}x)"
            t = best(lambda: f_sr(xj, key).block_until_ready(), args.repeat)
            row += f" {t * 1e3:7.1f} ({t / jcopy:4.1f}x)"
        print(row, flush=True)


if __name__ == "__main__":
    main()
