"""Hypothesis strategies of a format's values and hard inputs, raw bit patterns and keys.

Formats themselves: ``numfmt.testing.format_strategies``.

Imported by :mod:`numfmt.testing` only: ``import numfmt`` never imports
hypothesis. Every strategy shrinks toward a small, readable example: values
toward 0, bit patterns toward 0 (+0.0), keys toward seed 0.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numfmt.block.format import BlockFormat
from numfmt.core.names import parse
from numfmt.core.xp import FLOAT_LAYOUTS
from numfmt.float import grid as _grid
from numfmt.scaled.format import ScaledIntFormat
from numfmt.testing import family_grid as _family_grid
from numfmt.testing.block_strategies import block_values
from numfmt.testing.family_strategies import family_boundary, family_values
from numfmt.testing.float_values import _check_fits, _dtype_or_none, float_branch

__all__ = ["boundary_values", "float_bits", "keys", "values"]


def values(fmt, *, dtype=np.float64, allow_nan: bool = True, allow_infinity: bool = True):
    """Strategy for values rounding into ``fmt`` can produce (shrinks toward 0).

    Args:
      fmt: a format object or string.
      dtype: float dtype of the values (NumPy scalars), or None for exact
        values in the convention of ``numfmt.float.reference.round_value``
        (Fractions; floats for +-0, +-inf and NaN).
      allow_nan, allow_infinity: also draw NaN / +-inf where the format has them.

    Returns:
      A strategy of values: each a value of ``fmt``, -0.0 only where the
      format has -0, never a subnormal of a ``flush``/``round_to_normal``
      format. Posits: any posit, NaN standing for NaR; fixed point: any
      multiple of the quantum in range (no NaN, no -0). Block formats:
      arrays of 1 or 2 dimensions that are fixed points of one rounding
      into ``fmt`` (see ``numfmt.testing.block``), blocks of element values
      times a scale, with NaN/inf blocks if allowed; ``dtype`` float64 for
      power-of-two scales (MX, bfp), float32, float16 or bfloat16 for NVFP4-
      and NF4-style formats (NaN/inf never in the block holding the largest
      finite magnitude, see :func:`assert_representable`). Scaled integer
      formats: arrays built group by group as ``(q - z) * s`` with a scale
      value ``s`` the group's amax (or ``lo``/``hi``) reproduces exactly,
      or all-zero and (if allowed) all-NaN groups; never inf; ``dtype`` must
      hold ``bits`` significant bits (see ``numfmt.testing.scaled``).

    Raises:
      ValueError: if ``dtype`` cannot hold every value of ``fmt`` (block
        formats: if ``fmt`` does not take ``dtype`` input).

    Examples:
      >>> from hypothesis import find
      >>> find(values("float8_e4m3fn"), lambda v: v > 400)
      np.float64(416.0)
      >>> find(values("posit8_0"), lambda v: v > 3), find(values("q3.4"), lambda v: v < -7.5)
      (np.float64(3.125), np.float64(-7.5625))
    """
    fmt = parse(fmt)
    dtype = _dtype_or_none(dtype)
    if isinstance(fmt, BlockFormat):
        return block_values(fmt, dtype, allow_nan=allow_nan, allow_infinity=allow_infinity)
    if isinstance(fmt, ScaledIntFormat):
        from numfmt.testing.scaled import scaled_values

        return scaled_values(fmt, dtype, allow_nan)
    if dtype is not None:
        _check_fits(fmt, dtype)
    if _family_grid.is_family(fmt):
        return family_values(fmt, dtype, allow_nan)
    return float_branch(fmt, dtype, allow_nan, allow_infinity)


def boundary_values(fmt, *, dtype=np.float64):
    """Strategy for inputs where rounding into ``fmt`` is hardest.

    Draws, with either sign: the midpoint (tie) between two neighbouring
    values of the format, or the lower value itself, or one of the
    ``landmarks`` (half the smallest subnormal, the smallest subnormal, half
    the smallest normal, the smallest normal, 1, the max, the overflow
    threshold and the value after it), each exactly or one ``dtype`` ulp
    below or above; and +-0, +-inf and NaN (inputs every quantizer must
    handle, whether or not the format has them). Midpoints the dtype cannot
    hold are rounded to the nearest dtype value; points beyond its range are
    +-inf. For posit and fixed-point formats the gaps run over all values,
    negatives included, and the landmarks are their own (posits: minpos/2,
    minpos, 1, maxpos, 2 maxpos; fixed point: half the quantum, the quantum,
    1, and the overflow ties beyond the largest and smallest values).

    Block formats: 2-D arrays (blocks along ``fmt.axis``, which must be 0,
    1, -1 or -2), one of those :func:`assert_rounds_like` builds for a drawn
    seed (MX: blocks whose amax sits at or one ulp around a power of two,
    NaN/inf/zero rows, raw bit patterns; NVFP4: a tensor scale that is a
    power of two and every scale times every element tie; NF4: every table
    midpoint times power-of-two and odd amaxes). ``dtype`` float64 for
    power-of-two scales, float32, float16 or bfloat16 for NVFP4 and NF4.
    Scaled integer formats: one of the arrays :func:`assert_rounds_like`
    builds (groups along ``fmt.axis``, which must be 0, 1, -1 or -2): groups
    whose scale is known with every integer tie ``(k + 1/2) * s`` (a sample
    for wide codes) and one ulp either side, groups whose amax is a tie of
    the scale format (clamping at ``qmax``, clamped zero points), zero,
    NaN, inf, random and raw-bit groups.

    Args:
      fmt: a format object or string.
      dtype: the float dtype of the drawn inputs (NumPy scalars; arrays for
        block formats).

    Returns:
      A strategy of ``dtype`` scalars. It shrinks toward the first gap's
      midpoint (half the smallest positive value).

    Examples:
      >>> from hypothesis import find
      >>> find(boundary_values("float8_e4m3fn"), lambda v: 450 < v < 500)
      np.float64(464.0)
    """
    fmt = parse(fmt)
    if isinstance(fmt, BlockFormat):
        from numfmt.testing.block_scaled import block_boundary

        return block_boundary(fmt, dtype)
    if isinstance(fmt, ScaledIntFormat):
        from numfmt.testing.scaled import scaled_boundary

        return scaled_boundary(fmt, dtype)
    dtype = np.dtype(_dtype_or_none(dtype) or np.float64)
    if _family_grid.is_family(fmt):
        return family_boundary(fmt, dtype)
    n = _grid.count(fmt)
    marks = _grid.landmarks(fmt)
    with np.errstate(over="ignore"):
        mark_x = _grid.to_dtype(marks, dtype)
    inf = np.array(np.inf, dtype)

    kinds = (["midpoint", "value"] if n >= 2 else []) + ["landmark", *_SPECIAL_INPUTS]

    @st.composite
    def point(draw):
        # every kind draws the same four choices, so shrinking orders by kind first
        kind = draw(st.sampled_from(kinds))
        index = draw(st.integers(0, n - 2) if kind in ("midpoint", "value") else st.integers(0, len(marks) - 1))
        nudge, sign = draw(st.sampled_from([0, -1, 1])), draw(st.sampled_from([1, -1]))
        if kind in _SPECIAL_INPUTS:
            return dtype.type(sign * _SPECIAL_INPUTS[kind])
        if kind == "landmark":
            x = mark_x[index]
        else:
            lo, mid = _grid.gap_points(fmt, index)
            with np.errstate(over="ignore"):
                x = _grid.to_dtype([mid if kind == "midpoint" else lo], dtype)[0]
        if nudge:
            with np.errstate(over="ignore"):
                x = np.nextafter(x, nudge * inf)
        return dtype.type(-x if sign < 0 else x)

    return point()


_SPECIAL_INPUTS = {"zero": 0.0, "inf": np.inf, "nan": np.nan}


def float_bits(dtype, shape=None):
    """Strategy for raw bit patterns viewed as a float dtype.

    Every pattern is equally reachable: subnormals, NaN payloads, infinities
    and -0 included. Patterns shrink toward 0 (``+0.0``).

    Args:
      dtype: float16, bfloat16, float32 or float64.
      shape: None for scalars; else an array shape (int or tuple) or a
        strategy of shapes, e.g. ``st.integers(1, 24)``.

    Returns:
      A strategy of NumPy scalars or arrays of ``dtype``.

    Raises:
      ValueError: for another dtype.

    Examples:
      >>> import numpy as np
      >>> from hypothesis import find
      >>> hex(int(find(float_bits(np.float32), np.isnan).view(np.uint32)))
      '0x7f800001'
    """
    if np.dtype(dtype) not in FLOAT_LAYOUTS:
        raise ValueError(f"dtype={dtype!r} must be float16, bfloat16, float32 or float64")
    dtype = np.dtype(dtype)
    uint = np.dtype(f"uint{dtype.itemsize * 8}")
    words = st.integers(0, 2 ** (uint.itemsize * 8) - 1)
    if shape is None:
        return words.map(lambda u: np.array(u, uint).view(dtype)[()])
    return hnp.arrays(uint, shape, elements=words).map(lambda a: a.view(dtype))


def keys(kind: str = "seed"):
    """Strategy for the ``key=`` of stochastic rounding (shrinks toward seed 0).

    Args:
      kind: ``"seed"`` (an int seed), ``"numpy"`` (a fresh
        ``numpy.random.Generator``) or ``"jax"`` (a ``jax.random.key``; JAX
        is imported when the first key is drawn).

    Returns:
      A strategy of keys that :func:`numfmt.chop` accepts.

    Raises:
      ValueError: for another ``kind``.

    Examples:
      >>> from hypothesis import find
      >>> find(keys(), lambda k: k > 3)
      4
    """
    seeds = st.integers(0, 2**32 - 1)
    if kind == "seed":
        return seeds
    if kind == "numpy":
        return seeds.map(np.random.default_rng)
    if kind == "jax":
        return seeds.map(_jax_key)
    raise ValueError(f"kind={kind!r} must be 'seed', 'numpy' or 'jax'")


def _jax_key(seed: int):
    import jax

    return jax.random.key(seed)
