"""Block formats with a non-power-of-two scale (NVFP4): exact definition and kernel (drivers: nvfp4_driver).

numfmt computes, with exact arithmetic and one rounding per step:

1. tensor scale ``g = RN_f32(max_scale * max_elem / amax_tensor)``
   (NVFP4: ``448 * 6 / amax``), saturated at float32's max; ``g = 1`` when
   the tensor has no nonzero finite value;
2. block scale ``s = RN_scale(amax_block * g / max_elem)``, saturated;
3. elements ``q = round(x * g / s)`` into the element format (the chosen
   rounding mode, saturating at ``max_elem``; ``q = +-0`` when ``s = 0``);
4. results ``RN_dtype(q * s / g)``.

``x * g / s`` is thus rounded once from its exact value. TransformerEngine and
torchao compute the same quantities in float32 arithmetic (``x * (g / s)``
or ``x / (s / g)``, each operation rounded), which can differ from the exact
quotient in its last bits and, rarely, flip an element rounding at a tie;
step 1 and 2 agree with them whenever their float32 product/quotient is
exact. Scale quotients are integer divisions of the significands with a
sticky bit (round-to-odd at 38 or more bits). Element quotients of float16,
bfloat16 and float32 input are one float64 product and division, and results
one float64 division: exact in their effect (proofs in :func:`quantize` and
:func:`dequantize`). For float64 input the 77-bit quotients are two-step
integer divisions rounded to odd at 50 or more bits (:func:`_mul_div_odd`).
Every deterministic mode is thus correct, and stochastic rounding with up to
31 (float64 input: 47) random bits.

Inputs: float16, bfloat16, float32, float64. A float64 tensor whose
``amax_tensor`` is at least ``2688 * 2**150`` is refused (the float32 tensor
scale would be 0 and every result 0); under ``jax.jit`` it gives NaN.
With ``tensor_scale=False`` the format has one level (``g = 1``).
NaN makes its block NaN; infinity too (``inf='saturate'`` is not offered for
these formats). ``amax_tensor`` ignores NaN and infinities.
"""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np

from numfmt.block.format import BlockFormat
from numfmt.block.scale_bits import from_f64, layout, to_f64, unpack
from numfmt.core.chop import plan_for
from numfmt.core.rounding import Overflow, Rounding
from numfmt.float.format import FloatFormat, Subnormals
from numfmt.float.kernel import make_plan

__all__ = ["F64_RANDOM_BITS", "dequantize", "quantize", "tensor_scale"]

F32 = FloatFormat(8, 23)
_OUT = {np.dtype(np.float32): F32, np.dtype(np.float16): FloatFormat(5, 10)}


def _odd_split(v: Fraction) -> tuple[int, int]:
    """``v = n * 2**k`` with ``n`` odd (v > 0 a dyadic rational)."""
    n, d = v.numerator, v.denominator
    k = -(d.bit_length() - 1)
    while n % 2 == 0:
        n //= 2
        k += 1
    return n, k


def _norm(xp, sig, t, lead: int):
    """Significand shifted so that its leading bit is at ``lead``."""
    U, I = xp.uint(64), xp.int(64)
    sh = xp.astype(xp.minimum(xp.maximum(lead - t, xp.asarray(0, I)), xp.asarray(63, I)), U)
    return sig << sh


def _div_odd(xp, num, den, nb: int, db: int):
    """Round-to-odd quotient ``num * 2**sh / den`` (< 2**53) and ``sh``.

    ``num < 2**nb``, ``2**(db-1) <= den < 2**db``.
    """
    U = xp.uint(64)
    sh = min(64 - nb, 52 + db - nb)
    n = num << xp.asarray(sh, U)
    den = xp.where(den == xp.asarray(0, U), xp.asarray(1, U), den)  # callers discard x / 0
    q = n // den
    q = q | xp.astype(n - q * den != xp.asarray(0, U), U)
    return q, sh


def _mul_div_odd(xp, a, b, den, db: int):
    """Round-to-odd ``a * b / den / 2**k`` (an integer in ``[2**50, 2**53)``) and ``k``.

    ``2**52 <= a < 2**53``, ``2**23 <= b < 2**24``, ``2**(db-1) <= den < 2**db``
    (``db <= 4``): the 77-bit product is divided in two steps of at most 54
    bits, ``a = ah * 2**29 + al``, keeping the remainders, and the quotient's
    low ``k`` bits and the last remainder become the sticky bit.
    """
    U = xp.uint(64)
    k = 25 - db
    den = xp.where(den == xp.asarray(0, U), xp.asarray(1 << (db - 1), U), den)  # callers discard x / 0
    big = (a >> xp.asarray(29, U)) * b
    q_a = big // den
    c = ((big - q_a * den) << xp.asarray(29, U)) + (a & xp.asarray((1 << 29) - 1, U)) * b
    q_c = c // den
    sticky = ((q_c & xp.asarray((1 << k) - 1, U)) != xp.asarray(0, U)) | (c != q_c * den)
    q = (q_a << xp.asarray(29 - k, U)) + (q_c >> xp.asarray(k, U))
    return q | xp.astype(sticky, U), k


def _f64(xp, q, k):
    """float64 patterns of ``q * 2**k`` (``q < 2**53`` an integer array, ``k`` int64)."""
    bits = xp.bitcast(xp.astype(q, np.dtype(np.float64)), xp.uint(64))
    _, neg, sig, t, e_x = unpack(xp, bits, 11, 52, 64)
    return to_f64(xp, neg, sig, t, e_x, k)


def _round(xp, fmt, pat, overflow=Overflow.SAT_FINITE):
    return make_plan(fmt, np.dtype(np.float64), Rounding.NEAREST_EVEN, overflow, 0).round_bits(xp, pat)[0]


F64_RANDOM_BITS = 47  # stochastic rounding of float64 input: at most this many random bits


@functools.lru_cache(maxsize=64)
def _check(fmt: BlockFormat, dtype: np.dtype):
    if not (isinstance(fmt.elem, FloatFormat) and fmt.elem.man_bits <= 3 and fmt.scale.man_bits <= 3):
        raise ValueError(f"{fmt}: non-power-of-two scales support float elements and scales of at most 3 fraction bits")
    if fmt.inf.value != "nan":
        raise ValueError(f"{fmt}: inf='saturate' is only offered for power-of-two scales")


def _parts(xp, u, dtype):
    e_bits, m_bits, width, _ = layout(dtype)
    a, neg, sig, t, e_x = unpack(xp, u, e_bits, m_bits, width)
    return a, neg, _norm(xp, sig, t, m_bits), e_x - m_bits  # value = sigN * 2**(e_x - m_bits)


def tensor_scale(xp, fmt: BlockFormat, amax, dtype):
    """float64 pattern (uint64 scalar) of the float32 tensor scale from the amax pattern."""
    U = xp.uint(64)
    if not fmt.tensor_scale:  # one level: g = 1
        return xp.asarray(0x3FF0000000000000, U)
    cn, ce = _odd_split(fmt.scale.max_value * Fraction(fmt.elem.max_value))
    _, _, a_sig, a_k = _parts(xp, amax, dtype)
    m_bits = layout(dtype)[1]
    if m_bits > 23:  # 2688 / amax rounded once to float64, then to float32: innocuous (53 >= 2 * 24 + 2)
        f64 = np.dtype(np.float64)
        a = xp.maximum(amax, xp.asarray((1023 - 900) << 52, U))  # below 2**-900, g saturates anyway
        g64 = xp.asarray(float(fmt.scale.max_value * Fraction(fmt.elem.max_value)), f64) / xp.bitcast(a, f64)
        g = _round(xp, F32, xp.bitcast(g64, U))
    else:
        q, sh = _div_odd(xp, xp.asarray(cn, U), a_sig, cn.bit_length(), m_bits + 1)
        g = _round(xp, F32, _f64(xp, q, ce - sh - a_k))
    return xp.where(amax == xp.asarray(0, U), xp.asarray(0x3FF0000000000000, U), g)


def _values(xp, u, dtype):
    """Exact float64 values of patterns ``u`` (unsigned, the dtype's width or more)
    of a float32, float16 or bfloat16.

    From the bits, not by conversion: XLA on CPU flushes float32 subnormals
    when it converts them. Subnormals are ``mant * 2**(emin - m_bits)``, an
    exact integer conversion times a power of two.
    """
    e_bits, m_bits, width, bias = layout(dtype)
    U = u.dtype
    f64 = np.dtype(np.float64)
    a = u & xp.asarray((1 << (width - 1)) - 1, U)
    normal = xp.bitcast((xp.astype(a, xp.uint(64)) << xp.asarray(52 - m_bits, xp.uint(64))) + (1023 - bias << 52), f64)
    signed = xp.bitcast(a, xp.int(U.itemsize * 8))  # a < 2**31: a signed conversion (native on x86) is exact
    sub = xp.astype(signed, f64) * xp.asarray(2.0 ** (1 - bias - m_bits), f64)
    v = xp.where(a < xp.asarray(1 << m_bits, U), sub, normal)
    return xp.where(a != u, -v, v)


def _rint_ok(fmt, rounding) -> bool:
    elem = fmt.elem
    return rounding is Rounding.NEAREST_EVEN and elem.subnormals is Subnormals.ON and elem.signed


def _rint_round(xp, elem, y):
    """``y >= 0`` (float64, finite, normal or zero, ``y < 2**1000``) rounded to nearest-even
    into the float element ``elem`` (subnormals), saturated at its max.

    ``y * 2**(m - e)`` with ``e = max(floor(log2 |y|), emin)`` is exact and puts
    the element's quantum at 1; ``rint`` rounds it (ties to even) and the
    product by ``2**(e - m)`` is exact again.
    """
    U, I = xp.uint(64), xp.int(64)
    f64 = np.dtype(np.float64)
    m = elem.man_bits
    ex = xp.astype((xp.bitcast(y, U) >> xp.asarray(52, U)) & xp.asarray(0x7FF, U), I)
    e = xp.maximum(ex, xp.asarray(1023 + elem.emin, I))  # biased
    up = xp.bitcast(xp.astype((2046 + m - e) << xp.asarray(52, I), U), f64)
    down = xp.bitcast(xp.astype((e - m) << xp.asarray(52, I), U), f64)
    return xp.minimum(xp.rint(y * up) * down, xp.asarray(float(elem.max_value), f64))


def quantize(xp, fmt: BlockFormat, dtype, rounding, random_bits, xb, g, rbits):
    """Blocked input ``xb`` -> ``(out, unrep, scale patterns (f64), element patterns (f64), bad)``.

    ``g``: the tensor scale's float64 pattern, or None to take it from ``xb``
    (all of the tensor; the tensor amax is the largest block amax).

    The element quotient ``x * g / s`` is a float64 product and division: for
    input of at most 24 significant bits ``x * g`` (24 x 24 bits) is exact, and
    the division's one rounding (to 53 bits) never changes a decision of the
    element rounding. Proof: write ``x * g = P * 2**k`` (``P < 2**48`` an
    integer) and ``s = S * 2**j`` (``8 <= S < 16``). The decisions of every
    rounding mode (stochastic with ``N <= 31`` random bits included) depend
    only on where the quotient lies among the points ``T = t * 2**i`` with
    ``|t| < 2**(m + N + 3)`` (element fraction bits ``m <= 3``): ties, grid
    points and the random-bit thresholds. If ``P * 2**k / (S * 2**j) != T``,
    then ``|P * 2**k - T * S * 2**j|`` is a nonzero multiple of
    ``2**min(k, i + j)``, so ``|quotient - T| >= 2**min(k, i + j) / S``, which
    is at least ``2**-49`` times the quotient in both cases (``P < 2**48``,
    ``|t| < 2**38``). The float64 quotient is within ``2**-53`` times the
    quotient of the exact one, so it lies strictly on the same side of every
    such ``T`` and equals one only when the exact quotient does. Its range:
    ``2**-275 < |x * g / s| < 2**22`` (no float64 subnormal or overflow).
    """
    e_bits, m_bits, width, _ = layout(dtype)
    U, W = xp.uint(64), xp.uint(max(width, 32))
    f64 = np.dtype(np.float64)
    u = xp.astype(xp.bitcast(xb, xp.uint(width)), W)
    a = u & xp.asarray((1 << (width - 1)) - 1, W)
    inf_w = xp.asarray(((1 << e_bits) - 1) << m_bits, W)
    bad = xp.any(a >= inf_w, axis=-1, keepdims=True)
    amax = xp.astype(xp.max(xp.where(a < inf_w, a, xp.asarray(0, W)), axis=-1, keepdims=True), U)
    if g is None:
        g = tensor_scale(xp, fmt, xp.max(amax, initial=0), dtype)  # initial: empty x
    _, _, g_sig, _, g_e = unpack(xp, g, 11, 52, 64)
    g_sig, g_k = g_sig >> xp.asarray(29, U), g_e - 23  # g = g_sig * 2**g_k, 24-bit g_sig
    # block scale s = RN(amax * g / max_elem)
    en, ee = _odd_split(Fraction(fmt.elem.max_value))
    _, _, b_sig, b_k = _parts(xp, amax, dtype)
    if width == 64:
        q, k = _mul_div_odd(xp, b_sig, g_sig, xp.asarray(en, U), en.bit_length())
        s = _round(xp, fmt.scale, _f64(xp, q, b_k + g_k + k - ee))
    else:
        q, sh = _div_odd(xp, b_sig * g_sig, xp.asarray(en, U), m_bits + 25, en.bit_length())
        s = _round(xp, fmt.scale, _f64(xp, q, b_k + g_k - sh - ee))
    s = xp.where(amax == xp.asarray(0, U), xp.asarray(0, U), s)
    # x * g / s: with s = 0 the divisor is inf, which gives +-0 (NaN blocks: x is 0)
    s_div = xp.bitcast(xp.where(s == xp.asarray(0, U), xp.asarray(0x7FF << 52, U), s), f64)
    s, s_div, g = xp.barrier((s, s_div, g))  # per block, not per element
    u = xp.where(bad, xp.asarray(0, W), u)
    if width == 64:
        return _quantize64(xp, fmt, rounding, random_bits, u, s, g, bad, rbits)
    x = _values(xp, u, dtype)
    # A per-element divisor: XLA rewrites a division by a broadcast value into a
    # product by its reciprocal, which is not exact (x = 0 gives +-0 either way).
    # The quotient has one user, abs: XLA then fuses it into the users of abs
    # instead of writing it to memory.
    ay = xp.abs(x * xp.bitcast(g, f64) / xp.where(u == xp.asarray(0, W), xp.asarray(1.0, f64), s_div))
    sign = xp.where(u >= xp.asarray(1 << (width - 1), W), xp.asarray(1 << 63, U), xp.asarray(0, U))
    if _rint_ok(fmt, rounding):
        qe = xp.bitcast(_rint_round(xp, fmt.elem, ay), U) | sign
    else:
        elem_plan = plan_for(fmt.elem, np.float64, rounding, Overflow.SAT_FINITE, random_bits)
        qe, _ = elem_plan.round_bits(xp, xp.bitcast(ay, U) | sign, rbits)
    out, unrep = dequantize(xp, fmt, dtype, qe, s, g)
    out = xp.where(bad, xp.asarray(np.nan, dtype), out)
    return out, unrep & ~bad, s, qe, bad


def _quantize64(xp, fmt, rounding, random_bits, u, s, g, bad, rbits):
    """:func:`quantize` for float64 input: ``x * g / s`` (53 x 24 bits) by :func:`_mul_div_odd`,
    rounded to odd at 50 or more bits, which keeps every decision of the element
    rounding for the deterministic modes and stochastic ones with at most
    ``F64_RANDOM_BITS`` random bits."""
    U = xp.uint(64)
    a, neg, x_sig, x_k = _parts(xp, u, np.dtype(np.float64))
    _, _, g_sig, _, g_e = unpack(xp, g, 11, 52, 64)
    g_sig, g_k = g_sig >> xp.asarray(29, U), g_e - 23
    s_zero = s == xp.asarray(0, U)
    mb = fmt.scale.man_bits
    _, _, s_sig, s_t, s_e = unpack(xp, s, 11, 52, 64)
    s_sig = _norm(xp, s_sig, s_t, 52) >> xp.asarray(52 - mb, U)
    q, k = _mul_div_odd(xp, x_sig, g_sig, s_sig, mb + 1)
    y = _f64(xp, q, x_k + g_k + k - (s_e - mb))
    zero = (a == xp.asarray(0, U)) | s_zero | (g_sig == xp.asarray(0, U))
    y = xp.where(zero, xp.asarray(0, U), y) | xp.where(neg, xp.asarray(1 << 63, U), xp.asarray(0, U))
    if _rint_ok(fmt, rounding):
        f64 = np.dtype(np.float64)
        ay = xp.abs(xp.bitcast(y, f64))
        qe = xp.bitcast(_rint_round(xp, fmt.elem, ay), U) | (y & xp.asarray(1 << 63, U))
    else:
        elem_plan = plan_for(fmt.elem, np.float64, rounding, Overflow.SAT_FINITE, random_bits)
        qe, _ = elem_plan.round_bits(xp, y, rbits)
    out, unrep = dequantize(xp, fmt, np.dtype(np.float64), qe, s, g)
    out = xp.where(bad, xp.asarray(np.nan, np.dtype(np.float64)), out)
    return out, unrep & ~bad, s, qe, bad


def dequantize(xp, fmt, dtype, qe, s, g):
    """``RN_dtype(q * s / g)`` from float64 patterns: ``(values in dtype, overflow mask)``.

    ``q * s`` is exact in float64 (at most 8 significant bits) and the quotient
    by ``g`` (24 bits) is rounded once to float64, then into ``dtype``. The
    double rounding is innocuous for outputs of at most 25 bits (the argument
    of :func:`quantize`: unless it lies on it, a quotient of a short numerator
    by a 24-bit ``g`` is at least ``2**-50`` times itself away from every tie
    of a 25-bit grid), and float64 output is rounded once. Into float32: the
    hardware conversion where the result is normal (round to nearest even),
    and ``rint(|r| * 2**149)``, the subnormal's pattern, below ``2**-126``
    (XLA on CPU flushes float32 subnormals in conversions); other dtypes
    round on bit patterns. Overflow gives +-inf.
    """
    e_bits, m_bits, width, _ = layout(dtype)
    U = xp.uint(64)
    f64 = np.dtype(np.float64)
    q = xp.bitcast(qe, f64)
    # the divisor per element and abs as the quotient's one user: see quantize
    ar = xp.abs(q * xp.bitcast(s, f64) / xp.where(q == xp.asarray(0.0, f64), xp.asarray(1.0, f64), xp.bitcast(g, f64)))
    neg = qe >= xp.asarray(1 << 63, U)
    if width == 32:
        U32 = xp.uint(32)
        f32max = float(np.finfo(np.float32).max)
        over = ar >= xp.asarray(2.0**128 - 2.0**103, f64)  # rounds above float32's max
        normal = xp.bitcast(xp.astype(xp.minimum(ar, xp.asarray(f32max, f64)), np.dtype(np.float32)), U32)
        tiny = xp.minimum(ar, xp.asarray(2.0**-126, f64))
        sub = xp.bitcast(xp.astype(xp.rint(tiny * xp.asarray(2.0**149, f64)), xp.int(32)), U32)
        pat = xp.where(ar < xp.asarray(2.0**-126, f64), sub, normal)
        pat = xp.where(over, xp.asarray(0x7F800000, U32), pat)
        out = pat | xp.where(neg, xp.asarray(1 << 31, U32), xp.asarray(0, U32))
        return xp.bitcast(out, dtype), over
    rb = xp.bitcast(ar, U)
    if width != 64:
        rb = _round(xp, _OUT.get(np.dtype(dtype), FloatFormat(8, 7)), rb, Overflow.SAT_NONE)
    over = rb == xp.asarray(0x7FF << 52, U)
    out, _ = from_f64(xp, xp.where(over, xp.asarray(0, U), rb), xp.asarray(0, xp.int(64)), e_bits, m_bits, width)
    out = xp.where(over, out | xp.asarray(((1 << e_bits) - 1) << m_bits, U), out)
    out = out | xp.where(neg, xp.asarray(1 << (width - 1), U), xp.asarray(0, U))
    return xp.bitcast(xp.astype(out, xp.uint(width)), dtype), over
