"""The direct MX chop (numfmt.block.direct) and float32 work patterns vs the general
path and the exact block reference: raw bit patterns, and constructed hard cases
(ties of the scaled element grid, +-1 ulp around them, the max and above it,
subnormal scales, zero, NaN and inf blocks), NumPy and jax.jit."""

import dataclasses
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numfmt
from numfmt.block.chop import block_plan, blocked, chop_blocks, quantize
from numfmt.block.reference import as_dtype, quantize_block
from numfmt.block.scale_bits import F32_WORK, F64_WORK
from numfmt.core import xp as _xp
from numfmt.core.rounding import Rounding
from numfmt.float import grid as _grid
from numfmt.float.format import FloatFormat
from numfmt.testing import assert_bits_equal

FLOAT_MX = ["mxfp4_e2m1", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3", "mxfp8_e5m2"]
DTYPES = [np.float32, np.float64, np.float16, ml_dtypes.bfloat16]
WIDTH = {np.dtype(d): np.dtype(d).itemsize * 8 for d in DTYPES}


def plan_of(f, dtype, mode="nearest_even"):
    return block_plan(f, np.dtype(dtype), Rounding.parse(mode), 0)


@pytest.mark.parametrize("name", FLOAT_MX)
def test_presets_take_the_direct_path_on_float32_patterns(name):
    plan = plan_of(numfmt.parse(name), np.float32)
    assert plan.direct and plan.work == F32_WORK
    assert plan_of(numfmt.parse(name), np.float64).work == F64_WORK
    assert not plan_of(numfmt.parse(name), np.float32, "toward_zero").direct


def general(plan, xb):
    return quantize(_xp.NUMPY, dataclasses.replace(plan, direct=False), xb, None)[:2]


def reference(x, f):
    """Exact results block by block (1-D x), or None if the dtype cannot hold one."""
    out = {np.dtype(np.float16): FloatFormat(5, 10), np.dtype(ml_dtypes.bfloat16): FloatFormat(8, 7)}
    out = out.get(x.dtype, FloatFormat(8, 23))  # used by NVFP4 only: MX results are exact
    res = []
    for start in range(0, x.size, f.block_size):
        block = [float(v) for v in x[start : start + f.block_size]]
        res += quantize_block(block, f, "nearest_even", out=out)[2]
    return as_dtype(res, x.dtype)


def patterns(dtype):
    w = WIDTH[np.dtype(dtype)]
    raw = st.lists(st.integers(0, 2**w - 1), min_size=1, max_size=40)
    # exponents clustered near a random one: many elements share binades with the amax
    m_bits = {16: 10 if np.dtype(dtype) == np.float16 else 7, 32: 23, 64: 52}[w]
    top = (1 << (w - 1 - m_bits)) - 1
    item = st.tuples(st.integers(0, 1), st.integers(0, 12), st.integers(0, 2**m_bits - 1))
    clustered = st.builds(
        lambda c, items: [(s << (w - 1)) | (max(min(c - dn, top), 0) << m_bits) | fr for s, dn, fr in items],
        st.integers(0, top),
        st.lists(item, min_size=1, max_size=40),
    )
    return st.one_of(raw, clustered).map(lambda v: np.array(v, f"uint{w}").view(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_direct_equals_general_path_on_raw_patterns(dtype, data):
    x = data.draw(patterns(dtype))
    f = numfmt.parse(data.draw(st.sampled_from(FLOAT_MX))).replace(
        block_size=data.draw(st.sampled_from([1, 3, 8, 32])),
        rule=data.draw(st.sampled_from(["floor", "ceil", "even", "rceil"])),
        inf=data.draw(st.sampled_from(["nan", "saturate"])),
    )
    plan = plan_of(f, dtype)
    if not plan.direct:
        return  # float16/bfloat16 with wide element ranges: the general path only
    xb = blocked(np, x, f)
    out, over = chop_blocks(_xp.NUMPY, plan, xb, None)
    want, unrep = general(plan, xb)
    assert_bits_equal(out, want, nan_payload=True, err_msg=f"{f} {x.tolist()}: ")
    np.testing.assert_array_equal(over, unrep)
    if dtype in (np.float32, np.float64):
        ref = reference(x, f)
        if ref is None:
            assert over.any()
        else:
            assert not over.any()
            assert_bits_equal(out.reshape(-1)[: x.size], ref, err_msg=f"{f} {x.tolist()}: ")


def hard_values(f, e, dtype):
    """Values around the grid of ``f``'s elements scaled by ``2**e`` that ``dtype`` holds exactly:
    every grid point and midpoint, each +-1 ulp, the max and above it, tiny values."""
    elem = f.elem
    grid = sorted({_grid.magnitude(elem, i) for i in range(_grid.count(elem))})
    mids = [(a + b) / 2 for a, b in zip(grid[:-1], grid[1:], strict=True)]
    top = grid[-1]
    step = top - grid[-2]
    extra = [top + step / 2, top + step, top * Fraction(15, 8), grid[1] / 2, grid[1] / 4, grid[1] / 3]
    base = [v * Fraction(2) ** e for v in grid + mids + extra]
    out = []
    finfo = np.finfo(dtype)
    for v in base:
        fv = np.array(float(v), dtype) if float(v) < float(finfo.max) else None
        if fv is None or Fraction(float(fv)) != v:
            continue
        for w in (np.nextafter(fv, dtype(0)), fv, np.nextafter(fv, dtype(np.inf))):
            if np.isfinite(w):
                out += [w, -w]
    return np.array(out, dtype)


def hard_blocks(f, dtype):
    """Blocks whose amax fixes the scale ``2**e`` (FLOOR), over the whole scale range."""
    finfo = np.finfo(dtype)
    lo = math.frexp(float(finfo.smallest_subnormal))[1] - 1
    hi = math.frexp(float(finfo.max))[1] - 1
    rows = []
    emax = f.elem_emax
    for e in sorted({-127, -126, -125, -120, -100, -3, 0, 5, 100, 120, 125, 127} | {lo - emax + k for k in range(4)}):
        if not (-127 <= e <= 127 and lo <= e + emax <= hi):
            continue
        amax = dtype(2.0 ** (e + emax))
        vals = hard_values(f, e, dtype)
        vals = vals[np.abs(vals) / dtype(2) < amax]  # floor(log2 amax) stays e + emax
        for i in range(0, vals.size, f.block_size - 1):
            chunk = vals[i : i + f.block_size - 1]
            row = np.concatenate([[amax], chunk, np.zeros(f.block_size - 1 - chunk.size, dtype)])
            rows.append(row.astype(dtype))
    special = np.zeros((4, f.block_size), dtype)
    special[1, 3] = np.nan
    special[2, 5] = -np.inf
    special[3, :] = finfo.smallest_subnormal
    rows.append(special.reshape(-1))
    return np.concatenate(rows)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", FLOAT_MX)
def test_hard_cases_vs_exact_reference_numpy_and_jit(name, dtype):
    f = numfmt.parse(name)
    x = hard_blocks(f, dtype)
    assert plan_of(f, dtype).direct
    got = numfmt.chop(x, f)
    ref = reference(x, f)
    assert ref is not None
    assert_bits_equal(got, ref, err_msg=f"{f}: ")
    jitted = jax.jit(lambda v: numfmt.chop(v, f))(jnp.asarray(x))
    assert_bits_equal(np.asarray(jitted), got, nan_payload=True, err_msg=f"{f} jit: ")
    # the same blocks through the general path
    out, _ = general(plan_of(f, dtype), blocked(np, x, f))
    assert_bits_equal(out.reshape(-1)[: x.size], got, nan_payload=True)


def test_overflow_of_the_scaled_max_is_flagged():
    # rule=ceil lifts the scale of a block at float32's top: max_elem * X is above its max
    f = numfmt.mxfp4_e2m1.replace(rule="ceil")
    x = np.array([np.finfo(np.float32).max] * 2, np.float32)
    with pytest.raises(ValueError, match="cannot hold"):
        numfmt.chop(x, f)
    plan = plan_of(f, np.float32)
    out, over = chop_blocks(_xp.NUMPY, plan, blocked(np, x, f), None)
    want, unrep = general(plan, blocked(np, x, f))
    assert_bits_equal(out, want)
    assert over[0, :2].all() and not over[0, 2:].any()  # the padding does not overflow
    np.testing.assert_array_equal(over, unrep)
