"""NVFP4- and NF4-style block formats in ``numfmt.testing``: formats, values, hard tensors.

These formats take float32, float16 or bfloat16 input and round their
results into that dtype. NVFP4's tensor scale ``g`` comes from the whole
tensor, so a "value" is a whole array: a fixed point of one exact rounding
(:func:`numfmt.testing.block.reference_chop`), as for MX. The tensors that
:func:`scaled_tensors` builds for ``assert_rounds_like`` put a power of two
in ``g`` so that every tie ``m * s / g`` (``m`` an element midpoint, ``s``
any scale) is exact in the dtype.

Importing this module needs hypothesis (``numfmt.testing`` only).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numfmt.block.format import BlockFormat
from numfmt.block.table import NF4_VALUES, TableElement
from numfmt.core.names import parse
from numfmt.float import grid as _grid

__all__ = ["block_boundary", "scaled_formats", "scaled_tensors", "scaled_values"]

# elements and scales numfmt's NVFP4 kernel accepts (float, at most 3 fraction bits)
_NV_ELEMS = ["float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn", "float8_e4m3fn", "float8_e5m2"]
_NV_SCALES = ["float8_e4m3fn", "float8_e5m2"]


def _table(draw) -> TableElement:
    """A random codebook: dyadic values in [-1, 1], -1 and 1 among them (as in
    NF4: the amax element then keeps its value, which makes chop idempotent)."""
    inner = draw(st.sets(st.integers(-63, 63), max_size=14))
    return TableElement(tuple(sorted(Fraction(k, 64) for k in inner | {64, -64})))


def scaled_formats(min_bits: int, max_bits: int, kinds: list, block_size, axis):
    """Strategy of NVFP4-style (``"nvfp4"``) and NF4-style (``"nf4"``) formats."""
    sizes = st.integers(1, 32) if block_size is None else st.just(block_size)
    axes = st.sampled_from([-1, 0]) if axis is None else st.just(axis)
    out = []
    elems = [parse(n) for n in _NV_ELEMS if min_bits <= parse(n).bits <= max_bits]
    if "nvfp4" in kinds and elems:
        out.append(st.builds(BlockFormat, elem=st.sampled_from(elems), scale=st.sampled_from(_NV_SCALES),
                             block_size=sizes, axis=axes, tensor_scale=st.just(True)))  # fmt: skip
    if "nf4" in kinds and min_bits <= 4 <= max_bits:
        tables = st.just(TableElement(NF4_VALUES)) | st.composite(_table)()
        out.append(st.builds(BlockFormat, elem=tables, scale=st.just("float32"), block_size=sizes, axis=axes))
    return st.one_of(out) if out else st.nothing()


def _magnitudes(dtype):
    """Positive normal ``dtype`` values, shrinking toward 1."""
    d = _grid.dtype_format(dtype)
    return st.builds(lambda e, k: math.ldexp(1 + k / 2**d.man_bits, e),
                     st.integers(d.emin, d.emax - 1), st.integers(0, 2**d.man_bits - 1))  # fmt: skip


def scaled_values(fmt: BlockFormat, dtype, allow_nan: bool, allow_infinity: bool, shape):
    """Arrays that are fixed points of one rounding into an NVFP4/NF4-style ``fmt``.

    Each block is element values times a block factor (NVFP4: a scale value
    times ``2**E`` for the whole tensor; NF4: a positive ``dtype`` value),
    with the odd NaN or +-inf element if allowed, but never in the block that
    holds the largest finite magnitude (a NaN block hides the tensor scale's
    source; see ``assert_representable``); the array is rounded once by the
    exact reference and kept if it is a fixed point (it always was, in our
    runs).
    """
    from numfmt.testing.block import reference_chop
    from numfmt.testing.float_values import float_values as values

    d = _grid.dtype_format(dtype)
    if shape is None:
        shape = hnp.array_shapes(min_dims=max(1, fmt.axis + 1, -fmt.axis), max_dims=2, min_side=1, max_side=24)
    elif isinstance(shape, int | tuple):
        shape = st.just(shape)
    table = isinstance(fmt.elem, TableElement)
    if table:
        elem_values = st.sampled_from(fmt.elem.values)
        factors = _magnitudes(dtype)
    else:
        elem_values = values(fmt.elem, allow_nan=False, allow_infinity=False).map(float)
        top = math.ceil(math.log2(float(fmt.scale.max_value * Fraction(fmt.elem.max_value))))
        exps = st.integers(d.emin - d.man_bits + 8, d.emax - top - 1)
        scales = values(fmt.scale, allow_nan=False, allow_infinity=False).map(lambda v: abs(float(v)))
    specials = [math.nan] * allow_nan + [math.inf, -math.inf] * allow_infinity
    elem_values = elem_values | st.sampled_from(specials) if specials else elem_values

    @st.composite
    def build(draw):
        shp = draw(shape)
        x = np.array(draw(st.lists(elem_values, min_size=math.prod(shp), max_size=math.prod(shp))), np.float64)
        y = np.moveaxis(x.reshape(shp), fmt.axis, -1)
        blocks = -(-y.shape[-1] // fmt.block_size)
        if table:
            f = np.array(draw(st.lists(factors, min_size=blocks, max_size=blocks)), np.float64)
        else:
            f = np.array(draw(st.lists(scales, min_size=blocks, max_size=blocks)), np.float64) * 2.0 ** draw(exps)
        with np.errstate(over="ignore", invalid="ignore"):
            y = (y * np.repeat(f, fmt.block_size)[: y.shape[-1]]).astype(dtype)
        _clear_top_block(y, fmt.block_size)
        z = reference_chop(np.moveaxis(y, -1, fmt.axis), fmt)
        assume(_bits_equal(reference_chop(z, fmt), z))
        return z

    return build()


def _clear_top_block(y: np.ndarray, b: int) -> None:
    """Replace NaN/inf in the block holding the largest finite magnitude by 0 (in place)."""
    with np.errstate(invalid="ignore"):
        mag = np.where(np.isfinite(y), np.abs(y.astype(np.float64)), -1.0)
    if y.size == 0 or mag.max() <= 0:
        return
    where = [int(i) for i in np.unravel_index(int(np.argmax(mag)), y.shape)]
    start = where[-1] // b * b
    block = y[tuple(where[:-1]) + (slice(start, start + b),)]
    block[~np.isfinite(block)] = 0


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    u = f"uint{a.dtype.itemsize * 8}"
    same = a.view(u) == b.view(u)
    with np.errstate(invalid="ignore"):
        same |= np.isnan(a.astype(np.float64)) & np.isnan(b.astype(np.float64))
    return bool(same.all())


def _grid_points(values) -> list:
    """The values and the midpoints between neighbouring ones."""
    v = sorted({Fraction(x) for x in values})
    return v + [(a + c) / 2 for a, c in zip(v, v[1:], strict=False)]


def _rows(points_per_block, b: int, dtype) -> np.ndarray:
    """Blocks ``[amax, points...]`` (each point also one ulp either side, both signs)
    laid out as rows of 3 blocks; the last block of each row is cut to ``b - 1``."""
    cells = []
    inf = np.array(np.inf, dtype)
    for amax, points in points_per_block:
        with np.errstate(over="ignore", under="ignore"):
            p = _grid.to_dtype(points, dtype)
            p = np.concatenate([p, np.nextafter(p, inf), np.nextafter(p, -inf)])
            p = np.concatenate([p, -p])
        a = _grid.to_dtype([amax], dtype)
        per = max(1, b - 1)
        for i in range(0, max(1, p.size), per):
            cells.append(np.concatenate([a, p[i : i + per]]) if b > 1 else a)
    cells = [np.pad(c, (0, b - c.size)) for c in cells]
    width = 3 * b - (1 if b > 1 else 0)
    flat = np.concatenate(cells)
    flat = np.pad(flat, (0, -flat.size % width))
    return flat.reshape(-1, width).astype(dtype)


def scaled_tensors(fmt: BlockFormat, dtype, n_random: int, rng) -> list[np.ndarray]:
    """2-D ``dtype`` tensors (blocks along the last axis) for ``assert_rounds_like``."""
    d = _grid.dtype_format(dtype)
    b = fmt.block_size
    tensors = []
    if isinstance(fmt.elem, TableElement):
        pts = _grid_points(fmt.elem.values)
        k = rng.integers(max(-20, d.emin + 2), min(20, d.emax - 1), 6)
        odd = np.array(rng.uniform(0.5, 1.0, 6) * np.exp2(k), dtype)  # amax with many significant bits
        amaxes = [Fraction(2) ** k for k in (0, d.emin + 2, d.emax - 1)] + [Fraction(float(a)) for a in odd]
        tensors.append(_rows([(a, [m * a for m in pts]) for a in amaxes], b, dtype))
    else:
        big = fmt.scale.max_value * Fraction(fmt.elem.max_value)
        elem_pts = _grid_points(_grid.magnitude(fmt.elem, i) for i in range(_grid.count(fmt.elem)))
        # every positive scale but the largest (an element one ulp above its block's
        # amax must not move the tensor's amax, which sets g = 2**k)
        scales = [_grid.magnitude(fmt.scale, i) for i in range(1, _grid.count(fmt.scale) - 1)]
        k_lo = math.ceil(math.log2(big / Fraction(float(d.max_value)) * 2))
        k_hi = math.floor(math.log2(big / Fraction(2) ** (d.emin + 12)))
        for j, k in enumerate(sorted({k_lo, 0, 7, k_hi})):
            if not k_lo <= k <= k_hi:
                continue
            g = Fraction(2) ** k
            some = scales if j == 1 else [scales[i] for i in rng.choice(len(scales), min(16, len(scales)), False)]
            blocks = [(big / g, [])] + [(Fraction(fmt.elem.max_value) * s / g, [m * s / g for m in elem_pts])
                                        for s in some]  # fmt: skip
            tensors.append(_rows(blocks, b, dtype))
    w = 3 * b - (1 if b > 1 else 0)
    rows = max(1, n_random // w)
    with np.errstate(over="ignore"):
        spread = rng.standard_normal((rows, w)) * np.exp2(rng.integers(-30, 30, (rows, 1)))
        tensors.append(spread.astype(dtype))
        tensors.append((rng.standard_normal((rows, w)) * 2.0 ** (d.emin + 4)).astype(dtype))  # near underflow
    width = dtype.itemsize * 8
    tensors.append(rng.integers(0, 2**width, size=(rows, w), dtype=f"uint{width}").view(dtype))
    special = rng.uniform(-4, 4, (10, w)).astype(dtype)
    for i, v in enumerate([np.nan, np.inf, -np.inf, 0.0, -0.0]):
        special[2 * i, rng.integers(0, w)] = v
        special[2 * i + 1] = v
    tensors += [special, np.zeros((2, w), dtype)]
    return tensors


def block_boundary(fmt: BlockFormat, dtype):
    """Strategy of hard 2-D inputs for any block ``fmt`` (``numfmt.testing.boundary_values``):
    one of the arrays ``assert_rounds_like`` feeds ``f``, for a drawn seed."""
    from numfmt.testing.block import _block_rows, check_block_format, is_scaled

    dtype = check_block_format(fmt, dtype, "boundary_values")
    if fmt.axis not in (0, 1, -1, -2):
        raise ValueError(f"boundary_values draws 2-D arrays: the block axis must be 0, 1, -1 or -2, not {fmt.axis}")

    def build(args):
        seed, pick = args
        rng = np.random.default_rng(seed)
        tensors = scaled_tensors(fmt, dtype, 64, rng) if is_scaled(fmt) else [_block_rows(fmt, 64, rng)]
        x = tensors[pick % len(tensors)]
        return np.ascontiguousarray(x.T) if fmt.axis in (0, -2) else x

    return st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 15)).map(build)
