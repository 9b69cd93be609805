"""The command line, ``python -m numfmt``: format facts, a preset table, rounding values.

Subcommands::

    python -m numfmt                      a demonstration: a small network trained in several formats
    python -m numfmt info FORMAT          the spec block of one format
    python -m numfmt formats              a table of every preset, one per family
    python -m numfmt round X [X ...] --to FORMAT [--rounding MODE] [--overflow POLICY] [--seed N]

``info`` and ``round`` print exact values (float reprs), or mark with ``~`` a
value that float64 cannot hold. Errors print ``numfmt: error: <message>`` on
stderr and give exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction

import numpy as np

import numfmt
from numfmt.block.format import BlockFormat
from numfmt.cli.exact_text import decimal_text, exact, g, pow2_exponent, table
from numfmt.cli.families import (
    block_round_lines,
    family_rows,
    family_tables,
    plain_code,
    scaled_round_lines,
    value_note,
)
from numfmt.core.rounding import Overflow, Rounding
from numfmt.float.format import FloatFormat, Specials, Subnormals
from numfmt.posit.format import PositFormat
from numfmt.scaled.format import ScaledIntFormat

__all__ = ["demo", "main"]

_PROG = "numfmt"

# --------------------------------------------------------------------- codes


def _hex(fmt: FloatFormat, code: int) -> str:
    return f"0x{code:0{(fmt.bits + 3) // 4}x}"


def _bin(fmt: FloatFormat, code: int, sign: str | None = None) -> str:
    """``0b<sign>.<exponent>.<fraction>``; ``sign`` overrides the sign digit (e.g. "S")."""
    mag = code & ((1 << (fmt.exp_bits + fmt.man_bits)) - 1)
    fields = [f"{mag >> fmt.man_bits:0{fmt.exp_bits}b}"]
    if fmt.man_bits:
        fields.append(f"{mag & ((1 << fmt.man_bits) - 1):0{fmt.man_bits}b}")
    if fmt.signed:
        fields.insert(0, sign if sign is not None else str(code >> (fmt.bits - 1)))
    return "0b" + ".".join(fields)


def _code(fmt: FloatFormat, code: int) -> str:
    return f"{_hex(fmt, code)} = {_bin(fmt, code)}" if fmt.bits <= 64 else _hex(fmt, code)


def _nan_text(fmt: FloatFormat) -> str:
    nan_code, inf_code = fmt.nan_code, fmt.inf_code
    if nan_code is None:
        return "none"
    if inf_code is not None and fmt.specials is Specials.IEEE:
        if fmt.bits > 64:
            return f"exponent field all ones, fraction != 0 (canonical {_hex(fmt, nan_code)})"
        pattern = _bin(fmt, inf_code, "S").rsplit(".", 1)[0] + "." + "f" * fmt.man_bits
        return f"{pattern} with f != 0 (canonical {_code(fmt, nan_code)})"
    codes = [c for c in dict.fromkeys([nan_code, nan_code | fmt.sign_code]) if fmt.is_nan_code(c)]
    if len(codes) == 2:
        return f"{_hex(fmt, codes[0])} and {_hex(fmt, codes[1])}" + (
            f" = {_bin(fmt, codes[0], 'S')}" if fmt.bits <= 64 else ""
        )
    note = " (the sign bit alone, where -0 would be)" if fmt.signed and codes[0] == fmt.sign_code else ""
    return _code(fmt, codes[0]) + note


def _inf_text(fmt: FloatFormat) -> str:
    inf_code = fmt.inf_code
    if inf_code is None:
        return "none"
    if not fmt.signed:
        return f"+inf {_code(fmt, inf_code)}"
    hexes = f"+inf {_hex(fmt, inf_code)}, -inf {_hex(fmt, inf_code | fmt.sign_code)}"
    return hexes + (f" = {_bin(fmt, inf_code, 'S')}" if fmt.bits <= 64 else "")


_SPECIALS = {
    Specials.IEEE: "top exponent reserved for inf and NaN",
    Specials.FN: "finite and NaN: no inf; the all-ones magnitude is NaN",
    Specials.FNUZ: "finite and NaN, unsigned zero: no inf, no -0; NaN takes the code of -0",
    Specials.FINITE: "finite only: no inf, no NaN; every code is a number",
    Specials.P3109: "IEEE P3109 extended: inf and one NaN, no -0",
    Specials.P3109_FINITE: "IEEE P3109 finite: one NaN, no inf, no -0",
}
_SUBNORMALS = {
    Subnormals.ON: "gradual underflow",
    Subnormals.FLUSH: "none: values below the smallest normal flush to +-0",
    Subnormals.ROUND_TO_NORMAL: "none: values below the smallest normal round onto {0, 2^emin}",
    Subnormals.NO_ZERO: "none, and no zero: exponent field 0 is the binade of 2^emin; 0 becomes NaN",
}


def _overflow_text(fmt: FloatFormat) -> str:
    policy = fmt.overflow
    if policy is Overflow.SAT_FINITE:
        return "sat_finite: overflow and inf inputs give +-max"
    if policy is Overflow.SAT_PROPAGATE:
        return "sat_propagate: finite overflow gives +-max; inf inputs stay inf" + (
            "" if fmt.has_inf else " (NaN here: no inf)"
        )
    if fmt.has_inf:
        to = "+-inf"
    elif fmt.specials in (Specials.FN, Specials.FNUZ):
        to = "NaN (no inf)"
    else:
        to = "+-max (no inf)"
    return f"sat_none (IEEE 754): round-to-nearest overflow gives {to}"


# ---------------------------------------------------------------- subcommands


def info_text(fmt) -> str:
    """The spec block of ``fmt`` (a format or a format string): float, posit, fixed point or block."""
    f = numfmt.parse(fmt)
    head = [("Name", f.name if f.name is not None else "(not a preset)"), ("Spec", f.spec)]
    rows = head + (_float_rows(f) if isinstance(f, FloatFormat) else family_rows(f))
    width = max(len(k) for k, _ in rows) + 2
    return "\n".join(f"{k + ':':{width}}{v}" for k, v in rows)


def _float_rows(f: FloatFormat) -> list:
    layout = f"{f.exp_bits} exponent + {f.man_bits} fraction"
    layout = f"1 sign + {layout}" if f.signed else f"{layout} (no sign bit)"
    if f.subnormals is Subnormals.NO_ZERO:
        subnormal = f"none (and no zero: the smallest value is the smallest normal {exact(f.smallest_normal)})"
    elif f.subnormals is not Subnormals.ON:
        subnormal = "none (subnormals off)"
    elif f.man_bits == 0:
        subnormal = "none (no fraction bits: the smallest value is the smallest normal)"
    else:
        subnormal = exact(f.smallest_subnormal)
    max_value = exact(f.max_value)
    if pow2_exponent(f.max_value) is None:
        sig = f.max_value / Fraction(2) ** f.emax
        k = pow2_exponent(2 - sig)
        sig_text = f"(2 - 2^{k})" if k is not None and decimal_text(sig).startswith("~") else decimal_text(sig)
        max_value += f" = {sig_text} * 2^{f.emax}"
    return [
        ("Bits", f"{f.bits} = {layout}"),
        ("Exponent", f"{f.exp_bits} bit{'' if f.exp_bits == 1 else 's'}, bias {f.bias}"),
        ("Fraction", f"{f.man_bits} bit{'' if f.man_bits == 1 else 's'} (precision p = {f.precision})"),
        ("Signed", "yes" if f.signed else "no: negative inputs become NaN"),
        ("Specials", f"{f.specials.value} ({_SPECIALS[f.specials]})"),
        ("  NaN", _nan_text(f)),
        ("  Inf", _inf_text(f)),
        ("  -0", _code(f, f.sign_code) if f.has_negative_zero else "none"),
        ("Subnormals", f"{f.subnormals.value} ({_SUBNORMALS[f.subnormals]})"),
        ("emin, emax", f"{f.emin}, {f.emax}"),
        ("Max", max_value),
        ("Smallest normal", exact(f.smallest_normal)),
        ("Smallest subnormal", subnormal),
        ("Eps", exact(f.eps)),
        ("Unit roundoff", exact(f.unit_roundoff)),
        ("Finite values", f"{f.num_finite}" + (" (+0 and -0 counted once)" if f.has_negative_zero else "")),
        ("Overflow default", _overflow_text(f)),
    ]


def formats_text() -> str:
    """Aligned tables of every preset, one per family, each with the columns that family has."""
    head = ("name", "bits", "e", "m", "bias", "specials", "max", "min subnormal")
    rows = [
        (
            name,
            str(f.bits),
            str(f.exp_bits),
            str(f.man_bits),
            str(f.bias),
            f.specials.value + ("" if f.signed else ", unsigned"),
            g(f.max_value),
            g(f.smallest_subnormal) if f.subnormals is Subnormals.ON and f.man_bits else "-",
        )
        for name, f in numfmt.presets("float").items()
    ]
    lines = ["Float formats", *table(head, rows, {0, 5})]
    lines.append("P3109 names binary{K}p{P}{s|u}{e|f} are accepted for any K in 2..16 (the table lists K = 8).")
    return "\n".join([*lines, "", *family_tables()])


def _parse_value(text: str) -> tuple[float, str]:
    """float64 of ``text`` and a note saying whether the conversion was exact."""
    s = text.strip()
    try:
        x = float.fromhex(s) if s.lstrip("+-").lower().startswith("0x") else float(s)
    except ValueError:
        raise ValueError(
            f"cannot read {text!r} as a number; give a decimal (0.1, -1e-5), a hex float (0x1.8p-3), nan or inf"
        ) from None
    if not np.isfinite(x) and s.lstrip("+-").lower() not in ("inf", "infinity", "nan"):
        return x, f"(the value {s} overflows float64)"
    try:
        exact = Fraction(s) == Fraction(x)
    except ValueError:  # hex float, inf, nan: float() was exact
        exact = True
    return x, "" if exact else f"(nearest float64 to the decimal {s})"


def _note(x: float, y: float, f: FloatFormat) -> str:
    if np.isnan(x):
        return "" if f.has_nan else f"(NaN is not a value of {f}; kept as NaN)"
    if np.isnan(y):
        if x < 0 and not f.signed:
            return "(negative input to an unsigned format)"
        if x == 0:
            return f"({f} has no zero)"
        return f"({'infinite input' if np.isinf(x) else 'overflow'}: {f} has no inf)"
    if np.isinf(y) and np.isfinite(x):
        return "(overflow)"
    if np.isfinite(x) and abs(Fraction(x)) > f.max_value and abs(Fraction(y)) == f.max_value:
        return "(overflow, saturated to max)"
    if y == 0 and x != 0:
        return "(underflow)"
    if x == 0 and np.signbit(x) and not np.signbit(y):
        return f"(-0 becomes +0: {f} has no -0)"
    return "(exact)" if x == y and np.isfinite(x) else ""


def round_text(values, fmt, rounding="nearest_even", overflow=None, seed=None, random_bits=None) -> str:
    """One block per value: input, result, its code, absolute and relative error.

    Posits and fixed point round each value alone; block and scaled integer
    formats round the values as one 1-D array (up to ``block_size`` or
    ``group_size`` values share one scale; a per-tensor format gives all of
    them one scale, a per-channel one each value its own).
    """
    f = numfmt.parse(fmt)
    mode = Rounding.parse(rounding)
    if isinstance(f, (BlockFormat, ScaledIntFormat)):
        policy = None
        if overflow is not None:
            kind, limit = ("block", "max_elem") if isinstance(f, BlockFormat) else ("scaled integer", "[qmin, qmax]")
            raise ValueError(f"--overflow does not apply to {kind} formats ({f} saturates at {limit}); leave it out")
    else:
        policy = f.overflow if overflow is None else getattr(f, "parse_overflow", Overflow.parse)(overflow)
    if mode.is_stochastic and seed is None:
        raise ValueError(f"rounding {mode.value!r} draws random bits: give --seed N (a non-negative integer)")
    if not mode.is_stochastic and seed is not None:
        raise ValueError(f"--seed is only used by stochastic rounding modes, not {mode.value!r}")
    if seed is not None and seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {seed}")
    needs_bits = mode in (Rounding.STOCHASTIC_A, Rounding.STOCHASTIC_B, Rounding.STOCHASTIC_C)
    if needs_bits and random_bits is None:
        raise ValueError(f"rounding {mode.value!r} needs --random-bits N (1..63 for float64 input)")
    if not needs_bits and random_bits is not None:
        raise ValueError(f"--random-bits is only used by stochastic_a, _b and _c, not {mode.value!r}")
    parsed = [_parse_value(v) for v in values]
    key = None if seed is None else np.random.default_rng(seed)
    head = f"Rounding to {f} = {f.spec}: {mode.value}" + ("" if policy is None else f", overflow {policy.value}")
    if seed is not None:
        head += f", seed {seed}" + (f", {random_bits} random bits" if random_bits is not None else "")
    blocks = [head]
    if isinstance(f, BlockFormat):
        return "\n".join(blocks + block_round_lines(values, parsed, f, mode, key, random_bits))
    if isinstance(f, ScaledIntFormat):
        return "\n".join(blocks + scaled_round_lines(values, parsed, f, mode, key, random_bits))
    for text, (x, how) in zip(values, parsed, strict=True):
        y = float(numfmt.chop(np.float64(x), f, mode, overflow=policy, key=key, random_bits=random_bits))
        note = _note(x, y, f) if isinstance(f, FloatFormat) else value_note(x, y, f, policy)
        rows = [("input", f"{x!r} {how}".rstrip()), ("result", f"{y!r} {note}".rstrip())]
        if not isinstance(f, FloatFormat):
            if np.isnan(y) and not isinstance(f, PositFormat):  # fixed point has no NaN code
                rows.append(("code", "none"))
            else:  # y is a value (or NaR): encoding it again is exact
                rows.append(("code", plain_code(f.bits, int(numfmt.encode(np.float64(y), f, overflow=policy)))))
        elif f.bits > 64:
            rows.append(("code", f"none shown ({f.bits}-bit codes)"))
        elif np.isnan(y) and not f.has_nan:
            rows.append(("code", "none"))
        else:  # y is a value of f: encoding it again is exact and draws no random bits
            rows.append(("code", _code(f, int(numfmt.encode(np.float64(y), f, overflow=policy)))))
        if np.isfinite(x) and np.isfinite(y):
            err = abs(Fraction(y) - Fraction(x))
            rel = repr(float(err / abs(Fraction(x)))) if x else ("0.0" if not err else "inf")
            rows += [("absolute error", repr(float(err))), ("relative error", rel)]
        else:
            rows += [("absolute error", "n/a"), ("relative error", "n/a")]
        blocks.append(f"\n{text.strip()}\n" + "\n".join(f"  {k + ':':16}{v}" for k, v in rows))
    return "\n".join(blocks)


def demo() -> None:
    """The demonstration: a small network trained in several formats (see ``numfmt.cli.demo``)."""
    from numfmt.cli.demo import run_demo

    run_demo()


# ----------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    ap = argparse.ArgumentParser(
        prog=_PROG,
        description="Bit-exact rounding of numbers into number formats.\n"
        "Without a subcommand, trains a small network in several formats and prints a table.",
        epilog="FORMAT is a preset name (see 'formats'), a short name (e4m3fn), an alias (bf16, half),\n"
        "a P3109 name (binary8p3se), the explicit form 'float(e=E,m=M,...)', a posit (posit16_1),\n"
        "fixed point (int8, q3.4, uq0.8) or a block format (mxfp4_e2m1, nvfp4, nf4, 'mx(elem=e2m1,block=16)').\n"
        "Run 'numfmt COMMAND --help' for the options of each subcommand.",
        formatter_class=raw,
    )
    sub = ap.add_subparsers(title="subcommands", dest="command", metavar="COMMAND")
    p = sub.add_parser(
        "info",
        help="print the spec block of a format (codes, range, eps, specials)",
        description="Print every exact fact of a format: layout, NaN/inf/-0 codes, range, eps,\n"
        "unit roundoff, number of finite values, overflow default.",
        epilog="example: numfmt info float8_e4m3fn",
        formatter_class=raw,
    )
    p.add_argument("format", help="a format name or spec, e.g. float8_e4m3fn, bf16, binary8p3se, 'float(e=5,m=2)'")
    sub.add_parser(
        "formats",
        help="print a table of every preset format",
        description="Print a table of every preset: bits, exponent/fraction bits, bias, specials, max, min subnormal.",
    )
    modes = ", ".join(m.value for m in Rounding)
    p = sub.add_parser(
        "round",
        help="round values into a format and show result, code and error",
        description="Round each value X (read as a float64) into FORMAT; print the result, its code\n"
        "and the exact absolute and relative error.",
        epilog="examples:\n"
        "  numfmt round 0.1 1e6 --to e4m3fn\n"
        "  numfmt round -0x1.8p-3 --to bfloat16 --rounding toward_zero\n"
        "  numfmt round 0.1 --to e5m2 --rounding stochastic --seed 0\n"
        "  numfmt round 0.1 1e9 --to posit16_1\n"
        "  numfmt round 1.5 -3 100 --to mxfp4_e2m1   (the values are one block)",
        formatter_class=raw,
    )
    p.add_argument("values", nargs="+", metavar="X", help="a decimal (0.1, -1e-5), a hex float (0x1.8p-3), nan or inf")
    p.add_argument("--to", required=True, metavar="FORMAT", help="the target format")
    p.add_argument("--rounding", default="nearest_even", metavar="MODE", help=f"one of {modes} (default nearest_even)")
    p.add_argument(
        "--overflow",
        default=None,
        metavar="POLICY",
        help=f"one of {', '.join(o.value for o in Overflow)}; saturate or wrap for fixed point "
        "(default: the format's own; block formats take none)",
    )
    p.add_argument("--seed", type=int, default=None, metavar="N", help="seed of the random bits (stochastic modes)")
    p.add_argument("--random-bits", type=int, default=None, metavar="N", help="random bits of stochastic_a/_b/_c")
    return ap


def _protect_negative_values(argv: list[str]) -> list[str]:
    """Let ``round -1e-5 ...`` work: argparse takes "-1e-5" and "-inf" for options.

    argparse treats an argument that contains a space as a positional, and
    float() ignores surrounding spaces.
    """
    if "round" not in argv:
        return argv
    out, after = [], False
    for a in argv:
        if after and a.startswith("-") and not a.startswith("--"):
            try:
                float.fromhex(a) if a[1:].lower().startswith("0x") else float(a)
                a = " " + a
            except ValueError:
                pass
        after = after or a == "round"
        out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = _protect_negative_values(list(sys.argv[1:] if argv is None else argv))
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help, or a usage error argparse has already printed
        return e.code if isinstance(e.code, int) else 2
    try:
        if args.command == "info":
            print(info_text(args.format))
        elif args.command == "formats":
            print(formats_text())
        elif args.command == "round":
            print(round_text(args.values, args.to, args.rounding, args.overflow, args.seed, args.random_bits))
        else:
            demo()
    except (ValueError, TypeError) as e:
        print(f"{_PROG}: error: {e}", file=sys.stderr)
        return 2
    return 0
