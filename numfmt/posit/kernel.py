"""Rounding to posits on input bit patterns: one kernel for NumPy and JAX.

A finite ``|x| = s * 2**e_q`` with ``2**E <= |x| < 2**(E+1)`` has the infinite
posit bit string: regime of ``k = E >> es``, the ``es`` bits of
``E mod 2**es``, then the ``t`` fraction bits of ``s``. The first ``n - 1``
bits form the truncated magnitude code; because posit codes are ordered like
their values, adding the rounding increment to it gives the next posit, a
carry into the exponent or regime included. Rounding therefore works on the
bit string (the 2022 standard's rule): round-to-nearest-even compares the
dropped bits with half a unit of the last kept bit.

Rules every mode obeys: ``|x| >= maxpos`` gives +-maxpos, a nonzero
``|x| < minpos`` gives +-minpos (never 0, never NaR); 0 and -0 give +0 (no
-0); NaN and +-inf give NaR, which ``chop`` returns as NaN.

Stochastic rounding of posits rounds up with probability equal to the
distance of ``|x|`` from the lower neighbour along the bit string, in units of
one code step (the dropped bits as a binary fraction), using the random-bit
conventions of :class:`numfmt.Rounding`. Where the two neighbours differ only
in fraction bits this is the distance in value divided by their gap, so the
expected result is ``x``; where the exponent field is cut short (only next to
maxpos and minpos: for posit16_1 the outermost code pair on each side) the
neighbours are powers of two and the probability is the bit-string distance,
not the value distance.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from numfmt.core import xp as _xp
from numfmt.core.rounding import Overflow, Rounding
from numfmt.float.intbits import fits_exactly, float_bits, increment
from numfmt.float.kernel import _split, decompose
from numfmt.posit.format import PositFormat

__all__ = ["PositPlan", "make_posit_plan", "posit_codes", "posit_decode_bits"]


@dataclasses.dataclass(frozen=True)
class PositPlan:
    """Everything static about one (posit format, input dtype, rounding)."""

    fmt: PositFormat
    rounding: Rounding
    random_bits: int
    width: int
    container: int
    in_exp: int
    in_man: int
    in_bias: int
    need_clz: bool

    can_be_unrepresentable = False

    @property
    def is_stochastic(self) -> bool:
        return self.rounding.is_stochastic

    @property
    def nan_bits(self) -> int:
        return (((1 << self.in_exp) - 1) << self.in_man) | (1 << (self.in_man - 1))

    def round_bits(self, xp, u, rbits=None):
        code, neg, special = posit_codes(xp, u, self, rbits)
        if xp.name == "numpy" and self.fmt.n <= 16:
            # NumPy pays per pass: look the patterns up in a table that the
            # same decoder computed once. JAX keeps the arithmetic, which fuses.
            out = _decode_table(self)[code]
        else:
            out = posit_decode_bits(xp, code, self)
        U = u.dtype
        out = xp.where(neg & (code != 0), out | xp.asarray(1 << (self.width - 1), U), out)
        return xp.where(special, xp.asarray(self.nan_bits, U), out), None


@functools.lru_cache(maxsize=64)
def _decode_table(plan: PositPlan) -> np.ndarray:
    codes = np.arange(1 << (plan.fmt.n - 1), dtype=np.dtype(f"uint{plan.container}"))
    table = posit_decode_bits(_xp.NUMPY, codes, plan)
    table.setflags(write=False)
    return table


def _layout_check(fmt: PositFormat, dtype: np.dtype) -> None:
    in_exp, in_man = _xp.FLOAT_LAYOUTS[dtype]
    m = fmt.max_scale
    if not fits_exactly([(-m, m, 1)], in_exp, in_man):
        fix = "use a smaller es or n" if m > 1022 else "pass float64 input"
        raise ValueError(f"{fmt} reaches 2**+-{m} (maxpos/minpos), beyond what {dtype.name} holds; {fix}")


@functools.lru_cache(maxsize=256)
def make_posit_plan(fmt: PositFormat, dtype: np.dtype, rounding: Rounding, overflow: Overflow, random_bits: int):
    """The plan for ``chop``/``encode`` of ``fmt`` (the ``register_elementwise`` planner)."""
    if overflow is not Overflow.SAT_FINITE:
        raise ValueError(
            f"{fmt}: posits have one overflow rule (saturate to +-maxpos, inf and NaN to NaR); "
            f"overflow={overflow.value!r} is not available: pass overflow=None or 'sat_finite'"
        )
    dtype = np.dtype(dtype)
    _layout_check(fmt, dtype)
    in_exp, in_man = _xp.FLOAT_LAYOUTS[dtype]
    width = dtype.itemsize * 8
    in_bias = 2 ** (in_exp - 1) - 1
    return PositPlan(
        fmt=fmt,
        rounding=rounding,
        random_bits=random_bits,
        width=width,
        container=64 if width == 64 else 32,
        in_exp=in_exp,
        in_man=in_man,
        in_bias=in_bias,
        need_clz=-fmt.max_scale < 1 - in_bias,
    )


def posit_codes(xp, u, plan: PositPlan, rbits=None):
    """Round input patterns ``u`` (container-wide unsigned) to posit magnitudes.

    Returns:
      ``(code, neg, special)``: the magnitude code (``n - 1`` bits; 0 only
      for a zero input), the input's sign, and the mask of NaN/inf inputs
      (whose posit is NaR).
    """
    fmt, C = plan.fmt, plan.container
    n, es, emax = fmt.n, fmt.es, fmt.max_scale
    U, I = u.dtype, xp.int(C)

    def k_(v):
        return xp.asarray(v, U)

    a, neg, s, e_q, e_x = decompose(xp, u, plan)
    inf_bits = ((1 << plan.in_exp) - 1) << plan.in_man
    special = a >= k_(inf_bits)
    big = e_x >= emax
    tiny = e_x < -emax
    ec = xp.minimum(xp.maximum(e_x, xp.asarray(-emax, I)), xp.asarray(max(emax - 1, 0), I))
    k = ec >> es
    ex = xp.astype(ec & ((1 << es) - 1), U)
    kneg = k < 0
    run = xp.where(kneg, -k + 1, k + 2)  # regime length, <= n - 1 here
    regime = xp.where(kneg, k_(1), (k_(1) << xp.astype(xp.maximum(k + 2, xp.asarray(0, I)), U)) - k_(2))
    keep = xp.astype(xp.asarray(n - 1, I) - run, U)  # tail bits kept
    t = xp.maximum(e_x - e_q, xp.asarray(0, I))  # fraction bits of s
    tu = xp.astype(t, U)
    tail = (ex << tu) | (s & ((k_(1) << tu) - k_(1)))
    drop = t + es - xp.astype(keep, I)
    dpos = xp.astype(xp.minimum(xp.maximum(drop, xp.asarray(0, I)), C - 1), U)
    dneg = xp.astype(xp.minimum(xp.maximum(-drop, xp.asarray(0, I)), C - 1), U)
    kept, rem, half = _split(xp, tail, dpos)
    trunc = (regime << keep) + (kept << dneg)
    inc = increment(xp, plan, rem, half, trunc & k_(1), neg, drop, rbits)
    code = trunc + xp.astype(inc, U)
    code = xp.where(big, k_((1 << (n - 1)) - 1), xp.where(tiny, k_(1), code))
    code = xp.where((a == 0) | special, k_(0), code)
    return code, neg, special


def posit_decode_bits(xp, code, plan):
    """Float patterns (plan's input layout) of positive posit magnitude codes.

    ``code`` holds ``n - 1``-bit magnitudes in the container dtype; 0 gives +0.
    """
    fmt, C = plan.fmt, plan.container
    n, es = fmt.n, fmt.es
    U, I = code.dtype, xp.int(C)
    w = n - 1
    mask = xp.asarray((1 << w) - 1, U)
    top = (code >> xp.asarray(w - 1, U)) & xp.asarray(1, U)
    ones = top == 1
    lead = xp.where(ones, (~code) & mask, code)
    run = xp.asarray(w, I) - xp.astype(xp.bit_length(lead), I)
    k = xp.where(ones, run - 1, -run)
    left = xp.maximum(xp.asarray(w - 1, I) - run, xp.asarray(0, I))
    leftu = xp.astype(left, U)
    rest = code & ((xp.asarray(1, U) << leftu) - xp.asarray(1, U))
    fb = xp.maximum(left - es, xp.asarray(0, I))
    fbu = xp.astype(fb, U)
    up = xp.astype(xp.maximum(es - left, xp.asarray(0, I)), U)
    exp = xp.where(left >= es, rest >> fbu, rest << up)
    frac = xp.where(left >= es, rest & ((xp.asarray(1, U) << fbu) - xp.asarray(1, U)), xp.asarray(0, U))
    scale = k * (1 << es) + xp.astype(exp, I)
    sig = (xp.asarray(1, U) << fbu) | frac
    out = float_bits(xp, sig, scale - fb, in_man=plan.in_man, in_bias=plan.in_bias)
    return xp.where(code == 0, xp.asarray(0, U), out)


# ------------------------------------------------------------------ codecs
def _decode_dtype(fmt: PositFormat, dtype):
    spans = []
    for k in range(-(fmt.n - 2), fmt.n - 1):
        fb = fmt.fraction_bits(k)
        lo = k * 2**fmt.es
        spans.append((lo - fb, min(lo + 2**fmt.es - 1, fmt.max_scale), fb + 1))
    candidates = [np.float32, np.float64] if dtype is None else [dtype]
    for d in candidates:
        d = np.dtype(d)
        if d in _xp.FLOAT_LAYOUTS and fits_exactly(spans, *_xp.FLOAT_LAYOUTS[d]):
            return d
    if dtype is None:
        raise ValueError(f"{fmt} has values float64 cannot hold exactly; decode only to exact dtypes")
    raise ValueError(f"dtype={np.dtype(dtype).name} cannot hold every value of {fmt} exactly; use dtype=None")


def encode_posit(x, fmt, rounding="nearest_even", *, overflow=None, key=None, random_bits=None):
    """``numfmt.encode`` for posits: two's complement codes, NaR for NaN/inf."""
    from numfmt.core.codes import chopped_patterns, code_dtype

    def planner(fmt, dtype):
        return make_posit_plan(fmt, dtype, Rounding.NEAREST_EVEN, Overflow.SAT_FINITE, 0)

    xp, _, u, plan = chopped_patterns(x, fmt, rounding, overflow, key, random_bits, planner)
    code, neg, special = posit_codes(xp, u, plan)  # exact: y holds posits
    U = code.dtype
    mask = xp.asarray((1 << fmt.n) - 1, U)
    code = xp.where(neg, (~code + xp.asarray(1, U)) & mask, code)
    code = xp.where(special, xp.asarray(fmt.nar_code, U), code)
    return xp.astype(code, code_dtype(fmt.n))


def decode_posit(codes, fmt, dtype=None):
    """``numfmt.decode`` for posits: NaR gives NaN; every code is in range."""
    from numfmt.core.codes import code_array, require_float64

    xp, codes = code_array(codes, fmt.n, fmt)
    dtype = _decode_dtype(fmt, dtype)
    require_float64(xp, dtype, fmt)
    plan = make_posit_plan(fmt, dtype, Rounding.NEAREST_EVEN, Overflow.SAT_FINITE, 0)
    U = xp.uint(plan.container)
    mask = xp.asarray((1 << fmt.n) - 1, U)
    c = xp.astype(codes, U) & mask
    neg = (c >> xp.asarray(fmt.n - 1, U)) == xp.asarray(1, U)
    mag = xp.where(neg, (~c + xp.asarray(1, U)) & mask, c)
    out = posit_decode_bits(xp, mag, plan)
    out = xp.where(neg, out | xp.asarray(1 << (plan.width - 1), U), out)
    out = xp.where(c == xp.asarray(fmt.nar_code, U), xp.asarray(plan.nan_bits, U), out)
    return xp.bitcast(xp.astype(out, xp.uint(plan.width)), dtype)

