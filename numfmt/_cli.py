"""``python -m numfmt``: format facts, a preset table, rounding one value."""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction

import numpy as np

import numfmt


def _pow2(v: Fraction) -> str:
    if v > 0 and (v.numerator & (v.numerator - 1)) == 0 and (v.denominator & (v.denominator - 1)) == 0:
        e = v.numerator.bit_length() - v.denominator.bit_length()
        return f"2^{e} = {float(v)!r}"
    return repr(float(v))


def info(fmt) -> str:
    f = numfmt.parse(fmt)
    codes = lambda c: "none" if c is None else f"0x{c:0{(f.bits + 3) // 4}x}"  # noqa: E731
    return "\n".join([
        f"{f}  ({f.spec})",
        f"  bits {f.bits}: sign {int(f.signed)}, exponent {f.exp_bits}, fraction {f.man_bits}; bias {f.bias}",
        f"  specials {f.specials.value}: NaN {codes(f.nan_code)}, +inf {codes(f.inf_code)}, -0 {'yes' if f.has_negative_zero else 'no'}",
        f"  subnormals {f.subnormals.value}; emin {f.emin}, emax {f.emax}",
        f"  max {float(f.max_value)!r}; smallest normal {_pow2(f.smallest_normal)}; smallest subnormal {_pow2(f.smallest_subnormal)}",
        f"  eps {_pow2(f.eps)}; unit roundoff {_pow2(f.unit_roundoff)}; finite values {f.num_finite}",
        f"  default overflow {f.overflow.value}",
    ])  # fmt: skip


def formats() -> str:
    rows = [f"{'name':22} {'bits':>4} {'E':>3} {'M':>3} {'bias':>5} {'specials':13} {'max':>12} {'min subnormal':>14}"]
    for name, f in numfmt.presets().items():
        rows.append(
            f"{name:22} {f.bits:4} {f.exp_bits:3} {f.man_bits:3} {f.bias:5} {f.specials.value:13} "
            f"{float(f.max_value):12.6g} {float(f.smallest_subnormal):14.6g}"
        )
    rows.append("P3109 names binary{K}p{P}{s|u}{e|f} are accepted for any K in 2..16.")
    return "\n".join(rows)


def round_values(values, fmt, rounding, overflow, seed) -> str:
    out = []
    key = None if seed is None else np.random.default_rng(seed)
    for text in values:
        x = float.fromhex(text) if text.lstrip("-").lower().startswith("0x") else float(text)
        y = numfmt.chop(np.float64(x), fmt, rounding, overflow=overflow, key=key)
        line = f"{x!r} -> {float(y)!r}"
        if numfmt.parse(fmt).bits <= 64 and not (np.isnan(y) and not numfmt.parse(fmt).has_nan):
            line += f"  code 0x{int(numfmt.encode(np.float64(y), fmt)):x}"
        if np.isfinite(x) and np.isfinite(y):
            err = Fraction(float(y)) - Fraction(x)
            rel = float(abs(err) / abs(Fraction(x))) if x else 0.0
            line += f"  error {float(err):.6g} (relative {rel:.3g})"
        out.append(line)
    return "\n".join(out)


def demo() -> str:
    xs = [0.1, 1 / 3, 1000.0, 1e-5, 65504.0, 70000.0]
    names = ["float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn"]
    rows = [f"{'x':>12} " + " ".join(f"{n:>14}" for n in names)]
    for x in xs:
        rows.append(f"{x:12.6g} " + " ".join(f"{float(numfmt.chop(np.float64(x), n)):14.6g}" for n in names))
    rows.append("")
    rows.append("Subcommands: info FORMAT | formats | round X [X ...] --to FORMAT [--rounding MODE]")
    return "numfmt: one correct rounding of the exact value (nearest-even)\n" + "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m numfmt", description="Bit-accurate number formats.")
    sub = ap.add_subparsers(dest="cmd")
    p = sub.add_parser("info", help="spec block of a format")
    p.add_argument("format")
    sub.add_parser("formats", help="table of presets")
    p = sub.add_parser("round", help="round values into a format")
    p.add_argument("values", nargs="+")
    p.add_argument("--to", required=True)
    p.add_argument("--rounding", default="nearest_even")
    p.add_argument("--overflow", default=None)
    p.add_argument("--seed", type=int, default=None, help="seed for stochastic modes")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "info":
            print(info(args.format))
        elif args.cmd == "formats":
            print(formats())
        elif args.cmd == "round":
            print(round_values(args.values, args.to, args.rounding, args.overflow, args.seed))
        else:
            print(demo())
    except (ValueError, TypeError) as e:
        print(f"numfmt: error: {e}", file=sys.stderr)
        return 2
    return 0
