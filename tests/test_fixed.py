"""Fixed point and integers: facts, grammar, every code and midpoint vs the exact
reference in every mode with saturate and wrap, ml_dtypes int2/int4 codes,
stochastic rounding, NumPy == JAX (eager and jitted), errors.

Regimes: exact values, ties (midpoints) and +-1 ulp, overflow (saturate /
wrap), underflow (below half the quantum), specials (NaN, inf, -0).
"""

import re
from fractions import Fraction

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numfmt
from numfmt.core.rounding import Rounding
from numfmt.core.xp import NUMPY
from numfmt.fixed.format import FixedFormat, FixedOverflow
from numfmt.fixed.kernel import make_fixed_plan
from numfmt.fixed.reference import fixed_round
from numfmt.testing import assert_bits_equal, grid_points

DETERMINISTIC = ["nearest_even", "nearest_away", "toward_zero", "toward_positive", "toward_negative", "to_odd"]
SR_MODES = ["stochastic", "stochastic_a", "stochastic_b", "stochastic_c", "stochastic_equal"]
SMALL = ["int4", "uint4", "int2", "uint2", "q3.4", "uq2.3", "q-2.6", "fixed(i=5,f=-2,signed=false)", "int8"]


def with_overflow(fmt, overflow):
    return FixedFormat(fmt.int_bits, fmt.frac_bits, fmt.signed, overflow)


def encodable(x, overflow):
    """``grid_points`` without what encode refuses: NaN, and +-inf under wrap."""
    return x[np.isfinite(x) if overflow is FixedOverflow.WRAP else ~np.isnan(x)]


def reference(x, fmt, mode, overflow=None):
    return np.array([fixed_round(float(v), fmt, Rounding.parse(mode), overflow=overflow) for v in x])


# ------------------------------------------------------------------ facts
def test_facts_and_presets():
    f = FixedFormat(3, 4)
    facts = (f.bits, f.max_value, f.min_value, f.resolution, f.num_finite)
    assert facts == (8, Fraction(127, 16), -8, Fraction(1, 16), 256)
    assert numfmt.int8 == FixedFormat(7, 0) and numfmt.uint4 == FixedFormat(4, 0, signed=False)
    assert numfmt.int4.min_value == -8 and numfmt.uint4.max_value == 15 and numfmt.int64.bits == 64
    g = FixedFormat(-2, 10)  # 9 bits, multiples of 2**-10 in [-1/4, 1/4)
    assert g.bits == 9 and g.max_value == Fraction(255, 1024) and g.min_value == Fraction(-1, 4)
    h = FixedFormat(6, -2, signed=False)  # multiples of 4 up to 252
    assert h.bits == 4 and h.max_value == 60 and h.code_to_value(15) == 60
    assert [numfmt.int4.code_to_value(c) for c in (7, 8, 15)] == [7, -8, -1]


@pytest.mark.parametrize(
    "spec", ["int8", "uint16", "q3.4", "uq0.8", "q-2.10", "fixed(i=3,f=4,overflow=wrap)", "fixed(i=0,f=7,signed=false)"]
)
def test_grammar_round_trip(spec):
    fmt = numfmt.parse(spec)
    assert isinstance(fmt, FixedFormat) and numfmt.parse(str(fmt)) == fmt
    assert hash(numfmt.parse(str(fmt))) == hash(fmt)
    assert numfmt.parse("fixed(i=3,f=4,signed=true,overflow=saturate)") == numfmt.parse("q3.4")


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: FixedFormat(0, 0, signed=False), ValueError, "has 0 bits"),
        (lambda: FixedFormat(-3, 2), ValueError, "has 0 bits"),
        (lambda: FixedFormat(40, 40), ValueError, "must be 1..64"),
        (lambda: FixedFormat(3, 4, overflow="sat_none"), ValueError, "no inf or NaN"),
        (lambda: FixedFormat(3.0, 4), TypeError, "int_bits must be an int"),
        (lambda: FixedFormat(3, 4, signed=1), TypeError, "signed must be True or False"),
        (lambda: numfmt.parse("fixed(i=3)"), ValueError, "i and f are required"),
        (lambda: numfmt.parse("fixed(i=3,f=4,overflow=clip)"), ValueError, "not valid"),
        (lambda: numfmt.chop(np.float32([1]), "e4m3fn", overflow="wrap"), ValueError, "unknown overflow 'wrap'"),
        (lambda: numfmt.chop(np.float32([1]), "int8", overflow="wrapp"), ValueError, "Did you mean 'wrap'"),
        (lambda: numfmt.chop(np.float32([1]), "int8", overflow="sat_none"), ValueError, "'saturate'"),
        (lambda: numfmt.chop(np.float32([1]), "posit8_0", overflow="sat_none"), ValueError, "one overflow rule"),
        (lambda: numfmt.chop(np.float32([1]), "fixed(i=31,f=0,overflow=wrap)"), ValueError, "float64 input"),
        (lambda: numfmt.chop(np.float32([3e9]), "int32"), ValueError, "cannot hold"),
        (lambda: numfmt.encode(np.float32([np.nan]), "int8"), ValueError, "contains NaN"),
        (lambda: numfmt.encode(np.float32([np.inf]), "fixed(i=7,f=0,overflow=wrap)"), ValueError, "contains NaN"),
        (lambda: numfmt.decode(np.array([16]), "int4"), ValueError, r"\[0, 2\*\*4\)"),
        (lambda: numfmt.decode(np.array([1]), "int32", dtype=np.float32), ValueError, "cannot hold every value"),
    ],
)
def test_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


# -------------------------------------------------- exhaustive, reference
@pytest.mark.parametrize("overflow", [FixedOverflow.SATURATE, FixedOverflow.WRAP])
@pytest.mark.parametrize("spec", SMALL)
def test_every_code_midpoint_and_neighbour_every_mode(spec, overflow):
    fmt = with_overflow(numfmt.parse(spec), overflow)
    codes = np.arange(1 << fmt.bits, dtype=np.uint32)
    values = numfmt.decode(codes, fmt, dtype=np.float64)
    assert [Fraction(float(v)) for v in values] == [fmt.code_to_value(int(c)) for c in codes]
    np.testing.assert_array_equal(numfmt.encode(values, fmt), codes)
    x = encodable(grid_points(fmt), overflow)
    for mode in DETERMINISTIC:
        np.testing.assert_array_equal(numfmt.encode(x, fmt, mode), reference(x, fmt, mode), err_msg=mode)


@pytest.mark.parametrize("spec, overflow", [("int16", "wrap"), ("q7.8", "saturate"), ("uq10.6", "saturate")])
def test_16_bit_every_code_and_midpoint(spec, overflow):
    fmt = numfmt.parse(spec)
    codes = np.arange(1 << 16, dtype=np.uint32)
    values = numfmt.decode(codes, fmt, dtype=np.float32)
    np.testing.assert_array_equal(numfmt.encode(values, fmt), codes)
    ov = FixedOverflow.parse(overflow)
    x = encodable(grid_points(fmt, np.float32), ov)
    np.testing.assert_array_equal(numfmt.encode(x, fmt, overflow=ov), reference(x, fmt, "nearest_even", ov))


FORMATS = ["int8", "uint8", "int32", "uint16", "q3.12", "uq0.10", "q-3.20", "fixed(i=12,f=-4,signed=false)",
           "fixed(i=20,f=30)", "fixed(i=52,f=0,signed=false)"]  # fmt: skip


@pytest.mark.parametrize("spec", FORMATS)
@settings(max_examples=30)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=32, max_size=32), st.sampled_from(DETERMINISTIC))
def test_float64_patterns_vs_reference(spec, bits, mode):
    fmt = numfmt.parse(spec)
    x = np.array(bits, np.uint64).view(np.float64)
    x = np.concatenate([x[np.isfinite(x)], np.ldexp(x[np.isfinite(x)] % 1.0, fmt.int_bits)])
    for ov in ("saturate", "wrap"):
        ov = FixedOverflow.parse(ov)
        np.testing.assert_array_equal(numfmt.encode(x, fmt, mode, overflow=ov), reference(x, fmt, mode, ov))


# ------------------------------------------------------------- ml_dtypes
ML_DTYPES_VERSION = tuple(int(p) for p in re.findall(r"\d+", ml_dtypes.__version__)[:3])
# int1/uint1 are ml_dtypes types from 0.6 on; their presets exist on every version.
ML_INTS = ["int4", "uint4", "int2", "uint2"] + [n for n in ("int1", "uint1") if hasattr(ml_dtypes, n)]


@pytest.mark.parametrize("name", ML_INTS)
def test_ml_dtypes_codes(name):
    fmt, dt = numfmt.parse(name), np.dtype(getattr(ml_dtypes, name))
    assert fmt.dtype == dt and numfmt.parse(dt) is fmt and numfmt.parse(dt.type) is fmt
    values = np.array(list(range(int(fmt.min_value), int(fmt.max_value) + 1)), np.float32)
    np.testing.assert_array_equal(numfmt.encode(values, fmt), values.astype(dt).view(np.uint8))
    np.testing.assert_array_equal(numfmt.decode(values.astype(dt).view(np.uint8), fmt), values)
    # ml_dtypes' cast truncates (toward_zero) in range, as C does
    x = np.random.default_rng(0).uniform(-50, 50, 20_000).astype(np.float32)
    inside = (np.trunc(x) >= fmt.min_value) & (np.trunc(x) <= fmt.max_value)
    np.testing.assert_array_equal(numfmt.encode(x[inside], fmt, "toward_zero"), x[inside].astype(dt).view(np.uint8))
    wrap = FixedFormat(fmt.int_bits, 0, fmt.signed, "wrap")
    got = numfmt.encode(x, wrap, "toward_zero")
    np.testing.assert_array_equal(got, reference(x, wrap, "toward_zero"))
    if ML_DTYPES_VERSION < (0, 7):
        # ml_dtypes 0.5/0.6 wrap out-of-range values modulo 2**bits: toward_zero with overflow='wrap'
        np.testing.assert_array_equal(got[~inside], x[~inside].astype(dt).view(np.uint8))
    else:
        # ml_dtypes 0.7 flags an out-of-range cast as invalid instead of wrapping
        with pytest.warns(RuntimeWarning, match="invalid value encountered in cast"):
            x[~inside].astype(dt)


def test_one_bit_presets_without_ml_dtypes_types():
    # int1/uint1 are numfmt formats on every ml_dtypes; only the dtype link needs ml_dtypes >= 0.6
    assert (numfmt.int1.min_value, numfmt.int1.max_value, numfmt.uint1.max_value) == (-1, 0, 1)
    assert numfmt.parse("int1") == FixedFormat(0, 0) and numfmt.parse("uint1") == FixedFormat(1, 0, signed=False)
    assert_bits_equal(numfmt.chop(np.float32([-0.7, -0.2, 0.4, 3.0]), "int1"), np.float32([-1, 0, 0, 0]))
    assert_bits_equal(numfmt.chop(np.float32([0.4, 0.5, 0.6, -3.0, 9.0]), "uint1"), np.float32([0, 0, 1, 0, 1]))
    for name in ("int1", "uint1"):
        want = np.dtype(getattr(ml_dtypes, name)) if hasattr(ml_dtypes, name) else None
        assert numfmt.parse(name).dtype == want
    assert numfmt.parse("q3.4").dtype is None and numfmt.parse("fixed(i=7,f=0,overflow=wrap)").dtype == np.int8


# ------------------------------------------------------- specials, dtypes
@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float32, np.float64])
def test_specials(dtype):
    x = np.array([np.nan, np.inf, -np.inf, -0.0, -0.2, 1000.0, -1000.0], dtype)
    assert_bits_equal(numfmt.chop(x, "int8"), np.array([np.nan, 127, -128, 0, 0, 127, -128], dtype))
    assert_bits_equal(numfmt.chop(x, "uint8"), np.array([np.nan, 255, 0, 0, 0, 255, 0], dtype))
    wrapped = numfmt.chop(x, "fixed(i=7,f=0,overflow=wrap)")
    assert_bits_equal(wrapped, np.array([np.nan, np.nan, np.nan, 0, 0, -24, 24], dtype))


def test_int64_from_float64():
    x = np.array([2.0**62, -(2.0**63), -1e19, 2.0**63 - 2048, 0.5, 1.5], np.float64)
    assert numfmt.encode(x, "int64").tolist() == [2**62, 2**63, 2**63, 2**63 - 2048, 0, 2]
    with pytest.raises(ValueError, match="float64 cannot hold"):
        numfmt.chop(np.array([1e19]), "int64")  # saturates to 2**63 - 1: 63 significant bits
    with pytest.raises(ValueError, match="at most 53 significant bits"):
        numfmt.chop(x, "fixed(i=63,f=0,overflow=wrap)")


def test_unrepresentable_saturation_is_refused_not_rounded():
    x = np.float32([3e9, 5.0])
    with pytest.raises(ValueError, match="float32 cannot hold"):
        numfmt.chop(x, "int32")  # 2**31 - 1 needs 31 bits
    assert numfmt.chop(x.astype(np.float64), "int32").tolist() == [2**31 - 1, 5.0]
    assert numfmt.chop(np.float32([5.0, -3e9]), "int32").tolist() == [5.0, -(2.0**31)]  # -2**31 fits
    with pytest.raises(ValueError, match="under tracing"):
        jax.jit(lambda v: numfmt.chop(v, "int32"))(jnp.asarray(x))


# ------------------------------------------------------------- stochastic
@pytest.mark.parametrize("mode", SR_MODES)
@pytest.mark.parametrize("spec", ["int8", "q2.5", "fixed(i=3,f=-2,signed=false,overflow=wrap)"])
def test_stochastic_decisions_match_reference(spec, mode):
    fmt = numfmt.parse(spec)
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-300, 300, 400), rng.uniform(-2, 2, 400)]).astype(np.float32)
    nbits = {"stochastic": 31, "stochastic_equal": 1}.get(mode, 9)
    rbits = rng.integers(0, 2**32, size=x.size, dtype=np.uint32)
    plan = make_fixed_plan(fmt, x.dtype, Rounding.parse(mode), fmt.overflow, nbits)
    got, _ = plan.round_bits(NUMPY, x.view(np.uint32), rbits)
    r = rbits >> np.uint32(32 - nbits)
    mode_ = Rounding.parse(mode)
    want = [fixed_round(float(v), fmt, mode_, int(ri), nbits) for v, ri in zip(x, r, strict=True)]
    assert_bits_equal(got.view(np.float32), numfmt.decode(np.array(want, np.uint32), fmt, dtype=np.float32))


@pytest.mark.parametrize("v", [0.125, 0.5, 0.75])
def test_stochastic_frequency_is_the_distance(v):
    n = 100_000
    y = numfmt.chop(np.full(n, 3 + v, np.float32), "int8", "stochastic", key=np.random.default_rng(3))
    assert set(np.unique(y)) <= {3.0, 4.0}
    count = int((y == 4).sum())
    assert abs(count - n * v) <= 6 * np.sqrt(n * v * (1 - v)) + 1


# ------------------------------------------------------------------- JAX
@pytest.mark.parametrize("spec", ["int8", "uq3.4", "fixed(i=5,f=2,overflow=wrap)", "fixed(i=-2,f=7)"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, jnp.bfloat16])
def test_jax_eager_and_jit_equal_numpy(spec, dtype):
    fmt = numfmt.parse(spec)
    bits = np.dtype(dtype).itemsize * 8
    x = np.random.default_rng(0).integers(0, 2**bits, size=1 << 13, dtype=f"uint{bits}").view(dtype)
    x = np.concatenate([x, np.linspace(-40, 40, 999).astype(dtype)])
    xj = jnp.asarray(x)
    for mode in ["nearest_even", "to_odd"]:
        want = numfmt.chop(x, fmt, mode)
        assert_bits_equal(numfmt.chop(xj, fmt, mode), want, nan_payload=True)
        assert_bits_equal(jax.jit(lambda v, m=mode: numfmt.chop(v, fmt, m))(xj), want, nan_payload=True)
    with np.errstate(invalid="ignore"):  # signalling NaN patterns
        finite = x[np.isfinite(x)]
    codes = numfmt.encode(finite, fmt)
    np.testing.assert_array_equal(jax.jit(lambda v: numfmt.encode(v, fmt))(jnp.asarray(finite)), codes)
    assert_bits_equal(jax.jit(lambda c: numfmt.decode(c, fmt))(jnp.asarray(codes)), numfmt.decode(codes, fmt))
    key = jax.random.key(1)
    want = numfmt.chop(x, fmt, "stochastic", key=key)
    assert_bits_equal(jax.jit(lambda v, k: numfmt.chop(v, fmt, "stochastic", key=k))(xj, key), want, nan_payload=True)


# ------------------------------------------- overflow near 2**63 and 2**64
WIDE = ["int64", "uint64", "q62.1", "uq63.1", "fixed(i=64,f=-1)", "fixed(i=65,f=-1,signed=false)", "q32.31",
        "uq32.32", "int32", "uint32", "int16", "uint16", "fixed(i=63,f=0,signed=false,overflow=wrap)"]  # fmt: skip


def _near_the_top(fmt, dtype):
    """+-2**e times 1, 1 + ulp, 1.5 and 2 - ulp, for e around the format's top (and inf)."""
    p = np.finfo(dtype).nmant
    top = fmt.magnitude_bits - fmt.frac_bits
    mags = [2.0**e * f for e in range(top - 2, top + 3) for f in (1, 1 + 2.0**-p, 1.5, 2 - 2.0**-p)]
    return np.array(mags + [-m for m in mags] + [np.inf, -np.inf], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spec", WIDE)
def test_overflow_near_the_top_saturates_or_raises(spec, dtype):
    """Regression: 2**64 in uint64 wrapped to 0 (the code overflowed the 64-bit
    container before the saturation test saw it). Every result is the exact
    reference's, or chop raises for the one value the dtype cannot hold."""
    fmt = numfmt.parse(spec)
    x = _near_the_top(fmt, dtype)
    wrap = fmt.overflow is FixedOverflow.WRAP
    if wrap:
        x = x[np.isfinite(x)]
    elif dtype is np.float64 and fmt.magnitude_bits > 53:  # no wider dtype to suggest
        with pytest.raises(ValueError, match="float64 cannot hold .* float64 is the widest input: clip x"):
            numfmt.chop(np.array([2.0**70]), fmt)
    for mode in DETERMINISTIC:
        codes = [fixed_round(float(v), fmt, Rounding.parse(mode)) for v in x]
        exact = [fmt.code_to_value(c) for c in codes]
        want = np.array([float(v) for v in exact])
        fits = np.array([Fraction(float(dtype(w))) == v for w, v in zip(want, exact, strict=True)])
        try:
            got = numfmt.chop(x[fits], fmt, mode)
        except ValueError as e:  # wrap of a format too wide for the dtype: refused up front
            assert wrap and "cannot hold" in str(e)
            continue
        assert_bits_equal(got, want[fits].astype(dtype))
        assert_bits_equal(numfmt.chop(jnp.asarray(x[fits]), fmt, mode), want[fits].astype(dtype))
        for i, v in enumerate(x[~fits]):
            with pytest.raises(ValueError, match="cannot hold"):
                numfmt.chop(np.array([v]), fmt, mode)
            if i == 0:
                with pytest.raises(ValueError, match="cannot hold"):
                    numfmt.chop(jnp.asarray(x), fmt, mode)
        if np.all(fits) and mode in ("nearest_even", "toward_negative"):
            jitted = jax.jit(lambda v, m=mode: numfmt.chop(v, fmt, m))(jnp.asarray(x))
            assert_bits_equal(jitted, want.astype(dtype))
            np.testing.assert_array_equal(numfmt.encode(x, fmt, mode), np.array(codes, np.uint64))


# ------------------------- quantum below the input dtype's smallest subnormal
FINE = [("uq-23.25", np.float16), ("q-22.25", np.float16), ("uq-10.35", np.float16), ("fixed(i=-5,f=30)", np.float16),
        ("uq-148.150", np.float32), ("fixed(i=-140,f=152)", np.float32)]  # fmt: skip


@pytest.mark.parametrize(("spec", "dtype"), FINE, ids=[f"{s}-{np.dtype(d).name}" for s, d in FINE])
def test_results_below_the_input_subnormals_raise(spec, dtype):
    """Regression (API fuzz): float16 0.411 in uq-23.25 saturates to 3 * 2**-25,
    which float16 cannot hold (its smallest subnormal is 2**-24); chop returned
    2**-24 silently. Every result is the exact reference's, or chop raises."""
    fmt = numfmt.parse(spec)
    finfo = np.finfo(dtype)
    assert 2.0**-fmt.frac_bits < float(finfo.smallest_subnormal)  # the regime under test
    rng = np.random.default_rng(7)
    pats = rng.integers(0, 1 << finfo.bits, 120, dtype=np.uint64).astype(f"uint{finfo.bits}")
    tiny = float(finfo.smallest_subnormal)
    x = np.concatenate([pats.view(dtype), np.array([0.411, tiny, -tiny, 3 * tiny, 1e-3, 0.0], dtype)])
    x = x[np.isfinite(x)]
    for mode in DETERMINISTIC:
        for v in x:
            exact = fmt.code_to_value(fixed_round(float(v), fmt, Rounding.parse(mode)))
            fits = Fraction(float(dtype(float(exact)))) == exact
            for arr in (np.array([v]), jnp.asarray(np.array([v]))):
                if fits:
                    assert_bits_equal(numfmt.chop(arr, fmt, mode), np.array([float(exact)], dtype))
                else:
                    with pytest.raises(ValueError, match="cannot hold"):
                        numfmt.chop(arr, fmt, mode)
