"""Sums under emulate: one correct rounding in every mode, and IEEE 754's signed zeros.

A sum is computed in a wider work dtype; for directed modes and to_odd it is
rounded to odd there first (numfmt.emulation.sums), else the second rounding is wrong
when the work dtype does not hold the exact sum. An exactly zero ``x + y``
(opposite signs) or ``x - y`` (like signs) is +0 in every rounding direction
but toward_negative, where it is -0; ``-0 + -0`` is -0 in every mode
(IEEE 754-2019, 6.3). Oracles: MPFR (gmpy2) in the matching direction, over
every pair of a grid of float16/bfloat16 values that holds signed zeros,
cancellations, subnormals, overflow and infinities; chop of the exact
(float64) sum for random float16 pairs.
"""

import itertools
import pathlib
import subprocess
import sys

import gmpy2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numfmt

MPFR_MODES = {
    "nearest_even": gmpy2.RoundToNearest,
    "toward_zero": gmpy2.RoundToZero,
    "toward_positive": gmpy2.RoundUp,
    "toward_negative": gmpy2.RoundDown,
}
# (precision, MPFR emin, MPFR emax): MPFR's exponent e has values m * 2**e with 0.5 <= m < 1.
CONTEXTS = {"float16": (11, -23, 16), "bfloat16": (8, -132, 128)}
MAGNITUDES = {
    "float16": [0.0, 2.0**-24, 3 * 2.0**-24, 2.0**-14, 1.0, 1.5, 3.0, 1000.0, 65504.0, np.inf],
    "bfloat16": [0.0, 2.0**-133, 3 * 2.0**-133, 2.0**-126, 1.0, 1.5, 3.0, 1000.0, 3.3895314e38, np.inf],
}


def _grid(fmt):
    mags = MAGNITUDES[fmt]
    values = [s * m for m in mags for s in (1.0, -1.0)]  # -0.0 included
    pairs = list(itertools.product(values, repeat=2))
    return np.array([a for a, _ in pairs], np.float32), np.array([b for _, b in pairs], np.float32)


def _mpfr(op, a, b, fmt, rounding):
    precision, emin, emax = CONTEXTS[fmt]
    x, y = gmpy2.mpfr(float(a)), gmpy2.mpfr(float(b))  # exact: made in the default (double) context
    with gmpy2.context(precision=precision, emin=emin, emax=emax, subnormalize=True, round=MPFR_MODES[rounding]):
        return np.float32(float(gmpy2.add(x, y) if op == "add" else gmpy2.sub(x, y)))


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
@pytest.mark.parametrize("rounding", list(MPFR_MODES))
@pytest.mark.parametrize("op", ["add", "sub"])
def test_add_sub_equal_mpfr_signed_zeros_included(fmt, rounding, op):
    x, y = _grid(fmt)
    fn = jnp.add if op == "add" else jnp.subtract
    f = jax.jit(numfmt.emulate(fn, f"compute={fmt},rounding={rounding}"))
    got = np.asarray(f(jnp.asarray(x), jnp.asarray(y)))
    want = np.array([_mpfr(op, a, b, fmt, rounding) for a, b in zip(x, y, strict=True)])
    bad = np.flatnonzero(got.view(np.uint32) != want.view(np.uint32))
    assert bad.size == 0, [(x[i], y[i], got[i], want[i]) for i in bad[:8]]


@pytest.mark.parametrize("rounding", ["to_odd", "toward_zero", "nearest_away", "nearest_even"])
def test_random_float16_sums_equal_chop_of_the_exact_sum(rounding):
    # random codes: exponents differ by more than float32 holds in about half the pairs
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 0x7C00, size=(2, 20000)) | (rng.integers(0, 2, size=(2, 20000)) << 15)
    x, y = codes.astype(np.uint16).view(np.float16).astype(np.float64)
    f = jax.jit(numfmt.emulate(jnp.add, f"compute=float16,rounding={rounding}"))
    got = np.asarray(f(jnp.float32(x), jnp.float32(y)))
    want = np.asarray(numfmt.chop(x + y, "float16", rounding)).astype(np.float32)  # float64 holds x + y exactly
    assert np.count_nonzero(got.view(np.uint32) != want.view(np.uint32)) == 0


def test_cancellation_is_minus_zero_toward_negative_only():
    x = jnp.float32([1.5, 0.0, -0.0, 0.0, -0.0])
    f = numfmt.emulate(lambda u, v: u + v, "compute=float16,rounding=toward_negative")
    assert np.signbit(np.asarray(f(x, -x))).tolist() == [True] * 5  # x + -x: each pair cancels or mixes ±0
    g = numfmt.emulate(lambda u, v: u - v, "compute=float16,rounding=toward_negative")
    assert np.signbit(np.asarray(g(x, x))).tolist() == [True, True, True, True, True]
    h = numfmt.emulate(lambda u, v: u + v, "compute=float16,rounding=stochastic")
    # stochastic rounding leaves an exact zero as it is: +0, as every mode but toward_negative
    assert np.signbit(np.asarray(h(x, -x, key=jax.random.key(0)))).tolist() == [False, False, False, False, False]


def _sign(v):
    return np.signbit(np.asarray(v)).tolist()


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
def test_reduce_sum_and_cumsum_zero_signs(fmt):
    rows = jnp.float32([[1.5, -1.5, 0.0], [0.0, 0.0, 0.0], [-0.0, -0.0, -0.0], [0.0, -0.0, 0.0]])
    down = f"compute={fmt},rounding=toward_negative"
    # the sum starts from +0 as jnp.sum's does: toward_negative gives -0 unless every term is +0
    assert _sign(jax.jit(numfmt.emulate(lambda u: jnp.sum(u, axis=1), down))(rows)) == [True, False, True, True]
    assert _sign(numfmt.emulate(lambda u: jnp.sum(u, axis=1), f"compute={fmt}")(rows)) == _sign(jnp.sum(rows, 1))
    assert _sign(numfmt.emulate(lambda u: jnp.sum(u, axis=1), f"compute={fmt}")(rows)) == [False] * 4
    got = jax.jit(numfmt.emulate(lambda u: jnp.cumsum(u, axis=1), down))(rows)
    assert _sign(got) == [[False, True, True], [False, False, False], [True, True, True], [False, True, True]]
    rev = numfmt.emulate(lambda u: jax.lax.cumsum(u, axis=1, reverse=True), down)(rows)
    assert _sign(rev) == [[True, True, False], [False, False, False], [True, True, True], [True, True, False]]


@pytest.mark.parametrize("acc", ["accum=float16,chunk=1,", "accum=float16,chunk=2,", "accum=float16,chunk=3,", ""])
def test_matmul_zero_signs(acc):
    a = jnp.float32([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    b = jnp.float32([[1.0, 0.0, -0.0, 0.0], [-1.0, 0.0, 0.0, -0.0]])  # columns: cancel, +0s, -0 then +0, +0 then -0
    pol = f"compute=float16,rounding=toward_negative,{acc}out=float16"
    got = np.asarray(jax.jit(numfmt.emulate(lambda u, v: u @ v, pol))(a, b))
    assert got.tolist() == [[0.0] * 4] * 4
    # a sum from +0 of the products: -0 unless all of them are +0 (chunk sums and XLA's dot included)
    assert _sign(np.diag(got)) == [True, False, True, True]
    assert _sign(got[1]) == [True, False, True, True]
    near = pol.replace(",rounding=toward_negative", "")
    assert _sign(numfmt.emulate(lambda u, v: u @ v, near)(a, b)) == [[False] * 4] * 4


@pytest.mark.parametrize("rounding", ["toward_positive", "toward_zero", "toward_negative", "nearest_even"])
def test_accumulator_step_is_one_rounding_in_directed_modes(rounding):
    # acc = 1, then acc + 2**-100 * 2**-100: float64 holds no such sum; rounding its round-to-nearest
    # value (1.0) up would leave 1.0 where the exact sum rounds up to 1 + 2**-7
    a = jnp.float32([[1.0, 2.0**-100], [-1.0, 2.0**-100]])
    b = jnp.float32([[1.0], [2.0**-100]])
    pol = f"compute=bfloat16,rounding={rounding},accum=bfloat16,chunk=1,out=bfloat16"
    got = np.asarray(jax.jit(numfmt.emulate(lambda u, v: u @ v, pol))(a, b)).ravel()
    want = [_mpfr("add", s, 2.0**-200, "bfloat16", rounding) for s in (1.0, -1.0)]
    assert got.tolist() == want


def test_conv_cancellation_is_minus_zero_toward_negative():
    x = jnp.float32([1.0, 1.0, 0.0, 0.0]).reshape(1, 1, 4)
    w = jnp.float32([1.0, -1.0]).reshape(1, 1, 2)
    conv = lambda u, v: jax.lax.conv_general_dilated(u, v, (1,), "VALID")  # noqa: E731
    pol = "compute=float16,rounding=toward_negative,accum=float16,chunk=1,out=float16"
    for p in (pol, pol.replace("chunk=1", "chunk=2"), pol.replace("accum=float16,chunk=1,", "")):
        got = np.asarray(numfmt.emulate(conv, p)(x, w)).ravel()
        # windows: 1 - 1 (cancels), 1*1 + 0*-1 (= 1), 0*1 + 0*-1 (+0 + -0)
        assert got.tolist() == [0.0, 1.0, 0.0]
        assert _sign(got) == [True, False, True], p


def _run_without_x64(code):
    root = pathlib.Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_zero_signs_with_x64_off():
    code = (
        "import jax, jax.numpy as jnp, numpy as np, numfmt\n"
        "assert not jax.config.read('jax_enable_x64')\n"
        "x = jnp.float32([1.5, 0.0, -0.0])\n"
        "for fmt in ('float16', 'float8_e4m3fn'):\n"
        "    f = numfmt.emulate(lambda u, v: u + v, f'compute={fmt},rounding=toward_negative')\n"
        "    s = numfmt.emulate(lambda u: jnp.sum(u), f'compute={fmt},rounding=toward_negative')\n"
        "    print(np.signbit(np.asarray(f(x, -x))).tolist(), bool(np.signbit(s(jnp.float32([2.0, -2.0])))))\n"
        "pol = 'compute=float16,rounding=toward_zero,matmul_in=float16,accum=float16,chunk=1,out=float16'\n"
        "u, v = jnp.float32([[1.5, 2.0**-12]]), jnp.float32([[1.0], [-(2.0**-12)]])\n"
        "d = numfmt.emulate(lambda u, v: u @ v, pol)(u, v)\n"
        "t = numfmt.emulate(jnp.add, 'compute=float16,rounding=toward_zero')(jnp.float32(1.5), -(v[0, 0] * 2.0**-24))\n"
        "print(float(d[0, 0]), float(t))\n"
    )
    lines = _run_without_x64(code).split("\n")
    assert lines[:2] == ["[True, True, True] True"] * 2
    assert lines[2] == "1.4990234375 1.4990234375"  # 1.5 - 2**-24 toward zero: float32 would give 1.5
