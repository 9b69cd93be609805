"""The compiled kernels of ``numfmt.chop`` against the memory-copy floor, the NumPy path and ml_dtypes.

Run: ``python benchmarks/bench_kernel.py [--n 10000000] [--repeat 5] [--formats mxfp4_e2m1,mxint8]``

For float32 and float64 input and each format, round to nearest even (RNE) and
stochastic rounding (SR, a JAX key: the counter hash computed in the kernel),
the fixed-point rows (q3.12; int8; q7.8 with overflow='wrap', the kernel of
``numfmt.fixed``) and the block rows (MXFP8 e4m3, MXFP4, MXINT8: the kernel of
``numfmt.block``, one visit per block; NVFP4: the kernel for float32 input; its
float64 SR row is stochastic_a with 47 random bits, its most), it
times side by side in one process, each as a ratio to ``np.copyto`` into a
preallocated array (the floor: one read, one write):

  out=      numfmt.chop(x, fmt, out=dst), the compiled kernel into a preallocated array,
  alloc     numfmt.chop(x, fmt), the compiled kernel into a fresh array,
  numpy     numfmt.chop(x, fmt) on the NumPy path (the extension switched off),
  astype    x.astype(T).astype(x.dtype) with the ml_dtypes/NumPy type T (RNE, float formats only),

each with two clocks: process CPU time and wall time (best of ``--repeat``). It
also times one call on a 100-element float64 array (the per-call overhead).
"""

from __future__ import annotations

import time

import _common
import ml_dtypes
import numpy as np

import numfmt
from numfmt.block import native as block_native
from numfmt.core import native
from numfmt.fixed import native as fixed_native
from numfmt.float import native as float_native

FORMATS = {
    "bfloat16": ml_dtypes.bfloat16,
    "float16": np.float16,
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "float8_e5m2": ml_dtypes.float8_e5m2,
    "float4_e2m1fn": ml_dtypes.float4_e2m1fn,
    "q3.12": None,
    "int8": None,
    "fixed(i=7,f=8,overflow=wrap)": None,
    "mxfp8_e4m3": None,
    "mxfp4_e2m1": None,
    "mxint8": None,
    "nvfp4": None,
}
SHORT = {"fixed(i=7,f=8,overflow=wrap)": "q7.8 wrap"}


def both_clocks(fn, repeat: int) -> tuple[float, float]:
    """Best CPU time and best wall time of ``repeat`` calls of ``fn``."""
    cpu, wall = [], []
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall)


def numpy_path(fn):
    def run():
        previous = native.set_enabled(False)
        try:
            fn()
        finally:
            native.set_enabled(previous)

    return run


def latency(repeat: int) -> None:
    x = np.random.default_rng(0).standard_normal(100)
    out = np.empty_like(x)
    e4m3 = numfmt.parse("float8_e4m3fn")
    for label, fn in [
        ("np.add(x, 0)", lambda: np.add(x, 0)),
        ("chop(x, 'bfloat16')", lambda: numfmt.chop(x, "bfloat16")),
        ("chop(x, 'bfloat16', out=out)", lambda: numfmt.chop(x, "bfloat16", out=out)),
        ("chop(x, fmt object)", lambda: numfmt.chop(x, e4m3)),
        ("chop(x, 'bfloat16') NumPy path", numpy_path(lambda: numfmt.chop(x, "bfloat16"))),
    ]:
        fn()
        calls = 20_000
        best = min(_common.best(lambda: [fn() for _ in range(calls)], 1) for _ in range(repeat)) / calls
        print(f"  {label:32} {best * 1e6:7.2f} us per call (wall)")


def main(argv=None):
    ap = _common.parser(__doc__, 10_000_000)
    names = [SHORT.get(f, f) for f in FORMATS]
    ap.add_argument("--formats", default=",".join(names), help="the rows to time, comma-separated: " + ", ".join(names))
    args = ap.parse_args(argv)
    only = args.formats.split(",")
    if not (float_native.available() and fixed_native.available() and block_native.available()):
        raise SystemExit("numfmt's compiled kernel is not built: pip install -e . (or setup.py build_ext --inplace)")
    import jax

    key = jax.random.key(0)
    rng = np.random.default_rng(0)
    print(f"n = {args.n:,}; best of {args.repeat}; ratio to np.copyto into a preallocated array, cpu / wall")
    heads = "".join(f" {h:>11}" for h in ("out=", "alloc", "numpy", "astype"))
    print(f"{'dtype':8} {'format':14} {'mode':4} {'copy ms':>13}{heads}")
    print("(x: standard normal * 100: q3.12 saturates most elements, q7.8 wraps about one in four)")
    for dtype in (np.float32, np.float64):
        x = (rng.standard_normal(args.n) * 100).astype(dtype)
        dst = np.empty_like(x)
        copy = both_clocks(lambda: np.copyto(dst, x), args.repeat)
        name = np.dtype(dtype).name
        for fmt, T in FORMATS.items():
            if SHORT.get(fmt, fmt) not in only:
                continue
            for mode in ("RNE", "SR"):
                kw = {"rounding": "stochastic", "key": key} if mode == "SR" else {}
                if mode == "SR" and fmt == "nvfp4" and dtype == np.float64:
                    kw.update(rounding="stochastic_a", random_bits=47)  # its most for float64 input
                cols = {
                    "out=": lambda: numfmt.chop(x, fmt, out=dst, **kw),
                    "alloc": lambda: numfmt.chop(x, fmt, **kw),
                    "numpy": numpy_path(lambda: numfmt.chop(x, fmt, **kw)),
                }
                if mode == "RNE" and T is not None:
                    cols["astype"] = lambda: x.astype(T).astype(dtype)
                row = f"{name:8} {SHORT.get(fmt, fmt):14} {mode:4} {copy[0] * 1e3:6.1f}/{copy[1] * 1e3:6.1f}"
                for label in ("out=", "alloc", "numpy", "astype"):
                    if label not in cols:
                        row += f" {'-':>11}"
                        continue
                    cols[label]()  # caches, lazy imports, first-touch pages of dst
                    t = both_clocks(cols[label], args.repeat)
                    row += f" {t[0] / copy[0]:5.2f}/{t[1] / copy[1]:5.2f}"
                print(row)
    print("per-call latency, 100 float64 elements:")
    latency(args.repeat)


if __name__ == "__main__":
    main()
