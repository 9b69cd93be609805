"""Exhaustive hard inputs of a small format: ``numfmt.testing.grid_points``.

Built on the boundary arrays the strategies and assertions already use
(:func:`numfmt.float.grid.boundary_array` for floats,
:func:`numfmt.testing.family_grid.boundary_array` for posits and fixed point) over
every gap of the format; nothing here imports hypothesis.
"""

from __future__ import annotations

import numpy as np

from numfmt.block.format import BlockFormat
from numfmt.core.names import parse
from numfmt.core.xp import FLOAT_LAYOUTS
from numfmt.fixed.format import FixedFormat
from numfmt.float import grid as _grid
from numfmt.posit.format import PositFormat
from numfmt.testing import family_grid as _family_grid

__all__ = ["MAX_GRID_VALUES", "grid_points"]

MAX_GRID_VALUES = 2**16


def _posit_string_midpoints(fmt: PositFormat) -> list:
    """The ties of posit rounding: between codes ``c`` and ``c + 1`` it is the
    ``n + 1``-bit posit ``2 c + 1``, which differs from the midpoint in value
    where the exponent field is cut short (next to minpos and maxpos)."""
    wider = PositFormat(fmt.n + 1, fmt.es)
    half = 2 ** (fmt.n - 1) - 1
    # from the one below -maxpos to the one above maxpos (wider's -maxpos and maxpos)
    return [wider.code_to_value((2 * (i - half) + 1) % 2**wider.n) for i in range(-1, _family_grid.count(fmt))]


def grid_points(fmt, dtype=np.float64) -> np.ndarray:
    """Every hard input of a small format, as one 1-D array (no hypothesis).

    For every gap between neighbouring values of ``fmt`` (negative values
    included): its lower end (so every value of the format) and its midpoint,
    each placed in ``dtype`` by one rounding to nearest and each with its two
    ``dtype`` neighbours (one ulp below and above); the landmarks of
    :func:`numfmt.testing.boundary_values` (underflow tie, smallest subnormal
    and normal, 1, max, the overflow threshold and the value after it;
    posits: minpos/2, minpos, 1, maxpos, 2 maxpos; fixed point: the quantum,
    its half and the overflow ties at both ends) likewise, with both signs;
    a fifth of the smallest positive value (inside the first gap); posits
    also every bit-string midpoint (the true tie of posit rounding, the
    ``n + 1``-bit posit between two codes, and those beyond +-maxpos);
    fixed point also ``3 max + quantum`` and ``3 min - quantum`` (more than
    one wrap), all with both signs and their neighbours; then the
    ``dtype``'s own extremes (largest finite, smallest normal and smallest
    subnormal, both signs), +-0, +-inf and NaN. Points beyond the dtype's
    range are +-inf. Each bit pattern appears once, in the order of the
    patterns as unsigned integers (so +0, the positives ascending, +inf,
    NaN, -0, the negatives descending in value, -inf).

    Args:
      fmt: a float, posit or fixed-point format (object or string) with at
        most ``2**16`` values (float formats: nonnegative values).
      dtype: float16, bfloat16, float32 or float64; midpoints it cannot hold
        are rounded to nearest (their neighbours are then still tested).

    Returns:
      A 1-D ``dtype`` array without duplicate bit patterns.

    Raises:
      ValueError: for a format with more than ``2**16`` values (sample it
        with :func:`numfmt.testing.boundary_values` instead), a block format,
        or another dtype.

    Examples:
      >>> import numpy as np
      >>> x = grid_points("float4_e2m1fn")
      >>> x.size, x.dtype
      (113, dtype('float64'))
      >>> bool(np.isin([0.25, 5.0, 7.0, -6.0], x).all())
      True
      >>> grid_points("float(e=8,m=10)")  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      ValueError: grid_points: float(e=8,m=10) has 261120 values, more than the limit of 65536 (2**16); ...
    """
    fmt = parse(fmt)
    if np.dtype(dtype) not in FLOAT_LAYOUTS:
        raise ValueError(f"dtype={dtype!r} must be float16, bfloat16, float32 or float64")
    dtype = np.dtype(dtype)
    if isinstance(fmt, BlockFormat):
        raise ValueError(f"grid_points: {fmt} is a block format; its values depend on the block, see values()")
    family = _family_grid.is_family(fmt)
    n = (_family_grid.count if family else _grid.count)(fmt)
    if n > MAX_GRID_VALUES:
        raise ValueError(
            f"grid_points: {fmt} has {n} values, more than the limit of {MAX_GRID_VALUES} (2**16); "
            "draw its hard inputs with numfmt.testing.boundary_values instead"
        )
    parts = [(_family_grid if family else _grid).boundary_array(fmt, range(n - 1), dtype)]
    tiny = fmt.minpos if isinstance(fmt, PositFormat) else fmt.resolution if family else fmt.smallest_subnormal
    extra = [tiny / 5]  # inside the first gap
    if isinstance(fmt, PositFormat):
        extra += _posit_string_midpoints(fmt)
    elif isinstance(fmt, FixedFormat):
        extra += [3 * fmt.max_value + fmt.resolution, 3 * fmt.min_value - fmt.resolution]  # more than one wrap
    inf = np.array(np.inf, dtype)
    with np.errstate(over="ignore"):
        x = _grid.to_dtype(extra, dtype)
        x = np.concatenate([x, -x])
        parts.append(np.concatenate([x, np.nextafter(x, inf), np.nextafter(x, -inf)]))
    d = _grid.dtype_format(dtype)
    extremes = _grid.to_dtype([d.max_value, d.smallest_normal, d.smallest_subnormal], dtype)
    parts.append(np.concatenate([extremes, -extremes]))
    x = np.concatenate(parts)
    uint = f"uint{dtype.itemsize * 8}"
    return np.unique(x.view(uint)).view(dtype)  # each bit pattern once
