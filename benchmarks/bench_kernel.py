"""The compiled kernels of ``numfmt.chop`` against the memory-copy floor, the NumPy path and ml_dtypes.

Run: ``python benchmarks/bench_kernel.py [--n 10000000] [--repeat 5] [--threads 1,2] [--latency-only]
[--formats mxfp4_e2m1,mxint8]``

For float32 and float64 input and each format, round to nearest even (RNE) and
stochastic rounding (SR, a JAX key: the counter hash computed in the kernel),
the fixed-point rows (q3.12; int8; q7.8 with overflow='wrap', the kernel of
``numfmt.fixed``), the posit rows (posit8_0, posit16_1, posit32_2, the kernel of
``numfmt.posit``) and the block rows (MXFP8 e4m3, MXFP4, MXINT8: the kernel of
``numfmt.block``, one visit per block; NVFP4: the kernel for float32 input; its
float64 SR row is stochastic_a with 47 random bits, its most), it
times side by side in one process, each as a ratio to ``np.copyto`` into a
preallocated array (the floor: one read, one write):

  out=      numfmt.chop(x, fmt, out=dst), the compiled kernel into a preallocated array,
  alloc     numfmt.chop(x, fmt), the compiled kernel into a fresh array,
  numpy     numfmt.chop(x, fmt) on the NumPy path (the extension switched off),
  astype    x.astype(T).astype(x.dtype) with the ml_dtypes/NumPy type T (RNE, float formats only),

each with two clocks: process CPU time and wall time (best of ``--repeat``). It
also times one call on a 100-element float64 and float32 array (the per-call
overhead; the median of ``--repeat`` runs of 20,000 calls).

``--threads 1,2`` prints the table once for each thread count
(``numfmt.set_num_threads``; the ratios stay to a one-thread copy), then the
``out=`` column over sizes 2**15 .. 2**23 for a vector loop (bfloat16 on
float32) and an element-at-a-time loop (float(e=9,m=3) on float32): with more
threads the CPU time rises (thread start, the other thread's work) and the wall
time falls where the cores are free and the array large enough.
"""

from __future__ import annotations

import statistics

import _common
import ml_dtypes
import numpy as np

import numfmt
from numfmt.block import native as block_native
from numfmt.core import native
from numfmt.fixed import native as fixed_native
from numfmt.float import native as float_native
from numfmt.posit import native as posit_native

FORMATS = {
    "bfloat16": ml_dtypes.bfloat16,
    "float16": np.float16,
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "float8_e5m2": ml_dtypes.float8_e5m2,
    "float4_e2m1fn": ml_dtypes.float4_e2m1fn,
    "q3.12": None,
    "int8": None,
    "fixed(i=7,f=8,overflow=wrap)": None,
    "posit8_0": None,
    "posit16_1": None,
    "posit32_2": None,
    "mxfp8_e4m3": None,
    "mxfp4_e2m1": None,
    "mxint8": None,
    "nvfp4": None,
}
SHORT = {"fixed(i=7,f=8,overflow=wrap)": "q7.8 wrap"}


def numpy_path(fn):
    def run():
        previous = native.set_enabled(False)
        try:
            fn()
        finally:
            native.set_enabled(previous)

    return run


def latency(repeat: int) -> None:
    for dtype in (np.float64, np.float32):
        x = np.random.default_rng(0).standard_normal(100).astype(dtype)
        out = np.empty_like(x)
        e4m3 = numfmt.parse("float8_e4m3fn")
        print(f"per-call latency, 100 {np.dtype(dtype).name} elements (median of {repeat} runs, wall):")
        for label, fn in [
            ("np.add(x, 0)", lambda: np.add(x, 0)),
            ("chop(x, 'bfloat16')", lambda: numfmt.chop(x, "bfloat16")),
            ("chop(x, 'float8_e4m3fn')", lambda: numfmt.chop(x, "float8_e4m3fn")),
            ("chop(x, 'bfloat16', out=out)", lambda: numfmt.chop(x, "bfloat16", out=out)),
            ("chop(x, fmt object e4m3fn)", lambda: numfmt.chop(x, e4m3)),
            ("chop(x, 'q3.12')", lambda: numfmt.chop(x, "q3.12")),
            ("chop(x, 'bfloat16') NumPy path", numpy_path(lambda: numfmt.chop(x, "bfloat16"))),
        ]:
            fn()
            calls = 20_000
            runs = [_common.best(lambda: [fn() for _ in range(calls)], 1) / calls for _ in range(repeat)]
            print(f"  {label:32} {statistics.median(runs) * 1e6:7.2f} us per call")


def sweep(counts, repeat: int) -> None:
    """The out= column over sizes, for each thread count: CPU and wall time per call."""
    rng = np.random.default_rng(1)
    print("out= over sizes, us per call cpu / wall (best of --repeat), by thread count:")
    for fmt in ("bfloat16", "float(e=9,m=3)"):
        for k in range(15, 24, 2):
            x = (rng.standard_normal(1 << k) * 100).astype(np.float32)
            dst = np.empty_like(x)
            row = f"  {fmt:15} 2**{k:<3}"
            for t in counts:
                numfmt.set_num_threads(t)
                calls = max(1, (1 << 22) >> k)
                numfmt.chop(x, fmt, out=dst)
                cpu, wall = _common.both_clocks(lambda: [numfmt.chop(x, fmt, out=dst) for _ in range(calls)], repeat)
                row += f"  {t}t {cpu / calls * 1e6:9.1f} / {wall / calls * 1e6:9.1f}"
            print(row)
    numfmt.set_num_threads(1)


def main(argv=None):
    ap = _common.parser(__doc__, 10_000_000)
    ap.add_argument("--threads", default="1", help="thread counts, comma-separated (numfmt.set_num_threads)")
    ap.add_argument("--latency-only", action="store_true", help="only the per-call latency")
    names = [SHORT.get(f, f) for f in FORMATS]
    ap.add_argument("--formats", default=",".join(names), help="the rows to time, comma-separated: " + ", ".join(names))
    args = ap.parse_args(argv)
    kernels = (float_native, fixed_native, posit_native, block_native)
    if not all(k.available() for k in kernels):
        raise SystemExit("numfmt's compiled kernel is not built: pip install -e . (or setup.py build_ext --inplace)")
    if args.latency_only:
        latency(args.repeat)
        return
    counts = [int(t) for t in args.threads.split(",")]
    for t in counts:
        numfmt.set_num_threads(t)
        table(args)
    numfmt.set_num_threads(1)
    latency(args.repeat)
    if counts != [1]:
        sweep(counts, args.repeat)


def table(args) -> None:
    import jax

    key = jax.random.key(0)
    rng = np.random.default_rng(0)
    only = args.formats.split(",")
    print(
        f"n = {args.n:,}; {numfmt.get_num_threads()} thread(s); best of {args.repeat}; "
        "ratio to np.copyto into a preallocated array, cpu / wall"
    )
    heads = "".join(f" {h:>11}" for h in ("out=", "alloc", "numpy", "astype"))
    print(f"{'dtype':8} {'format':14} {'mode':4} {'copy ms':>13}{heads}")
    print("(x: standard normal * 100: q3.12 saturates most elements, q7.8 wraps about one in four,")
    print(" posit8_0 saturates about one in two)")
    for dtype in (np.float32, np.float64):
        x = (rng.standard_normal(args.n) * 100).astype(dtype)
        dst = np.empty_like(x)
        copy = _common.both_clocks(lambda: np.copyto(dst, x), args.repeat)
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
                    t = _common.both_clocks(cols[label], args.repeat)
                    row += f" {t[0] / copy[0]:5.2f}/{t[1] / copy[1]:5.2f}"
                print(row)


if __name__ == "__main__":
    main()
