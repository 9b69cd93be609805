"""Table (codebook) block formats: NF4 (QLoRA's 4-bit NormalFloat) and custom tables.

Per block: the scale is ``amax`` itself (the largest finite magnitude, kept as
a float32 value); each element becomes the table value nearest to the exact
quotient ``x / amax`` (a tie goes to the even index); the result is
``RN_dtype(t * amax)``. ``x / amax`` is never formed: ``x`` is compared with
the exact products ``midpoint * amax`` in float64 (25-bit midpoints times
24-bit amax: exact). bitsandbytes computes ``x / amax`` in float32 first,
which can move a value lying within a float32 rounding of a midpoint.

Inputs: float16, bfloat16, float32, float64. Round to nearest only. NaN or
inf in a block makes it NaN (scale NaN). A zero block has scale 0 and zero
elements.

The scale format is float32 (QLoRA stores ``absmax`` as float32). For
float64 input the scale is therefore ``s = RN_f32(amax)``, rounded once to
nearest-even from the block's exact float64 ``amax``; each element becomes
the table value nearest to the exact ``x / s`` (values beyond ``+-s`` go to
``+-1``) and the result is ``t * s``, exact in float64. The comparisons stay
exact: ``midpoint * s`` is 25 x 24 bits. A block whose ``amax`` rounds above
float32's max has no float32 scale: ``chop``/``encode`` raise ``ValueError``
(NumPy and eager JAX); under ``jax.jit`` such a block is NaN. An ``amax``
below half float32's smallest subnormal rounds to ``s = 0``: the block is
zeros, as a zero block.
"""

from __future__ import annotations

import functools

import numpy as np

from numfmt.block.chop import Variant, register_variant
from numfmt.block.scale_bits import as_f32, as_f64, from_f64, layout, require_x64, to_f64, unpack
from numfmt.block.table import TableElement
from numfmt.core import xp as _xp
from numfmt.core.chop import _check_dtype
from numfmt.core.rounding import Overflow, Rounding
from numfmt.float.format import FloatFormat
from numfmt.float.kernel import make_plan

__all__ = ["table_chop", "table_decode", "table_encode"]

F32 = FloatFormat(8, 23)


def _check(fmt, dtype, rounding):
    if rounding is not Rounding.NEAREST_EVEN:
        raise ValueError(f"{fmt} rounds to the nearest table value only; got rounding={rounding.value!r}")


def _quantize(xp, xm, fmt, dtype, xb):
    """``(results, codes (uint8), scales (f64), bad, over)`` for blocked input.

    ``over``: blocks whose float64 ``amax`` has no float32 scale (they are NaN).
    """
    e_bits, m_bits, width, _ = layout(dtype)
    U = xp.uint(64)
    f64 = np.dtype(np.float64)
    u = xp.astype(xp.bitcast(xb, xp.uint(width)), U)
    a, neg, sig, t, e_x = unpack(xp, u, e_bits, m_bits, width)
    inf_bits = xp.asarray(((1 << e_bits) - 1) << m_bits, U)
    bad = xp.any(a >= inf_bits, axis=-1, keepdims=True)
    amax = xp.max(xp.where(a < inf_bits, a, xp.asarray(0, U)), axis=-1, keepdims=True)
    x = xp.bitcast(to_f64(xp, neg, sig, t, e_x, xp.asarray(0, xp.int(64))), f64)
    _, _, s_sig, s_t, s_e = unpack(xp, amax, e_bits, m_bits, width)
    zero = xp.asarray(False, bool)
    amax_bits = to_f64(xp, zero, s_sig, s_t, s_e, xp.asarray(0, xp.int(64)))
    over = zero
    if width == 64:  # the float32 scale: amax rounded once (exact for narrower inputs)
        amax_bits = make_plan(F32, f64, Rounding.NEAREST_EVEN, Overflow.SAT_NONE, 0).round_bits(xp, amax_bits)[0]
        over = amax_bits == xp.asarray(0x7FF << 52, U)
        amax_bits = xp.where(over, xp.asarray(0, U), amax_bits)
        bad = bad | over
        amax = amax_bits  # a zero test below: s = 0 makes a zero block
    amax64 = xp.bitcast(amax_bits, f64)
    idx = xp.astype(a != a, xp.int(64))  # zeros of the right shape
    for j, mid in enumerate(fmt.elem.midpoints):
        thr = amax64 * float(mid)  # exact: 25-bit midpoint x 24-bit amax
        tie_up = (j + 1) % 2 == 0
        idx = idx + xp.astype((x > thr) | ((x == thr) & tie_up), xp.int(64))
    table = xm.asarray(np.array(fmt.elem.values, np.float64))
    t_val = xm.take(table, idx)
    zero_block = amax == xp.asarray(0, U)
    zero_code = fmt.elem.values.index(0.0) if 0.0 in fmt.elem.values else 0
    idx = xp.where(zero_block, xp.asarray(zero_code, xp.int(64)), idx)
    prod = xp.bitcast(t_val * amax64, xp.uint(64))  # exact: 24 x 24 bits
    prod = xp.where(zero_block, xp.asarray(0, U), prod)
    target = FloatFormat(e_bits, m_bits)
    r = make_plan(target, f64, Rounding.NEAREST_EVEN, Overflow.SAT_NONE, 0).round_bits(xp, prod)[0]
    out, _ = from_f64(xp, r, xp.asarray(0, xp.int(64)), e_bits, m_bits, width)
    out = xp.bitcast(xp.astype(out, xp.uint(width)), dtype)
    out = xp.where(bad, xp.asarray(np.nan, dtype), out)
    return out, xp.astype(idx, xp.uint(8)), amax64, bad, over


def _raise_over(fmt, count):
    raise ValueError(
        f"{fmt}: {count} blocks of the float64 input have an amax above float32's max, which the "
        "float32 scale cannot hold; scale the input down"
    )


def _prep(x, fmt, rounding, key, random_bits):
    rounding = Rounding.parse(rounding)
    if key is not None or random_bits is not None:
        raise ValueError(f"{fmt} has no stochastic rounding; leave key and random_bits unset")
    if _xp.is_jax_array(x):
        require_x64()
        import jax.numpy as xm

        xp = _xp.jax_namespace()
    else:
        xm, xp, x = np, _xp.NUMPY, np.asarray(x)
    dtype = _check_dtype(x.dtype)
    _check(fmt, dtype, rounding)
    return xp, xm, x, dtype


def table_chop(x, fmt, rounding, *, key=None, random_bits=None):
    from numfmt.block.chop import check_axis
    from numfmt.block.chunks import in_chunks, rows, unrows

    xp, xm, x, dtype = _prep(x, fmt, rounding, key, random_bits)
    if xp is _xp.NUMPY:

        def step(blocks, _):
            out, _, _, _, over = _quantize(xp, np, fmt, dtype, blocks)
            return out, over

        m, shape = rows(x, check_axis(x, fmt))
        out, count = in_chunks(step, m, fmt.block_size)
        if count:
            _raise_over(fmt, count)
        return unrows(out, shape, fmt.axis)
    _check_over_jax(fmt, dtype, x)
    return _jax_fns(fmt, dtype)[0](x)


def _check_over_jax(fmt, dtype, x):
    import jax

    if dtype.itemsize == 8 and not isinstance(x, jax.core.Tracer):
        count = int(_jax_fns(fmt, dtype)[2](x))
        if count:
            _raise_over(fmt, count)


def _encode(xp, xm, fmt, dtype, x):
    from numfmt.block.chop import blocked
    from numfmt.block.codes import _finish

    _, codes, amax64, bad, over = _quantize(xp, xm, fmt, dtype, blocked(xm, x, fmt))
    if xm is np and np.any(over):
        _raise_over(fmt, int(np.count_nonzero(over)))
    scales = xp.where(bad, xp.asarray(np.nan, np.dtype(np.float64)), amax64)
    elem, scale = _finish(xm, fmt, x.shape, codes, scales)
    return elem, as_f32(xp, scale)


def table_encode(x, fmt, rounding, *, key=None, random_bits=None):
    xp, xm, x, dtype = _prep(x, fmt, rounding, key, random_bits)
    if xp is _xp.NUMPY:
        return _encode(xp, np, fmt, dtype, x)
    _check_over_jax(fmt, dtype, x)
    return _jax_fns(fmt, dtype)[1](x)


def table_decode(codes, fmt, dtype=None):
    """``(codes, float32 scales)`` -> ``RN_dtype(table[code] * scale)``."""
    from numfmt.block.chop import blocked, unblocked
    from numfmt.block.codes import _xm, unpack_nibbles

    elem_codes, scales = codes
    xm = _xm(elem_codes)
    xp = _xp.namespace_of(elem_codes)
    if xm is not np:
        require_x64()
    dtype = _check_dtype(np.float32 if dtype is None else dtype)
    if fmt.nibbles != "unpacked":
        elem_codes = unpack_nibbles(elem_codes, None, fmt.axis, fmt.nibbles)
    table = xm.asarray(np.array(fmt.elem.values, np.float64))
    vals = xm.take(table, xm.asarray(elem_codes).astype(np.int64))
    vb = blocked(xm, vals, fmt)
    s = as_f64(xp, xm.moveaxis(xm.asarray(scales), fmt.axis % scales.ndim, -1)[..., None])  # exact: no flush
    prod = vb * s
    nan = prod != prod  # a NaN scale (a NaN block, as chop gives): from_f64 takes finite values only
    prod = xp.bitcast(xm.where(nan, 0.0, prod), xp.uint(64))
    e_bits, m_bits, width, _ = layout(dtype)
    target = FloatFormat(e_bits, m_bits)
    r = make_plan(target, np.dtype(np.float64), Rounding.NEAREST_EVEN, Overflow.SAT_NONE, 0).round_bits(xp, prod)[0]
    out, _ = from_f64(xp, r, xp.asarray(0, xp.int(64)), e_bits, m_bits, width)
    out = xp.bitcast(xp.astype(out, xp.uint(width)), dtype)
    out = xp.where(nan, xp.asarray(np.nan, dtype), out)
    return unblocked(xm, out, fmt, elem_codes.shape)


@functools.cache
def _jax_fns(fmt, dtype):
    import jax
    import jax.numpy as jnp

    from numfmt.block.chop import blocked, unblocked
    from numfmt.core.chop import straight_through

    xp = _xp.jax_namespace()

    def quantized(x, _):
        return unblocked(jnp, _quantize(xp, jnp, fmt, dtype, blocked(jnp, x, fmt))[0], fmt, x.shape)

    st = straight_through(quantized)

    def chop(x):
        return st(x, None)

    def count_over(x):
        return jnp.sum(_quantize(xp, jnp, fmt, dtype, blocked(jnp, x, fmt))[4])

    return jax.jit(chop), jax.jit(functools.partial(_encode, xp, jnp, fmt, dtype)), jax.jit(count_over)


register_variant(
    Variant(lambda fmt: isinstance(fmt.elem, TableElement), table_chop, table_encode, table_decode, parts=2)
)
