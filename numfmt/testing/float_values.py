"""Values of float formats, the strategy under every family's: ``numfmt.testing.values`` of a FloatFormat.

:func:`float_values` is :func:`numfmt.testing.values` for float formats; the
block plug-ins draw their element and scale values with it.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from numfmt.core.names import parse
from numfmt.core.xp import FLOAT_LAYOUTS
from numfmt.float import grid as _grid
from numfmt.testing import family_grid as _family_grid

__all__ = ["float_values"]


def _dtype_or_none(dtype):
    if dtype is None:
        return None
    if np.dtype(dtype) not in FLOAT_LAYOUTS:
        raise ValueError(f"dtype={dtype!r} must be float16, bfloat16, float32, float64 or None (exact)")
    return np.dtype(dtype)


def _check_fits(fmt, dtype):
    fits = _family_grid.fits if _family_grid.is_family(fmt) else _grid.fits
    if not fits(fmt, dtype):
        raise ValueError(
            f"{fmt} has values {dtype.name} cannot hold exactly; pass dtype=np.float64 or a wider "
            "dtype, dtype=None for exact values, or draw formats with formats(exact_in=dtype)"
        )


def float_values(fmt, *, dtype=np.float64, allow_nan: bool = True, allow_infinity: bool = True):
    """:func:`numfmt.testing.values` of a float format (the same strategy)."""
    fmt = parse(fmt)
    dtype = _dtype_or_none(dtype)
    if dtype is not None:
        _check_fits(fmt, dtype)
    return float_branch(fmt, dtype, allow_nan, allow_infinity)


def float_branch(fmt, dtype, allow_nan: bool, allow_infinity: bool):
    """The float part of ``values``, once ``fmt`` is parsed and ``dtype`` checked."""
    signs = [1, -1] if fmt.signed else [1]
    kinds = ["finite"] + (["inf"] if allow_infinity and fmt.has_inf else [])
    kinds += ["nan"] if allow_nan and fmt.has_nan else []

    def value(args):
        kind, i, sign = args
        if kind == "nan":
            return np.nan
        if kind == "inf":
            return sign * np.inf
        v = _grid.magnitude(fmt, i)
        if v == 0:
            return -0.0 if sign < 0 and fmt.has_negative_zero else 0.0
        return sign * v

    # one tuple for every kind, so that shrinking prefers finite values (a
    # separate branch for the specials would be a shorter, "simpler" draw)
    strategy = st.tuples(st.sampled_from(kinds), st.integers(0, _grid.count(fmt) - 1), st.sampled_from(signs))
    strategy = strategy.map(value)
    if dtype is None:
        return strategy
    return strategy.map(lambda v: _grid.to_dtype([v], dtype)[0])
