"""numfmt's compiled kernel side by side with CPFloat (C), both writing into a preallocated array, 1 thread.

Run: ``python benchmarks/bench_cpfloat.py --cpfloat DIR [--n 10000000] [--repeat 5]``

``DIR`` is a CPFloat source tree (https://github.com/north-numerical-computing/cpfloat,
cloned with its submodules): ``DIR/src/cpfloat_binary32.h`` and
``DIR/deps/pcg-c`` (PCG, CPFloat's generator for stochastic rounding). The
script compiles ``cpfloat_shim.c`` (a ctypes entry point, beside this file)
against it with ``cc -O3 -march=native`` and without OpenMP, so CPFloat runs
on one thread, as numfmt's kernel does by default.

For float32 and float64 input (standard normal values, so that every format
rounds most of them inside its range) and each format and rounding mode, it
prints the time of ``numfmt.chop(x, fmt, rounding=..., out=dst)`` and of
CPFloat's ``cpfloatf``/``cpfloat`` as ratios to ``np.copyto`` into a
preallocated array, process CPU time and wall time (best of ``--repeat``),
and the ratio numfmt / CPFloat (below 1: numfmt is faster).

It also counts the elements on which the two disagree bit for bit, for the
deterministic modes (elements inside the format's finite range only: CPFloat
has no ``fn`` encoding, so its float8_e4m3fn reaches 480 where OCP's stops at
448), as "all/zeros": of those, how many are a zero of the other sign. (Seen
here: rounding a small negative value toward +inf, numfmt returns -0, as
IEEE 754 says a rounded result keeps its operand's sign, and CPFloat +0.)
Stochastic rounding uses different generators (numfmt: its keyed counter
hash; CPFloat: PCG), so only the times compare there.
"""

from __future__ import annotations

import ctypes
import pathlib
import subprocess
import sys
import tempfile

import _common
import numpy as np

import numfmt
from numfmt.float import native as float_native

# numfmt format -> CPFloat's (precision with the implicit bit, emin, emax, infinities)
FORMATS = {
    "bfloat16": (8, -126, 127, 1),
    "float16": (11, -14, 15, 1),
    "float8_e4m3fn": (4, -6, 8, 0),
    "float8_e5m2": (3, -14, 15, 1),
    "float4_e2m1fn": (2, 0, 2, 0),
}
# numfmt rounding -> CPFloat's CPFLOAT_RND_* value
MODES = {
    "nearest_even": 1,
    "nearest_away": -1,
    "toward_zero": 4,
    "toward_positive": 2,
    "toward_negative": 3,
    "to_odd": 7,
    "stochastic": 5,
    "stochastic_equal": 6,
}
SHIM = pathlib.Path(__file__).with_name("cpfloat_shim.c")


def build(root: pathlib.Path) -> ctypes.CDLL:
    """Compile the shim against the CPFloat tree ``root``; the loaded library."""
    src, pcg = root / "src", root / "deps" / "pcg-c"
    for need in (src / "cpfloat_binary32.h", pcg / "include" / "pcg_variants.h"):
        if not need.is_file():
            raise SystemExit(f"--cpfloat {root}: {need} is missing (clone CPFloat with --recurse-submodules)")
    pcg_sources = [pcg / "src" / f for f in ("pcg-advance-64.c", "pcg-global-32.c", "pcg-advance-128.c",
                                              "pcg-global-64.c")]  # fmt: skip
    lib = pathlib.Path(tempfile.mkdtemp()) / "cpfloat_shim.so"
    flags = ["-O3", "-march=native", "-std=gnu99", "-fPIC", "-shared", "-w", "-include", "pcg_variants.h"]
    cmd = ["cc", *flags, "-I", str(src), "-I", str(pcg / "include"), str(SHIM), *map(str, pcg_sources), "-lm",
           "-o", str(lib)]  # fmt: skip
    subprocess.run(cmd, check=True)
    dll = ctypes.CDLL(str(lib))
    dll.shim_setup.argtypes = [ctypes.c_int] * 5
    for name in ("shim_round32", "shim_round64"):
        getattr(dll, name).argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    return dll


def cpfloat_call(dll, x, dst, fmt: str, mode: str):
    p, emin, emax, inf = FORMATS[fmt]
    if dll.shim_setup(p, emin, emax, inf, MODES[mode]):
        raise RuntimeError("CPFloat: init_optstruct failed")
    fn = dll.shim_round32 if x.dtype == np.float32 else dll.shim_round64
    src, out, n = x.ctypes.data, dst.ctypes.data, x.size

    def run():
        if fn(out, src, n):
            raise RuntimeError(f"CPFloat refused {fmt} {mode} (its validate_optstruct)")

    return run


def main(argv=None):
    ap = _common.parser(__doc__, 10_000_000)
    ap.add_argument("--cpfloat", type=pathlib.Path, required=True, help="a CPFloat source tree (see above)")
    args = ap.parse_args(argv)
    if not float_native.available():
        raise SystemExit("numfmt's compiled kernel is not built: pip install -e . (or setup.py build_ext --inplace)")
    dll = build(args.cpfloat)
    import jax

    key = jax.random.key(0)
    rng = np.random.default_rng(0)
    print(f"n = {args.n:,}; best of {args.repeat}; ratios to np.copyto into a preallocated array, cpu / wall")
    print(f"{'dtype':8} {'format':14} {'mode':17} {'numfmt':>11} {'CPFloat':>11} {'numfmt/CPFloat':>15} {'differ':>9}")
    worst = 0.0
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal(args.n).astype(dtype)
        mine, theirs = np.empty_like(x), np.empty_like(x)
        copy = _common.both_clocks(lambda: np.copyto(mine, x), args.repeat)  # noqa: B023
        for fmt in FORMATS:
            finite = np.abs(x) <= float(numfmt.parse(fmt).max_value)
            for mode in MODES:
                kw = {"key": key} if mode.startswith("stochastic") else {}
                ours = lambda: numfmt.chop(x, fmt, rounding=mode, out=mine, **kw)  # noqa: B023, E731
                cpf = cpfloat_call(dll, x, theirs, fmt, mode)
                ours(), cpf()  # caches and first-touch pages
                differ = "-"
                if not mode.startswith("stochastic"):
                    other = (mine.view(f"u{x.itemsize}") != theirs.view(f"u{x.itemsize}")) & finite
                    zeros = other & (mine == 0) & (theirs == 0)  # -0 against +0
                    differ = f"{np.count_nonzero(other)}/{np.count_nonzero(zeros)}"
                t_ours, t_cpf = _common.both_clocks(ours, args.repeat), _common.both_clocks(cpf, args.repeat)
                worst = max(worst, t_ours[0] / t_cpf[0])
                cols = [f"{t[0] / copy[0]:5.2f}/{t[1] / copy[1]:5.2f}" for t in (t_ours, t_cpf)]
                ratio = f"{t_ours[0] / t_cpf[0]:6.2f}/{t_ours[1] / t_cpf[1]:6.2f}"
                head = f"{np.dtype(dtype).name:8} {fmt:14} {mode:17}"
                print(f"{head} {cols[0]:>11} {cols[1]:>11} {ratio:>15} {differ:>9}")
                sys.stdout.flush()
    print(f"largest numfmt/CPFloat CPU-time ratio: {worst:.2f}")


if __name__ == "__main__":
    main()
