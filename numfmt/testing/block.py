"""Block formats in ``numfmt.testing``: an exact array reference (formats and values: block_strategies).

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

import numpy as np

from numfmt.block.format import BlockFormat
from numfmt.block.reference import quantize_block, tensor_scale
from numfmt.block.table import TableElement
from numfmt.core.xp import FLOAT_LAYOUTS
from numfmt.float import grid as _grid

__all__ = ["check_block_format", "is_scaled", "reference_chop"]

_SCALED_DTYPES = [d for d in FLOAT_LAYOUTS if d.itemsize <= 4]  # NVFP4, NF4 inputs


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
