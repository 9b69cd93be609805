"""emulate's rounded, exact and opaque primitives bit for bit against oracles numfmt does not implement.

Oracles: gmpy2/MPFR (correctly rounded functions in a context of the
format's precision and exponent range; bisection on MPFR's erf for erf_inv;
exact rationals for prefix sums and products), NumPy (sort, argsort, top_k,
running max/min). Inputs are values of the format, so the emulated result is
one rounding of XLA's float64 result.
"""

import fractions

import gmpy2
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax import lax

import numfmt

RNG = np.random.default_rng(11)


def bits(a):
    a = np.asarray(a)
    return a.view({4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def _ctx(fmt):
    f = numfmt.parse(fmt)
    return gmpy2.context(precision=f.precision, emin=f.emin - f.precision + 2, emax=f.emax + 1, subnormalize=True)


def _round(fmt, value):
    """An mpfr/mpq/int ``value`` correctly rounded into ``fmt`` (IEEE-like: with subnormals and infinities)."""
    with gmpy2.context(precision=400):  # outside the format's context, whose subnormalize would round it early
        wide = gmpy2.mpfr(value)
    with _ctx(fmt) as ctx:
        return float(ctx.check_range(ctx.plus(wide)))


_NP = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float8_e5m2": ml_dtypes.float8_e5m2}


def values(fmt, n=1500, lo=None, hi=None):
    """Every finite value of float8_e5m2, or ``n`` random finite values of a 16-bit format, as float32."""
    dt = np.dtype(_NP[fmt])
    codes = np.arange(2 ** (8 * dt.itemsize), dtype={1: np.uint8, 2: np.uint16}[dt.itemsize]).view(dt)
    v = codes.astype(np.float32)
    v = v[np.isfinite(v)]
    if lo is not None:
        v = v[(v >= lo) & (v <= hi)]
    return v if v.size <= n else RNG.choice(v, n, replace=False)


def check(got, want):
    got, want = np.atleast_1d(np.asarray(got, np.float32)), np.atleast_1d(np.asarray(want, np.float32))
    same = (bits(got) == bits(want)) | (np.isnan(got) & np.isnan(want))
    bad = np.flatnonzero(~same)
    assert not bad.size, [(i, got[i], want[i]) for i in bad[:8]]


FORMATS = ["float8_e5m2", "float16", "bfloat16"]


def _logistic(x):
    with gmpy2.context(precision=400):
        return 1 / (1 + gmpy2.exp(-x))


UNARY = {
    "erf": (jax.scipy.special.erf, gmpy2.erf, None),
    "erfc": (jax.scipy.special.erfc, gmpy2.erfc, None),
    "lgamma": (jax.scipy.special.gammaln, lambda x: gmpy2.lgamma(x)[0], (0.0, 60.0)),
    "lgamma_negative": (jax.scipy.special.gammaln, lambda x: gmpy2.lgamma(x)[0], (-7.0, 0.0)),
    "digamma": (jax.scipy.special.digamma, gmpy2.digamma, (2.0**-30, 500.0)),  # XLA: NaN at its pole 0
    "cbrt": (jnp.cbrt, gmpy2.cbrt, None),
    "rsqrt": (lax.rsqrt, gmpy2.rec_sqrt, (2.0**-30, 7e4)),  # +-0: test_rsqrt_of_zeros
    "exp": (jnp.exp, gmpy2.exp, None),
    "log1p": (jnp.log1p, gmpy2.log1p, (-1.0, 7e4)),
    "expm1": (jnp.expm1, gmpy2.expm1, None),
    "logistic": (jax.nn.sigmoid, _logistic, None),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_transcendental_equals_mpfr(fmt, name):
    fn, oracle, box = UNARY[name]
    x = values(fmt) if box is None else values(fmt, lo=box[0], hi=box[1])
    x = x[~np.isin(x, np.arange(-7.0, 1.0))] if name.startswith("lgamma") else x  # its poles (inf)
    got = jax.jit(numfmt.emulate(fn, f"compute={fmt}"))(x)
    want = []
    for v in x.astype(float):
        with gmpy2.context(precision=400):
            exact = oracle(gmpy2.mpfr(v))
        want.append(_round(fmt, exact))
    check(got, want)


def test_rsqrt_of_zeros_follows_ieee():
    # IEEE 754-2019 9.2 rSqrt(+-0) = +-inf (MPFR's rec_sqrt gives +inf for both)
    check(numfmt.emulate(lax.rsqrt, "compute=bfloat16")(jnp.float32([0.0, -0.0])), [np.inf, -np.inf])


def _erfinv_mpfr(y):
    """erf^-1(y) for |y| < 1 by bisection on MPFR's erf, to 130 bits of the bracket's width (relative for small y).

    erf^-1 is odd; for 0 < y < 1/2 it lies in [0.88 y, y] (its slope is sqrt(pi)/2 = 0.886 at 0, 0.954 y
    at 1/2), else in [0.47, 7].
    """
    if y == 0:
        return gmpy2.mpfr(y)  # keeps the sign of a zero
    with gmpy2.context(precision=200):
        a = gmpy2.mpfr(abs(y))
        lo, hi = (a * gmpy2.mpfr("0.88"), a) if a < 0.5 else (gmpy2.mpfr("0.47"), gmpy2.mpfr(7))
        for _ in range(130):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if gmpy2.erf(mid) < a else (lo, mid)
        return (lo + hi) / 2 if y > 0 else -(lo + hi) / 2


@pytest.mark.parametrize("fmt", FORMATS)
def test_erf_inv_equals_mpfr_bisection(fmt):
    y = values(fmt, n=300, lo=-1.0, hi=1.0)
    got = np.asarray(jax.jit(numfmt.emulate(jax.scipy.special.erfinv, f"compute={fmt}"))(y))
    inner = np.abs(y) < 1
    check(got[inner], [_round(fmt, _erfinv_mpfr(float(v))) for v in y[inner]])
    check(got[~inner], np.copysign(np.inf, y[~inner]))  # erf_inv(+-1) = +-inf


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
@pytest.mark.parametrize("n", [-3, -2, -1, 0, 1, 2, 3, 4])
def test_integer_pow_equals_exact_power_rounded_once(fmt, n):
    x = values(fmt, n=800, lo=-300.0, hi=300.0)
    x = x[x != 0] if n < 0 else np.concatenate([x, np.float32([0.0, -0.0])])  # both zeros, always
    got = jax.jit(numfmt.emulate(lambda v: lax.integer_pow(v, n), f"compute={fmt}"))(x)
    # a rational has no -0: (-0)**n is -0 for odd n (IEEE), +0 for even n
    exact = [_round(fmt, gmpy2.mpq(fractions.Fraction(float(v)) ** n)) for v in x]
    want = [(-0.0 if np.signbit(v) and n % 2 else 0.0) if v == 0 < n else w for v, w in zip(x, exact, strict=True)]
    check(got, want)


def _prefix(op, row):
    acc, out = None, []
    for v in row:
        acc = fractions.Fraction(float(v)) if acc is None else op(acc, fractions.Fraction(float(v)))
        out.append(acc)
    return out


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumsum_rounds_each_exact_prefix_once(fmt, reverse):
    x = np.asarray(numfmt.chop(RNG.standard_normal((3, 40)).astype(np.float32) * 50, fmt))
    got = jax.jit(numfmt.emulate(lambda v: lax.cumsum(v, axis=1, reverse=reverse), f"compute={fmt}"))(x)
    rows = x[:, ::-1] if reverse else x
    want = np.asarray([[_round(fmt, gmpy2.mpq(s)) for s in _prefix(lambda a, b: a + b, r)] for r in rows], np.float32)
    check(got, want[:, ::-1] if reverse else want)


def test_cumsum_is_not_a_rounded_running_sum():
    # float16: 2048 + 1 rounds to 2048 (tie to even) but the prefix 2048 + 1 + 1 = 2050 is exact. Hardware that
    # rounds after every addition gives 2048 there; emulate rounds each prefix once, as reduce_sum its whole sum.
    x = jnp.asarray([2048.0, 1.0, 1.0], jnp.float32)
    check(numfmt.emulate(jnp.cumsum, "compute=float16")(x), [2048.0, 2048.0, 2050.0])


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
def test_cumprod_rounds_each_exact_prefix_once(fmt):
    x = np.asarray(numfmt.chop(RNG.uniform(0.6, 1.7, (4, 12)).astype(np.float32), fmt))
    x[:, 3] *= -1
    got = jax.jit(numfmt.emulate(lambda v: jnp.cumprod(v, axis=1), f"compute={fmt}"))(x)
    check(got, [[_round(fmt, gmpy2.mpq(p)) for p in _prefix(lambda a, b: a * b, r)] for r in x])


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
def test_cumlogsumexp_equals_mpfr(fmt):
    x = np.asarray(numfmt.chop(RNG.standard_normal((3, 30)).astype(np.float32) * 4, fmt))
    got = jax.jit(numfmt.emulate(lambda v: lax.cumlogsumexp(v, axis=1), f"compute={fmt}"))(x)
    want = []
    with gmpy2.context(precision=400):
        for r in x:
            terms = [gmpy2.exp(gmpy2.mpfr(float(v))) for v in r]
            want.append([gmpy2.log(sum(terms[: i + 1])) for i in range(len(r))])
    check(got, [[_round(fmt, v) for v in r] for r in want])


@pytest.mark.parametrize("op", ["cummax", "cummin"])
def test_cummax_cummin_are_exact_on_rounded_inputs(op):
    x = RNG.standard_normal((3, 50)).astype(np.float32)
    got = jax.jit(numfmt.emulate(lambda v: getattr(lax, op)(v, axis=1), "compute=float8_e4m3fn"))(x)
    r = np.asarray(numfmt.chop(x, "float8_e4m3fn"))
    check(got, (np.maximum if op == "cummax" else np.minimum).accumulate(r, axis=1))


def test_reduce_precision_rounds_the_rounded_input_flushing_subnormals():
    # XLA's reduce_precision rounds to nearest even into (exponent_bits, mantissa_bits) and flushes what
    # would be subnormal there to a zero of the input's sign; its input is the bfloat16-rounded value.
    x = values("bfloat16", n=4000, lo=-1e6, hi=1e6)
    x = np.concatenate([x, np.float32([2.0**-14, -(2.0**-14), 2.0**-15, 65504, 65520, 1e-30, -1e-30])])
    got = jax.jit(numfmt.emulate(lambda v: lax.reduce_precision(v, 5, 10), "compute=bfloat16"))(x)
    r = np.asarray(numfmt.chop(x, "bfloat16")).astype(float)
    with gmpy2.context(precision=11, emax=16, subnormalize=False) as ctx:
        want = [float(ctx.check_range(ctx.plus(gmpy2.mpfr(v)))) for v in r]
    want = np.where(np.abs(want) < 2.0**-14, np.copysign(0.0, r), want)
    check(got, want)


@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "bfloat16"])
def test_sort_argsort_equal_numpy_on_rounded_values(fmt):
    x = RNG.standard_normal((4, 64)).astype(np.float32)
    r = np.asarray(numfmt.chop(x, fmt))
    f = jax.jit(numfmt.emulate(lambda v: (jnp.sort(v, axis=1), jnp.argsort(v, axis=1)), f"compute={fmt}"))
    s, i = f(x)
    check(s, np.sort(r, axis=1))
    np.testing.assert_array_equal(i, np.argsort(r, axis=1, kind="stable"))  # ties after rounding: stable


def test_multi_operand_sort_orders_by_rounded_keys_and_rounds_payloads():
    keys = RNG.standard_normal(64).astype(np.float32)
    payload = RNG.standard_normal(64).astype(np.float32)
    k, p = jax.jit(numfmt.emulate(lambda a, b: lax.sort((a, b), num_keys=1), "compute=float8_e4m3fn"))(keys, payload)
    rk, rp = (np.asarray(numfmt.chop(v, "float8_e4m3fn")) for v in (keys, payload))
    order = np.argsort(rk, kind="stable")
    check(k, rk[order])
    check(p, rp[order])


def test_top_k_compares_rounded_values():
    # 1.0001 and 1.0002 are both 1.0 in float16: the first is the top (a tie goes to the lower index),
    # and its value is the rounded one (before: top_k moved the unrounded values, picking index 1).
    x = jnp.asarray([1.0001, 1.0002, 0.5, -3.0], jnp.float32)
    v, i = numfmt.emulate(lambda a: lax.top_k(a, 2), "compute=float16")(x)
    check(v, [1.0, 1.0])
    np.testing.assert_array_equal(i, [0, 1])
    x = RNG.standard_normal((3, 100)).astype(np.float32)
    v, i = jax.jit(numfmt.emulate(lambda a: lax.top_k(a, 7), "compute=float8_e4m3fn"))(x)
    r = np.asarray(numfmt.chop(x, "float8_e4m3fn"))
    want = np.argsort(-r, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(i, want)
    check(v, np.take_along_axis(r, want, axis=1))


def test_bitcast_to_float_is_of_no_known_format():
    # 1 + 2**-23 built from bits is no float16 value: the max after it rounds it (before: it passed unrounded).
    f = numfmt.emulate(lambda u: jnp.maximum(lax.bitcast_convert_type(u, jnp.float32), 0.5), "compute=float16")
    check(f(jnp.uint32(0x3F800001)), 1.0)


@pytest.mark.parametrize("rounding", ["nearest_even", "toward_negative"])
def test_scatter_sub_rounds_each_slot_once(rounding):
    # float16: 2048 - (-1) - (-1) = 2050 once rounded (rounding after each update stays at 2048); the zero
    # signs of toward_negative: +0 - (+0) = -0 (the terms +0 and -0), +0 - (-0) = +0.
    f = numfmt.emulate(lambda o, u: o.at[jnp.asarray([0, 0, 1, 2])].subtract(u), f"compute=float16,rounding={rounding}")
    got = f(jnp.asarray([2048.0, 0.0, 0.0], jnp.float32), jnp.asarray([-1.0, -1.0, 0.0, -0.0], jnp.float32))
    check(got, [2050.0, -0.0 if rounding == "toward_negative" else 0.0, 0.0])


W = np.arange(1.0, 9.0, dtype=np.float32)  # small integer weights: their sums are exact in every format here

# Gradients that are sums of small integers (a reverse cumsum, a permutation, a scatter, 0/1 masks) are
# exact in bfloat16 and equal the float64 gradient bit for bit; the others are chains of rounded operations.
EXACT_GRADS = {
    "cumsum": lambda x: jnp.sum(jnp.cumsum(x) * W),
    "sort": lambda x: jnp.sum(jnp.sort(x) * W),
    "top_k": lambda x: jnp.sum(lax.top_k(x, 3)[0] * W[:3]),
    "cummax": lambda x: jnp.sum(lax.cummax(x) * W),
}
GRADS = {
    "cumprod": lambda x: jnp.sum(jnp.cumprod(x)),
    "logistic": lambda x: jnp.sum(jax.nn.sigmoid(x)),
    "erf": lambda x: jnp.sum(jax.scipy.special.erf(x)),
    "lgamma": lambda x: jnp.sum(jax.scipy.special.gammaln(x)),
    "cumlogsumexp": lambda x: jnp.sum(lax.cumlogsumexp(x)),
}
X8 = np.asarray(numfmt.chop(RNG.uniform(0.5, 2.0, 8).astype(np.float32), "bfloat16"))


@pytest.mark.parametrize("name", sorted(EXACT_GRADS))
def test_emulate_of_grad_with_integer_gradients_is_exact(name):
    got = jax.jit(numfmt.emulate(jax.grad(EXACT_GRADS[name]), "compute=bfloat16"))(X8)
    check(got, jax.grad(EXACT_GRADS[name])(X8))


@pytest.mark.parametrize("name", sorted(GRADS))
def test_emulate_of_grad_runs_and_gives_format_values_near_float64(name):
    # The backward pass's own operations are emulated; each result is a bfloat16 value, within a few
    # bfloat16 ulps of the float64 gradient at the same point (a chain of rounded operations, not one).
    got = np.asarray(jax.jit(numfmt.emulate(jax.grad(GRADS[name]), "compute=bfloat16"))(X8))
    check(got, numfmt.chop(got, "bfloat16"))
    ref = np.asarray(jax.grad(GRADS[name])(X8.astype(np.float64)))
    np.testing.assert_allclose(got, ref, rtol=2.0**-5, atol=2.0**-20)
