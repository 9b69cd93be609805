"""Exact numbers as text for the command line: floats where exact, ``~`` approximations otherwise."""

from __future__ import annotations

import decimal
from fractions import Fraction

__all__ = ["approx", "decimal_text", "exact", "g", "pow2_exponent", "table"]


def pow2_exponent(v: Fraction) -> int | None:
    """k if v == 2**k, else None."""
    n, d = v.numerator, v.denominator
    if n > 0 and n & (n - 1) == 0 and d & (d - 1) == 0:
        return n.bit_length() - d.bit_length()
    return None


def approx(v: Fraction) -> decimal.Decimal:
    """v to 17 digits, also far outside the float64 range."""
    a = abs(v)
    k = a.numerator.bit_length() - a.denominator.bit_length()
    sig = a / Fraction(2) ** k  # v = sig * 2**k
    with decimal.localcontext() as ctx:
        ctx.prec, ctx.Emax, ctx.Emin = 17, decimal.MAX_EMAX, decimal.MIN_EMIN
        return decimal.Decimal(sig.numerator) / sig.denominator * decimal.Decimal(2) ** k * (1 if v >= 0 else -1)


def decimal_text(v: Fraction) -> str:
    """repr of float(v) if that is exact, else a 17-digit approximation marked ``~``."""
    try:
        f = float(v)
    except OverflowError:
        f = None
    if f is not None and Fraction(f) == v:
        return repr(f)
    return f"~{approx(v):.16e}"


def exact(v: Fraction) -> str:
    """``2^k = <decimal>`` for a power of two, else the decimal."""
    k = pow2_exponent(v)
    text = decimal_text(v)
    if k is None:
        return text
    return f"2^{k} {'~' if text.startswith('~') else '='} {text.lstrip('~')}"


def g(v: Fraction) -> str:
    """v to 6 significant digits (``%g``), also outside the float64 range."""
    try:
        f = float(v)
    except OverflowError:
        f = 0.0
    return f"{f:.6g}" if f or not v else f"{approx(v):.6g}"


def table(head: tuple, rows: list, left: set) -> list[str]:
    """Aligned lines: a header, a rule, the rows; columns in ``left`` align left, others right."""
    rows = [head, *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return [line.rstrip() for line in lines]
