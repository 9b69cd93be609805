"""Block formats in ``numfmt.testing``: an exact array reference, formats and values.

:func:`reference_chop` rounds a whole array into a block format with the
exact per-block reference (:func:`numfmt.block.reference.quantize_block`,
Fractions; it shares no code with the kernels). The testing tools call a
block array *representable* when it is a fixed point of this reference,
``reference_chop(x) == x`` bit for bit; :func:`block_values` draws such
arrays. Power-of-two scales (MX, block floating point) here, on float64;
NVFP4- and NF4-style formats (float32/float16/bfloat16 input, a tensor scale
from the whole array) in :mod:`numfmt.testing.block_scaled`.

Importing this module needs hypothesis (``numfmt.testing`` only).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numfmt.block.format import BlockFormat, InfPolicy, ScaleRule
from numfmt.block.int_element import IntElement
from numfmt.block.reference import quantize_block, tensor_scale
from numfmt.block.table import TableElement
from numfmt.core.names import parse
from numfmt.core.xp import FLOAT_LAYOUTS
from numfmt.float import grid as _grid
from numfmt.testing.format_strategies import _members, register_formats

__all__ = ["block_values", "check_block_format", "is_scaled", "reference_chop"]

_SCALED_DTYPES = [d for d in FLOAT_LAYOUTS if d.itemsize <= 4]  # NVFP4, NF4 inputs
_FLOAT_ELEMS = ["float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn", "float8_e4m3fn", "float8_e5m2"]


def is_scaled(fmt: BlockFormat) -> bool:
    """True for NVFP4-style (tensor scale) and table (NF4-style) block formats."""
    return not fmt.pow2_scale or isinstance(fmt.elem, TableElement)


def check_block_format(fmt: BlockFormat, dtype, what: str) -> np.dtype:
    """The input dtype the block testing tools use for ``fmt``: float64 for
    power-of-two scales; float32, float16 or bfloat16 for NVFP4 and NF4."""
    if is_scaled(fmt):
        if dtype is None or np.dtype(dtype) not in _SCALED_DTYPES:
            raise ValueError(
                f"{what}: dtype={dtype!r}: {fmt} takes float32, float16 or bfloat16 input (not float64); "
                "pass dtype=np.float32"
            )
        return np.dtype(dtype)
    if dtype is None or np.dtype(dtype) != np.float64:
        raise ValueError(f"{what}: dtype={dtype!r}: block formats are tested on float64 arrays; pass np.float64")
    return np.dtype(np.float64)


def reference_chop(x: np.ndarray, fmt: BlockFormat, rounding="nearest_even") -> np.ndarray:
    """``chop(x, fmt, rounding)`` for an array, block by block, exactly.

    NVFP4-style formats: the tensor scale comes from all finite elements of
    ``x`` (:func:`numfmt.block.reference.tensor_scale`). NVFP4 and NF4
    results are rounded into ``x.dtype`` (their definition); a result beyond
    its range is +-inf here (``chop`` raises there).
    """
    if x.ndim == 0:
        raise ValueError(f"block formats need an array with at least one axis, got a scalar for {fmt}")
    y = np.moveaxis(x, fmt.axis, -1)
    rows = y.reshape(-1, y.shape[-1]) if y.size else y.reshape(0, y.shape[-1])
    out = np.empty(rows.shape, x.dtype)
    b = fmt.block_size
    kw: dict = {}
    if is_scaled(fmt):
        kw["out"] = _grid.dtype_format(x.dtype)
        if fmt.tensor_scale:
            kw["g"] = tensor_scale([float(v) for v in x.reshape(-1)], fmt)
    for r, row in enumerate(rows):
        for start in range(0, row.size, b):
            values = [float(v) for v in row[start : start + b]]
            results = quantize_block(values, fmt, rounding, **kw)[2]
            with np.errstate(over="ignore"):
                out[r, start : start + b] = _grid.to_dtype(results, x.dtype)
    return np.moveaxis(out.reshape(y.shape), -1, fmt.axis)


_KINDS = ("mx", "nvfp4", "nf4")


def _block_formats(min_bits, max_bits, exact_in, *, kind=None, block_size=None, rule=None, inf=None, axis=None):
    kinds = list(_KINDS) if kind is None else [kind] if isinstance(kind, str) else list(kind)
    if not kinds or any(k not in _KINDS for k in kinds):
        raise ValueError(f"kind={kind!r} must be one of {', '.join(_KINDS)} or a list of them")
    out = []
    if rule is None and inf is None and (exact_in is None or np.dtype(exact_in) in _SCALED_DTYPES):
        from numfmt.testing.block_scaled import scaled_formats

        out.append(scaled_formats(min_bits, max_bits, kinds, block_size, axis))
    if "mx" in kinds and (exact_in is None or np.dtype(exact_in) == np.float64):
        # E8M0 scales span 2**-127..2**127: only float64 holds every block
        out.insert(0, _mx_formats(min_bits, max_bits, block_size, rule, inf, axis))
    return st.one_of(out) if out else st.nothing()


def _mx_formats(min_bits, max_bits, block_size, rule, inf, axis):
    rules, infs = _members(ScaleRule, rule, "rule"), _members(InfPolicy, inf, "inf")
    sizes = st.integers(1, 32) if block_size is None else st.just(block_size)
    axes = st.sampled_from([-1, 0]) if axis is None else st.just(axis)
    floats = [parse(n) for n in _FLOAT_ELEMS if min_bits <= parse(n).bits <= max_bits]
    ints = st.integers(max(2, min_bits), min(8, max_bits))
    elems = st.sampled_from(floats) if floats else st.nothing()
    if max(2, min_bits) <= min(8, max_bits):
        elems = elems | st.builds(lambda b, sm: IntElement(b, b - 2, sm), ints, st.booleans())
    return st.builds(BlockFormat, elem=elems, block_size=sizes, axis=axes, rule=st.sampled_from(rules),
                     inf=st.sampled_from(infs))  # fmt: skip


register_formats("block", _block_formats)


def block_values(fmt: BlockFormat, dtype=np.float64, *, allow_nan=True, allow_infinity=True, shape=None):
    """Arrays that are fixed points of ``chop(., fmt)`` (see ``numfmt.testing.values``).

    Each block is drawn as element values times a power-of-two scale
    ``2**e`` (``e`` within the scale format's range), with the odd NaN or
    +-inf element if allowed; the array is then rounded once by
    :func:`reference_chop`, which keeps it where ``e`` is the scale the rule
    picks and moves it onto the format otherwise.
    """
    dtype = check_block_format(fmt, dtype, "values")
    if is_scaled(fmt):
        from numfmt.testing.block_scaled import scaled_values

        return scaled_values(fmt, dtype, allow_nan, allow_infinity, shape)
    elem, scale = fmt.elem, fmt.scale
    if shape is None:
        shape = hnp.array_shapes(min_dims=max(1, fmt.axis + 1, -fmt.axis), max_dims=2, min_side=1, max_side=24)
    elif isinstance(shape, int | tuple):
        shape = st.just(shape)
    if isinstance(elem, IntElement):
        step = elem.quantum
        elem_values = st.integers(elem.min_int, elem.max_int).map(lambda k: float(k * step))
    else:
        from numfmt.testing.strategies import values

        elem_values = values(elem, allow_nan=False, allow_infinity=False).map(float)
    specials = [math.nan] * allow_nan + [math.inf, -math.inf] * allow_infinity
    elem_values = elem_values | st.sampled_from(specials) if specials else elem_values
    exps = st.integers(max(scale.emin, -1000), min(scale.emax, 1000))

    @st.composite
    def build(draw):
        shp = draw(shape)
        x = np.array(draw(st.lists(elem_values, min_size=math.prod(shp), max_size=math.prod(shp))), np.float64)
        x = x.reshape(shp)
        y = np.moveaxis(x, fmt.axis, -1)
        blocks = -(-y.shape[-1] // fmt.block_size)
        e = np.array(draw(st.lists(exps, min_size=blocks, max_size=blocks)), np.float64)
        factor = np.repeat(np.exp2(e), fmt.block_size)[: y.shape[-1]]
        with np.errstate(over="ignore"):
            y = y * factor
        return reference_chop(np.moveaxis(y, -1, fmt.axis), fmt)

    return build()


def _block_rows(fmt: BlockFormat, n_random: int, rng) -> np.ndarray:
    """Rows of ``2 * block_size - 1`` float64 values: one full block built around
    a hard amax, then a partial block; plus all-special and random rows."""
    b = fmt.block_size
    rows = []
    # amax at, just below and just above 2**k: around 1 and at both ends of the scale range
    top = fmt.scale.emax + fmt.elem_emax
    ks = sorted(set(range(-8, 9)) | set(range(fmt.scale.emin - 4, fmt.scale.emin + 4)) | set(range(top - 3, top + 4)))
    for k in ks:
        for nudge in (-1, 0, 1):
            amax = np.nextafter(np.exp2(float(k)), np.inf * nudge) if nudge else np.exp2(float(k))
            row = amax * rng.uniform(-1.0, 1.0, size=2 * b - 1)
            row[0] = amax if k % 2 else -amax
            rows.append(row)
    for special in (np.nan, np.inf, -np.inf, 0.0, -0.0):
        row = rng.uniform(-4.0, 4.0, size=2 * b - 1)
        row[rng.integers(0, 2 * b - 1)] = special
        rows.append(row)
        rows.append(np.full(2 * b - 1, special))
    width = rng.integers(0, 2**64, size=(max(1, n_random // (2 * b - 1)), 2 * b - 1), dtype=np.uint64)
    rows.extend(width.view(np.float64))
    return np.array(rows, np.float64)
