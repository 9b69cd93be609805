"""Command-line text for the posit, fixed-point and block families: spec rows, tables, rounding.

``numfmt.cli.main`` dispatches here for formats that are not a
:class:`numfmt.FloatFormat`. ``round`` of a block format rounds the given
values as one 1-D array, blocked along its only axis: up to ``block_size``
values form one block and share one scale (a trailing partial block is
quantized as if zero-padded). ``round`` of a scaled integer format
likewise rounds the values as one 1-D array: one scale for all of them
(per tensor), one per value (per channel: axis 0 is the only axis) or one per
``group_size`` values.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

import numfmt
from numfmt.block.format import BlockFormat, InfPolicy, ScaleRule
from numfmt.block.nvfp4 import F64_RANDOM_BITS
from numfmt.block.table import TableElement
from numfmt.cli.exact_text import exact, g, table
from numfmt.fixed.format import FixedFormat, FixedOverflow
from numfmt.posit.format import PositFormat
from numfmt.scaled.format import ScaledIntFormat

__all__ = ["block_round_lines", "family_rows", "family_tables", "plain_code", "scaled_round_lines", "value_note"]

_RULES = {
    ScaleRule.FLOOR: "e = floor(log2(amax)) - emax_elem (OCP MX v1.0); larger elements clamp to max_elem",
    ScaleRule.CEIL: "the smallest e with amax / 2^e <= max_elem (nothing clamps)",
    ScaleRule.EVEN: "floor(log2(amax rounded to the element precision)) - emax_elem",
    ScaleRule.RCEIL: "ceil(log2(RN_f32(amax / max_elem))) (cuBLAS, TransformerEngine)",
}
_INF = {
    InfPolicy.NAN: "nan: an infinite element makes its block NaN",
    InfPolicy.SATURATE: "saturate: the largest scale; infinite elements become +-max_elem",
}


def plain_code(bits: int, code: int) -> str:
    """``0x.. = 0b..`` of a code without fields (posits, fixed point, integer elements)."""
    return f"0x{code:0{(bits + 3) // 4}x} = 0b{code:0{bits}b}"


def _scaled_rows(f: ScaledIntFormat) -> list:
    per = {
        "tensor": "one scale for the whole array",
        "channel": f"one scale per index of axis {f.axis} (reduced over the other axes)",
        "group": f"one scale per {f.group_size} consecutive elements along axis {f.axis}",
    }[f.granularity]
    if f.symmetric:
        scale, value = f"RN_{f.scale}(amax / {f.qmax})", "q * s"
        zero = "none (symmetric)"
    else:
        scale, value = f"RN_{f.scale}((hi - lo) / {f.divisor}), lo = min(x, 0), hi = max(x, 0)", "(q - z) * s"
        zero = f"z = clamp({f.qmin} - RNE(lo / s)), one integer per group"
    kind = "signed" if f.signed else "unsigned"
    return [
        ("Codes", f"{f.bits}-bit {kind} integers q in [{f.qmin}, {f.qmax}]"),
        ("Granularity", per),
        ("Scale", scale),
        ("Zero point", zero),
        ("Value", f"{value}, rounded once to the input dtype"),
        ("Input dtypes", "float16, bfloat16, float32, float64; on JAX needs jax_enable_x64"),
    ]


def float32_only(f: BlockFormat) -> bool:
    """NVFP4-style and table formats round float16/bfloat16/float32 input only."""
    return f.tensor_scale or isinstance(f.elem, TableElement)


def _posit_rows(f: PositFormat) -> list:
    exp_text = f"up to {f.es} exponent bit{'' if f.es == 1 else 's'}" if f.es else "no exponent bits"
    return [
        ("Bits", f"{f.n} = sign + regime + {exp_text} + fraction"),
        ("Codes", "two's complement of the magnitude code, ordered like the values"),
        ("es", f"{f.es}" + (" (the 2022 Posit Standard's choice)" if f.es == 2 else " (the 2022 standard fixes 2)")),
        ("useed", f"2^(2^es) = {exact(Fraction(f.useed))}"),
        ("Maxpos", exact(f.maxpos)),
        ("Minpos", exact(f.minpos)),
        ("NaR", plain_code(f.n, f.nar_code) + " (not a real: NaN and +-inf become NaR)"),
        ("Zero", plain_code(f.n, 0) + " (one zero: no -0)"),
        ("Eps near 1", f"{exact(f.eps)} ({f.fraction_bits(0)} fraction bits at 1)"),
        ("Values", f"{f.num_finite} reals (2^{f.n} - 1) and NaR"),
        (
            "Rounding",
            "on the bit string (2022 standard; default nearest_even); in every mode |x| >= maxpos gives "
            "+-maxpos and 0 < |x| < minpos gives +-minpos (never 0 or NaR)",
        ),
    ]


def _fixed_rows(f: FixedFormat) -> list:
    layout = f"{f.int_bits} integer + {f.frac_bits} fraction"
    if f.overflow is FixedOverflow.SATURATE:
        overflow = "saturate: rounded values outside the range clamp to min/max; +-inf too"
    else:
        overflow = f"wrap: the integer code modulo 2^{f.bits} (two's complement wrap-around); +-inf becomes NaN"
    return [
        ("Bits", f"{f.bits} = " + (f"1 sign + {layout}" if f.signed else f"{layout} (no sign bit)")),
        ("Signed", "yes (two's complement)" if f.signed else "no"),
        ("Integer bits", f"{f.int_bits} (not counting the sign)"),
        ("Fraction bits", str(f.frac_bits)),
        ("Range", f"[{exact(f.min_value)}, {exact(f.max_value)}]"),
        ("Step", f"{exact(f.resolution)} (the gap between all neighbours)"),
        ("Values", str(f.num_finite)),
        ("Overflow", overflow),
        ("Specials", "none: NaN stays NaN in chop (encode refuses it); -0 becomes +0"),
    ]


def _block_rows(f: BlockFormat) -> list:
    elem, scale = f.elem, f.scale
    if isinstance(elem, TableElement):
        elem_text = f"{elem} ({elem.bits}-bit codebook of {len(elem.values)} values in [-1, 1])"
        scale_text = f"{scale}: the block's amax itself"
        rule = "none: the scale is amax; each element is the table value nearest x / amax (ties to even index)"
    else:
        elem_text = f"{elem} ({elem.bits} bits, max {exact(Fraction(elem.max_value))})"
        if f.pow2_scale:
            scale_text = f"{scale} ({scale.bits} bits: a power of two 2^e per block)"
            rule = f"{f.rule.value}: {_RULES[f.rule]}"
        else:
            scale_text = f"{scale} ({scale.bits} bits)"
            rule = f"amax * g / max_elem rounded to nearest into {scale} (g = 1 without a tensor scale)"
    per_elem = g(Fraction(elem.bits) + Fraction(scale.bits, f.block_size))
    overhead = f"{elem.bits} + {scale.bits}/{f.block_size} = {per_elem}"
    rows = [
        ("Element", elem_text),
        ("Scale", scale_text),
        ("Block size", f"{f.block_size} elements along axis {f.axis} (a partial last block acts zero-padded)"),
        ("Scale rule", rule),
        ("Inf policy", _INF[f.inf]),
        (
            "Tensor scale",
            "float32 g = RN_f32(max_scale * max_elem / amax_tensor), 32 bits per tensor" if f.tensor_scale else "none",
        ),
        ("Bits per element", overhead + " incl. the scale" + (", plus 32 bits per tensor" if f.tensor_scale else "")),
    ]
    if elem.bits <= 4:
        order = {"low_first": "element 0 in the low nibble", "high_first": "element 0 in the high nibble"}
        packing = f": two codes per byte, {order[f.nibbles]}" if f.nibbles in order else ": one code per byte"
        rows.append(("Nibbles", f.nibbles + packing))
    inputs = "float16, bfloat16, float32, float64"
    if f.tensor_scale:  # numfmt.block.nvfp4: exact quotients for float64 too, fewer random bits
        inputs += f" (float64: stochastic rounding with at most {F64_RANDOM_BITS} random bits)"
    rows.append(("Input dtypes", inputs + "; on JAX needs jax_enable_x64"))
    return rows


def family_rows(f) -> list:
    """Spec rows (label, text) of a posit, fixed-point or block format (after Name and Spec)."""
    if isinstance(f, PositFormat):
        return _posit_rows(f)
    if isinstance(f, FixedFormat):
        return _fixed_rows(f)
    if isinstance(f, BlockFormat):
        return _block_rows(f)
    if isinstance(f, ScaledIntFormat):
        return _scaled_rows(f)
    raise TypeError(f"no spec block for {f!r}: expected a FloatFormat, PositFormat, FixedFormat or BlockFormat")


def family_tables() -> list[str]:
    """Lines of the posit, fixed-point and block tables of ``numfmt formats``."""
    posits = [
        (n, str(f.n), str(f.es), str(f.useed), g(f.maxpos), g(f.minpos), g(f.eps))
        for n, f in numfmt.presets("posit").items()
    ]
    fixed = [
        (n, str(f.bits), "yes" if f.signed else "no", str(f.int_bits), str(f.frac_bits), g(f.min_value),
         g(f.max_value), g(f.resolution), f.overflow.value)
        for n, f in numfmt.presets("fixed").items()
    ]  # fmt: skip
    blocks = [
        (n, str(f.elem), str(f.scale), str(f.block_size), f.rule.value if f.pow2_scale else "-", f.inf.value,
         "yes" if f.tensor_scale else "no", g(Fraction(f.elem.bits) + Fraction(f.scale.bits, f.block_size)))
        for n, f in numfmt.presets("block").items()
    ]  # fmt: skip
    scaled = [
        (n, str(f.bits), str(f.qmin), str(f.qmax), f.granularity, "-" if f.axis is None else str(f.axis),
         str(f.group_size or "-"), "no" if f.symmetric else "yes", str(f.scale))
        for n, f in numfmt.presets("scaled").items()
    ]  # fmt: skip
    return [
        "Posits (any posit{N}_{ES} or posit(n=N,es=E) with 2 <= N <= 32 is accepted)",
        *table(("name", "bits", "es", "useed", "maxpos", "minpos", "eps"), posits, {0}),
        "",
        "Fixed point and integers (also q{I}.{F}, uq{I}.{F}, fixed(i=I,f=F,signed=...,overflow=...))",
        *table(("name", "bits", "signed", "int", "frac", "min", "max", "step", "overflow"), fixed, {0, 2, 8}),
        "",
        "Block formats (also mx(...), bfp(m=M,...), nvfp4(...), nf4(...); bits/elem includes the scale)",
        *table(("name", "element", "scale", "block", "rule", "inf", "tensor", "bits/elem"), blocks, {0, 1, 2, 4, 5, 6}),
        "",
        "Scaled integers (also preset(axis=A,group=G,scale=...) and scaled(bits=B,per=...,...))",
        *table(("name", "bits", "qmin", "qmax", "per", "axis", "group", "zero point", "scale"), scaled, {0, 4, 7, 8}),
    ]


def value_note(x: float, y: float, f, policy) -> str:
    """A note on one rounding of ``x`` to ``y`` in a posit or fixed-point format under ``policy``."""
    if np.isnan(x):
        return "(NaN becomes NaR)" if isinstance(f, PositFormat) else f"(NaN is not a value of {f}; kept as NaN)"
    if np.isnan(y):
        return f"({'NaR' if isinstance(f, PositFormat) else 'infinite input under wrap: no residue'})"
    if x == 0:
        return "(-0 becomes +0: no -0)" if np.signbit(x) else "(exact)"
    fx, fy = Fraction(x) if np.isfinite(x) else None, Fraction(y)
    if isinstance(f, PositFormat):
        if fx is None or abs(fx) > f.maxpos:
            return "(saturated to maxpos)"
        if abs(fx) < f.minpos:
            return "(below minpos: posits never round to 0)"
    elif fx is None or not f.min_value <= fx <= f.max_value:
        if policy is FixedOverflow.WRAP:
            return f"(overflow, wrapped modulo 2^{f.bits})"
        return "(overflow, saturated to " + ("max)" if fy == f.max_value else "min)")
    if y == 0:
        return "(underflow)"
    return "(exact)" if fx == fy else ""


def block_round_lines(values: list[str], parsed: list, f: BlockFormat, mode, key, random_bits) -> list[str]:
    """Rows of ``numfmt round`` for a block format: the values are one 1-D array (see the module doc)."""
    dtype = np.float32 if float32_only(f) else np.float64
    x64 = np.array([x for x, _ in parsed], np.float64)
    big = np.isfinite(x64) & (np.abs(x64) > np.finfo(np.float32).max)
    if dtype is np.float32 and big.any():
        raise ValueError(
            f"{f} rounds float32 input, and {values[int(np.argmax(big))].strip()} is beyond float32's range "
            f"(max {float(np.finfo(np.float32).max)!r}); give values within it, or inf"
        )
    x = x64.astype(dtype)
    y = numfmt.chop(x, f, mode, key=key, random_bits=random_bits)
    lines = [
        f"The {len(values)} value(s) form one array blocked along its axis: blocks of {f.block_size} share a scale.",
    ]
    if dtype is np.float32:
        lines.append(f"{f} rounds float32 input: the values are read as float32 (shown as input).")
    if not mode.is_stochastic:  # deterministic: encoding x again gives the codes of y
        coded = numfmt.encode(x, f.replace(nibbles="unpacked") if f.elem.bits <= 4 else f, mode)
        elem_codes, scale_codes = np.asarray(coded[0]), np.asarray(coded[1])
        if scale_codes.dtype.kind == "f":  # table formats store the float32 amax itself
            scales = "scale(s): " + ", ".join(repr(float(c)) for c in np.ravel(scale_codes)) + " (float32 amax)"
        else:
            scales = "scale code(s): " + ", ".join(plain_code(f.scale.bits, int(c)) for c in np.ravel(scale_codes))
        lines.append(scales + (f"; tensor scale g = {float(coded[2])!r}" if f.tensor_scale else ""))
    for i, text in enumerate(values):
        xi, yi = float(x[i]), float(y[i])
        how = parsed[i][1] if dtype is np.float64 or xi == x64[i] or np.isnan(xi) else "(nearest float32)"
        rows = [("input", f"{xi!r} {how}".rstrip()), ("result", repr(yi))]
        if not mode.is_stochastic:
            rows.append(("element code", plain_code(f.elem.bits, int(elem_codes[i]))))
        if np.isfinite(xi) and np.isfinite(yi):
            err = abs(Fraction(yi) - Fraction(xi))
            rel = repr(float(err / abs(Fraction(xi)))) if xi else ("0.0" if not err else "inf")
            rows += [("absolute error", repr(float(err))), ("relative error", rel)]
        lines.append(f"\n{text.strip()}\n" + "\n".join(f"  {k + ':':16}{v}" for k, v in rows))
    return lines


def _error_rows(xi: float, yi: float) -> list:
    if not (np.isfinite(xi) and np.isfinite(yi)):
        return []
    err = abs(Fraction(yi) - Fraction(xi))
    rel = repr(float(err / abs(Fraction(xi)))) if xi else ("0.0" if not err else "inf")
    return [("absolute error", repr(float(err))), ("relative error", rel)]


def scaled_round_lines(values: list[str], parsed: list, f: ScaledIntFormat, mode, key, random_bits) -> list[str]:
    """Rows of ``numfmt round`` for a scaled integer format: the values are one 1-D float64 array."""
    x = np.array([v for v, _ in parsed], np.float64)
    y = numfmt.chop(x, f, mode, key=key, random_bits=random_bits)
    per = {"tensor": "all values share one scale", "channel": "each value has its own scale (axis 0)",
           "group": f"groups of {f.group_size} values share a scale"}[f.granularity]  # fmt: skip
    lines = [f"The {len(values)} value(s) form one array: {per}."]
    if not mode.is_stochastic:  # deterministic: encoding x again gives the codes of y
        coded = numfmt.encode(x, f, mode)
        codes = np.asarray(coded[0])
        lines.append("scale(s): " + ", ".join(repr(float(s)) for s in np.ravel(coded[1])))
        if len(coded) == 3:
            lines.append("zero point(s): " + ", ".join(str(int(z)) for z in np.ravel(coded[2])))
    for i, text in enumerate(values):
        xi, yi = float(x[i]), float(y[i])
        rows = [("input", f"{xi!r} {parsed[i][1]}".rstrip()), ("result", repr(yi))]
        if not mode.is_stochastic:
            rows.append(("integer code", str(int(codes[i]))))
        rows += _error_rows(xi, yi)
        lines.append(f"\n{text.strip()}\n" + "\n".join(f"  {k + ':':16}{v}" for k, v in rows))
    return lines
