"""``encode`` and ``decode``: values to bit codes of a format and back."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from numfmt.core import xp as _xp
from numfmt.core.chop import _check_dtype, _widen, chop
from numfmt.core.names import parse
from numfmt.core.rounding import Overflow, Rounding
from numfmt.float.format import FloatFormat, Subnormals
from numfmt.float.kernel import _value_bits, decompose, make_plan

__all__ = ["chopped_patterns", "code_array", "code_dtype", "decode", "encode", "is_tracer", "register_codec"]

# Other families register ``(encode_fn, decode_fn)`` with the signatures of
# ``encode`` and ``decode`` below (the format argument already parsed).
_CODECS: dict = {}


def register_codec(cls: type, encode_fn, decode_fn) -> None:
    """Route ``encode``/``decode`` of formats of type ``cls`` (internal hook)."""
    _CODECS[cls] = (encode_fn, decode_fn)


def code_dtype(bits: int) -> np.dtype:
    """The smallest of uint8/16/32/64 holding ``bits``-bit codes."""
    for width in (8, 16, 32, 64):
        if bits <= width:
            return np.dtype(f"uint{width}")
    raise ValueError(f"{bits}-bit codes: encode/decode support at most 64 bits")


def _code_dtype(fmt: FloatFormat) -> np.dtype:
    return code_dtype(fmt.bits)


def is_tracer(v) -> bool:
    """True for a JAX tracer (values unknown at trace time); never imports JAX."""
    if not _xp.is_jax_array(v):
        return False
    import jax

    return isinstance(v, jax.core.Tracer)


def chopped_patterns(x, fmt, rounding, overflow, key, random_bits, planner):
    """Chop ``x`` into ``fmt``; return ``(xp, y, u, plan)``.

    ``u`` are the widened bit patterns of the chopped values ``y`` and
    ``plan = planner(fmt, dtype)`` the family's plan for reading them exactly.
    """
    y = chop(x, fmt, rounding, overflow=overflow, key=key, random_bits=random_bits)
    jax_in = _xp.is_jax_array(y)
    xp = _xp.jax_namespace() if jax_in else _xp.NUMPY
    y = y if jax_in else np.asarray(y)
    plan = planner(fmt, _check_dtype(y.dtype))
    return xp, y, _widen(xp, xp.bitcast(y, xp.uint(plan.width)), plan), plan


def code_array(codes, bits: int, fmt):
    """``(xp, codes)`` for integer codes of a ``bits``-bit format, range-checked."""
    jax_in = _xp.is_jax_array(codes)
    xp = _xp.jax_namespace() if jax_in else _xp.NUMPY
    codes = codes if jax_in else np.asarray(codes)
    if np.dtype(codes.dtype).kind not in "iu":
        raise TypeError(f"codes must be an integer array, got dtype {codes.dtype}")
    if not (jax_in and is_tracer(codes)) and codes.size:
        lo, hi = int(codes.min()), int(codes.max())
        if lo < 0 or hi >= 1 << bits:
            raise ValueError(f"codes must lie in [0, 2**{bits}) for {fmt}; got values in [{lo}, {hi}]")
    return xp, codes


def encode(x, fmt, rounding="nearest_even", *, overflow=None, key=None, random_bits=None):
    """Round ``x`` into ``fmt`` (as :func:`numfmt.chop` does) and return the codes.

    Args:
      x: float array (float16, bfloat16, float32, float64), NumPy or JAX.
      fmt, rounding, overflow, key, random_bits: as for :func:`numfmt.chop`.

    Returns:
      Unsigned integer codes in the smallest of uint8/16/32/64 that holds
      ``fmt.bits`` bits; bit-identical to ml_dtypes' bit patterns where the
      dtype exists. NaN encodes as the format's canonical NaN (with the input's
      sign in formats with signed NaNs), -0 as the sign bit alone where the
      format has -0.

    Raises:
      ValueError: NaN input for a format without NaN (NumPy or eager JAX; under
        ``jax.jit`` such a NaN encodes as the code of +0, documented here
        because it cannot be checked), or as for :func:`numfmt.chop`.

    Examples:
      >>> import numpy as np, numfmt
      >>> numfmt.encode(np.array([1.0, -2.0, 448.0], np.float32), "float8_e4m3fn")
      array([ 56, 192, 126], dtype=uint8)
    """
    fmt = parse(fmt)
    if type(fmt) in _CODECS:
        return _CODECS[type(fmt)][0](x, fmt, rounding, overflow=overflow, key=key, random_bits=random_bits)
    xp, y, u, plan = chopped_patterns(x, fmt, rounding, overflow, key, random_bits, _float_plan)
    jax_in = _xp.is_jax_array(y)
    code_dtype = _code_dtype(fmt)
    wide = max(plan.container, code_dtype.itemsize * 8)
    U, I = xp.uint(wide), xp.int(wide)
    a, neg, s, e_q, e_x = decompose(xp, u, plan)
    s, e_q, e_x = xp.astype(s, U), xp.astype(e_q, I), xp.astype(e_x, I)
    qe = xp.where(e_x >= fmt.emin, e_x - fmt.man_bits, xp.asarray(fmt.emin - fmt.man_bits, I))
    shift = qe - e_q  # exact: y is a value of the format
    zero = xp.asarray(0, I)
    cap = xp.asarray(wide - 1, I)
    r = xp.where(
        shift >= 0,
        s >> xp.astype(xp.minimum(shift, cap), U),
        s << xp.astype(xp.minimum(-shift, cap), U),
    )
    offset = (1 << fmt.man_bits) if fmt.subnormals is Subnormals.NO_ZERO else 0
    mag = r + (xp.astype(xp.maximum(qe - (fmt.emin - fmt.man_bits), zero), U) << fmt.man_bits) - offset
    mag = xp.where(a == 0, xp.asarray(0, U), mag)
    inf_bits = plan.inf_bits
    inf_bits = xp.asarray(inf_bits, U)
    if fmt.inf_code is not None:
        mag = xp.where(a == inf_bits, xp.asarray(fmt.inf_code, U), mag)
    sign_symmetric_nan = fmt.has_negative_zero and fmt.has_nan  # ieee, fn
    if fmt.has_negative_zero:
        code = mag | xp.where(neg, xp.asarray(fmt.sign_code, U), xp.asarray(0, U))
    else:
        code = xp.where(neg & (mag != 0), mag | xp.asarray(fmt.sign_code, U), mag)
    is_nan = a > inf_bits
    if fmt.has_nan:
        nan = xp.asarray(fmt.nan_code, U)
        if sign_symmetric_nan:
            nan = xp.where(neg, nan | xp.asarray(fmt.sign_code, U), nan)
        code = xp.where(is_nan, nan, code)
    else:
        code = xp.where(is_nan, xp.asarray(0, U), code)
        if not jax_in or not is_tracer(is_nan):
            if bool(xp.any(is_nan)):
                raise ValueError(f"x contains NaN, which {fmt} cannot encode (the format has no NaN)")
    return xp.astype(code, code_dtype)


def _float_plan(fmt: FloatFormat, dtype: np.dtype):
    return make_plan(fmt, dtype, Rounding.NEAREST_EVEN, Overflow.SAT_NONE, 0)


def _fits(fmt: FloatFormat, dtype: np.dtype) -> bool:
    e, m = _xp.FLOAT_LAYOUTS[dtype]
    smallest = fmt.smallest_normal if fmt.subnormals is Subnormals.NO_ZERO else Fraction(2) ** (fmt.emin - fmt.man_bits)
    return (
        fmt.man_bits <= m
        and _value_bits(fmt.max_value, e, m) is not None
        and _value_bits(smallest, e, m) is not None
    )


def decode(codes, fmt, dtype=None):
    """Values of the codes ``codes`` of ``fmt``.

    Args:
      codes: integer array (NumPy or JAX) of codes in ``[0, 2**fmt.bits)``.
      fmt: a format object or string.
      dtype: float16, bfloat16, float32 or float64; it must hold every value
        of the format exactly. ``None`` picks float32 if it does, else float64.

    Returns:
      Float array of the same shape. NaN codes give NaN, infinity codes +-inf,
      the -0 code -0.0.

    Raises:
      TypeError: non-integer codes.
      ValueError: codes out of range (NumPy and eager JAX; under ``jax.jit``
        bits above ``fmt.bits`` are ignored), or a ``dtype`` that cannot hold
        every value of ``fmt``.

    Examples:
      >>> import numpy as np, numfmt
      >>> numfmt.decode(np.array([56, 192, 126, 127], np.uint8), "float8_e4m3fn")
      array([  1.,  -2., 448.,  nan], dtype=float32)
    """
    fmt = parse(fmt)
    if type(fmt) in _CODECS:
        return _CODECS[type(fmt)][1](codes, fmt, dtype)
    xp, codes = code_array(codes, fmt.bits, fmt)
    if dtype is None:
        dtype = next((d for d in (np.float32, np.float64) if _fits(fmt, np.dtype(d))), None)
        if dtype is None:
            raise ValueError(f"{fmt} has values float64 cannot hold exactly; decode only to exact dtypes")
    dtype = _check_dtype(dtype)
    if not _fits(fmt, dtype):
        raise ValueError(f"dtype={dtype.name} cannot hold every value of {fmt} exactly; use dtype=None")
    plan = make_plan(fmt, dtype, Rounding.NEAREST_EVEN, Overflow.SAT_NONE, 0)
    wide = max(plan.container, _code_dtype(fmt).itemsize * 8)
    U, I = xp.uint(wide), xp.int(wide)
    def k(value):
        return xp.asarray(value, U)

    c = xp.astype(codes, U) & k((1 << fmt.bits) - 1)
    neg = (c & k(fmt.sign_code)) != 0
    mag = c & k((1 << fmt.bits) - 1 - fmt.sign_code)
    m = fmt.man_bits
    e_field = xp.astype(mag >> m, I)
    frac = mag & k((1 << m) - 1)
    if fmt.subnormals is Subnormals.NO_ZERO:
        sig = frac | k(1 << m)
        q = e_field + (fmt.emin - m)
    else:
        sig = xp.where(e_field == 0, frac, frac | k(1 << m))
        q = xp.maximum(e_field, xp.asarray(1, I)) - 1 + (fmt.emin - m)
    t = xp.astype(xp.bit_length(sig), I) - 1
    e_x = q + t
    in_emin = 1 - plan.in_bias
    normal = e_x >= in_emin
    lift = xp.astype(xp.maximum(plan.in_man - t, xp.asarray(0, I)), U)
    bits_normal = (xp.astype(e_x + plan.in_bias, U) << plan.in_man) + (sig << lift) - k(1 << plan.in_man)
    sub_shift = xp.astype(xp.maximum(q - (in_emin - plan.in_man), xp.asarray(0, I)), U)
    out = xp.where(normal, bits_normal, sig << sub_shift)
    out = xp.where(sig == 0, xp.asarray(0, U), out)
    if fmt.inf_code is not None:
        out = xp.where(mag == k(fmt.inf_code), k(plan.inf_bits), out)
    out = xp.where(neg, out | k(1 << (plan.width - 1)), out)
    if fmt.has_nan:
        is_nan = _nan_mask(c, fmt, k)
        out = xp.where(is_nan, xp.asarray(plan.nan_bits, U), out)
    return xp.bitcast(xp.astype(out, xp.uint(plan.width)), dtype)


def _nan_mask(c, fmt: FloatFormat, k):
    ones = (1 << (fmt.exp_bits + fmt.man_bits)) - 1
    mag = c & k(ones)
    if fmt.inf_code is not None and fmt.has_negative_zero:  # ieee
        return mag > k(fmt.inf_code)
    if fmt.has_negative_zero:  # fn, signed
        return mag == k(ones)
    if not fmt.signed:  # fn or p3109, unsigned: all ones
        return c == k((1 << fmt.bits) - 1)
    return c == k(fmt.sign_code)  # fnuz, signed p3109
