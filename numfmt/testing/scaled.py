"""Scaled integer formats in ``numfmt.testing``: an exact array reference, formats, values, hard inputs.

:func:`reference_chop` rounds a whole array into a
:class:`numfmt.ScaledIntFormat` group by group with the exact reference
(:func:`numfmt.scaled.reference.quantize_group`, Fractions; it shares no
code with the kernels). As for block formats, an array is *representable*
when it is a fixed point of this reference, bit for bit. :func:`scaled_values`
builds such arrays group by group with a scale it knows (see the proof
there); :func:`scaled_tensors` builds the inputs of ``assert_rounds_like``:
groups whose scale is known and whose other elements sit at the ties of the
integer grid, groups whose amax (or ``hi - lo``) is a tie of the scale
format, zero, NaN and inf groups, random and raw-bit groups.

Importing this module needs hypothesis (``numfmt.testing`` only).
"""

from __future__ import annotations

import bisect
import math
from fractions import Fraction

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numfmt.core.names import parse
from numfmt.core.rounding import Overflow, Rounding
from numfmt.core.xp import FLOAT_LAYOUTS
from numfmt.float import grid as _grid
from numfmt.float.reference import round_value
from numfmt.scaled.format import _GRANULARITIES, ScaledIntFormat
from numfmt.scaled.reference import quantize_group
from numfmt.testing.format_strategies import register_formats

__all__ = ["check_scaled", "reference_chop", "scaled_boundary", "scaled_tensors", "scaled_values"]

_SCALES = ["float32", "bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu"]
_GROUP_SIZES = [32, 1, 2, 3, 4, 5, 8, 16, 64, 128]


def check_scaled(fmt: ScaledIntFormat, dtype, what: str, *, two_d: bool = False) -> np.dtype:
    """The float dtype the scaled testing tools use (any numfmt float dtype; default float64)."""
    dtype = np.dtype(np.float64 if dtype is None else dtype)
    if dtype not in FLOAT_LAYOUTS:
        raise ValueError(f"{what}: dtype={dtype.name!r} must be float16, bfloat16, float32 or float64 for {fmt}")
    if two_d and fmt.axis not in (None, 0, 1, -1, -2):
        raise ValueError(f"{what} builds 2-D arrays: the axis of {fmt} must be 0, 1, -1 or -2, not {fmt.axis}")
    return dtype


def _choices(given, allowed: list, argname: str) -> list:
    if given is None:
        return list(allowed)
    out = [given] if isinstance(given, (str, bool, int)) else list(given)
    if not out or any(v not in allowed for v in out):
        raise ValueError(f"{argname}={given!r} must be one of {allowed} or a list of them")
    return out


def _scaled_formats(min_bits, max_bits, exact_in, *, granularity=None, symmetric=None, signed=None, scale=None,
                    group_size=None):  # fmt: skip
    lo, hi = max(2, min_bits), min(16, max_bits)
    if exact_in is not None:  # (q - z) * s needs up to `bits` significant bits
        hi = min(hi, _grid.dtype_format(exact_in).man_bits + 1)
    grans = _choices(granularity, list(_GRANULARITIES), "granularity")
    syms = _choices(symmetric, [True, False], "symmetric")
    signs = _choices(signed, [True, False], "signed")
    scales = [parse(s) for s in (_SCALES if scale is None else scale if isinstance(scale, list) else [scale])]
    sizes = _GROUP_SIZES if group_size is None else [group_size]
    if lo > hi:
        return st.nothing()
    bits = sorted(range(lo, hi + 1), key=lambda b: (abs(b - 8), b))  # shrinks toward 8 bits

    @st.composite
    def build(draw):
        g = draw(st.sampled_from(grans))
        sym = draw(st.sampled_from(syms))
        sg = True if sym else draw(st.sampled_from(signs))
        assume(sg in signs)
        axis = None if g == "tensor" else draw(st.sampled_from([0, 1, -1] if g == "channel" else [-1, 0]))
        return ScaledIntFormat(
            draw(st.sampled_from(bits)), g, axis, draw(st.sampled_from(sizes)) if g == "group" else None, sym, sg,
            draw(st.sampled_from([True, False])) if sym else True, draw(st.sampled_from(scales)),
        )

    return build()


register_formats("scaled", _scaled_formats)


def _groups(shape, fmt: ScaledIntFormat) -> list[np.ndarray]:
    """Flat indices of each group of an array of ``shape`` (written from the definitions, not the kernel)."""
    idx = np.arange(math.prod(shape)).reshape(shape)
    if fmt.granularity == "tensor":
        return [idx.reshape(-1)]
    axis = int(fmt.axis)  # type: ignore[arg-type]  # set by __post_init__ unless per tensor
    if len(shape) == 0 or not -len(shape) <= axis < len(shape):
        raise ValueError(f"{fmt}: axis {axis} does not exist in an array of shape {tuple(shape)}")
    if fmt.granularity == "channel":
        return [np.moveaxis(idx, axis, 0)[i].reshape(-1) for i in range(shape[axis])]
    rows = np.moveaxis(idx, axis, -1).reshape(-1, shape[axis])
    g = int(fmt.group_size)  # type: ignore[arg-type]  # per group: set
    return [row[j : j + g] for row in rows for j in range(0, row.size, g)]


def reference_chop(x: np.ndarray, fmt: ScaledIntFormat, rounding="nearest_even") -> np.ndarray:
    """``chop(x, fmt, rounding)`` for an array, group by group, exactly.

    Results beyond the range of ``x.dtype`` are +-inf here (``chop`` raises there).
    """
    flat = x.reshape(-1)
    out = np.empty(flat.size, x.dtype)
    out_fmt = _grid.dtype_format(x.dtype)
    for ix in _groups(x.shape, fmt):
        res = quantize_group([float(v) for v in flat[ix]], fmt, rounding, out=out_fmt)[3]
        with np.errstate(over="ignore"):
            out[ix] = _grid.to_dtype(res, x.dtype)
    return out.reshape(x.shape)


def _scales(fmt: ScaledIntFormat, dtype: np.dtype):
    """Scales ``m * 2**e`` of ``fmt.scale`` with ``m < 2**k``, ``k = p - bits`` (at least 1; ``p``: the
    dtype's precision), and ``2**e`` at least the dtype's smallest subnormal, ``2**(bits + k + e)`` at most
    its largest power of two: every ``c * s`` with ``|c| < 2**bits`` is then exact in ``dtype``."""
    d, sc = _grid.dtype_format(dtype), fmt.scale
    k = max(1, min(sc.man_bits + 1, d.man_bits + 1 - fmt.bits))
    e_lo = max(d.emin - d.man_bits, sc.emin - sc.man_bits)
    e_hi = min(d.emax - fmt.bits - k, sc.emax)

    def scale(args):
        m, e = args
        s = Fraction(m) * Fraction(2) ** e
        assume(_grid.representable(s, sc))
        return s

    return st.tuples(st.integers(1, 2**k - 1), st.integers(e_lo, e_hi)).map(scale)


def scaled_values(fmt: ScaledIntFormat, dtype, allow_nan: bool = True, shape=None):
    """Arrays that are fixed points of one exact rounding into ``fmt`` (``numfmt.testing.values``).

    Each group is all zeros, all NaN (if allowed), or ``(q_i - z) * s`` for a
    drawn scale value ``s > 0`` (from :func:`_scales`: the products are exact
    in ``dtype``), codes ``q_i`` and zero point ``z``. Why ``chop`` keeps such
    a group: symmetric, the codes lie in ``[-qmax, qmax]`` and one of them is
    ``+-qmax``, so ``amax = qmax * s`` and ``RN_scale(amax / qmax) = s``
    (``s`` is a scale value); then ``x_i / s = q_i`` exactly and the result
    ``q_i * s`` is exact. Asymmetric, ``z`` lies in ``[qmin, qmax]`` and the
    group holds the codes ``qmin`` and ``qmax`` (one of them may be left out
    when it equals ``z``: 0 is always in ``[lo, hi]``), so ``lo = (qmin - z) * s``
    and ``hi = (qmax - z) * s``; ``hi - lo = (qmax - qmin) * s`` gives back
    ``s``, ``qmin - RNE(lo / s) = z`` needs no clamping, and ``x_i / s + z = q_i``.
    A one-element group takes ``z = qmin`` or ``qmax``. Zero results are +0.
    Never infinities (an infinite input makes its group NaN).
    """
    dtype = check_scaled(fmt, dtype, "values")
    d = _grid.dtype_format(dtype)
    if fmt.bits > d.man_bits + 1:
        raise ValueError(
            f"values: {fmt} has codes of {fmt.bits} bits, and {dtype.name} holds {d.man_bits + 1}: (q - z) * s "
            "is not exact; pass dtype=np.float32 or np.float64, or draw formats with formats(exact_in=dtype)"
        )
    if shape is None:
        lo_dims = 1 if fmt.axis is None else max(1, fmt.axis + 1, -fmt.axis)
        shape = hnp.array_shapes(min_dims=lo_dims, max_dims=max(2, lo_dims), min_side=1, max_side=12)
    elif isinstance(shape, int | tuple):
        shape = st.just((shape,) if isinstance(shape, int) else shape)
    scales = _scales(fmt, dtype)
    kinds = ["scaled", "zero"] + ["nan"] * allow_nan
    qmin, qmax = fmt.qmin, fmt.qmax

    def group(draw, n: int) -> list:
        kind = draw(st.sampled_from(kinds))
        if kind != "scaled":
            return [0.0 if kind == "zero" else math.nan] * n
        s = draw(scales)
        if fmt.symmetric:
            codes = draw(st.lists(st.integers(-qmax, qmax), min_size=n, max_size=n))
            codes[draw(st.integers(0, n - 1))] = qmax * draw(st.sampled_from([1, -1]))
            return [q * s for q in codes]
        z = draw(st.integers(qmin, qmax) if n > 1 else st.sampled_from([qmin, qmax]))
        codes = draw(st.lists(st.integers(qmin, qmax), min_size=n, max_size=n))
        where = draw(st.permutations(range(n)))
        for i, c in zip(where, [c for c in (qmin, qmax) if c != z], strict=False):
            codes[i] = c
        return [(q - z) * s for q in codes]

    @st.composite
    def build(draw):
        shp = draw(shape)
        flat = np.empty(math.prod(shp), dtype)
        for ix in _groups(shp, fmt):
            flat[ix] = _grid.to_dtype(group(draw, ix.size), dtype)
        return flat.reshape(shp)

    return build()


def _near(v: Fraction, dtype) -> np.ndarray:
    """``v`` in ``dtype`` and one ulp either side."""
    with np.errstate(over="ignore", under="ignore"):
        a = _grid.to_dtype([v], dtype)
        inf = np.array(np.inf, dtype)
        return np.concatenate([a, np.nextafter(a, inf), np.nextafter(a, -inf)])


def _ties(fmt: ScaledIntFormat, rng) -> list[int]:
    """Codes ``k`` whose ties ``k + 1/2`` are probed: all, or both ends and a sample."""
    n = fmt.qmax - fmt.qmin
    if n <= 48:
        return list(range(fmt.qmin, fmt.qmax))
    ends = list(range(fmt.qmin, fmt.qmin + 12)) + list(range(fmt.qmax - 12, fmt.qmax)) + list(range(-6, 6))
    return sorted(set(ends) | {int(k) for k in rng.integers(fmt.qmin, fmt.qmax, 24)})


def _hard_groups(fmt: ScaledIntFormat, dtype, rng) -> list[tuple[list, list]]:
    """``(anchors, points)``: anchors fix the group's scale (and zero point), points are probed."""
    d, sc = _grid.dtype_format(dtype), fmt.scale
    qmin, qmax, D = fmt.qmin, fmt.qmax, fmt.divisor
    k = max(1, min(sc.man_bits + 1, d.man_bits - fmt.bits))  # ties (c + 1/2) * s exact when possible
    out = []
    e_lo, e_hi = max(d.emin - d.man_bits + 1, sc.emin - sc.man_bits), min(d.emax - fmt.bits - k - 1, sc.emax)
    exps = sorted({int(e) for e in (0, -3, e_lo, e_hi, *rng.integers(e_lo, e_hi + 1, 3)) if e_lo <= e <= e_hi})
    ms = [1, 2**k - 1, int(rng.integers(1, 2**k))]
    scales = [s for s in {Fraction(m) * Fraction(2) ** e for m in ms for e in exps} if _grid.representable(s, sc)]
    for s in sorted(scales):
        zs = [0] if fmt.symmetric else sorted({qmin, qmax, (qmin + qmax) // 2, int(rng.integers(qmin, qmax + 1))})
        for z in zs:
            anchors = [qmax * s, -qmax * s] if fmt.symmetric else [(qmin - z) * s, (qmax - z) * s]
            pts = [(c - z + Fraction(1, 2)) * s for c in _ties(fmt, rng)]
            out.append((anchors, pts))
    # amax (or hi - lo) / D at a tie between two scale values and one dtype ulp around it
    n_sc = _grid.count(sc)
    i_one = bisect.bisect_left(range(n_sc), Fraction(1), key=lambda i: _grid.magnitude(sc, i))  # the index of 1
    for i in sorted({i_one, i_one - 1, int(rng.integers(1, n_sc - 1))}):
        if not 0 <= i < n_sc - 1:
            continue
        t = (_grid.magnitude(sc, i) + _grid.magnitude(sc, i + 1)) / 2
        for a in _near(D * t, dtype):
            if not np.isfinite(a) or a == 0:
                continue
            amax = Fraction(float(a))
            s = Fraction(round_value(amax / D, sc, Rounding.NEAREST_EVEN, Overflow.SAT_FINITE))
            if s == 0:
                continue
            near_top = [(c + Fraction(1, 2)) * s for c in range(qmax - 2, qmax + 3)]
            if fmt.symmetric:
                out.append(([amax, -amax], [p for p in near_top if p <= amax]))
            else:  # all >= 0 (z = qmin), all <= 0 (z = qmin + RNE(amax / s): may be clamped to qmax)
                out.append(([amax], [p for p in near_top if p <= amax]))
                out.append(([-amax], [-p for p in near_top if p <= amax] + [-amax / 2, -amax / 3]))
    return out


def _pack(fmt, groups: list[tuple[list, list]], width: int, dtype) -> list[np.ndarray]:
    """Groups of ``width`` elements: the anchors, then probed points (each +-1 ulp) in turn, zero padded."""
    cells = []
    for anchors, points in groups:
        a = _grid.to_dtype(anchors, dtype)
        room = width - a.size
        p = np.concatenate([_near(v, dtype) for v in points]) if points and room > 0 else np.zeros(0, dtype)
        a64, p64 = a.astype(np.float64), p.astype(np.float64)
        top = np.max(np.abs(a64))
        lo, hi = (-top, top) if fmt.symmetric else (min(a64.min(), 0), max(a64.max(), 0))
        p = p[(p64 >= lo) & (p64 <= hi)]  # points never move amax (lo, hi): the scale stays known
        for i in range(0, max(1, p.size), max(1, room)):
            cell = np.concatenate([a, p[i : i + room]])[:width] if room > 0 else a[:width]
            cells.append(np.pad(cell, (0, width - cell.size)))
    return cells


def _special_groups(width: int, dtype, rng) -> list[np.ndarray]:
    cells = []
    for v in (np.nan, np.inf, -np.inf, 0.0, -0.0):
        c = rng.uniform(-4, 4, width).astype(dtype)
        c[rng.integers(0, width)] = v
        cells += [c, np.full(width, v, dtype)]
    bits = dtype.itemsize * 8
    cells.append(rng.integers(0, 2**bits, width, dtype=f"uint{bits}").view(dtype))
    with np.errstate(over="ignore", under="ignore"):
        for e in rng.integers(-40, 40, 4):
            cells.append((rng.standard_normal(width) * 2.0 ** float(e)).astype(dtype))
    return cells


def scaled_tensors(fmt: ScaledIntFormat, dtype, n_random: int, rng) -> list[np.ndarray]:
    """The arrays ``assert_rounds_like`` feeds a scaled-integer quantizer (groups laid out along ``fmt.axis``).

    Per tensor: one 1-D array per group. Per channel: 2-D arrays, one
    channel per group of 16 elements. Per group: rows of 3 groups, the last
    one cut short (a partial group).
    """
    dtype = np.dtype(dtype)
    width = int(fmt.group_size) if fmt.granularity == "group" else 16  # type: ignore[arg-type]
    cells = _pack(fmt, _hard_groups(fmt, dtype, rng), width, dtype) + _special_groups(width, dtype, rng)
    for _ in range(max(0, n_random // width // 4)):
        cells.append(rng.integers(0, 2 ** (dtype.itemsize * 8), width, dtype=f"uint{dtype.itemsize * 8}").view(dtype))
    if fmt.granularity == "tensor":
        return [c.astype(dtype) for c in cells]
    if fmt.granularity == "channel":
        chunks = [np.stack(cells[i : i + 32]).astype(dtype) for i in range(0, len(cells), 32)]
        return [c if fmt.axis in (0, -2) else np.ascontiguousarray(c.T) for c in chunks]
    cells += [np.zeros(width, dtype)] * (-len(cells) % 3)
    rows = np.stack(cells).reshape(-1, 3 * width)[:, : 3 * width - (1 if width > 1 else 0)].astype(dtype)
    chunks = [rows[i : i + 64] for i in range(0, rows.shape[0], 64)]
    return [c if fmt.axis in (-1, 1) else np.ascontiguousarray(c.T) for c in chunks]


def scaled_boundary(fmt: ScaledIntFormat, dtype):
    """Strategy of hard inputs (``numfmt.testing.boundary_values``): one of the arrays of
    :func:`scaled_tensors` for a drawn seed."""
    dtype = check_scaled(fmt, dtype, "boundary_values", two_d=True)

    def build(args):
        seed, pick = args
        tensors = scaled_tensors(fmt, dtype, 64, np.random.default_rng(seed))
        return tensors[pick % len(tensors)]

    return st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 63)).map(build)
