"""numfmt.testing for NVFP4- and NF4-style block formats: the strategies draw
them, values are fixed points of chop, and the assertions pass numfmt.chop and
fail quantizers written the way float32 libraries write them."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import numfmt
import numfmt.testing as nt
from numfmt.block.format import BlockFormat
from numfmt.block.table import NF4_VALUES, TableElement

FIND = settings(max_examples=200, database=None)
SCALED = ["nvfp4", "nf4", "nvfp4(block=4,axis=0)", "nf4(block=5)"]


# ----------------------------------------------------------------- formats()
def test_formats_draw_nvfp4_and_nf4_kinds():
    nv = find(nt.formats("block", exact_in=np.float32), lambda f: f.tensor_scale, settings=FIND)
    assert nv == BlockFormat("float4_e2m1fn", "float8_e4m3fn", 1, tensor_scale=True)  # shrinks to NVFP4, block 1
    nf = find(nt.formats("block", exact_in=np.float32), lambda f: isinstance(f.elem, TableElement), settings=FIND)
    assert nf.elem == TableElement(NF4_VALUES) and nf.block_size == 1
    custom = find(nt.formats("block", kind="nf4", exact_in=None), lambda f: f.elem != nf.elem, settings=FIND)
    assert isinstance(custom.elem, TableElement) and 1.0 in map(abs, custom.elem.values)
    other = find(nt.formats("block", kind="nvfp4", exact_in=None), lambda f: f.scale != nv.scale, settings=FIND)
    assert str(other.scale) == "float8_e5m2"
    # float64 (the default): MX and bfp only, as before; bad kinds are refused
    assert find(nt.formats("block"), lambda f: True) == numfmt.mx("e2m1", 1)
    with pytest.raises(ValueError, match="kind="):
        nt.formats("block", kind="nvfp5")


# ------------------------------------------------------------------ values()
@settings(max_examples=30)
@given(st.data())
def test_scaled_values_are_fixed_points_of_chop(data):
    fmt = data.draw(nt.formats("block", kind=["nvfp4", "nf4"], exact_in=None, max_bits=6))
    dtype = data.draw(st.sampled_from([np.float32, np.float16]))
    x = data.draw(nt.values(fmt, dtype=dtype))
    assert x.dtype == dtype
    nt.assert_representable(x, fmt)
    nt.assert_bits_equal(numfmt.chop(x, fmt), x)


@settings(max_examples=30)
@given(st.data())
def test_chop_results_are_representable(data):
    """Without NaN/inf in the input (see the documented limitation), every
    result of chop is accepted: the check has no false failures on them."""
    fmt = data.draw(nt.formats("block", kind=["nvfp4", "nf4"], exact_in=None, max_bits=6))
    x = data.draw(nt.float_bits(np.float32, shape=st.integers(1, 40)))
    x = np.where(np.isfinite(x), x, np.float32(1.5)).reshape(1, -1)
    if fmt.axis == 0:
        x = x.T
    nt.assert_representable(numfmt.chop(x, fmt), fmt)


@settings(max_examples=6)
@given(st.data())
def test_block_boundary_values_match_the_reference(data):
    from numfmt.testing.block import reference_chop

    name, dtype = data.draw(st.sampled_from([("nvfp4", np.float32), ("nf4(block=8)", np.float16),
                                             ("mx(elem=e2m1,block=4,axis=0)", np.float64)]))  # fmt: skip
    fmt = numfmt.parse(name)
    x = data.draw(nt.boundary_values(fmt, dtype=dtype))
    assert x.dtype == dtype and x.ndim == 2
    want = reference_chop(x, fmt)
    if np.isfinite(want[np.isfinite(x)]).all():
        nt.assert_bits_equal(numfmt.chop(x, fmt), want)
    with pytest.raises(ValueError, match="pass dtype=np.float32"):
        nt.boundary_values("nvfp4")


# ---------------------------------------------------- deliberately wrong ones
def float32_nvfp4(fmt, *, exact_quotient=False, tensor_scale="float32"):
    """NVFP4 as float32 code computes it: g = 2688 / amax and ``x * (g / s)``,
    each operation rounded (exact_quotient: x * g / s in float64, exact enough
    to round once). tensor_scale "float64": g not rounded to float32; "one": no g."""
    M = fmt.scale.max_value * Fraction(fmt.elem.max_value)
    top = float(fmt.elem.max_value)

    def f(x):
        b = fmt.block_size
        n = x.shape[-1]
        finite = np.isfinite(x)
        amax = np.max(np.where(finite, np.abs(x), 0)).astype(np.float64)
        if amax == 0 or tensor_scale == "one":
            g = 1.0
        elif tensor_scale == "float64":
            g = float(M) / amax
        else:
            with np.errstate(over="ignore"):
                g = min(float(np.float32(float(M)) / np.float32(amax)), float(np.finfo(np.float32).max))  # saturated
        xb = np.pad(x, [(0, 0), (0, -n % b)]).reshape(x.shape[0], -1, b)
        bad = ~np.isfinite(xb).all(axis=-1, keepdims=True)
        ab = np.max(np.where(np.isfinite(xb), np.abs(xb), 0), axis=-1, keepdims=True).astype(np.float32)
        s = numfmt.chop((ab * np.float32(g) / np.float32(top)).astype(np.float32), fmt.scale, overflow="sat_finite")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if exact_quotient:
                y = xb.astype(np.float64) * g / s.astype(np.float64)
            else:
                y = (xb * (np.float32(g) / s)).astype(np.float32)
            y = np.where(s > 0, y, 0 * xb)
            q = numfmt.chop(y, fmt.elem, overflow="sat_finite").astype(np.float64)
            out = (q * s.astype(np.float64) / g).astype(np.float32)
        out = np.where(bad, np.float32(np.nan), out)
        return out.reshape(x.shape[0], -1)[:, :n]

    return f


def float16_nf4(fmt, *, ties="even"):
    """NF4 as a float16 kernel computes it: y = x / amax in float16, then the
    table value nearest by absolute distance (ties="up": exact comparisons
    with the midpoints, but a tie always goes to the upper value)."""
    table = np.array(fmt.elem.values)
    mids = np.array([float(m) for m in fmt.elem.midpoints])

    def f(x):
        b = fmt.block_size
        n = x.shape[-1]
        xb = np.pad(x, [(0, 0), (0, -n % b)]).reshape(x.shape[0], -1, b).astype(np.float64)
        amax = np.max(np.abs(xb), axis=-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            if ties == "up":
                idx = (xb[..., None] >= mids * amax[..., None]).sum(-1)
            else:
                y = (xb / amax).astype(np.float16).astype(np.float64)
                idx = np.argmin(np.abs(y[..., None] - table), axis=-1)
        out = np.where(amax > 0, table[idx] * amax, 0.0).astype(np.float32)
        out = np.where(np.isnan(amax), np.float32(np.nan), out)
        return out.reshape(x.shape[0], -1)[:, :n]

    return f


@pytest.mark.parametrize("name", SCALED)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_rounds_like_passes_chop(name, dtype):
    nt.assert_rounds_like(lambda x: numfmt.chop(x, name), name, dtype=dtype, n_random=256)


@pytest.mark.parametrize("name", ["nvfp4", "nvfp4(block=8)"])
def test_rounds_like_fails_float32_quotient_at_ties(name):
    fmt = numfmt.parse(name)
    nt.assert_rounds_like(float32_nvfp4(fmt, exact_quotient=True), fmt, dtype=np.float32, n_random=256)
    with pytest.raises(AssertionError, match="differ from one nearest_even rounding into"):
        nt.assert_rounds_like(float32_nvfp4(fmt), fmt, dtype=np.float32, n_random=256)
    with pytest.raises(AssertionError, match="differ from one nearest_even rounding into"):
        nt.assert_rounds_like(float32_nvfp4(fmt, exact_quotient=True, tensor_scale="float64"), fmt,
                              dtype=np.float32, n_random=256)  # fmt: skip


def test_rounds_like_fails_wrong_nf4():
    fmt = numfmt.nf4.replace(block_size=16)
    with pytest.raises(AssertionError, match="differ from one nearest_even rounding into"):
        nt.assert_rounds_like(float16_nf4(fmt), fmt, dtype=np.float32, n_random=256)
    with pytest.raises(AssertionError, match="differ from one nearest_even rounding into"):
        nt.assert_rounds_like(float16_nf4(fmt, ties="up"), fmt, dtype=np.float32, n_random=256)


def test_representable_fails_wrong_outputs():
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((4, 64)) * 3).astype(np.float32)
    nv = numfmt.nvfp4
    nt.assert_representable(float32_nvfp4(nv, exact_quotient=True)(x), nv)
    for g in ("float64", "one"):
        with pytest.raises(AssertionError, match="not fixed points of one rounding into nvfp4"):
            nt.assert_representable(float32_nvfp4(nv, exact_quotient=True, tensor_scale=g)(x), nv)
    nf = numfmt.nf4
    y = numfmt.chop(x, nf)
    nt.assert_representable(y, nf)
    with pytest.raises(AssertionError, match="not fixed points of one rounding into nf4"):
        nt.assert_representable(y.astype(np.float16).astype(np.float32), nf)  # results rounded in float16


def test_scaled_arguments_refused():
    with pytest.raises(ValueError, match="pass dtype=np.float32"):
        nt.assert_rounds_like(lambda x: x, "nvfp4")
    with pytest.raises(ValueError, match="pass dtype=np.float32"):
        nt.values("nf4")
    with pytest.raises(ValueError, match="pass dtype=np.float32"):
        nt.assert_representable(np.zeros(16), "nvfp4")
    with pytest.raises(ValueError, match="nearest table value only"):
        nt.assert_rounds_like(lambda x: x, "nf4", "toward_zero", dtype=np.float32)


def test_one_level_nvfp4_variant_is_checked_like_the_others():
    # tensor_scale=False: g = 1; chop passes, a quantizer that applies a tensor scale fails.
    one = numfmt.nvfp4.replace(tensor_scale=False)
    nt.assert_rounds_like(lambda x: numfmt.chop(x, one), one, dtype=np.float32)
    with pytest.raises(AssertionError):
        nt.assert_rounds_like(lambda x: numfmt.chop(x, numfmt.nvfp4), one, dtype=np.float32)
