"""numfmt.testing: the strategies generate what they claim, and every
assertion passes numfmt's own kernels and fails deliberately wrong ones."""

import math
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import numfmt
from numfmt import FloatFormat, Specials, Subnormals
from numfmt.float import grid as _grid
from numfmt.float.reference import round_value
from numfmt.float.reference_codes import representable_values
from numfmt.testing import (
    assert_bits_equal,
    assert_representable,
    assert_rounds_like,
    assert_unbiased,
    boundary_values,
    float_bits,
    formats,
    keys,
    values,
)
from numfmt.testing.unbiased import bernstein_bound

FIND = settings(max_examples=50, database=None)
FIND_MORE = settings(max_examples=300, database=None)
DTYPES = [np.float16, ml_dtypes.bfloat16, np.float32, np.float64]


# ------------------------------------------------------------ optional import
def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_numfmt_imports_neither_hypothesis_nor_jax():
    r = run_python("import sys, numfmt; print('hypothesis' in sys.modules, 'jax' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]


def test_import_numfmt_loads_ml_dtypes_on_first_need():
    code = (
        "import sys, numpy as np, numfmt\n"
        "print('ml_dtypes' in sys.modules)\n"
        "numfmt.chop(np.float32([0.1]), 'bfloat16'); print('ml_dtypes' in sys.modules)\n"
        "print(numfmt.parse('bfloat16').dtype, 'ml_dtypes' in sys.modules)"
    )
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False", "bfloat16", "True"]


def test_numfmt_testing_without_hypothesis_says_what_to_install():
    r = run_python("import sys; sys.modules['hypothesis'] = None; import numfmt; import numfmt.testing")
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "pip install hypothesis" in r.stderr and "numfmt[test]" in r.stderr


# ------------------------------------------------------------------ formats
@given(formats())
def test_formats_default_fits_float64_and_round_trips(fmt):
    assert isinstance(fmt, FloatFormat) and fmt.bits <= 16
    assert _grid.fits(fmt, np.float64)
    assert numfmt.parse(str(fmt)) == fmt


@given(formats(min_bits=6, max_bits=8, exact_in=np.float16))
def test_formats_respect_size_and_exact_in(fmt):
    assert 6 <= fmt.bits <= 8
    codes = np.arange(1 << fmt.bits, dtype=np.uint32)
    wide = numfmt.decode(codes, fmt, dtype=np.float64)
    assert_bits_equal(wide.astype(np.float16).astype(np.float64), wide)  # every value exact in float16


@given(formats(specials="fnuz", subnormals=["flush"], exp_bits=(3, 4), signed=True, vary_bias=False))
def test_formats_filters(fmt):
    assert fmt.specials is Specials.FNUZ and fmt.subnormals is Subnormals.FLUSH
    assert 3 <= fmt.exp_bits <= 4 and fmt.signed and fmt.bias == FloatFormat(fmt.exp_bits, 1, specials="fnuz").bias


@given(formats(signed=False, max_bits=10))
def test_formats_unsigned(fmt):
    assert not fmt.signed and fmt.specials in (Specials.FN, Specials.P3109, Specials.P3109_FINITE)


@pytest.mark.parametrize("member", list(Specials) + list(Subnormals) + list(numfmt.Overflow))
def test_formats_reach_every_variant(member):
    attr = {Specials: "specials", Subnormals: "subnormals", numfmt.Overflow: "overflow"}[type(member)]
    assert getattr(find(formats(), lambda f: getattr(f, attr) is member, settings=FIND), attr) is member


def test_formats_shrink_to_small_default_formats():
    assert find(formats(), lambda f: True, settings=FIND) == FloatFormat(2, 1)
    assert find(formats(), lambda f: f.bits >= 12, settings=FIND) == FloatFormat(2, 9)
    assert str(find(formats(), lambda f: not f.signed, settings=FIND)) == "float(e=1,m=1,specials=fn,signed=false)"
    varied = find(formats(), lambda f: f.bias != f.replace(bias=None).bias, settings=FIND)
    assert (varied.exp_bits, varied.man_bits) == (2, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(family="posits"), "unknown format family 'posits'"),
        (dict(family="floats"), "unknown format family 'floats'"),
        (dict(min_bits=9, max_bits=8), "min_bits <= max_bits"),
        (dict(exact_in=np.int32), "exact_in"),
        (dict(specials="ieeee"), "unknown specials"),
        (dict(exp_bits=(0, 3)), "exp_bits"),
        (dict(colour="red"), "colour"),
        (dict(signed=False, specials="ieee"), "signed=False needs specials"),
    ],
)
def test_formats_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        formats(**kwargs)


# ------------------------------------------------------------------- values
@settings(max_examples=100)
@given(st.data())
def test_values_are_representable_and_fixed_points_of_chop(data):
    fmt = data.draw(formats(max_bits=10), label="fmt")
    v = data.draw(values(fmt), label="v")
    assert_representable(np.float64([v]), fmt)
    assert_bits_equal(numfmt.chop(np.float64([v]), fmt, overflow="sat_none"), np.float64([v]))  # inf stays


@settings(max_examples=100)
@given(st.data())
def test_values_exact_and_in_other_dtypes(data):
    fmt = data.draw(formats(max_bits=8, exact_in=np.float16))
    exact = data.draw(values(fmt, dtype=None))
    assert _grid.representable(exact, fmt)
    assert isinstance(exact, Fraction) or (isinstance(exact, float) and (exact == 0 or not math.isfinite(exact)))
    v = data.draw(values(fmt, dtype=np.float16, allow_nan=False, allow_infinity=False))
    assert v.dtype == np.float16 and np.isfinite(v)


@pytest.mark.parametrize(
    "name",
    ["float8_e4m3fn", "float8_e8m0fnu", "float4_e2m1fn", "binary8p1uf", "float(e=4,m=3,subnormals=flush)",
     "float(e=3,m=2,subnormals=round_to_normal)", "binary6p3se"],
)  # fmt: skip
def test_value_index_covers_exactly_the_representable_values(name):
    """values() draws an index into _grid; the indexed set is the reference's list."""
    fmt = numfmt.parse(name)
    indexed = [_grid.magnitude(fmt, i) for i in range(_grid.count(fmt))]
    assert indexed == [v for v in representable_values(fmt) if v >= 0]


def test_values_errors_and_shrinking():
    with pytest.raises(ValueError, match="cannot hold exactly"):
        values("float32", dtype=np.float16)
    assert find(values("float8_e4m3fn"), lambda v: True, settings=FIND) == 0.0
    assert find(values("float8_e4m3fnuz"), lambda v: v < 0, settings=FIND) == -(2.0**-10)  # smallest subnormal, negated
    assert math.isnan(find(values("float8_e5m2"), np.isnan, settings=FIND))
    assert find(values("float8_e5m2"), np.isinf, settings=FIND) == np.inf


# ---------------------------------------------------------- boundary_values
def near_a_boundary(x: float, fmt) -> bool:
    """x, or a float64 neighbour of it, is a value, a midpoint or a landmark of fmt."""
    if x == 0 or not math.isfinite(x):
        return True
    m = abs(x)
    with np.errstate(over="ignore"):
        up = np.nextafter(m, np.inf)
    for c in (m, np.nextafter(m, 0.0), up):
        if not math.isfinite(c) or c == 0:
            continue
        c = Fraction(float(c))
        lo, hi = round_value(c, fmt, "toward_negative"), round_value(c, fmt, "toward_positive")
        if isinstance(lo, Fraction) and isinstance(hi, Fraction) and c in (lo, hi, (lo + hi) / 2):
            return True
        if c in _grid.landmarks(fmt):
            return True
        if c < fmt.smallest_subnormal or c > fmt.max_value:  # near 0 or beyond the max: halves of landmarks
            return True
    return False


@settings(max_examples=100)
@given(st.data())
def test_boundary_values_are_near_boundaries(data):
    fmt = data.draw(formats(max_bits=10, subnormals=["on", "flush"]), label="fmt")
    x = data.draw(boundary_values(fmt), label="x")
    assert isinstance(x, np.float64)
    assert near_a_boundary(float(x), fmt), (fmt, x)


@given(boundary_values("float(e=11,m=51)"), boundary_values("float64"))
def test_boundary_values_at_the_ends_of_float64(x, y):
    assert near_a_boundary(float(x), numfmt.parse("float(e=11,m=51)"))
    assert near_a_boundary(float(y), numfmt.parse("float64"))


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float(e=3,m=2,subnormals=round_to_normal)", "binary8p1se"])
def test_boundary_inputs_contain_every_tie_and_its_neighbours(name):
    fmt = numfmt.parse(name)
    x = _grid.boundary_array(fmt, range(_grid.count(fmt) - 1), np.float64)
    vals = [float(v) for v in representable_values(fmt)]
    ties = np.array([(a + b) / 2 for a, b in zip(vals, vals[1:], strict=False)])  # exact in float64
    for t in np.concatenate([ties, np.nextafter(ties, np.inf), np.nextafter(ties, -np.inf)]):
        assert t in x or t == 0, t
    assert np.isnan(x).any() and np.isinf(x).any() and np.signbit(x[x == 0]).any()


def test_boundary_values_find_the_overflow_tie_and_specials():
    assert find(boundary_values("float8_e4m3fn"), lambda v: 450 < v < 500, settings=FIND_MORE) == 464.0
    above = find(boundary_values("float8_e4m3fn", dtype=np.float32), lambda v: 464 < v < 470, settings=FIND_MORE)
    assert above == np.nextafter(np.float32(464), np.float32(500))
    assert math.isnan(find(boundary_values("float4_e2m1fn"), np.isnan, settings=FIND_MORE))


# --------------------------------------------------------------- float_bits
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_float_bits_dtype_and_shrinking(dtype):
    width = np.dtype(dtype).itemsize * 8
    nan = find(float_bits(dtype), lambda x: np.isnan(np.float64(x)), settings=FIND)
    smallest_nan = {16: 0x7C01, 32: 0x7F800001, 64: 0x7FF0000000000001}[width]
    if dtype == ml_dtypes.bfloat16:
        smallest_nan = 0x7F81
    assert nan.dtype == dtype and int(np.array(nan).view(f"uint{width}")) == smallest_nan
    neg = find(float_bits(dtype), lambda x: np.signbit(x), settings=FIND)
    assert int(np.array(neg).view(f"uint{width}")) == 1 << (width - 1)  # -0.0


@given(float_bits(np.float32, shape=st.integers(1, 5)))
def test_float_bits_arrays(x):
    assert x.dtype == np.float32 and 1 <= x.size <= 5


def test_float_bits_error():
    with pytest.raises(ValueError, match="float16, bfloat16"):
        float_bits(np.int32)


# --------------------------------------------------------------------- keys
@settings(max_examples=20)
@given(keys(), keys("numpy"))
def test_keys_are_accepted_and_reproducible(seed, generator):
    x = np.linspace(-3, 3, 64)
    a = numfmt.chop(x, "float8_e5m2", "stochastic", key=seed)
    assert_bits_equal(a, numfmt.chop(x, "float8_e5m2", "stochastic", key=seed))
    assert isinstance(generator, np.random.Generator)
    assert_representable(numfmt.chop(x, "float8_e5m2", "stochastic", key=generator), "float8_e5m2")


@settings(max_examples=5)
@given(keys("jax"))
def test_jax_keys(key):
    import jax.numpy as jnp

    x = jnp.linspace(-3.0, 3.0, 64)
    assert_bits_equal(numfmt.chop(x, "float8_e5m2", "stochastic", key=key), numfmt.chop(x, "e5m2", "sr", key=key))


def test_keys_error():
    with pytest.raises(ValueError, match="'seed', 'numpy' or 'jax'"):
        keys("torch")


# -------------------------------------------------------- assert_bits_equal
def test_assert_bits_equal_zero_sign_nan_and_codes():
    assert_bits_equal(np.float32([np.nan, 1.0]), np.float32([-np.nan, 1.0]))
    with pytest.raises(AssertionError, match=r"(?s)1 of 2 elements differ.*\[code 0x00\].*\[code 0x80\]"):
        assert_bits_equal(np.float32([0.0, 1.0]), np.float32([-0.0, 1.0]), fmt="float8_e4m3fn")
    payload = np.array([0x7FC00000, 0x7FC00001], np.uint32).view(np.float32)
    assert_bits_equal(payload[:1], payload[1:])
    with pytest.raises(AssertionError, match="differ in their bits"):
        assert_bits_equal(payload[:1], payload[1:], nan_payload=True)
    with pytest.raises(AssertionError, match="not a value of float8_e4m3fn"):
        assert_bits_equal(np.float64([0.1]), np.float64([0.2]), fmt="float8_e4m3fn")
    with pytest.raises(AssertionError, match="dtype/shape differ"):
        assert_bits_equal(np.float32([1.0]), np.float64([1.0]))
    with pytest.raises(TypeError, match="float16/bfloat16/float32/float64"):
        assert_bits_equal(np.int32([1]), np.int32([1]))


# ----------------------------------------------------- assert_representable
REPRESENTABLE = ["float8_e4m3fn", "float8_e5m2fnuz", "float4_e2m1fn", "float8_e8m0fnu", "binary8p3ue",
                 "float(e=4,m=3,subnormals=flush)", "float(e=4,m=3,subnormals=round_to_normal)"]  # fmt: skip


@pytest.mark.parametrize("name", REPRESENTABLE)
def test_chop_results_are_representable(name):
    x = np.random.default_rng(3).integers(0, 2**32, size=4096, dtype=np.uint32).view(np.float32)
    y = numfmt.chop(x, name)
    fmt = numfmt.parse(name)
    if not fmt.has_nan:
        y = y[~np.isnan(y)]  # chop keeps NaN inputs as NaN (documented); they are not values of the format
    assert_representable(y, name)


@pytest.mark.parametrize(
    ("x", "name", "why"),
    [
        (0.1, "float8_e4m3fn", "between the neighbouring values 0.09375 and 0.1015625"),
        (500.0, "float8_e4m3fn", "beyond the largest finite value 448.0"),
        (np.inf, "float8_e4m3fn", "infinite, but float8_e4m3fn has no infinity"),
        (np.nan, "float4_e2m1fn", "NaN, but float4_e2m1fn has no NaN"),
        (-0.0, "float8_e4m3fnuz", "-0.0, but float8_e4m3fnuz has no -0"),
        (0.0, "float8_e8m0fnu", "zero, but float8_e8m0fnu has no zero"),
        (-1.0, "binary8p3ue", "negative, but binary8p3ue is unsigned"),
        (2.0**-9, "float(e=4,m=3,subnormals=flush)", "below the smallest normal"),
        (2.0**-9, "float(e=4,m=3,subnormals=round_to_normal)", "never produces"),
    ],
)
def test_assert_representable_catches_non_values(x, name, why):
    assert_representable(np.float64([1.0, 2.0]), name)
    with pytest.raises(AssertionError, match=r"(?s)1 of 3 elements are not values of .*at \(1,\).*" + re.escape(why)):
        assert_representable(np.float64([1.0, x, 2.0]), name)


# ------------------------------------------------------- assert_rounds_like
MODES = ["nearest_even", "nearest_away", "toward_zero", "toward_positive", "toward_negative", "to_odd"]


@settings(max_examples=25)
@given(formats(max_bits=9), st.sampled_from(MODES), st.sampled_from([np.float32, np.float64]))
def test_chop_rounds_like_the_reference(fmt, mode, dtype):
    if not _grid.fits(fmt, dtype):
        dtype = np.float64
    assert_rounds_like(lambda x: numfmt.chop(x, fmt, mode), fmt, mode, dtype=dtype, n_random=256, max_gaps=128)


@pytest.mark.parametrize(
    ("quantizer", "name", "dtype"),
    [
        (lambda x: numfmt.chop(x, "float8_e4m3fn", "nearest_away"), "float8_e4m3fn", np.float64),  # ties away
        # ties broken up in value: np.floor(q + 0.5) on the exact quantum grid of bfloat16
        (lambda x: _half_up(x, "bfloat16"), "bfloat16", np.float32),
        # double rounding: float64 -> float32 -> float8 (what ml_dtypes does with float64 input)
        (lambda x: x.astype(np.float32).astype(ml_dtypes.float8_e5m2).astype(np.float64), "float8_e5m2", np.float64),
        # flushes subnormals although the format has them
        (lambda x: np.where(np.abs(x) < 2.0**-6, 0.0 * x, numfmt.chop(x, "float8_e4m3fn")), "float8_e4m3fn",
         np.float64),
        # saturates where the format overflows to NaN
        (lambda x: numfmt.chop(x, "float8_e4m3fn", overflow="sat_finite"), "float8_e4m3fn", np.float64),
    ],
)  # fmt: skip
def test_assert_rounds_like_catches_wrong_quantizers(quantizer, name, dtype):
    with np.errstate(all="ignore"), pytest.raises(AssertionError, match="differ from one nearest_even rounding"):
        assert_rounds_like(quantizer, name, dtype=dtype)


def _half_up(x, name):
    """Nearest with ties rounded up in value, computed on each input's quantum."""
    lo = numfmt.chop(x, name, "toward_negative")
    hi = numfmt.chop(x, name, "toward_positive")
    mid = lo + (hi - lo) / 2
    return np.where(x >= mid, hi, lo).astype(x.dtype)


@pytest.mark.parametrize("name", ["float(e=10,m=1,bias=0)", "float(e=10,m=1,bias=1000)", "float(e=11,m=52)"])
def test_assert_rounds_like_at_the_ends_of_float64(name):
    assert_rounds_like(lambda x: numfmt.chop(x, name), name, n_random=256, max_gaps=64)


def test_assert_rounds_like_accepts_jitted_jax_quantizers():
    import jax

    assert_rounds_like(jax.jit(lambda x: numfmt.chop(x, "bfloat16", "to_odd")), "bfloat16", "to_odd", dtype=np.float32)
    with pytest.raises(AssertionError, match="differ"):
        assert_rounds_like(jax.jit(lambda x: numfmt.chop(x, "bfloat16")), "bfloat16", "to_odd", dtype=np.float32)


def test_assert_rounds_like_overflow_option_and_contract():
    sat = lambda x: numfmt.chop(x, "float8_e4m3fn", overflow="sat_finite")  # noqa: E731
    assert_rounds_like(sat, "float8_e4m3fn", overflow="sat_finite")
    with pytest.raises(AssertionError, match="must return an array of the input's dtype and shape"):
        assert_rounds_like(lambda x: numfmt.chop(x, "e4m3fn").astype(np.float32), "float8_e4m3fn")
    with pytest.raises(ValueError, match="assert_unbiased"):
        assert_rounds_like(sat, "float8_e4m3fn", "stochastic")
    with pytest.raises(ValueError, match="cannot hold every value"):
        assert_rounds_like(sat, "float32", dtype=np.float16)


def test_assert_rounds_like_reports_inputs_and_codes():
    with pytest.raises(AssertionError) as info:
        assert_rounds_like(lambda x: numfmt.chop(x, "e4m3fn", "toward_zero"), "float8_e4m3fn", n_random=0)
    first = str(info.value).splitlines()[1]
    assert "input" in first and "got" in first and "want" in first and "[code 0x" in first


# ---------------------------------------------------------- assert_unbiased
def sr(name, mode="stochastic", seed=0):
    rng = np.random.default_rng(seed)
    return lambda v: numfmt.chop(v, name, mode, key=rng)


@pytest.mark.parametrize(
    ("name", "dtype"),
    [("float8_e4m3fn", np.float32), ("bfloat16", np.float64), ("float4_e2m1fn", np.float32),
     ("float(e=4,m=3,subnormals=round_to_normal)", np.float64), ("binary8p1se", np.float64)],
)  # fmt: skip
def test_numfmt_stochastic_rounding_is_unbiased(name, dtype):
    fmt = numfmt.parse(name)
    rng = np.random.default_rng(1)
    top = min(float(fmt.max_value), 1e6)
    x = np.concatenate([rng.uniform(-top, top, 32), rng.uniform(-4, 4, 32) * float(fmt.smallest_normal), [0.0, 1.0]])
    assert_unbiased(sr(name), x.astype(dtype), 4000, fmt=fmt)


def _biased(name, shift, seed=0):
    """Rounds up with probability p + shift."""
    rng = np.random.default_rng(seed)

    def f(v):
        lo, hi = numfmt.chop(v, name, "toward_zero"), numfmt.chop(v, name, "toward_positive")
        p = np.where(hi > lo, (v - lo) / np.where(hi > lo, hi - lo, 1), 0)
        return np.where(rng.random(v.shape) < p + shift, hi, lo).astype(v.dtype)

    return f


def test_assert_unbiased_catches_biased_rounding():
    x = np.float64([1.01, 1.3, 2.6, 7.0])
    assert_unbiased(_biased("float8_e4m3fn", 0.0), x, 20_000, fmt="float8_e4m3fn")  # the same code, unbiased: passes
    with pytest.raises(AssertionError, match="outside the binomial bound"):
        assert_unbiased(_biased("float8_e4m3fn", 0.04), x, 20_000, fmt="float8_e4m3fn")
    with pytest.raises(AssertionError, match="outside the binomial bound"):
        assert_unbiased(sr("float8_e4m3fn", "stochastic_equal"), x, 4000, fmt="float8_e4m3fn")
    with pytest.raises(AssertionError, match="outside the binomial bound"):
        assert_unbiased(lambda v: numfmt.chop(v, "float8_e4m3fn"), x, 1000, fmt="float8_e4m3fn")  # nearest
    with pytest.raises(AssertionError, match="not a neighbour"):
        assert_unbiased(lambda v: v.copy(), x, 10, fmt="float8_e4m3fn")


def test_assert_unbiased_argument_errors():
    f = sr("float8_e4m3fn")
    for x, n, alpha, message in [
        ([np.nan], 10, 1e-6, "finite"),
        ([500.0], 10, 1e-6, "448"),
        ([1.0], 0, 1e-6, "n=0"),
        ([1.0], 10, 2.0, "alpha"),
    ]:
        with pytest.raises(ValueError, match=message):
            assert_unbiased(f, np.float64(x), n, fmt="float8_e4m3fn", alpha=alpha)


@pytest.mark.parametrize(("n", "p", "alpha"), [(1000, Fraction(3, 10), 1e-6), (400, Fraction(1, 100), 1e-3),
                                               (2000, Fraction(1, 2), 1e-9)])  # fmt: skip
def test_bernstein_bound_holds_for_the_exact_binomial(n, p, alpha):
    """The documented false-failure probability: P(|K - np| > t) <= alpha, exactly."""
    t = float(bernstein_bound(n, np.float64(float(p)), alpha))
    tail = sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1) if abs(k - n * p) > t)
    assert tail <= alpha


# ------------------------------------------------------------- the docs page
def test_docs_testing_page_runs_and_shows_true_output(capsys):
    """Every python block of docs/testing.md runs; its ```text block is real output."""
    page = (Path(__file__).parent.parent / "docs" / "testing.md").read_text()
    namespace: dict = {}
    for block in re.findall(r"```python\n(.*?)```", page, re.S):
        exec(compile(block, "docs/testing.md", "exec"), namespace)  # noqa: S102
    printed = capsys.readouterr().out
    for shown in re.findall(r"```text\n(.*?)```", page, re.S):
        assert shown in printed
