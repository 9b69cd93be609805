"""``encode``/``decode`` for block formats and integer elements; nibble packing.

A block format encodes to ``(element codes, scale codes)``, plus the float32
tensor scale for NVFP4. Element codes have ``x``'s shape; codes of at most 4
bits are packed two per byte along ``fmt.axis`` (``nibbles="low_first"``:
element ``2i`` in the low nibble, ``2i+1`` in the high one; an odd length is
padded with a zero code). Scale codes have ``x``'s shape with the axis length
replaced by the number of blocks. A NaN block has the scale's NaN code and
element codes 0.
"""

from __future__ import annotations

import functools

import numpy as np

from numfmt.block.chop import blocked, blocked_shape, prepare, quantize, unblocked, variant
from numfmt.block.format import BlockFormat
from numfmt.block.int_element import IntElement
from numfmt.block.runner import _rbits
from numfmt.block.scale_bits import from_f64, layout, require_x64
from numfmt.block.table import TableElement
from numfmt.core import xp as _xp
from numfmt.core.chop import _check_dtype, chop, resolve_key
from numfmt.core.codes import decode, encode, register_codec

__all__ = ["pack_nibbles", "unpack_nibbles"]


def _xm(a):
    if _xp.is_jax_array(a):
        import jax.numpy as jnp

        return jnp
    return np


_ORDERS = ("low_first", "high_first")


def _check_nibble_args(order, axis) -> None:
    if not isinstance(order, str) or order not in _ORDERS:
        raise ValueError(f"order={order!r} is not valid; use 'low_first' (element 0 in the low nibble) or 'high_first'")
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"axis must be an int, got {axis!r}")


def _check_codes(arg: str, a, top: int) -> None:
    """``a``: integer dtype or integral float values, all in ``0..top`` (values checked eagerly only)."""
    dtype = np.dtype(a.dtype)
    if dtype.kind not in "iuf" or (dtype.kind == "f" and _is_tracer(a)):
        raise TypeError(
            f"{arg} must be an integer array (codes 0..{top}), got dtype {dtype}"
            + ("; under tracing pass integer codes" if dtype.kind == "f" else "")
        )
    if _is_tracer(a) or a.size == 0 or (dtype.kind == "u" and np.iinfo(dtype).max <= top):
        return
    v = np.asarray(a)
    bad = (v < 0) | (v > top) | (v != np.floor(v)) if dtype.kind == "f" else (v < 0) | (v > top)
    if np.any(bad):
        first = v.reshape(-1)[np.argmax(bad.reshape(-1))]
        raise ValueError(f"{arg} must hold integers in 0..{top}; got {first.item()!r}")


def pack_nibbles(codes, axis: int = -1, order: str = "low_first", pad: int = 0):
    """Pack 4-bit codes two per byte along ``axis`` (an odd length padded with the code ``pad``).

    Args:
      codes: 4-bit codes, an integer array (or integral float values) in 0..15.
      axis: the axis to pack along.
      order: ``"low_first"`` (code ``2i`` in the low nibble) or ``"high_first"``.
      pad: the code (0..15) appended to an odd-length axis.

    Raises:
      TypeError: ``codes`` of a non-integer dtype (floats are accepted when
        their values are integers, except under tracing), or a non-int ``axis``.
      ValueError: a code or ``pad`` outside 0..15, or another ``order``.

    Examples:
      >>> import numpy as np, numfmt
      >>> numfmt.pack_nibbles(np.array([1, 2, 3], np.uint8))
      array([33,  3], dtype=uint8)
    """
    _check_nibble_args(order, axis)
    if not isinstance(pad, (int, np.integer)) or isinstance(pad, bool) or not 0 <= pad <= 15:
        raise ValueError(f"pad={pad!r} must be a code in 0..15")
    xm = _xm(codes)
    codes = xm.asarray(codes)
    _check_codes("codes", codes, 15)
    c = xm.moveaxis(codes.astype(np.uint8), axis, -1)
    if c.shape[-1] % 2:
        c = xm.pad(c, [(0, 0)] * (c.ndim - 1) + [(0, 1)], constant_values=pad)
    c = c.reshape(*c.shape[:-1], c.shape[-1] // 2, 2)  # not -1: other axes may be 0
    lo, hi = (c[..., 0], c[..., 1]) if order == "low_first" else (c[..., 1], c[..., 0])
    return xm.moveaxis(lo | (hi << 4), -1, axis)


def unpack_nibbles(packed, n: int | None = None, axis: int = -1, order: str = "low_first"):
    """Inverse of :func:`pack_nibbles`; ``n`` trims the axis to the original length.

    Raises:
      TypeError: ``packed`` of a non-integer dtype, or a non-int ``axis`` or ``n``.
      ValueError: a byte outside 0..255, ``n`` outside ``0..2 * length``, or another ``order``.

    Examples:
      >>> import numpy as np, numfmt
      >>> numfmt.unpack_nibbles(np.array([33, 3], np.uint8), 3)
      array([1, 2, 3], dtype=uint8)
    """
    _check_nibble_args(order, axis)
    xm = _xm(packed)
    packed = xm.asarray(packed)
    _check_codes("packed", packed, 255)
    p = xm.moveaxis(packed.astype(np.uint8), axis, -1)
    if n is not None:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"n must be an int or None, got {n!r}")
        if not 0 <= n <= 2 * p.shape[-1]:
            raise ValueError(f"n={n} must lie in 0..{2 * p.shape[-1]} (two codes per byte along axis {axis})")
    lo, hi = p & 15, p >> 4
    pair = (lo, hi) if order == "low_first" else (hi, lo)
    c = xm.stack(pair, axis=-1).reshape(*p.shape[:-1], 2 * p.shape[-1])
    if n is not None:
        c = c[..., :n]
    return xm.moveaxis(c, -1, axis)


def _elem_bits(elem) -> int:
    return elem.bits


def _scale_codes(xp, fmt: BlockFormat, e, bad):
    s = fmt.scale
    offset = 0 if not s.has_zero else 1
    code = xp.astype(e - (s.emin - offset), xp.uint(8 if s.bits <= 8 else 16))
    return xp.where(bad, xp.asarray(s.nan_code, code.dtype), code)


def block_encode(x, fmt: BlockFormat, rounding="nearest_even", *, overflow=None, key=None, random_bits=None):
    if overflow is not None:
        raise ValueError(f"overflow={overflow!r}: block format elements always saturate; leave overflow=None")
    found = variant(fmt)
    if found is not None:  # NF4 tables, NVFP4
        return found.encode(x, fmt, rounding, key=key, random_bits=random_bits)
    xp, xm, x, plan = prepare(x, fmt, rounding, key, random_bits)
    rng = resolve_key(key, plan, xp is not _xp.NUMPY)
    rbits = _rbits(xp, rng, blocked_shape(x.shape, fmt))
    if xp is _xp.NUMPY:
        return _encode(xp, xm, plan, x, rbits)
    return _jax_encode(plan)(x, rbits)


def _encode(xp, xm, plan, x, rbits):
    fmt = plan.fmt
    _, _, e, q, bad = quantize(xp, plan, blocked(xm, x, fmt), rbits)
    values = xp.bitcast(q, np.dtype(f"float{q.dtype.itemsize * 8}"))  # the work layout
    return _finish(xm, fmt, x.shape, encode(values, fmt.elem), _scale_codes(xp, fmt, e, bad))


@functools.cache
def _jax_encode(plan):
    import jax
    import jax.numpy as jnp

    return jax.jit(functools.partial(_encode, _xp.jax_namespace(), jnp, plan))


def _zero_code(elem) -> int:
    """The padding code: one that decodes to 0 (a table's value nearest 0 if it has no 0)."""
    if isinstance(elem, TableElement):
        return min(range(len(elem.values)), key=lambda i: abs(elem.values[i]))
    return 0


def _finish(xm, fmt, shape, elem_codes, scale_codes):
    elem_codes = unblocked(xm, elem_codes, fmt, shape)
    if _elem_bits(fmt.elem) <= 4 and fmt.nibbles != "unpacked":
        elem_codes = pack_nibbles(elem_codes, fmt.axis, fmt.nibbles, _zero_code(fmt.elem))
    scale_codes = xm.moveaxis(scale_codes[..., 0], -1, fmt.axis % len(shape))
    return elem_codes, scale_codes


def _split_codes(codes, fmt: BlockFormat, n: int):
    if not isinstance(codes, tuple) or len(codes) != n:
        what = "(element codes, scale codes, tensor scale)" if n == 3 else "(element codes, scale codes)"
        raise TypeError(f"decode of {fmt} takes the tuple {what} that numfmt.encode returns, got {type(codes)}")
    return codes


def block_decode(codes, fmt: BlockFormat, dtype=None):
    found = variant(fmt)
    if found is not None:  # NF4 tables, NVFP4
        return found.decode(_split_codes(codes, fmt, found.parts), fmt, dtype)
    elem_codes, scale_codes = _split_codes(codes, fmt, 2)
    dtype = _check_dtype(np.float32 if dtype is None else dtype)
    check_codes(fmt, elem_codes, scale_codes)
    if not _xp.is_jax_array(elem_codes):
        out, unrep = _decode(_xp.NUMPY, np, fmt, dtype, np.asarray(elem_codes), np.asarray(scale_codes))
    else:
        require_x64()
        out, unrep = _jax_decode(fmt, dtype)(elem_codes, scale_codes)
    if not _is_tracer(unrep) and bool(unrep):
        raise ValueError(f"decoded values of {fmt} do not fit {np.dtype(dtype).name} exactly; pass dtype=np.float64")
    return out


def check_codes(fmt: BlockFormat, elem_codes, scale_codes):
    """Eager range checks of code arrays (skipped under tracing)."""
    elem_bits = 8 if _elem_bits(fmt.elem) <= 4 and fmt.nibbles != "unpacked" else _elem_bits(fmt.elem)
    for name, c, bits in (("element codes", elem_codes, elem_bits), ("scale codes", scale_codes, fmt.scale.bits)):
        if _is_tracer(c):
            continue
        c = np.asarray(c)
        if c.dtype.kind not in "iu":
            raise TypeError(f"{name} must be an integer array, got dtype {c.dtype}")
        if c.size and (int(c.min()) < 0 or int(c.max()) >= 1 << bits):
            raise ValueError(f"{name} of {fmt} must lie in [0, 2**{bits}); got values in [{c.min()}, {c.max()}]")


@functools.cache
def _jax_decode(fmt, dtype):
    import jax
    import jax.numpy as jnp

    return jax.jit(functools.partial(_decode, _xp.jax_namespace(), jnp, fmt, dtype))


def _decode(xp, xm, fmt, dtype, elem_codes, scale_codes):
    elem_codes, values = decode_elements(xm, fmt, elem_codes)
    e_bits, m_bits, width, _ = layout(dtype)
    vb = blocked(xm, values, fmt)
    sc = xm.moveaxis(scale_codes, fmt.axis % scale_codes.ndim, -1)[..., None]
    if sc.shape[:-1] != vb.shape[:-1]:
        raise ValueError(f"scale codes of shape {scale_codes.shape} do not match element codes of shape "
                         f"{elem_codes.shape} for {fmt} (block {fmt.block_size} along axis {fmt.axis})")
    s = fmt.scale
    e = xp.astype(sc, xp.int(64)) + (s.emin - (1 if s.has_zero else 0))
    bad = sc == xp.asarray(s.nan_code, sc.dtype)
    out, unrep = from_f64(xp, xp.bitcast(vb, xp.uint(64)), e, e_bits, m_bits, width)
    nan = ((1 << e_bits) - 1) << m_bits | 1 << (m_bits - 1)
    out = xp.where(bad, xp.asarray(nan, out.dtype), out)
    out = xp.bitcast(xp.astype(out, xp.uint(width)), dtype)
    return unblocked(xm, out, fmt, elem_codes.shape), xp.any(unrep & ~bad)


def decode_elements(xm, fmt: BlockFormat, elem_codes):
    """Unpacked element codes and their float64 values."""
    if _elem_bits(fmt.elem) <= 4 and fmt.nibbles != "unpacked":
        elem_codes = unpack_nibbles(elem_codes, None, fmt.axis, fmt.nibbles)
    return elem_codes, decode(elem_codes, fmt.elem, np.float64)


def _is_tracer(v) -> bool:
    if not _xp.is_jax_array(v):
        return False
    import jax

    return isinstance(v, jax.core.Tracer)


# ------------------------------------------------------------ int elements
def int_encode(x, fmt: IntElement, rounding="nearest_even", *, overflow=None, key=None, random_bits=None):
    y = chop(x, fmt, rounding, overflow=overflow, key=key, random_bits=random_bits)
    xm = _xm(y)
    xp = _xp.namespace_of(y)
    if bool(xp.any(y != y)) if not (_xp.is_jax_array(y) and _is_tracer(y)) else False:
        raise ValueError(f"x contains NaN, which {fmt} cannot encode (integers have no NaN)")
    k = xm.asarray(y, np.float64) * float(2**fmt.frac_bits)
    k = xp.astype(k, xp.int(64))
    if fmt.sign_magnitude:  # -0 keeps its sign bit
        code = xm.abs(k) | xm.where(xm.signbit(y), 1 << (fmt.bits - 1), 0)
    else:
        code = k & ((1 << fmt.bits) - 1)
    return xp.astype(code, xp.uint(8 if fmt.bits <= 8 else 16 if fmt.bits <= 16 else 32))


def int_decode(codes, fmt: IntElement, dtype=None):
    xm = _xm(codes)
    xp = _xp.namespace_of(codes)
    c = xp.astype(xm.asarray(codes), xp.int(64))
    if not (_xp.is_jax_array(c) and _is_tracer(c)) and c.size and (int(c.min()) < 0 or int(c.max()) >> fmt.bits):
        raise ValueError(f"codes must lie in [0, 2**{fmt.bits}) for {fmt}")
    top = 1 << (fmt.bits - 1)
    neg = c >= top
    mag = xm.where(neg, c - top, c) if fmt.sign_magnitude else xm.where(neg, 2 * top - c, c)
    dtype = np.dtype(np.float64 if dtype is None else dtype)
    v = xp.astype(mag, np.dtype(np.float64)) * np.float64(2.0**-fmt.frac_bits)
    return xp.astype(xm.where(neg, -v, v), dtype)


register_codec(BlockFormat, block_encode, block_decode)
register_codec(IntElement, int_encode, int_decode)
