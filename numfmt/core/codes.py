"""``encode`` and ``decode``: values to bit codes of a format and back."""

from __future__ import annotations

import numpy as np

from numfmt.core import xp as _xp
from numfmt.core.chop import _check_dtype, check_out_dtype, chop
from numfmt.core.elementwise import _widen
from numfmt.core.names import parse
from numfmt.core.xp import require_jax_x64

__all__ = [
    "chopped_patterns",
    "code_array",
    "code_dtype",
    "decode",
    "encode",
    "is_tracer",
    "register_codec",
    "require_float64",
]

# Families register ``(encode_fn, decode_fn)`` with the signatures of
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
    if jax_in and getattr(fmt, "bits", 0) > 32:
        require_jax_x64(f"encode of {y.dtype} to {fmt}")
    return xp, y, _widen(xp, xp.bitcast(y, xp.uint(plan.width)), plan), plan


def require_float64(xp, dtype, fmt) -> None:
    """Decoding JAX codes into float64 needs ``jax_enable_x64``."""
    if xp.name != "numpy" and np.dtype(dtype).itemsize == 8:
        require_jax_x64(f"decode of {fmt} into float64")


def code_array(codes, bits: int, fmt):
    """``(xp, codes)`` for integer codes of a ``bits``-bit format, range-checked."""
    jax_in = _xp.is_jax_array(codes)
    xp = _xp.jax_namespace() if jax_in else _xp.NUMPY
    codes = codes if jax_in else np.asarray(codes)
    if np.dtype(codes.dtype).kind not in "iu":
        raise TypeError(f"codes must be an integer array, got dtype {codes.dtype}")
    if jax_in and bits > 32:
        require_jax_x64(f"decode of {fmt}")
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
      TypeError: as for :func:`numfmt.chop` (masked arrays and other ndarray
        subclasses included).

    Examples:
      >>> import numpy as np, numfmt
      >>> numfmt.encode(np.array([1.0, -2.0, 448.0], np.float32), "float8_e4m3fn")
      array([ 56, 192, 126], dtype=uint8)
    """
    _xp.refuse_subclass(x, "x", "encode")
    fmt = parse(fmt)
    return _codec(fmt)[0](x, fmt, rounding, overflow=overflow, key=key, random_bits=random_bits)


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
      TypeError: non-integer codes, or codes in an ndarray subclass (a
        masked array or ``np.matrix``, whose mask or type would be dropped).
      ValueError: codes out of range (NumPy and eager JAX; under ``jax.jit``
        bits above ``fmt.bits`` are ignored), or a ``dtype`` that cannot hold
        every value of ``fmt``.

    Examples:
      >>> import numpy as np, numfmt
      >>> numfmt.decode(np.array([56, 192, 126, 127], np.uint8), "float8_e4m3fn")
      array([  1.,  -2., 448.,  nan], dtype=float32)
    """
    _xp.refuse_subclass(codes, "codes", "decode")
    fmt = parse(fmt)
    if dtype is not None:
        check_out_dtype(dtype)
    return _codec(fmt)[1](codes, fmt, dtype)


def _codec(fmt):
    try:
        return _CODECS[type(fmt)]
    except KeyError:
        raise TypeError(f"{fmt} has no codes: no encode/decode is registered for {type(fmt).__name__}") from None
