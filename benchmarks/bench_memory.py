"""Peak extra memory of numfmt.chop / encode / decode on NumPy, per family and mode.

Run: ``python benchmarks/bench_memory.py [--n 16777216] [--only SUBSTRING] [--ops chop,encode,decode]``

Each case runs in a fresh Python process, which warms the call up on a small
array (imports, plan caches, JAX's seed computation), then allocates the
input (and, for decode, the codes), and measures one call two ways:

* tracemalloc: the peak of traced allocations during the call (NumPy reports
  its array buffers to tracemalloc), minus those live before it;
* RSS: the peak resident set size during the call (``VmHWM`` after resetting
  it through ``/proc/self/clear_refs``; on systems without it, ``ru_maxrss``
  of the fresh process), minus the resident size before it.

Both subtract the bytes of the result arrays. The ratio printed is that extra
memory divided by the bytes of the float input ``x`` (also for decode, whose
input is the codes); cases above 1x are flagged with ``!``. The input is a
float32 or float64 matrix of ``n // 4096`` x 4096 standard normal values
(blocks and groups along the last axis; per-channel scales along axis 0).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

# (format, rounding, key kind, random_bits, dtypes)
F32, F64 = "float32", "float64"
CHOP = [
    ("bfloat16", "nearest_even", None, None, (F32, F64)),
    ("float8_e4m3fn", "nearest_even", None, None, (F32, F64)),
    ("float8_e4m3fn", "stochastic", "gen", None, (F32, F64)),
    ("float8_e4m3fn", "stochastic", "jax", None, (F32, F64)),
    ("float16", "stochastic_a", "jax", 8, (F32,)),
    ("posit16_1", "nearest_even", None, None, (F32, F64)),
    ("posit8_0", "nearest_even", None, None, (F32,)),
    ("posit16_1", "stochastic", "gen", None, (F32,)),
    ("int8", "nearest_even", None, None, (F32, F64)),
    ("q3.12", "stochastic", "jax", None, (F32,)),
    ("fixed(i=7,f=8,overflow=wrap)", "nearest_even", None, None, (F32,)),
    ("mxfp4_e2m1", "nearest_even", None, None, (F32, F64)),
    ("mxfp4_e2m1", "stochastic", "gen", None, (F32,)),
    ("mxfp4_e2m1", "stochastic", "jax", None, (F32, F64)),
    ("mxfp8_e4m3", "nearest_even", None, None, (F32, F64)),
    ("mxint8", "nearest_even", None, None, (F32, F64)),
    ("bfp(m=7,block=32)", "nearest_even", None, None, (F32,)),
    ("nvfp4", "nearest_even", None, None, (F32, F64)),
    ("nvfp4", "stochastic", "gen", None, (F32,)),
    ("nvfp4", "stochastic_a", "jax", 31, (F32, F64)),
    ("nf4", "nearest_even", None, None, (F32, F64)),
    ("int8_per_tensor", "nearest_even", None, None, (F32, F64)),
    ("int8_per_tensor", "stochastic_a", "gen", 31, (F32,)),
    ("int8_per_channel", "nearest_even", None, None, (F32, F64)),
    ("int8_per_channel", "stochastic_a", "jax", 31, (F32,)),
    ("int8_g32", "nearest_even", None, None, (F32, F64)),
    ("int4_asym_g128", "stochastic_a", "gen", 31, (F32,)),
]
CODEC = ["bfloat16", "posit16_1", "mxfp4_e2m1", "mxfp8_e4m3", "nvfp4", "nf4", "int8_per_channel", "int8_g32"]


def cases(ops):
    out = []
    if "chop" in ops:
        for fmt, rounding, key, nbits, dtypes in CHOP:
            out += [("chop", fmt, rounding, key, nbits, d) for d in dtypes]
    for op in ("encode", "decode"):
        if op in ops:
            out += [(op, fmt, "nearest_even", None, None, F32) for fmt in CODEC]
    return out


def _status():
    d = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                d[k + ":"] = int(v.split()[0]) * 1024
    return d


def child(spec):
    """Measure one case in this (fresh) process; print a JSON line."""
    import gc
    import resource
    import tracemalloc

    import numpy as np

    import numfmt

    op, fmt, rounding, keykind, nbits, dtype, n = spec
    cols = 4096

    def make(rows):
        return np.random.default_rng(1).standard_normal((rows, cols), dtype=np.float32).astype(dtype, copy=False)

    def key():
        if keykind == "gen":
            return np.random.default_rng(0)
        if keykind == "jax":
            import jax

            return jax.random.key(0)
        return None

    def call(x, codes):
        if op == "chop":
            return numfmt.chop(x, fmt, rounding, key=key(), random_bits=nbits)
        if op == "encode":
            return numfmt.encode(x, fmt, rounding, key=key(), random_bits=nbits)
        return numfmt.decode(codes, fmt, dtype)

    def nbytes(r):
        return sum(a.nbytes for a in r) if isinstance(r, tuple) else np.asarray(r).nbytes

    small = make(4)
    call(small, numfmt.encode(small, fmt) if op == "decode" else None)  # warm-up
    x = make(n // cols)
    codes = numfmt.encode(x, fmt) if op == "decode" else None
    k = key()  # the key object is made before the baseline too
    del k
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        hwm = True
    except OSError:
        hwm = False
    rss0 = _status()["VmRSS:"]
    tracemalloc.start()
    r = call(x, codes)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_peak = _status()["VmHWM:"] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = nbytes(r)
    print(json.dumps({"trace": (peak - out) / x.nbytes, "rss": (rss_peak - rss0 - out) / x.nbytes, "hwm": hwm}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1 << 24, help="elements (rounded down to a multiple of 4096)")
    ap.add_argument("--only", default="", help="run the cases whose format contains this string")
    ap.add_argument("--ops", default="chop,encode,decode")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return
    n = max(args.n // 4096, 1) * 4096
    print(f"{n:,} elements; extra memory / input bytes (tracemalloc, peak RSS); '!' marks ratios above 1x")
    print(f"{'op':7} {'format':29} {'rounding':13} {'key':4} {'dtype':8} {'trace':>7} {'rss':>7}")
    worst = 0.0
    for op, fmt, rounding, key, nbits, dtype in cases(args.ops.split(",")):
        if args.only not in fmt:
            continue
        spec = json.dumps([op, fmt, rounding, key, nbits, dtype, n])
        p = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True, text=True, check=False)
        if p.returncode:
            print(f"{op:7} {fmt:29} {rounding:13} {key or '-':4} {dtype:8} failed: {p.stderr.strip()[-300:]}")
            continue
        m = json.loads(p.stdout.strip().splitlines()[-1])
        flag = "!" if max(m["trace"], m["rss"]) > 1.0 else ""
        worst = max(worst, m["trace"], m["rss"])
        print(f"{op:7} {fmt:29} {rounding:13} {key or '-':4} {dtype:8} {m['trace']:6.2f}x {m['rss']:6.2f}x {flag}")
        sys.stdout.flush()
    print(f"largest ratio: {worst:.2f}x")


if __name__ == "__main__":
    main()
