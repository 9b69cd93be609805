"""Exact reference loops for accumulation (accum=, chunk=, promote=), shared by the accumulation tests.

Products and chunk sums are Fractions (exact); the accumulator is rounded
after each chunk by ``round_acc`` (a Fraction -> float function); with
``promote=N`` each group of N products is accumulated from +0 and added into
a float32 outer accumulator, rounded to nearest even. Non-finite terms are
summed in float arithmetic (inf and NaN propagate as in IEEE 754).
"""

import math
from fractions import Fraction

F32_MAX_EXP = 127  # float32: p = 24, emin = -126


def round_f32(x: Fraction) -> float:
    """``x`` rounded to nearest even into float32 (subnormals, overflow to inf), exactly."""
    if x == 0:
        return 0.0
    sign, mag = (-1.0 if x < 0 else 1.0), abs(x)
    e = max(math.floor(math.log2(mag)), -126)
    while Fraction(2) ** e > mag:  # log2 of a Fraction may be off by one near powers of two
        e -= 1
    while Fraction(2) ** (e + 1) <= mag:
        e += 1
    e = max(e, -126)
    ulp = Fraction(2) ** (e - 23)
    q, r = divmod(mag, ulp)
    if r > ulp / 2 or (r == ulp / 2 and q % 2 == 1):
        q += 1
    value = q * ulp
    if value >= Fraction(2) ** 128 - Fraction(2) ** 103:  # at or past the overflow threshold
        return sign * math.inf
    return sign * float(value)


def _sum(acc: float, terms) -> float | Fraction:
    if all(math.isfinite(t) for t in (acc, *terms)):
        return Fraction(acc) + sum((Fraction(t) for t in terms), Fraction(0))
    return float(sum(terms, acc))


def accumulate(products, chunk: int, round_acc, promote=None) -> float:
    """The accumulated sum of ``products`` (floats, in contraction order), as the emulator defines it."""
    groups = [products] if promote is None else [products[i : i + promote] for i in range(0, len(products), promote)]
    outer = 0.0
    for group in groups or [[]]:
        acc = 0.0
        for start in range(0, len(group), chunk):
            total = _sum(acc, group[start : start + chunk])
            acc = round_acc(total) if isinstance(total, Fraction) else total
        if promote is None:
            return acc
        total = _sum(outer, [acc])
        outer = round_f32(total) if isinstance(total, Fraction) else total
    return outer


def reference_matmul(a, b, chunk: int, round_acc=round_f32, promote=None):
    """(M, K) x (K, N) float64 arrays -> (M, N): each element accumulated in contraction order."""
    import numpy as np

    out = np.empty((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            out[i, j] = accumulate([float(a[i, k]) * float(b[k, j]) for k in range(a.shape[1])], chunk, round_acc,
                                   promote)  # fmt: skip
    return out
