"""Hypothesis strategies for posit and fixed-point formats and their values.

``formats(family="posit"|"fixed")`` draws through the builders registered
here; :func:`numfmt.testing.values` and :func:`numfmt.testing.boundary_values`
hand these families to :func:`family_values` and :func:`family_boundary`.
Formats shrink toward few bits, ``es = 0``, signed, saturating.
"""

from __future__ import annotations

import numpy as np
from hypothesis import reject
from hypothesis import strategies as st

from numfmt.fixed.format import _MAX_BITS, FixedFormat, FixedOverflow
from numfmt.float import grid as _grid
from numfmt.posit.format import PositFormat
from numfmt.testing import family_grid as _family_grid
from numfmt.testing.format_strategies import _bounds, _members, register_formats

__all__ = ["family_boundary", "family_values"]


def _posit_formats(min_bits, max_bits, exact_in, *, es=None):
    n_lo, n_hi = max(2, min_bits), min(32, max_bits)
    e_lo, e_hi = _bounds(es, 0, 4, "es")
    if n_lo > n_hi:
        return st.nothing()

    @st.composite
    def build(draw):
        fmt = PositFormat(draw(st.integers(n_lo, n_hi)), draw(st.integers(e_lo, e_hi)))
        if exact_in is not None and not _family_grid.fits(fmt, exact_in):
            reject()
        return fmt

    return build()


def _fixed_formats(min_bits, max_bits, exact_in, *, frac_bits=None, signed=None, overflow=None):
    b_lo, b_hi = max(1, min_bits), min(_MAX_BITS, max_bits)
    f_lo, f_hi = _bounds(frac_bits, -8, 72, "frac_bits")
    signs = [True, False] if signed is None else [bool(signed)]
    overflows = _members(FixedOverflow, overflow, "overflow")
    if b_lo > b_hi:
        return st.nothing()

    @st.composite
    def build(draw):
        bits = draw(st.integers(b_lo, b_hi))
        sign = draw(st.sampled_from(signs))
        f = draw(st.integers(f_lo, f_hi))
        fmt = FixedFormat(bits - int(sign) - f, f, sign, draw(st.sampled_from(overflows)))
        if exact_in is not None and not _family_grid.fits(fmt, exact_in):
            reject()
        return fmt

    return build()


register_formats("posit", _posit_formats)
register_formats("fixed", _fixed_formats)


def family_values(fmt, dtype, allow_nan: bool):
    """Values of a posit or fixed-point ``fmt`` (see ``numfmt.testing.values``).

    Shrinks toward 0; NaN (a posit's NaR) only if ``allow_nan``.
    """
    n = _family_grid.count(fmt)
    zero = next(i for i in (n // 2, n // 2 - 1, 0) if _family_grid.value_at(fmt, i) == 0)
    kinds = ["finite"] + (["nan"] if allow_nan and isinstance(fmt, PositFormat) else [])

    def value(args):
        kind, offset = args
        if kind == "nan":
            return np.nan
        # offsets 0, 1, -1, 2, ... from zero's index: shrinks toward 0
        i = zero + (offset + 1) // 2 * (1 if offset % 2 else -1)
        return _family_grid.value_at(fmt, min(max(i, 0), n - 1))

    strategy = st.tuples(st.sampled_from(kinds), st.integers(0, 2 * max(zero, n - 1 - zero))).map(value)
    if dtype is None:
        return strategy
    return strategy.map(lambda v: _grid.to_dtype([v], dtype)[0])


def family_boundary(fmt, dtype):
    """Hard inputs for a posit or fixed-point ``fmt`` (see ``numfmt.testing.boundary_values``)."""
    n = _family_grid.count(fmt)
    marks = _family_grid.landmarks(fmt)
    with np.errstate(over="ignore"):
        mark_x = _grid.to_dtype(marks, dtype)
    inf = np.array(np.inf, dtype)
    kinds = (["midpoint", "value"] if n >= 2 else []) + ["landmark", "zero", "inf", "nan"]
    zero = next(i for i in (n // 2, n // 2 - 1, 0) if _family_grid.value_at(fmt, i) == 0)

    @st.composite
    def point(draw):
        kind = draw(st.sampled_from(kinds))
        index = draw(st.integers(0, n - 2) if kind in ("midpoint", "value") else st.integers(0, len(marks) - 1))
        nudge, sign = draw(st.sampled_from([0, -1, 1])), draw(st.sampled_from([1, -1]))
        if kind in ("zero", "inf", "nan"):
            return dtype.type(sign * {"zero": 0.0, "inf": np.inf, "nan": np.nan}[kind])
        if kind == "landmark":
            x = dtype.type(sign * mark_x[index])
        else:
            i = (zero + index) % (n - 1)  # index 0: the gap above zero
            lo, hi = _family_grid.value_at(fmt, i), _family_grid.value_at(fmt, i + 1)
            with np.errstate(over="ignore"):
                x = _grid.to_dtype([(lo + hi) / 2 if kind == "midpoint" else lo], dtype)[0]
        if nudge:
            with np.errstate(over="ignore"):
                x = np.nextafter(x, nudge * inf)
        return dtype.type(x)

    return point()
