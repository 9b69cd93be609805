"""The compiled kernel (numfmt.float._ckernel) gives the NumPy path's bits, and its fallback.

Each check runs ``chop`` twice in one process, with the compiled kernel and with
it switched off (``numfmt.float.native.set_enabled``), and compares bit patterns,
NaN payloads included, or the error messages where the input dtype cannot hold a
result. Regimes: raw bit patterns (hypothesis), every code of the small float
formats with its midpoints and +-1 ulp around them (ties, subnormals, underflow,
overflow, specials), stochastic rounding with the same key, the counter hash past
``2**32``; then the fallback when the extension is missing or disabled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numfmt
from numfmt.core.random import hash_bits
from numfmt.core.xp import NUMPY
from numfmt.float import native
from numfmt.float.format import FloatFormat
from numfmt.float.kernel import make_plan, round_bits

sys.path.insert(0, os.path.dirname(__file__))
from ckernel_support import UINT, assert_fallback_warns_once, kernel_and_numpy  # noqa: E402

DTYPES = list(UINT)
ODD = [
    "float(e=5,m=7)",
    "float(e=3,m=2,bias=-2)",
    "float(e=5,m=2,bias=40)",
    "float(e=9,m=3)",
    "float(e=12,m=30)",
    "float(e=4,m=3,subnormals=flush)",
    "float(e=4,m=3,subnormals=round_to_normal)",
    "float(e=2,m=0,specials=fn)",
    "float(e=3,m=0,specials=finite)",
    "binary6p1se",
    "binary12p5uf",
]
FORMATS = [n for n, f in numfmt.presets().items() if isinstance(f, FloatFormat)] + ODD
MODES = [r.value for r in numfmt.Rounding]
OVERFLOWS = [None, "sat_none", "sat_finite", "sat_propagate"]
KEY = jax.random.key(7)


def both(x, fmt, mode, overflow=None, key=KEY):
    """``chop`` with the compiled kernel and with the NumPy path (a fresh key of the same value each)."""
    return kernel_and_numpy(x, fmt, mode, overflow, key, random_bits=7)


def check(x, fmt, mode, overflow=None, key=KEY):
    got, want = both(x, fmt, mode, overflow, key)
    where = f"{fmt}, {mode}, overflow={overflow}, {np.dtype(x.dtype).name}"
    if isinstance(want, str) or isinstance(got, str):
        assert got == want, where
        return
    U = UINT[x.dtype.type]
    bad = np.flatnonzero(got.view(U) != want.view(U))
    if bad.size:
        i = bad[0]
        raise AssertionError(
            f"{where}: {bad.size} differ, first input {x.view(U)[i]:#x}: {got.view(U)[i]:#x} != {want.view(U)[i]:#x}"
        )


def kernel():
    """The extension module (loaded on first use)."""
    assert native.available(), "numfmt.float._ckernel is not importable: build it (pip install -e .)"
    return native._ext


def test_the_extension_is_built_and_used():
    assert native.available(), "numfmt.float._ckernel is not importable: build it (pip install -e .)"
    plan = make_plan(numfmt.parse("bfloat16"), np.dtype(np.float32), numfmt.Rounding.NEAREST_EVEN,
                     numfmt.Overflow.SAT_NONE, 0)  # fmt: skip
    assert native.lane(plan) is not None


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


def landmarks(fmt, dtype):
    """Every finite value of ``fmt``, the midpoints between neighbours and +-1 ulp (of ``dtype``)
    around both, the dtype's extremes and the specials, with both signs."""
    fmt = numfmt.parse(fmt)
    codes = np.arange(1 << fmt.bits, dtype=np.uint32)
    v = numfmt.decode(codes, fmt, dtype=np.float64)
    v = np.unique(np.abs(v[np.isfinite(v)]))
    mids = (v[:-1] + v[1:]) / 2
    info = np.finfo(dtype)
    points = np.concatenate([v, mids, [info.max, info.smallest_normal, info.smallest_subnormal, np.inf]])
    with np.errstate(over="ignore"):
        p = points.astype(dtype)
        p = np.concatenate([p, np.nextafter(p, dtype(0)), np.nextafter(p, dtype(np.inf))])
    p = np.concatenate([p, -p, np.array([np.nan, -np.nan, 0.0, -0.0], dtype)])
    return p


SMALL = [n for n in FORMATS if numfmt.parse(n).bits <= 12]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fmt", SMALL)
def test_landmarks_every_mode_and_policy(fmt, dtype):
    x = landmarks(fmt, dtype)
    for mode in MODES:
        for overflow in OVERFLOWS[1:]:
            check(x, fmt, mode, overflow)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fmt", ["float4_e2m1fn", "float6_e3m2fn", "float8_e4m3fn", "float8_e5m2"])
def test_a_lone_landmark_in_a_chunk_of_normal_values(fmt, dtype):
    """Each landmark outside the normal range alone in a kernel chunk (512 elements) of normal
    values: the vector loops leave it to their one-element fix, not their widened sequences."""
    lo = float(numfmt.parse(fmt).smallest_normal)
    x = landmarks(fmt, dtype)
    with np.errstate(invalid="ignore"):
        lone = x[~((np.abs(x) >= lo) & (np.abs(x) <= float(numfmt.parse(fmt).max_value)))]
    blocks = np.full((lone.size, 512), 1.5 * lo, dtype)
    blocks[np.arange(lone.size), (np.arange(lone.size) * 37) % 512] = lone
    for mode in ["nearest_even", "stochastic"]:
        check(blocks.reshape(-1), fmt, mode)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fmt", ["float16", "bfloat16", "float(e=5,m=7)", "float(e=6,m=9,bias=10)"])
def test_landmarks_of_16_bit_formats(fmt, dtype):
    x = landmarks(fmt, dtype)
    for mode in ["nearest_even", "toward_negative", "to_odd", "stochastic", "stochastic_c"]:
        check(x, fmt, mode, "sat_none")
    check(x, fmt, "nearest_away", "sat_finite")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("key", ["jax", "seed"])
def test_stochastic_same_key_same_bits_across_chunks(key, dtype):
    """Longer than the kernel's chunks and the NumPy path's blocks, of odd length: the same stream."""
    x = (np.random.default_rng(2).standard_normal(200_003) * 10).astype(dtype)
    x[::97] = 0.0  # a few per chunk: the kernel rounds them one by one
    x[100_005::101] = 1e-6  # more in the second half: whole chunks take the widened sequence
    k = KEY if key == "jax" else 123
    for fmt in ["bfloat16", "float8_e4m3fn", "float4_e2m1fn", "float8_e4m3fnuz"]:
        for mode in ["stochastic", "stochastic_a", "stochastic_equal"]:
            check(x, fmt, mode, None, k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fmt", ["bfloat16", "float8_e5m2", "float(e=9,m=3)"])
def test_counter_hash_past_two_to_the_32(fmt, dtype):
    """The C hash folds the index's high bits as numfmt.core.random does (a chunk straddling 2**32)."""
    U = UINT[dtype]
    x = (np.random.default_rng(4).standard_normal(3000) * 100).astype(dtype)
    x[::7] = dtype(3e-5)
    seed = (0x01234567, 0x89ABCDEF, 0x0F1E2D3C, 0x4B5A6978)
    for mode in ["stochastic", "stochastic_b", "stochastic_equal"]:
        bits = 9 if mode == "stochastic_b" else x.itemsize * 8 - 1
        plan = make_plan(numfmt.parse(fmt), np.dtype(dtype), numfmt.Rounding(mode), numfmt.Overflow.SAT_NONE, bits)
        for start in [2**32 - 1000, 2**33 + 5]:
            rbits = hash_bits(NUMPY, np.asarray(seed, np.uint32), start, x.size, plan.container)
            want, _ = round_bits(NUMPY, x.view(U).astype(rbits.dtype), plan, rbits)
            got = np.empty_like(x)
            assert kernel().round_into(native._packed(plan), x.view(U), got.view(U), 1, start, seed, None) == -1
            np.testing.assert_array_equal(got.view(U), want.astype(U))


def test_in_place_and_multidimensional_inputs():
    x = (np.random.default_rng(5).standard_normal((64, 33)) * 50).astype(np.float32)
    want = numfmt.chop(x, "float8_e4m3fn")
    y = x.copy()
    assert numfmt.chop(y, "float8_e4m3fn", out=y) is y
    np.testing.assert_array_equal(y.view(np.uint32), want.view(np.uint32))
    t = np.asfortranarray(x)[:, ::2]  # neither C- nor F-contiguous
    check(t, "float8_e4m3fn", "nearest_even")
    check(t, "float8_e4m3fn", "stochastic")


def test_the_shortcut_follows_the_format_object_and_the_switch():
    x = np.linspace(-3, 3, 101)
    for fmt in [numfmt.parse("float(e=4,m=2)"), numfmt.parse("float(e=3,m=3)")]:  # new objects: new ids
        a = numfmt.chop(x, fmt)
        b = numfmt.chop(x, fmt)  # through the shortcut
        np.testing.assert_array_equal(a.view(np.uint64), b.view(np.uint64))
        check(x, fmt, "nearest_even")


def test_missing_extension_warns_once_and_falls_back(monkeypatch):
    assert_fallback_warns_once(monkeypatch, native, np.linspace(-3, 3, 101, dtype=np.float32), "float8_e5m2")


_SCRIPT = """
import json, sys, warnings
if sys.argv[1] == "missing":
    sys.modules["numfmt.float._ckernel"] = None  # import numfmt.float._ckernel raises ImportError
import numpy as np, numfmt
from numfmt.float import native
x = np.linspace(-3, 3, 11)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    a = numfmt.chop(x, "bfloat16")
    b = numfmt.chop(x.astype(np.float32), "float8_e4m3fn", "stochastic", key=3)
print(json.dumps([native.available(), [w.category.__name__ for w in caught], a.view(np.uint64).tolist(),
                  b.view(np.uint32).tolist()]))
"""


@pytest.mark.parametrize("how", ["missing", "disabled"])
def test_fallback_in_a_fresh_process(how):
    env = dict(os.environ, NUMFMT_DISABLE_EXTENSION="1" if how == "disabled" else "0")
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(numfmt.__file__)), env.get("PYTHONPATH", "")])
    run = subprocess.run([sys.executable, "-c", _SCRIPT, how], capture_output=True, text=True, env=env, check=True)
    available, warned, a, b = json.loads(run.stdout)
    assert available is False
    assert warned == (["ExtensionWarning"] if how == "missing" else [])
    x = np.linspace(-3, 3, 11)
    assert a == numfmt.chop(x, "bfloat16").view(np.uint64).tolist()
    assert b == numfmt.chop(x.astype(np.float32), "float8_e4m3fn", "stochastic", key=3).view(np.uint32).tolist()


def _round_numpy(u, plan, words):
    out, _ = round_bits(NUMPY, u, plan, words)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fmt", ["bfloat16", "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "float(e=9,m=3)"])
@pytest.mark.parametrize("mode", ["stochastic", "stochastic_a", "stochastic_c"])
def test_stochastic_at_the_random_word_that_flips_the_decision(mode, fmt, dtype):
    """Per element, the smallest random word that rounds up (found on the NumPy kernel), and its neighbours:
    ties in the comparison, in the normal range, below it and deep below the smallest subnormal."""
    U = UINT[dtype]
    f = numfmt.parse(fmt)
    w = np.dtype(dtype).itemsize * 8
    bits = w - 1 if mode == "stochastic" else 6
    plan = make_plan(f, np.dtype(dtype), numfmt.Rounding(mode), f.overflow, bits)
    top_e = min(f.emax, np.finfo(dtype).maxexp - 1)
    mags = np.float64(2.0) ** np.linspace(float(f.emin - f.man_bits - 3), float(top_e), 300)
    x = np.concatenate([mags, -mags * 1.37]).astype(dtype)
    u = x.view(U)
    down = _round_numpy(u, plan, np.zeros_like(u))
    lo, hi = np.zeros(u.size, np.uint64), np.full(u.size, 2**w - 1, np.uint64)  # smallest r that rounds up
    for _ in range(w):
        mid = lo + (hi - lo) // np.uint64(2)
        up = _round_numpy(u, plan, mid.astype(U)) != down
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid + np.uint64(1))
    top = np.uint64(2**w - 1)
    for words in (np.where(hi > 0, hi - np.uint64(1), hi), hi, np.where(hi < top, hi + np.uint64(1), hi)):
        words = words.astype(U)
        got = np.empty_like(u)
        assert kernel().round_into(native._packed(plan), u, got, 2, 0, (0, 0, 0, 0), words) == -1
        np.testing.assert_array_equal(got, _round_numpy(u, plan, words))
