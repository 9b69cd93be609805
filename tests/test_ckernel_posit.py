"""The posit compiled kernel (numfmt.posit._ckernel) gives the NumPy path's bits.

Each check runs ``chop`` twice in one process, with the compiled kernels and with
them switched off (``numfmt.core.native.set_enabled``), and compares bit patterns,
or the error messages where a format does not fit the input dtype. Regimes: raw
bit patterns (hypothesis: NaN, inf, zeros, subnormals, beyond maxpos and below
minpos), every code of the posits up to 16 bits with the bit-string midpoints
and +-1 ulp around both (ties), the binades next to minpos and maxpos where the
exponent field is cut short; stochastic rounding with the same key over several
chunks (a JAX key's counter hash, and a Generator's stream), the hash past
``2**32``, and the random word that flips each decision; SoftPosit on a sample.
Both of the kernel's loops take part: one element at a time (float16/bfloat16
input, formats with n - 3 - es < 0) and the vector loop (float32/float64).
"""

from __future__ import annotations

import os
import sys

import jax
import numpy as np
import pytest
import softposit as sp
from hypothesis import given
from hypothesis import strategies as st

import numfmt
from numfmt.core import native as core_native
from numfmt.core.rounding import Overflow, Rounding
from numfmt.posit import native
from numfmt.posit.kernel import make_posit_plan

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
    "posit8_0",
    "posit8_2",
    "posit16_1",
    "posit16_2",
    "posit32_2",
    "posit(n=10,es=1)",
    "posit(n=5,es=0)",
    "posit(n=32,es=5)",  # float64 only: maxpos 2**960
    "posit(n=3,es=1)",  # no vector loop (n - 3 - es < 0)
    "posit(n=2,es=0)",
    "posit(n=17,es=3)",  # minpos 2**-120, next to float32's smallest normal
    "posit(n=27,es=0)",  # more fraction bits than float32 has, next to 1
]
MODES = [r.value for r in Rounding]
STOCHASTIC = [m for m in MODES if m.startswith("stochastic")]
KEY = jax.random.key(13)


def check(x, fmt, mode, key=KEY):
    """``chop`` with the compiled kernels and with the NumPy path (a fresh key of the same value each)."""
    got, want = kernel_and_numpy(x, fmt, mode, None, key, random_bits=5)
    where = f"{fmt}, {mode}, {np.dtype(x.dtype).name}"
    if isinstance(want, str) or isinstance(got, str):
        assert got == want, where
        return
    U = UINT[x.dtype.type]
    u, g, w = (np.ravel(a.view(U)) for a in (np.asarray(x), got, want))
    bad = np.flatnonzero(g != w)
    if bad.size:
        i = bad[0]
        raise AssertionError(f"{where}: {bad.size} differ, first input {u[i]:#x}: {g[i]:#x} != {w[i]:#x}")


def plan_of(fmt, dtype, mode="nearest_even", bits=0):
    return make_posit_plan(numfmt.parse(fmt), np.dtype(dtype), Rounding(mode), Overflow.SAT_FINITE, bits)


def test_the_extension_is_built_and_used():
    assert native.available(), "numfmt.posit._ckernel is not importable: build it (pip install -e .)"
    assert native.lane(plan_of("posit16_1", np.float32)) is not None
    x = np.linspace(-3, 3, 101)
    dest = np.empty_like(x)
    assert native.run(x, dest, plan_of("posit16_1", np.float64), None, None)
    for fmt in ["posit8_0", "posit8_2", "posit16_1", "posit32_2", "posit(n=27,es=0)"]:
        assert native.fast_loop(plan_of(fmt, np.float32)) and native.fast_loop(plan_of(fmt, np.float64))
    assert native.fast_loop(plan_of("posit(n=32,es=5)", np.float64))
    assert not native.fast_loop(plan_of("posit8_0", np.float16))
    assert not native.fast_loop(plan_of("posit(n=3,es=1)", np.float64))


@given(
    st.sampled_from(FORMATS),
    st.sampled_from(MODES),
    st.sampled_from(DTYPES),
    st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=40),
)
def test_raw_bit_patterns(fmt, mode, dtype, words):
    U = UINT[dtype]
    bits = np.array([w & np.iinfo(U).max for w in words], U)
    check(bits.view(dtype), fmt, mode)


@given(st.sampled_from(FORMATS), st.sampled_from(MODES), st.integers(0, 2**32))
def test_values_across_the_range(fmt, mode, seed):
    """Log-uniform magnitudes from below minpos to beyond maxpos, both signs (raw patterns rarely are)."""
    f = numfmt.parse(fmt)
    rng = np.random.default_rng(seed)
    for dtype in (np.float32, np.float64):
        top = min(f.max_scale + 3, np.finfo(dtype).maxexp - 1)
        x = np.exp2(rng.uniform(-top, top, 500)) * rng.choice([-1.0, 1.0], 500)
        with np.errstate(over="ignore", under="ignore"):
            check(x.astype(dtype), fmt, mode)


def landmarks(fmt, dtype):
    """Every value of ``fmt`` and the bit-string midpoints between neighbours (the even codes of
    posit<n+1>), each +-1 ulp of ``dtype``, the dtype's extremes and the specials, with both signs."""
    f = numfmt.parse(fmt)
    wider = numfmt.PositFormat(f.n + 1, f.es)
    codes = np.arange(1 << (f.n - 1), dtype=np.uint32)
    v = numfmt.decode(codes, f, dtype=np.float64)
    mids = numfmt.decode(2 * codes[1:-1] + 1, wider, dtype=np.float64)
    info = np.finfo(dtype)
    points = np.concatenate([v, mids, [info.max, info.smallest_normal, info.smallest_subnormal, np.inf]])
    with np.errstate(over="ignore", under="ignore"):
        p = points.astype(dtype)
        p = np.concatenate([p, np.nextafter(p, dtype(0)), np.nextafter(p, dtype(np.inf))])
    return np.concatenate([p, -p, np.array([np.nan, -np.nan, 0.0, -0.0], dtype)])


SMALL = ["posit8_0", "posit8_1", "posit8_2", "posit(n=10,es=1)", "posit(n=5,es=0)", "posit(n=6,es=3)"]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fmt", SMALL)
def test_landmarks_every_mode(fmt, dtype):
    x = landmarks(fmt, dtype)
    for mode in MODES:
        check(x, fmt, mode)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fmt", ["posit16_1", "posit16_2", "posit(n=16,es=0)", "posit(n=14,es=3)"])
def test_landmarks_of_16_bit_posits(fmt, dtype):
    x = landmarks(fmt, dtype)
    for mode in MODES:
        check(x, fmt, mode)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("key", ["jax", "seed"])
def test_stochastic_same_key_same_bits_across_chunks(key, dtype):
    """Longer than the kernel's chunks, the Generator's draws and the NumPy path's blocks, of odd length:
    the same stream, with rare elements (specials, the cut binades, zeros) in the middle of it."""
    x = np.random.default_rng(2).standard_normal(200_003).astype(dtype)
    x[::97] = np.nan
    x[5::89] = np.inf
    x[7::83] = 0.0
    x[11::79] = dtype(2.0**-14 * 1.3)  # posit8_2's binades next to minpos; float16's smallest normal
    x[13::71] = dtype(2.0**15 * 1.7)  # beyond maxpos of posit8_0, next to posit8_2's
    k = KEY if key == "jax" else 123
    for fmt in ["posit8_0", "posit8_2", "posit16_1", "posit32_2"]:
        for mode in STOCHASTIC:
            check(x, fmt, mode, k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fmt", ["posit8_2", "posit16_1", "posit32_2"])
def test_counter_hash_past_two_to_the_32(fmt, dtype):
    """The C hash folds the index's high bits as numfmt.core.random does (a chunk straddling 2**32)."""
    U = UINT[dtype]
    x = (np.random.default_rng(4).standard_normal(3000) * 100).astype(dtype)
    x[::7] = dtype(3e-7)
    seed = (0x01234567, 0x89ABCDEF, 0x0F1E2D3C, 0x4B5A6978)
    for mode in ["stochastic", "stochastic_b", "stochastic_equal"]:
        bits = x.itemsize * 8 - 1 if mode != "stochastic_b" else 9
        plan = plan_of(fmt, dtype, mode, bits)
        assert_hash_past_2_32(native, plan, x, U, seed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fmt", ["posit8_0", "posit8_2", "posit16_1", "posit32_2", "posit(n=10,es=1)"])
@pytest.mark.parametrize("mode", STOCHASTIC)
def test_stochastic_at_the_random_word_that_flips_the_decision(mode, fmt, dtype):
    """Per element, the smallest random word that rounds up (found on the NumPy kernel), and its neighbours:
    from below minpos to beyond maxpos, the cut binades next to both included."""
    U = UINT[dtype]
    w = np.dtype(dtype).itemsize * 8
    plan = plan_of(fmt, dtype, mode, w - 1 if mode in ("stochastic", "stochastic_equal") else 6)
    top = min(plan.fmt.max_scale + 2, np.finfo(dtype).maxexp - 2)
    mags = np.float64(2.0) ** np.linspace(-top, top, 400)
    x = np.concatenate([mags * 1.0001, -mags * 1.37]).astype(dtype)
    u = x.view(U)
    down = round_numpy(u, plan, np.zeros_like(u))
    lo, hi = np.zeros(u.size, np.uint64), np.full(u.size, 2**w - 1, np.uint64)  # smallest r that rounds up
    for _ in range(w):
        mid = lo + (hi - lo) // np.uint64(2)
        up = round_numpy(u, plan, mid.astype(U)) != down
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid + np.uint64(1))
    assert np.count_nonzero(hi < np.uint64(2**w - 1)) > x.size // 4  # most elements do flip somewhere
    top_word = np.uint64(2**w - 1)
    for words in (np.where(hi > 0, hi - np.uint64(1), hi), hi, np.where(hi < top_word, hi + np.uint64(1), hi)):
        words = words.astype(U)
        got = np.empty_like(u)
        assert native._KERNEL.ext.round_into(native._packed(plan), u, got, 2, 0, (0, 0, 0, 0), words) == -1
        np.testing.assert_array_equal(got, round_numpy(u, plan, words))


def _softposit(v: float, n: int) -> float:
    convert, back = {
        8: (sp.convertDoubleToP8, sp.convertP8ToDouble),
        16: (sp.convertDoubleToP16, sp.convertP16ToDouble),
        32: (sp.convertDoubleToP32, sp.convertP32ToDouble),
    }[n]
    p = convert(v)
    return float("nan") if p.v == 1 << (n - 1) else back(p)


@pytest.mark.parametrize("fmt, n", [("posit8_0", 8), ("posit16_1", 16), ("posit32_2", 32)])
def test_nearest_even_against_softposit(fmt, n):
    """SoftPosit's posit8, posit16 and posit32 (es 0, 1, 2), nearest even, on float32 and float64 samples."""
    rng = np.random.default_rng(n)
    f = numfmt.parse(fmt)
    x64 = np.exp2(rng.uniform(-f.max_scale - 2, f.max_scale + 2, 1500)) * rng.choice([-1.0, 1.0], 1500)
    x64 = np.concatenate([x64, [0.0, -0.0, np.inf, -np.inf, np.nan]])
    for x in (x64, x64.astype(np.float32)):
        assert native.available()
        got = numfmt.chop(x, fmt)
        want = np.array([_softposit(float(v), n) for v in x], x.dtype)
        want[want == 0] = 0.0  # SoftPosit's zero is +0, as chop's
        U = UINT[x.dtype.type]
        np.testing.assert_array_equal(got.view(U), np.where(np.isnan(want), got, want).view(U))
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_in_place_out_and_strided_inputs():
    x = (np.random.default_rng(5).standard_normal((64, 33)) * 50).astype(np.float32)
    x[3, 4], x[5, 6] = 1e-20, np.nan
    for fmt in ["posit8_2", "posit16_1", "posit(n=3,es=1)"]:
        previous = core_native.set_enabled(False)
        try:
            want = chop_or_message(x, fmt, "nearest_even", None, None, 5)
        finally:
            core_native.set_enabled(previous)
        y = x.copy()
        assert numfmt.chop(y, fmt, out=y) is y
        np.testing.assert_array_equal(y.view(np.uint32), want.view(np.uint32))
        out = np.empty_like(x)
        assert numfmt.chop(x, fmt, out=out) is out
        np.testing.assert_array_equal(out.view(np.uint32), want.view(np.uint32))
        t = np.asfortranarray(x)[:, ::2]  # neither C- nor F-contiguous
        check(t, fmt, "nearest_even")
        check(t, fmt, "stochastic")


def test_overflow_policies_empty_and_scalar_inputs():
    """Posits take one overflow rule (saturate): the others are refused alike on both paths."""
    x = np.array([1e30, -1e-30, 3.3], np.float32)
    for overflow in [None, "sat_finite", "sat_none", "sat_propagate"]:
        got, want = kernel_and_numpy(x, "posit16_1", "nearest_even", overflow, None, 5)
        if isinstance(want, str):
            assert got == want and "overflow" in want
        else:
            np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    for x in (np.zeros(0, np.float64), np.float32(-1.3), np.array(2.0**-70, np.float64)):
        check(np.asarray(x), "posit16_1", "nearest_even")
        check(np.asarray(x), "posit16_1", "stochastic")


def test_missing_extension_warns_once_and_falls_back(monkeypatch):
    assert_fallback_warns_once(monkeypatch, native, np.linspace(-9, 9, 101, dtype=np.float32), "posit16_1")
