"""The fixed-point compiled kernel (numfmt.fixed._ckernel) gives the NumPy path's bits.

Each check runs ``chop`` twice in one process, with the compiled kernels and with
them switched off (``numfmt.core.native.set_enabled``), and compares bit patterns,
NaN payloads included, or the error messages where the input dtype cannot hold a
result. Regimes: raw bit patterns (hypothesis), every code of small formats with
the midpoints and +-1 ulp around them, the range ends, overflow under each
policy and the specials; stochastic rounding with the same key over several
chunks, the counter hash past ``2**32``, and the random word that flips each
decision; the kernel's three loops (one element at a time, the integer
sequence, nearest even's float sequence) all take part.
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
from numfmt.core import native as core_native
from numfmt.fixed import native
from numfmt.fixed.format import FixedOverflow
from numfmt.fixed.kernel import make_fixed_plan

sys.path.insert(0, os.path.dirname(__file__))
from ckernel_support import (  # noqa: E402
    UINT,
    assert_fallback_warns_once,
    assert_hash_past_2_32,
    chop_or_message,
    kernel_and_numpy,
    round_numpy,
)

DTYPES = list(UINT)
FORMATS = [
    "q3.12",
    "int8",
    "uint8",
    "uq4.4",
    "int1",
    "uint1",
    "q0.7",
    "q-2.10",
    "fixed(i=5,f=-3)",
    "fixed(i=7,f=8,overflow=wrap)",
    "fixed(i=3,f=4,signed=false,overflow=wrap)",
    "fixed(i=-3,f=9,overflow=wrap)",
    "fixed(i=10,f=11,overflow=wrap)",
    "q20.20",
    "q-120.130",
    "q-1020.1030",
    "fixed(i=10,f=40,overflow=wrap)",
    "int32",
    "uint32",
    "int64",
    "uint64",
]
MODES = [r.value for r in numfmt.Rounding]
OVERFLOWS = [None, "saturate", "wrap"]
KEY = jax.random.key(11)


def check(x, fmt, mode, overflow=None, key=KEY):
    """``chop`` with the compiled kernels and with the NumPy path (a fresh key of the same value each)."""
    got, want = kernel_and_numpy(x, fmt, mode, overflow, key, random_bits=5)
    where = f"{fmt}, {mode}, overflow={overflow}, {np.dtype(x.dtype).name}"
    if isinstance(want, str) or isinstance(got, str):
        assert got == want, where
        return
    U = UINT[x.dtype.type]
    u, g, w = (np.ravel(a.view(U)) for a in (np.asarray(x), got, want))
    bad = np.flatnonzero(g != w)
    if bad.size:
        i = bad[0]
        raise AssertionError(f"{where}: {bad.size} differ, first input {u[i]:#x}: {g[i]:#x} != {w[i]:#x}")


def plan_of(fmt, dtype, mode="nearest_even", overflow=None, bits=0):
    f = numfmt.parse(fmt)
    overflow = f.overflow if overflow is None else overflow
    return make_fixed_plan(f, np.dtype(dtype), numfmt.Rounding(mode), overflow, bits)


def fast_kind(fmt, dtype, mode="nearest_even"):
    """Which loop the kernel runs: 0 one element at a time, 1 the integer sequence, 2 the float sequence,
    3 the float sequence of wrap."""
    return native._fast_constants(plan_of(fmt, dtype, mode))[0]


def test_the_extension_is_built_and_used():
    assert native.available(), "numfmt.fixed._ckernel is not importable: build it (pip install -e .)"
    assert native.lane(plan_of("q3.12", np.float32)) is not None
    # each loop has formats in the checks below
    assert fast_kind("q3.12", np.float32) == 2 and fast_kind("fixed(i=7,f=8,overflow=wrap)", np.float64) == 3
    assert fast_kind("fixed(i=10,f=11,overflow=wrap)", np.float32) == 2  # too wide for the wrap sequence
    # the integer sequences reduce wrapping codes themselves (the last constant)
    assert native._fast_constants(plan_of("fixed(i=7,f=8,overflow=wrap)", np.float32, "stochastic", bits=31))[-1]
    assert fast_kind("q3.12", np.float32, "toward_positive") == 1 and fast_kind("int8", np.float64, "stochastic") == 1
    assert fast_kind("int32", np.float32) == 0 and fast_kind("q3.12", np.float16) == 0
    assert fast_kind("q-1020.1030", np.float64) == 1  # a quantum below twice the smallest normal: no float sequence


@given(
    st.sampled_from(FORMATS),
    st.sampled_from(MODES),
    st.sampled_from(OVERFLOWS),
    st.sampled_from(DTYPES),
    st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=40),
)
def test_raw_bit_patterns(fmt, mode, overflow, dtype, words):
    U = UINT[dtype]
    bits = np.array([w & np.iinfo(U).max for w in words], U)
    check(bits.view(dtype), fmt, mode, overflow)


@given(st.sampled_from(FORMATS[:13]), st.sampled_from(MODES), st.sampled_from(OVERFLOWS), st.integers(0, 2**32))
def test_values_near_the_range(fmt, mode, overflow, seed):
    """Scaled normal samples, most within the format's range (raw patterns rarely are)."""
    f = numfmt.parse(fmt)
    rng = np.random.default_rng(seed)
    scale = float(max(f.max_value, f.resolution))
    x = rng.standard_normal(600) * scale * rng.choice([0.01, 0.5, 1.0, 3.0], 600)
    for dtype in (np.float32, np.float64):
        check(x.astype(dtype), fmt, mode, overflow)


def landmarks(fmt, dtype):
    """Every value of ``fmt``, the midpoints between neighbours and +-1 ulp (of ``dtype``) around both,
    one quantum beyond each end, the dtype's extremes and the specials, with both signs."""
    f = numfmt.parse(fmt)
    v = np.unique(np.abs(numfmt.decode(np.arange(1 << f.bits, dtype=np.uint32), f, dtype=np.float64)))
    q = float(f.resolution)
    mids = (v[:-1] + v[1:]) / 2
    ends = [float(f.max_value) + q, float(f.max_value) + q / 2, -float(f.min_value) + q / 2, q / 2, q / 4]
    info = np.finfo(dtype)
    points = np.concatenate([v, mids, ends, [info.max, info.smallest_normal, info.smallest_subnormal, np.inf]])
    with np.errstate(over="ignore"):
        p = points.astype(dtype)
        p = np.concatenate([p, np.nextafter(p, dtype(0)), np.nextafter(p, dtype(np.inf))])
    return np.concatenate([p, -p, np.array([np.nan, -np.nan, 0.0, -0.0], dtype)])


SMALL = [n for n in FORMATS if numfmt.parse(n).bits <= 12]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fmt", SMALL)
def test_landmarks_every_mode_and_policy(fmt, dtype):
    x = landmarks(fmt, dtype)
    for mode in MODES:
        for overflow in OVERFLOWS:
            check(x, fmt, mode, overflow)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(
    "fmt", ["q3.12", "uq8.8", "fixed(i=7,f=8,overflow=wrap)", "fixed(i=7,f=8,signed=false,overflow=wrap)", "int16"]
)
def test_landmarks_of_16_bit_formats(fmt, dtype):
    x = landmarks(fmt, dtype)
    for mode in ["nearest_even", "nearest_away", "toward_negative", "to_odd", "stochastic", "stochastic_c"]:
        for overflow in OVERFLOWS[1:]:
            check(x, fmt, mode, overflow)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("key", ["jax", "seed"])
def test_stochastic_same_key_same_bits_across_chunks(key, dtype):
    """Longer than the kernel's chunks and the NumPy path's blocks, of odd length: the same stream."""
    x = (np.random.default_rng(2).standard_normal(200_003) * 10).astype(dtype)
    x[::97] = np.nan  # one element at a time, in the middle of the stream
    x[5::89] = 1e4  # overflow: one element at a time under wrap
    k = KEY if key == "jax" else 123
    for fmt in ["q3.12", "int8", "fixed(i=7,f=8,overflow=wrap)", "uq2.5"]:
        for mode in ["stochastic", "stochastic_a", "stochastic_equal"]:
            check(x, fmt, mode, None, k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fmt", ["q3.12", "fixed(i=7,f=8,overflow=wrap)", "int32"])
def test_counter_hash_past_two_to_the_32(fmt, dtype):
    """The C hash folds the index's high bits as numfmt.core.random does (a chunk straddling 2**32)."""
    U = UINT[dtype]
    x = (np.random.default_rng(4).standard_normal(3000) * 100).astype(dtype)
    seed = (0x01234567, 0x89ABCDEF, 0x0F1E2D3C, 0x4B5A6978)
    for mode in ["stochastic", "stochastic_b"]:
        bits = x.itemsize * 8 - 1 if mode == "stochastic" else 9
        plan = plan_of(fmt, dtype, mode, bits=bits)
        assert_hash_past_2_32(native, plan, x, U, seed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fmt", ["q3.12", "int8", "fixed(i=7,f=8,overflow=wrap)"])
@pytest.mark.parametrize("mode", ["stochastic", "stochastic_a", "stochastic_b", "stochastic_c", "stochastic_equal"])
def test_stochastic_at_the_random_word_that_flips_the_decision(mode, fmt, dtype):
    """Per element, the smallest random word that rounds up (found on the NumPy kernel), and its neighbours:
    inside the range, below the quantum and far below it."""
    U = UINT[dtype]
    w = np.dtype(dtype).itemsize * 8
    plan = plan_of(fmt, dtype, mode, bits=w - 1 if mode == "stochastic" else 6)
    f = plan.fmt
    mags = np.float64(2.0) ** np.linspace(-f.frac_bits - 40.0, f.int_bits - 0.5, 300)
    x = np.concatenate([mags, -mags * 1.37]).astype(dtype)
    u = x.view(U)
    down = round_numpy(u, plan, np.zeros_like(u))
    lo, hi = np.zeros(u.size, np.uint64), np.full(u.size, 2**w - 1, np.uint64)  # smallest r that rounds up
    for _ in range(w):
        mid = lo + (hi - lo) // np.uint64(2)
        up = round_numpy(u, plan, mid.astype(U)) != down
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid + np.uint64(1))
    top = np.uint64(2**w - 1)
    for words in (np.where(hi > 0, hi - np.uint64(1), hi), hi, np.where(hi < top, hi + np.uint64(1), hi)):
        words = words.astype(U)
        got = np.empty_like(u)
        assert native._KERNEL.ext.round_into(native._packed(plan), u, got, 2, 0, (0, 0, 0, 0), words) == -1
        np.testing.assert_array_equal(got, round_numpy(u, plan, words))


def test_in_place_out_and_strided_inputs():
    x = (np.random.default_rng(5).standard_normal((64, 33)) * 50).astype(np.float32)
    x[3, 4] = 1e7  # q20.20 saturates it to 2**20 - 2**-20, which float32 cannot hold
    for fmt in ["q3.12", "fixed(i=3,f=4,overflow=wrap)", "q20.20"]:
        previous = core_native.set_enabled(False)
        try:
            want = chop_or_message(x, fmt, "nearest_even", None, None, 5)
        finally:
            core_native.set_enabled(previous)
        y = x.copy()
        if isinstance(want, str):
            with pytest.raises(ValueError, match="cannot hold"):
                numfmt.chop(y, fmt, out=y)
            np.testing.assert_array_equal(y.view(np.uint32), x.view(np.uint32))  # the input is left intact
        else:
            assert numfmt.chop(y, fmt, out=y) is y
            np.testing.assert_array_equal(y.view(np.uint32), want.view(np.uint32))
        t = np.asfortranarray(x)[:, ::2]  # neither C- nor F-contiguous
        check(t, fmt, "nearest_even")
        check(t, fmt, "stochastic")
    assert isinstance(want, str)  # the last format's failure was checked


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_in_place_equals_a_separate_out_with_rare_and_deep_elements(dtype):
    """out=x: the kernel reads each chunk's inputs again after its pass (rare elements, deep SR ones)."""
    x = (np.random.default_rng(8).standard_normal(5000) * 20).astype(dtype)
    x[::37], x[18::37] = np.nan, 1e-7
    x[5::41], x[7::43], x[9::45] = np.inf, -1e9, 3e-6
    x[1000:1600] = 2e-6  # whole chunks of deep elements (SR's widened pass)
    for fmt, mode in [("q3.12", "nearest_even"), ("fixed(i=3,f=4,overflow=wrap)", "nearest_even"),
                      ("q7.8", "stochastic"), ("fixed(i=4,f=6,signed=false)", "stochastic"),
                      ("int8", "stochastic_a"), ("fixed(i=2,f=9,overflow=wrap)", "stochastic")]:  # fmt: skip
        kw = {"key": KEY} if mode.startswith("stochastic") else {}
        kw.update({"random_bits": 6} if mode == "stochastic_a" else {})
        want = numfmt.chop(x, fmt, mode, out=np.empty_like(x), **kw)
        y = x.copy()
        assert numfmt.chop(y, fmt, mode, out=y, **kw) is y
        np.testing.assert_array_equal(y.view(f"u{x.itemsize}"), want.view(f"u{x.itemsize}"), err_msg=f"{fmt} {mode}")


def test_wrap_refused_where_the_dtype_cannot_hold_the_codes():
    with pytest.raises(ValueError, match="overflow='wrap'"):
        numfmt.chop(np.ones(3, np.float32), "fixed(i=10,f=40,overflow=wrap)")
    assert FixedOverflow.parse("wrap") is FixedOverflow.WRAP


def test_missing_extension_warns_once_and_falls_back(monkeypatch):
    assert_fallback_warns_once(monkeypatch, native, np.linspace(-9, 9, 101, dtype=np.float32), "q3.4")
