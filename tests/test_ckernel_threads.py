"""The compiled kernels give the same bits for any thread count (numfmt.set_num_threads), and its API.

The kernels' results with one thread are the NumPy path's (tests/test_ckernel.py,
tests/test_ckernel_fixed.py); here each call is repeated with 2, 3 and 4 threads
and compared bit for bit, into an ``out=`` prefilled with a pattern no kernel
writes (so a range left out or written twice shows). The arrays are long enough
for the vector loops to split into four ranges (2**17 elements a thread) with
an odd remainder, and mix random bit patterns (subnormals, ties, inf, NaN) into
normal values, so the ranges differ in which loop their chunks take. Stochastic
modes run with a JAX key (the counter hash of the flat index) and with a NumPy
Generator (words drawn in Python, each range reading its own). Then the first
unrepresentable element across ranges, strided, in-place and tiny arrays, the
API's errors and the environment variable; last, the argument checks of the
kernels' shared entry point (numfmt/core/_call.h).
"""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import ml_dtypes
import numpy as np
import pytest

import numfmt
from numfmt.core import threads
from numfmt.core.chop import plan_for
from numfmt.core.rounding import Rounding
from numfmt.fixed import native as fixed_native
from numfmt.float import native as float_native

sys.path.insert(0, os.path.dirname(__file__))
from ckernel_support import UINT  # noqa: E402

MODES = [r.value for r in numfmt.Rounding]
# float: the vector loops (bfloat16, e4m3fn, e2m1 on float32/float64), the element loop
# (e9m3 on float32, 16-bit input); fixed: the integer and float sequences, wrap, the element loop;
# posits: the vector loop (float32/float64) and the element loop (16-bit input)
FORMATS = [
    "bfloat16",
    "float8_e4m3fn",
    "float4_e2m1fn",
    "float(e=9,m=3)",
    "q3.12",
    "int8",
    "fixed(i=7,f=8,overflow=wrap)",
    "posit16_1",
    "posit(10,1)",
]
THREADS = (2, 3, 4)
N_BIG = 4 * (1 << 17) + 4099  # four ranges of the vector loops, an odd tail
N_SMALL = 4 * (1 << 13) + 77  # four ranges of the element-at-a-time loops
KEY = jax.random.key(5)
RNG = np.random.default_rng(0)


def ext_of(family):
    """A family's extension module (loaded on first use)."""
    assert family.available(), f"{family.__name__}'s compiled kernel is not importable: build it"
    return family._KERNEL.ext


@pytest.fixture(autouse=True)
def _one_thread_after():
    yield
    numfmt.set_num_threads(1)


def mixed(n, dtype):
    """Normal values (scale 1 and 100) with random bit patterns in a quarter of the places."""
    U = UINT[dtype]
    x = (RNG.standard_normal(n) * RNG.choice([1.0, 100.0], n)).astype(dtype)
    where = RNG.random(n) < 0.25
    bits = x.view(U)
    bits[where] = RNG.integers(0, np.iinfo(U).max, size=int(where.sum()), dtype=U, endpoint=True)
    return x


def chop_with(t, x, fmt, mode, key_fn):
    numfmt.set_num_threads(t)
    kw = {}
    if mode.startswith("stochastic"):
        kw["key"] = key_fn()
        if mode[-2:] in ("_a", "_b", "_c"):
            kw["random_bits"] = 5
    out = np.empty_like(x)
    out.view(UINT[x.dtype.type])[...] = 0x5A5A5A5A5A5A5A5A & np.iinfo(UINT[x.dtype.type]).max
    try:
        numfmt.chop(x, fmt, mode, out=out, **kw)
    except ValueError as err:
        return str(err)
    return out


def assert_same_for_all_threads(x, fmt, mode, key_fn=lambda: KEY):
    want = chop_with(1, x, fmt, mode, key_fn)
    U = UINT[x.dtype.type]
    for t in THREADS:
        got = chop_with(t, x, fmt, mode, key_fn)
        where = f"{fmt}, {mode}, {np.dtype(x.dtype).name}, {t} threads"
        if isinstance(want, str) or isinstance(got, str):
            assert got == want, where
            continue
        bad = np.flatnonzero(got.view(U) != want.view(U))
        assert bad.size == 0, f"{where}: {bad.size} differ, first at {bad[0] if bad.size else None}"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vector_loops_same_bits(fmt, dtype):
    x = mixed(N_BIG, dtype)
    for mode in MODES:
        assert_same_for_all_threads(x, fmt, mode)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float32])
def test_element_loops_same_bits(fmt, dtype):
    x = mixed(N_SMALL, dtype)
    for mode in ("nearest_even", "toward_zero", "stochastic", "stochastic_b", "stochastic_equal"):
        assert_same_for_all_threads(x, fmt, mode)


@pytest.mark.parametrize("fmt", ["bfloat16", "float4_e2m1fn", "float(e=9,m=3)", "q3.12", "posit16_1"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_generator_words_same_bits(fmt, dtype):
    """Each range reads its own words of a NumPy Generator's stream (drawn in Python)."""
    x = mixed(N_BIG, dtype)
    for mode in ("stochastic", "stochastic_a", "stochastic_equal"):
        assert_same_for_all_threads(x, fmt, mode, key_fn=lambda: np.random.default_rng(9))


def test_counter_hash_past_2_32_same_bits():
    """A range that straddles a multiple of 2**32 in the counter hash (start of the call given)."""
    x = mixed(N_BIG, np.float32)
    plan = plan_for(numfmt.parse("float8_e4m3fn"), np.float32, Rounding.STOCHASTIC, None, 31)
    packed, ext = float_native._packed(plan), ext_of(float_native)
    start = (1 << 32) - 3 * (1 << 17) + 5
    outs = []
    for t in (1, 2, 3, 4):
        numfmt.set_num_threads(t)
        out = np.zeros_like(x)
        assert ext.round_into(packed, x.view(np.uint32), out.view(np.uint32), 1, start, (1, 2, 3, 4), None) == -1
        outs.append(out.view(np.uint32))
    for t, out in zip((2, 3, 4), outs[1:], strict=True):
        assert np.array_equal(out, outs[0]), t


@pytest.mark.parametrize(
    ("family", "fmt"), [(float_native, "float(e=6,m=3)"), (fixed_native, "fixed(i=-20,f=30)")], ids=["float", "fixed"]
)
def test_first_unrepresentable_index_is_the_smallest_over_ranges(family, fmt):
    """The kernel's answer is the first such element of the whole array, whichever range finds it."""
    n = N_SMALL
    # representable: 0.5 (float), 2**-22 (fixed); not: 65504 (float) and 1.0 (fixed: saturates)
    good, bad_value = (0.5, 65504.0) if family is float_native else (2.0**-22, 1.0)
    x = np.full(n, good, np.float16)
    plan = plan_for(numfmt.parse(fmt), np.float16, Rounding.NEAREST_EVEN, None, 0)
    assert plan.can_be_unrepresentable
    packed, ext = family._packed(plan), ext_of(family)
    for places in ([n - 1], [3 * n // 4 + 1, n - 5], [n // 2 + 9, 3 * n // 4 + 1], [0, n // 2]):
        x[:] = good
        x[places] = bad_value
        for t in (1, 2, 3, 4):
            numfmt.set_num_threads(t)
            out = np.empty_like(x)
            got = ext.round_into(packed, x.view(np.uint16), out.view(np.uint16), 0, 0, (0, 0, 0, 0), None)
            assert got == min(places), (places, t)
        with pytest.raises(ValueError, match="float16 cannot hold"):
            numfmt.chop(x, fmt)


@pytest.mark.parametrize("fmt", ["bfloat16", "float(e=9,m=3)", "q3.12"])
def test_strided_in_place_and_tiny(fmt):
    x = (RNG.standard_normal(2 * N_BIG + 1) * 100).astype(np.float32)  # no results beyond float32
    want = chop_with(1, x, fmt, "nearest_even", None)
    numfmt.set_num_threads(3)
    strided = x[::2]
    assert np.array_equal(numfmt.chop(strided, fmt).view(np.uint32), want[::2].view(np.uint32))
    out = np.zeros(x.size, np.float32)[::2]  # a non-contiguous out=
    numfmt.chop(strided, fmt, out=out)
    assert np.array_equal(out.view(np.uint32), want[::2].view(np.uint32))
    y = x.copy()
    assert numfmt.chop(y, fmt, out=y) is y  # in place
    assert np.array_equal(y.view(np.uint32), want.view(np.uint32))
    key = lambda: KEY  # noqa: E731
    for n in (0, 1, 7, 511, 513):
        small = x[:n].copy()
        numfmt.set_num_threads(4)
        for mode in ("nearest_even", "stochastic"):
            assert_same_for_all_threads(small, fmt, mode, key)


def test_set_and_get():
    assert numfmt.get_num_threads() == 1
    assert numfmt.set_num_threads(3) == 1
    assert numfmt.get_num_threads() == 3
    assert numfmt.set_num_threads(np.int64(2)) == 3
    assert numfmt.get_num_threads() == 2
    assert type(numfmt.get_num_threads()) is int


@pytest.mark.parametrize("bad", [0, -1, 257, 10**30])
def test_set_out_of_range(bad):
    with pytest.raises(ValueError, match=rf"n={bad} is out of range; it must be an int in 1\.\.256"):
        numfmt.set_num_threads(bad)
    assert numfmt.get_num_threads() == 1


@pytest.mark.parametrize("bad", [2.0, True, "2", None])
def test_set_not_an_int(bad):
    with pytest.raises(TypeError, match=r"n=.* must be an int in 1\.\.256 \(1: no threads\), got"):
        numfmt.set_num_threads(bad)
    assert numfmt.get_num_threads() == 1


def test_extension_refuses_bad_counts():
    for bad in (0, 257):
        with pytest.raises(ValueError, match="n must be in 1..256"):
            ext_of(float_native).set_threads(bad)


def _fresh(code: str, env_value: str | None) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ)
    env.pop(threads.ENV, None)
    if env_value is not None:
        env[threads.ENV] = env_value
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)


def test_environment_variable_is_read_at_first_use():
    code = (
        "import numpy as np, numfmt\n"
        "from numfmt.core import threads\n"
        "assert threads._count is None  # not read at import\n"
        "numfmt.chop(np.ones(3), 'bfloat16')\n"
        "print(numfmt.get_num_threads())\n"
    )
    run = _fresh(code, "3")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["3"]
    run = _fresh(code, None)
    assert run.stdout.split() == ["1"], run.stderr
    run = _fresh("import numfmt; numfmt.set_num_threads(2); print(numfmt.get_num_threads())", "7")
    assert run.stdout.split() == ["2"], run.stderr  # the call overrides the environment


@pytest.mark.parametrize("value", ["0", "-2", "two", "2.5", "300"])
def test_bad_environment_variable_warns_and_runs_one_thread(monkeypatch, value):
    monkeypatch.setattr(threads, "_count", None)
    monkeypatch.setenv(threads.ENV, value)
    with pytest.warns(threads.ThreadsWarning, match=rf"NUMFMT_NUM_THREADS='{value}' is not an int in 1\.\.256"):
        assert numfmt.get_num_threads() == 1
    assert numfmt.get_num_threads() == 1  # one warning: the value is read once


@pytest.mark.parametrize("family", [float_native, fixed_native], ids=["float", "fixed"])
def test_round_into_refuses_bad_arguments(family):
    fmt = "bfloat16" if family is float_native else "q3.12"
    ext = ext_of(family)
    x = np.ones(8, np.float32)
    u, out = x.view(np.uint32), np.empty(8, np.uint32)
    det = family._packed(plan_for(numfmt.parse(fmt), np.float32, Rounding.NEAREST_EVEN, None, 0))
    sr = family._packed(plan_for(numfmt.parse(fmt), np.float32, Rounding.STOCHASTIC, None, 31))
    with pytest.raises(TypeError, match="round_into takes 7 arguments"):
        ext.round_into(det, u, out)
    with pytest.raises(TypeError, match="plan must be the packed bytes"):
        ext.round_into(b"x", u, out, 0, 0, (0, 0, 0, 0), None)
    with pytest.raises(ValueError, match="rmode must be 1 or 2 exactly for the stochastic modes"):
        ext.round_into(det, u, out, 1, 0, (0, 0, 0, 0), None)
    with pytest.raises(ValueError, match="rmode must be 1 or 2"):
        ext.round_into(sr, u, out, 0, 0, (0, 0, 0, 0), None)
    with pytest.raises(TypeError, match="seed must be a tuple of four ints"):
        ext.round_into(sr, u, out, 1, 0, (0, 0, 0), None)
    with pytest.raises(ValueError, match="src and dst must hold the same number of elements"):
        ext.round_into(det, u, out[:7], 0, 0, (0, 0, 0, 0), None)
    with pytest.raises(ValueError, match="rbits must hold one word of the container's width per element"):
        ext.round_into(sr, u, out, 2, 0, (0, 0, 0, 0), np.zeros(7, np.uint32))
    with pytest.raises(ValueError, match="rbits must be a C-contiguous buffer"):
        ext.round_into(sr, u, out, 2, 0, (0, 0, 0, 0), np.zeros(16, np.uint32)[::2])
    assert ext.round_into(det, u, out, 0, 0, (0, 0, 0, 0), None) == -1
    assert ext.round_into(det, u[::2], out[:4], 0, 0, (0, 0, 0, 0), None) == -2  # not C-contiguous
    assert ext.round_into(det, u[:7], u[1:], 0, 0, (0, 0, 0, 0), None) == -2  # overlapping
    assert ext.round_into(det, u, u, 0, 0, (0, 0, 0, 0), None) == -1  # in place
