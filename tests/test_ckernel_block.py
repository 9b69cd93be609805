"""The block family's compiled kernel (numfmt.block._ckernel) gives the NumPy path's bits.

Each check runs ``chop`` twice in one process, with the compiled kernels and with
them switched off (``numfmt.core.native.set_enabled``), and compares bit patterns
(NaN payloads included) or the error messages where the input dtype cannot hold a
result. Regimes: raw bit patterns and patterns clustered within a few binades
(hypothesis), blocks built at the scale boundaries (amax a power of two, just
below, at the rules' thresholds, subnormal, zero, all equal, NaN and inf), every
block size, axis and scale rule, stochastic rounding with a JAX key and with a
NumPy Generator (whose words the kernel draws in pieces), non-contiguous input;
then a sample against the exact block reference, and the fallback.
"""

from __future__ import annotations

import os
import sys

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numfmt
from numfmt.block import native
from numfmt.block.chop import block_plan
from numfmt.block.reference import as_dtype, quantize_block
from numfmt.core.random import hash_bits, seed_words
from numfmt.core.rounding import Rounding
from numfmt.core.xp import NUMPY

sys.path.insert(0, os.path.dirname(__file__))
from ckernel_support import assert_fallback_warns_once, kernel_and_numpy  # noqa: E402

UINT = {np.float32: np.uint32, np.float64: np.uint64}
LAYOUT = {np.float32: (8, 23, 32), np.float64: (11, 52, 64)}
MX = ["mxfp4_e2m1", "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxint8", "bfp(m=7)", "bfp(m=3)"]
ODD = [
    "mx(elem=int(bits=4,frac=1,sm))",
    "mx(elem=float(e=5,m=7))",
    "mx(elem=e2m1,scale=float(e=5,m=0,bias=3,specials=fn))",
]
MODES = [r.value for r in Rounding]
RULES = ["floor", "ceil", "even", "rceil"]
KEY = jax.random.key(11)


def fmt_of(name, block, rule, saturate, axis=-1):
    f = numfmt.parse(name).replace(block_size=block, rule=rule, axis=axis)
    return f.replace(inf="saturate") if saturate else f


def check(x, fmt, mode, key=KEY):
    """The kernel's and the NumPy path's results (or messages) are the same bits."""
    got, want = kernel_and_numpy(x, fmt, mode, None, key if mode.startswith("stochastic") else None, 9)
    where = f"{fmt}, {mode}, {np.dtype(x.dtype).name}, shape {x.shape}"
    if isinstance(want, str) or isinstance(got, str):
        assert got == want, where
        return
    U = UINT[x.dtype.type]
    bad = np.flatnonzero(got.view(U) != want.view(U))
    if bad.size:
        i = bad[0]
        raise AssertionError(
            f"{where}: {bad.size} differ, first input {np.ravel(x).view(U)[i]:#x}: "
            f"{np.ravel(got).view(U)[i]:#x} != {np.ravel(want).view(U)[i]:#x}"
        )


def test_the_extension_is_built_and_used(monkeypatch):
    assert native.available(), "numfmt.block._ckernel is not importable: build it (pip install -e .)"
    for name in ["mxfp4_e2m1", "mxfp8_e4m3", "mxint8"]:
        for dtype in (np.float32, np.float64):
            for mode in (Rounding.NEAREST_EVEN, Rounding.STOCHASTIC):
                assert native._packed(block_plan(numfmt.parse(name), np.dtype(dtype), mode, 0)) is not None
    taken = []
    real = native.chop_rows
    monkeypatch.setattr(native, "chop_rows", lambda *a: taken.append(real(*a)) or taken[-1])
    numfmt.chop(np.ones(64, np.float32), "mxfp4_e2m1")
    assert taken and taken[0] is not None


def clustered(dtype, spread):
    """Patterns whose exponents lie within ``spread`` binades below a random centre, zeros, and
    (rarely) inf and NaN: blocks whose scales and elements sit near each other's boundaries."""
    e_bits, m_bits, width = LAYOUT[dtype]
    top = (1 << e_bits) - 1
    elem = st.tuples(st.integers(0, 1), st.integers(0, spread), st.integers(0, (1 << m_bits) - 1), st.integers(0, 60))

    def build(c, items):
        out = []
        for sign, down, frac, kind in items:
            ex = max(c - down, 0)
            if kind == 0:
                ex, frac = 0, 0
            elif kind == 1:
                ex, frac = top, 0  # inf
            elif kind == 2:
                ex, frac = top, frac | 1  # NaN
            elif kind < 12:
                frac &= ~((1 << (m_bits - 3)) - 1)  # few fraction bits: ties
            out.append((sign << (width - 1)) | (min(ex, top - 1) if kind > 2 else ex) << m_bits | frac)
        return np.array(out, dtype=f"uint{width}").view(dtype)

    return st.builds(build, st.integers(0, top - 1), st.lists(elem, min_size=1, max_size=70))


def raw(dtype):
    width = LAYOUT[dtype][2]
    return st.lists(st.integers(0, 2**width - 1), min_size=1, max_size=70).map(
        lambda v: np.array(v, dtype=f"uint{width}").view(dtype)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_bit_patterns(dtype, data):
    x = data.draw(st.one_of(raw(dtype), clustered(dtype, 3), clustered(dtype, 30)))
    name = data.draw(st.sampled_from(MX + ODD))
    block = data.draw(st.sampled_from([1, 2, 3, 7, 16, 32, 33, 64]))
    fmt = fmt_of(name, block, data.draw(st.sampled_from(RULES)), data.draw(st.booleans()))
    mode = data.draw(st.sampled_from(MODES))
    key = data.draw(st.sampled_from([KEY, 5]))  # a JAX key, or a seed: a NumPy Generator
    check(x, fmt, mode, key)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_axes_and_partial_blocks(dtype, data):
    rows = data.draw(st.integers(1, 4))
    x = data.draw(clustered(dtype, 8))
    x = np.resize(x, (rows, x.size))
    axis = data.draw(st.sampled_from([0, 1, -1, -2]))
    fmt = fmt_of(data.draw(st.sampled_from(MX)), data.draw(st.sampled_from([1, 3, 4, 32])), "floor", False, axis)
    check(x, fmt, data.draw(st.sampled_from(["nearest_even", "toward_zero", "stochastic"])))


def boundary_blocks(dtype):
    """Blocks at the scale boundaries: amax a power of two, one ulp below and above, the
    midpoints of the element grids, subnormal, zero, all equal, and with NaN or inf."""
    info = np.finfo(dtype)
    rng = np.random.default_rng(1)
    blocks = []
    for p in [-149, -140, -127, -126, -125, -100, -3, -1, 0, 1, 2, 3, 100, 126, 127]:
        top = dtype(2.0**p) if 2.0**p >= float(info.smallest_subnormal) else info.smallest_subnormal
        for amax in [top, np.nextafter(top, dtype(0)), np.nextafter(top, dtype(np.inf)), top * dtype(1.5)]:
            for ratio in [1.0, 0.75, 0.5, 0.3, 0.25, 0.0625, 2.0**-7, 2.0**-10, 2.0**-20]:
                b = np.full(32, amax * dtype(ratio), dtype)
                b[0] = amax
                b[1::2] *= -1
                blocks.append(b)
            blocks.append(amax * rng.uniform(-1, 1, 32).astype(dtype))
    blocks.append(np.zeros(32, dtype))
    blocks.append(-np.zeros(32, dtype))
    blocks.append(np.full(32, info.max, dtype))
    blocks.append(np.full(32, info.smallest_subnormal, dtype))
    for special in [np.inf, -np.inf, np.nan]:
        b = rng.standard_normal(32).astype(dtype)
        b[5] = special
        blocks.append(b)
    with np.errstate(over="ignore"):
        return np.concatenate(blocks)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", MX + ODD)
def test_scale_boundaries(dtype, name):
    x = boundary_blocks(dtype)
    for rule in RULES:
        for saturate in (False, True):
            for block in (32, 5):
                for mode in ("nearest_even", "nearest_away", "to_odd", "stochastic_c"):
                    check(x, fmt_of(name, block, rule, saturate), mode)


@pytest.mark.parametrize("seed", [KEY, 3])
@pytest.mark.parametrize("block", [3, 32, 70000])
def test_many_random_words(seed, block):
    """More words than one draw of the kernel's Generator loop (2**16), blocks across its pieces."""
    x = np.random.default_rng(2).standard_normal(3 * 65536 + 5).astype(np.float32)
    check(x, numfmt.mxint8.replace(block_size=block), "stochastic", seed)
    check(x.astype(np.float64), numfmt.mxfp6_e3m2.replace(block_size=block), "stochastic_a", seed)
    check(x, numfmt.nvfp4.replace(block_size=min(block, 4096)), "stochastic", seed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stochastic_rounding_at_its_threshold(dtype):
    """Elements whose dropped bits and random word sum to exactly 2**N (N = 31 or 63 random
    bits), which round up: built from the key's words (blocks of amax 1, MXINT8's quantum 2**-6)."""
    size = 1 << 18
    width, n = (32, 31) if dtype == np.float32 else (64, 63)
    d = 18 if dtype == np.float32 else 47  # bits below 2**-6 of x in [0.5, 1)
    words = np.asarray(hash_bits(NUMPY, np.asarray(seed_words(KEY)), 0, size, 64))
    r_n = (words >> np.uint64(64 - width)) >> np.uint64(width - n)  # the top n bits of the word used
    low = np.uint64((1 << (n - d)) - 1)
    hit = np.flatnonzero(((r_n & low) == 0) & (np.arange(size) % 32 != 0))
    assert hit.size > 2
    rem = ((np.uint64(1) << np.uint64(n)) - r_n[hit]) >> np.uint64(n - d)  # v_n + r_n = 2**n
    x = np.zeros(size, dtype)
    x[::32] = 1.0
    x[hit] = 0.5 + rem.astype(np.float64) * 2.0 ** -(d + 6)
    check(x, "mxint8", "stochastic", KEY)
    check(x, "mx(elem=int(bits=10,frac=6))", "stochastic", KEY)


def test_non_contiguous_input():
    x = np.random.default_rng(4).standard_normal((40, 96)).astype(np.float32)
    for view in (x[:, ::2], x.T, x[::3]):
        for axis in (0, 1):
            check(view, numfmt.mxfp4_e2m1.replace(axis=axis), "nearest_even")
            check(view, numfmt.mxfp8_e4m3.replace(axis=axis), "stochastic")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unrepresentable_results_raise_alike(dtype):
    big = np.full(32, -np.finfo(dtype).max, dtype)
    check(big, "mxint8", "nearest_even")  # -2 * 2**127 overflows float32
    check(big, "mx(elem=e2m1,rule=ceil)", "nearest_even")
    check(np.array([3e-45, 1.0], np.float32), "mx(elem=float(e=8,m=3),block=2)", "nearest_even")
    # a saturated inf takes the element's max, of more significant bits than float32 has
    for elem in ("float(e=5,m=30)", "int(bits=32,frac=0)"):
        check(
            np.array([np.inf, 1.0], dtype),
            f"mx(elem={elem},scale=float(e=3,m=0,specials=fn),inf=saturate)",
            "toward_zero",
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["mxfp4_e2m1", "mxfp8_e4m3", "mxint8", "bfp(m=5,block=8)"])
def test_kernel_matches_the_exact_reference(dtype, name):
    assert native.available()
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(256) * 2.0 ** rng.integers(-30, 30, 256)).astype(dtype)
    x[rng.integers(0, 256, 20)] = 0
    fmt = numfmt.parse(name)
    got = numfmt.chop(x, fmt)
    b = fmt.block_size
    res = []
    for start in range(0, x.size, b):
        res += quantize_block([float(v) for v in x[start : start + b]], fmt, "nearest_even")[2]
    want = as_dtype(res, dtype)
    U = UINT[dtype]
    np.testing.assert_array_equal(got.view(U), want.view(U))


NV = ["nvfp4", "nvfp4(block=5)", "nvfp4(elem=e2m3)", "nvfp4(scale=e5m2)", "mx(elem=e2m1,block=16,scale=e4m3)"]


@given(data=st.data())
def test_nvfp4_bit_patterns(data):
    x = data.draw(st.one_of(raw(np.float32), clustered(np.float32, 3), clustered(np.float32, 30)))
    x = np.resize(x, (data.draw(st.integers(1, 3)), x.size))
    fmt = numfmt.parse(data.draw(st.sampled_from(NV)))
    fmt = fmt.replace(
        block_size=data.draw(st.sampled_from([1, 3, fmt.block_size, 17])), axis=data.draw(st.sampled_from([0, -1]))
    )
    check(x, fmt, data.draw(st.sampled_from(MODES)), data.draw(st.sampled_from([KEY, 5])))


@pytest.mark.parametrize("name", NV)
def test_nvfp4_scale_boundaries(name):
    x = boundary_blocks(np.float32)
    assert native.nvfp4_rows(numfmt.parse(name), x.dtype, Rounding.NEAREST_EVEN, 0, x.reshape(1, -1), None)
    for mode in ("nearest_even", "toward_negative", "stochastic"):
        check(x, name, mode)
        check(x[32 * 40 :], name, mode)  # another tensor scale


def test_nvfp4_ties_and_subnormal_results():
    """Exact ties of the element grid (a tensor scale of 1, power-of-two block scales) and a
    tensor of tiny values, whose results are float32 subnormals (rounded to nearest even)."""
    mids = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0], np.float32)
    blocks = [np.float32(2688.0)]
    for j in range(-9, 9):
        blocks += [np.float32(6 * 2.0**j), *(mids * np.float32(2.0**j)), *(-mids * np.float32(2.0**j))]
    x = np.array(blocks + [0] * (-len(blocks) % 16), np.float32)
    rng = np.random.default_rng(8)
    tiny = (rng.standard_normal((256, 16)) * 2.0 ** rng.integers(-132, -112, (256, 1))).astype(np.float32).ravel()
    for mode in ("nearest_even", "nearest_away", "toward_zero", "stochastic"):
        for name in ("nvfp4", "nvfp4(elem=e2m3)"):
            check(x, name, mode)
            check(tiny, name, mode)


def test_fallback_when_the_extension_is_missing(monkeypatch):
    x = np.random.default_rng(6).standard_normal(100).astype(np.float32)
    assert_fallback_warns_once(monkeypatch, native, x, "mxfp4_e2m1")
