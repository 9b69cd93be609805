"""Throughput of numfmt.chop against the memory-copy floor and ml_dtypes.

Run: ``python benchmarks/bench_chop.py [--n 10000000] [--repeat 5] [--no-jax]``

For each input dtype and format it times, side by side in one process:
  copy      np.copyto into a preallocated array (the memory floor: one read,
            one write),
  astype    the round trip x.astype(ml_dtypes/numpy type).astype(x.dtype),
            where such a type exists,
  numpy     numfmt.chop on NumPy (round to nearest even, and stochastic),
  jit       numfmt.chop inside jax.jit (after compilation; block_until_ready),
  jcopy     a jitted copy (x + 0) as the floor on the JAX side,
and prints each time with its ratio to its floor (``x``) and, for numfmt,
to the ml_dtypes/NumPy ``astype`` round trip (``a``: below 1 is faster).
Best of ``--repeat`` runs. For each dtype it also prints one NumPy pass into
a fresh array (``np.add(x, 0)``): the output's first-touch page faults cost
about one copy, so a NumPy ``chop``, which returns a new array, cannot get
below about 2x. ``--only-jax`` / ``--no-jax`` select the backends;
``--clock cpu`` times CPU time instead of wall time (for a loaded machine).

The NumPy stochastic column draws from a ``Generator``; the jit one from a
JAX key (a counter hash computed inside the kernel, see ``numfmt.core.random``).
"""

from __future__ import annotations

import _common
import ml_dtypes
import numpy as np

import numfmt

CLOCK = "wall"

FORMATS = {
    "bfloat16": ml_dtypes.bfloat16,
    "float16": np.float16,
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "float4_e2m1fn": ml_dtypes.float4_e2m1fn,
    "float(e=5,m=7)": None,
}


def best(fn, repeat):
    return _common.best(fn, repeat, CLOCK)


def main(argv=None):
    ap = _common.parser(__doc__, 10_000_000)
    ap.add_argument("--only-jax", action="store_true")
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = args.clock
    jax = None
    if not args.no_jax:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    print(
        f"n = {args.n:,}; best of {args.repeat}; {args.clock} times in ms; "
        "(Nx: ratio to the copy floor of the same backend, Na: ratio to the astype round trip)"
    )
    header = f"{'dtype':8} {'format':16} {'copy':>6} {'astype':>14}"
    if not args.only_jax:
        header += f" {'numpy RNE':>20} {'numpy SR':>20}"
    if jax:
        header += f" {'jcopy':>6} {'jit RNE':>20} {'jit SR':>20}"
    print(header)
    for dtype in (np.float32, np.float64):
        x = (rng.standard_normal(args.n) * 100).astype(dtype)
        dst = np.empty_like(x)
        copy = best(lambda: np.copyto(dst, x), args.repeat)
        fresh = best(lambda: np.add(x, 0), args.repeat)
        name = np.dtype(dtype).name
        print(f"{name}: one pass into a new array (np.add(x, 0)): {fresh * 1e3:.1f} ms ({fresh / copy:.1f}x)")
        if jax:
            xj = jnp.asarray(x)
            jcopy_fn = jax.jit(lambda v: v + 0)
            jcopy_fn(xj).block_until_ready()
            jcopy = best(lambda: jcopy_fn(xj).block_until_ready(), args.repeat)
        for name, mltype in FORMATS.items():
            row = f"{np.dtype(dtype).name:8} {name:16} {copy * 1e3:6.1f}"
            astype = None
            if mltype is not None:
                astype = best(lambda: x.astype(mltype).astype(dtype), args.repeat)
                row += f" {astype * 1e3:6.1f} ({astype / copy:5.1f}x)"
            else:
                row += f" {'-':>14}"

            def cell(t, floor):
                vs = f" {t / astype:4.2f}a" if astype else " " * 6
                return f" {t * 1e3:6.1f} ({t / floor:5.1f}x{vs})"

            if not args.only_jax:
                row += cell(best(lambda: numfmt.chop(x, name), args.repeat), copy)
                gen = np.random.default_rng(1)
                row += cell(best(lambda: numfmt.chop(x, name, "stochastic", key=gen), args.repeat), copy)
            if jax:
                row += f" {jcopy * 1e3:6.1f}"
                f_rne = jax.jit(lambda v: numfmt.chop(v, name))
                f_sr = jax.jit(lambda v, k: numfmt.chop(v, name, "stochastic", key=k))
                key = jax.random.key(0)
                f_rne(xj).block_until_ready()
                f_sr(xj, key).block_until_ready()
                row += cell(best(lambda: f_rne(xj).block_until_ready(), args.repeat), jcopy)
                row += cell(best(lambda: f_sr(xj, key).block_until_ready(), args.repeat), jcopy)
            print(row, flush=True)


if __name__ == "__main__":
    main()
