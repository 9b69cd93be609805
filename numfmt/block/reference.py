"""Exact block reference: one block at a time, with Fractions, from the definitions.

The oracle for the block kernels. It shares no code with them: the scale
exponent is computed from the exact amax with the rule's definition (no
significand thresholds), integer elements are rounded directly, and float
elements use :func:`numfmt.float.reference.round_value`.

NF4 (table elements): scale ``s = RN_f32(amax)`` (``amax`` itself for inputs
of float32 or narrower; a NaN block when it exceeds float32's max), the table
value nearest to ``x / s`` (a tie goes to the even index), result
``RN_out(t * s)``.

NVFP4 (``tensor_scale=True``; see :mod:`numfmt.block.nvfp4` for the definition):
``g = RN_f32(max_scale * max_elem / amax_tensor)`` saturated to float32's
max (``g = 1`` when ``amax_tensor`` is 0), ``s = RN_scale(amax * g / max_elem)``
saturated, elements ``round(x * g / s)`` (0 when ``s = 0``), results
``RN_dtype(q * s / g)``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from numfmt.block.format import BlockFormat, InfPolicy, ScaleRule
from numfmt.block.int_element import IntElement
from numfmt.block.table import TableElement
from numfmt.core.rounding import Overflow, Rounding
from numfmt.float.format import FloatFormat
from numfmt.float.reference import _floor_log2, _rounds_up, round_value

__all__ = ["quantize_block", "round_element", "tensor_scale"]

_NAN = float("nan")
F32 = FloatFormat(8, 23)


def _ceil_log2(q: Fraction) -> int:
    e = _floor_log2(q)
    return e if Fraction(2) ** e == q else e + 1


def _round_to_precision(q: Fraction, p: int) -> Fraction:
    """``q > 0`` rounded to ``p`` significant bits, nearest, ties to even."""
    ulp = Fraction(2) ** (_floor_log2(q) - p + 1)
    k = q / ulp
    n = math.floor(k)
    if k - n > Fraction(1, 2) or (k - n == Fraction(1, 2) and n % 2):
        n += 1
    return n * ulp


def round_element(y, elem, rounding, random_bits=None, n_bits=None):
    """Round ``y`` (Fraction or float inf/-0.0) into ``elem``, saturating."""
    rounding = Rounding.parse(rounding)
    extra = {"random_bits": random_bits, "n_bits": n_bits} if rounding.is_stochastic else {}
    if isinstance(elem, FloatFormat):
        return round_value(y, elem, rounding, Overflow.SAT_FINITE, **extra)
    if not isinstance(elem, IntElement):
        raise TypeError(f"the block reference knows FloatFormat and IntElement elements, not {elem!r}")
    negative = math.copysign(1.0, y) < 0 if isinstance(y, float) else y < 0
    if isinstance(y, float) and math.isinf(y):
        k = Fraction(elem.min_int if negative else elem.max_int)
    else:
        mag = abs(Fraction(y)) / elem.quantum
        lo = math.floor(mag)
        v = mag - lo
        up = v != 0 and _rounds_up(rounding, negative, v, lo % 2 == 1, False, random_bits, n_bits)
        k = Fraction(-(lo + up) if negative else lo + up)
        k = min(max(k, Fraction(elem.min_int)), Fraction(elem.max_int))
    if k == 0:
        return -0.0 if negative and elem.sign_magnitude else 0.0
    return k * elem.quantum


def _scale_exponent(amax: Fraction, fmt: BlockFormat) -> int:
    s = fmt.scale
    if amax == 0:
        return s.emin
    max_elem = Fraction(fmt.elem.max_value)
    emax = _floor_log2(max_elem)
    r = fmt.rule
    if r is ScaleRule.FLOOR:
        e = _floor_log2(amax) - emax
    elif r is ScaleRule.CEIL:
        e = _ceil_log2(amax / max_elem)
    elif r is ScaleRule.RCEIL:
        e = _ceil_log2(_round_to_precision(amax / max_elem, 24))
    else:
        p = fmt.elem.man_bits + 1 if isinstance(fmt.elem, FloatFormat) else fmt.elem.max_int.bit_length()
        e = _floor_log2(_round_to_precision(amax, p)) - emax
    return min(max(e, s.emin), s.emax)


def tensor_scale(values, fmt: BlockFormat) -> Fraction:
    """NVFP4's float32 tensor scale ``g`` for all finite ``values`` of the tensor."""
    amax = max((abs(Fraction(v)) for v in values if math.isfinite(v)), default=Fraction(0))
    if amax == 0 or not fmt.tensor_scale:
        return Fraction(1)
    g = fmt.scale.max_value * Fraction(fmt.elem.max_value) / amax
    return Fraction(round_value(g, F32, Rounding.NEAREST_EVEN, Overflow.SAT_FINITE))  # finite


def quantize_block(values, fmt: BlockFormat, rounding="nearest_even", *, random=None, n_bits=None, g=None, out=F32):
    """Quantize one block exactly.

    Args:
      values: the block's elements as Python floats (a partial block is fine).
      fmt: the block format.
      rounding: a rounding mode; stochastic modes need ``random`` (one int
        per element) and ``n_bits``.
      g: NVFP4 only: the tensor scale (see :func:`tensor_scale`).
      out: NVFP4 only: the format results are rounded into (the dtype's).

    Returns:
      ``(scale, elements, results)``: the scale value (Fraction; NaN for a
      NaN block), the element values and ``scale * element`` (NVFP4:
      ``RN_out(element * s / g)``), each a Fraction or a float (+-0.0, nan).
    """
    rounding = Rounding.parse(rounding)
    n = len(values)
    random = random if random is not None else [None] * n
    if any(math.isnan(v) for v in values) or (
        fmt.inf is InfPolicy.NAN and any(math.isinf(v) for v in values)
    ):
        return _NAN, [_NAN] * n, [_NAN] * n
    finite = [abs(Fraction(v)) for v in values if math.isfinite(v)]
    amax = max(finite, default=Fraction(0))
    if isinstance(fmt.elem, TableElement):
        return _table_block(values, fmt, amax, out)
    if fmt.pow2_scale:
        e = fmt.scale.emax if any(math.isinf(v) for v in values) else _scale_exponent(amax, fmt)
        scale = Fraction(2) ** e
        divisor = scale
    else:
        g = Fraction(1) if g is None else g
        scale = round_value(amax * g / Fraction(fmt.elem.max_value), fmt.scale, Rounding.NEAREST_EVEN,
                            Overflow.SAT_FINITE)
        scale = Fraction(scale)
        divisor = scale / g
    elems, results = [], []
    for v, r in zip(values, random, strict=True):
        neg = math.copysign(1.0, v) < 0
        if math.isinf(v) or divisor == 0:
            y = v if math.isinf(v) else (-0.0 if neg else 0.0)
        elif v == 0:
            y = v
        else:
            y = Fraction(v) / divisor
        q = round_element(y, fmt.elem, rounding, r, n_bits)
        elems.append(q)
        if isinstance(q, float):  # +-0.0
            results.append(q)
        elif fmt.pow2_scale:
            results.append(q * scale)
        else:
            results.append(float(round_value(q * divisor, out, Rounding.NEAREST_EVEN)))
    return scale, elems, results


def _table_block(values, fmt, amax, out):
    """NF4-style block: scale amax, nearest table value (ties: even index), RN_out(t * amax)."""
    table = [Fraction(v) for v in fmt.elem.values]
    amax = round_value(amax, F32, Rounding.NEAREST_EVEN, Overflow.SAT_NONE)
    if isinstance(amax, float) and math.isinf(amax):
        return _NAN, [_NAN] * len(values), [_NAN] * len(values)
    amax = Fraction(amax)
    elems, results = [], []
    for v in values:
        if amax == 0:
            t = Fraction(0)
        else:
            y = Fraction(v) / amax
            dist = [abs(y - c) for c in table]
            best = min(dist)
            t = table[min(i for i, d in enumerate(dist) if d == best and (dist.count(best) == 1 or i % 2 == 0))]
        elems.append(t)
        results.append(round_value(t * amax, out, Rounding.NEAREST_EVEN) if t != 0 else 0.0)
    return amax, elems, results


def as_dtype(results, dtype):
    """Reference results as a ``dtype`` array, or None if one is not exactly representable."""
    out = []
    for r in results:
        v = float(r)
        if not isinstance(r, float):
            with np.errstate(over="ignore"):
                narrow = float(np.array(v, dtype))
            if Fraction(v) != r or not np.isfinite(narrow) or Fraction(narrow) != r:
                return None
        out.append(v)
    return np.array(out, dtype)
