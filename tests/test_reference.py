"""Tests of the exact scalar reference against independent oracles.

Oracles: gmpy2/MPFR (any precision and exponent range), NumPy's float64 ->
float16 cast and ml_dtypes' float32 casts (both correctly rounded), and the
formats' own code tables. Groups are named by regime: normal, subnormal,
underflow, overflow, ties, specials, stochastic.
"""

from __future__ import annotations

import math
import re
import warnings
from fractions import Fraction

import gmpy2
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numfmt.core.names import parse, presets
from numfmt.core.rounding import Rounding
from numfmt.float.format import FloatFormat
from numfmt.float.reference import round_value
from numfmt.float.reference_codes import decode_code, encode_value, representable_values
from numfmt.testing import boundary_values, float_bits, formats

FLOAT16 = parse("float16")
DIRECTED = {
    Rounding.NEAREST_EVEN: gmpy2.RoundToNearest,
    Rounding.TOWARD_ZERO: gmpy2.RoundToZero,
    Rounding.TOWARD_POSITIVE: gmpy2.RoundUp,
    Rounding.TOWARD_NEGATIVE: gmpy2.RoundDown,
}
STOCHASTIC = [
    Rounding.STOCHASTIC,
    Rounding.STOCHASTIC_A,
    Rounding.STOCHASTIC_B,
    Rounding.STOCHASTIC_C,
    Rounding.STOCHASTIC_EQUAL,
]


# ------------------------------------------------------------------ helpers
def canon(y) -> Fraction | float:
    """A float (from an oracle) in round_value's result convention."""
    y = float(y)
    if math.isnan(y) or math.isinf(y) or y == 0:
        return y
    return Fraction(y)


def same(a, b) -> bool:
    """Identical results: equal values, same sign of zero, NaN equals NaN."""
    if isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, float) and isinstance(b, float)):
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


def mpfr_context(fmt: FloatFormat, rnd, emax=None):
    """An MPFR context emulating an IEEE-like ``fmt`` (subnormals on)."""
    p = fmt.precision
    return gmpy2.context(
        precision=p,
        emin=fmt.emin - p + 2,
        emax=fmt.emax + 1 if emax is None else emax,
        subnormalize=True,
        round=rnd,
    )


def mpfr_round(x: float, fmt: FloatFormat, rnd, emax=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return canon(mpfr_context(fmt, rnd, emax).plus(gmpy2.mpfr(x, 53)))


def mpfr_nearest_away(x: float, fmt: FloatFormat):
    """Ties away from zero from MPFR: RNDN, except at an exact midpoint of
    the RNDZ and RNDA neighbours, where the RNDA one."""
    down = mpfr_round(x, fmt, gmpy2.RoundToZero, emax=10**6)
    up = mpfr_round(x, fmt, gmpy2.RoundAwayZero, emax=10**6)
    if not (isinstance(down, float) and math.isnan(down)) and down != up:
        if 2 * Fraction(x) == Fraction(down) + Fraction(up):
            return mpfr_round(float(up), fmt, gmpy2.RoundToNearest)
    return mpfr_round(x, fmt, gmpy2.RoundToNearest)


@st.composite
def near_format(draw, fmt: FloatFormat) -> float:
    """float64 values around the format's range, biased to ties and exact values."""
    e = draw(st.integers(fmt.emin - fmt.man_bits - 3, fmt.emax + 2))
    kept = draw(st.integers(0, 52))
    mant = draw(st.integers(0, 2**52 - 1)) >> (52 - kept) << (52 - kept)
    x = math.ldexp(float(2**52 + mant), e - 52)
    nudge = draw(st.sampled_from([0, 0, 1, -1]))
    if nudge:
        x = math.nextafter(x, nudge * math.inf)
    return -x if draw(st.booleans()) else x


IEEE_FORMATS = formats(specials="ieee", subnormals="on", overflow="sat_none", vary_bias=False,
                       exp_bits=(2, 8), man_bits=(1, 10), max_bits=19)  # fmt: skip


@st.composite
def ieee_case(draw):
    fmt = draw(IEEE_FORMATS)
    raw = float_bits(np.float64).map(float)
    x = draw(st.one_of(raw, near_format(fmt), near_format(fmt), boundary_values(fmt).map(float)))
    return fmt, x


def float16_codes(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return x.astype(np.float16).view(np.uint16)


# ------------------------------------------------- normal/subnormal/ties: MPFR
@settings(max_examples=1500)
@given(ieee_case(), st.sampled_from(list(DIRECTED)))
def test_ieee_directed_and_nearest_even_vs_mpfr(case, rounding):
    fmt, x = case
    expected = mpfr_round(x, fmt, DIRECTED[rounding])
    assert same(round_value(x, fmt, rounding), expected), (fmt, x, rounding)


@settings(max_examples=800)
@given(ieee_case())
def test_ieee_nearest_away_vs_mpfr(case):
    fmt, x = case
    expected = mpfr_nearest_away(x, fmt)
    assert same(round_value(x, fmt, Rounding.NEAREST_AWAY), expected), (fmt, x)


@settings(max_examples=800)
@given(ieee_case())
def test_to_odd_then_nearest_even_is_nearest_even(case):
    """Round to odd at p+2 bits, then RNE at p bits, equals one RNE (Boldo-
    Melquiond), checked against MPFR; inexact results have odd codes."""
    fmt, x = case
    wide = fmt.replace(man_bits=fmt.man_bits + 2)
    if math.isnan(x) or math.isinf(x) or abs(Fraction(x)) > wide.max_value:
        return
    odd = round_value(x, wide, Rounding.TO_ODD)
    assert same(round_value(odd, fmt), mpfr_round(x, fmt, gmpy2.RoundToNearest)), (fmt, x)
    if odd != x:
        assert encode_value(odd, wide) % 2 == 1
        down = mpfr_round(x, wide, gmpy2.RoundToZero)
        up = mpfr_round(x, wide, gmpy2.RoundAwayZero)
        assert same(odd, down) or same(odd, up)


# ------------------------------------------------------------------ overflow
@pytest.mark.parametrize("rounding", list(DIRECTED) + [Rounding.NEAREST_AWAY, Rounding.TO_ODD])
@pytest.mark.parametrize("sign", [1, -1])
def test_ieee_overflow(rounding, sign):
    fmt = FloatFormat(5, 2)  # float8_e5m2 layout, max 57344
    big = sign * 1e6
    to_inf = {
        Rounding.NEAREST_EVEN: True,
        Rounding.NEAREST_AWAY: True,
        Rounding.TOWARD_ZERO: False,
        Rounding.TO_ODD: False,
        Rounding.TOWARD_POSITIVE: sign > 0,
        Rounding.TOWARD_NEGATIVE: sign < 0,
    }[rounding]
    expected = sign * math.inf if to_inf else sign * fmt.max_value
    assert same(round_value(big, fmt, rounding), expected)
    if rounding in DIRECTED:
        assert same(mpfr_round(big, fmt, DIRECTED[rounding]), expected)
    assert same(round_value(big, fmt, rounding, "sat_finite"), sign * fmt.max_value)
    assert same(round_value(sign * math.inf, fmt, rounding, "sat_finite"), sign * fmt.max_value)
    assert same(round_value(sign * math.inf, fmt, rounding), sign * math.inf)
    assert same(round_value(sign * math.inf, fmt, rounding, "sat_propagate"), sign * math.inf)


def test_overflow_is_decided_after_rounding():
    f = FLOAT16  # max 65504, next binade 65536; the midpoint 65520 ties to 65536
    assert round_value(65519.99, f) == 65504
    assert same(round_value(65520.0, f), math.inf)
    assert same(round_value(65520.0, f, "toward_zero"), Fraction(65504))
    e4m3fn = parse("float8_e4m3fn")
    assert round_value(464.0, e4m3fn) == 448  # tie with the unusable 480
    assert math.isnan(round_value(464.0001, e4m3fn))
    assert round_value(464.0001, e4m3fn, overflow="sat_finite") == 448
    assert round_value(-1e9, e4m3fn, "toward_zero") == -448


@pytest.mark.parametrize(
    "name, overflow, big, inf",
    [
        ("float8_e4m3fn", "sat_none", "nan", "nan"),
        ("float8_e4m3fn", "sat_propagate", "max", "nan"),
        ("float8_e4m3fn", "sat_finite", "max", "max"),
        ("float8_e4m3fnuz", "sat_none", "nan", "nan"),
        ("float4_e2m1fn", "sat_none", "max", "max"),
        ("float4_e2m1fn", "sat_propagate", "max", "max"),
        ("binary8p3se", "sat_none", "inf", "inf"),
        ("binary8p3se", "sat_propagate", "max", "inf"),
        ("binary8p3se", "sat_finite", "max", "max"),
        ("binary8p3sf", "sat_none", "max", "max"),
        ("binary8p3sf", "sat_propagate", "max", "nan"),
    ],
)
def test_overflow_policies_without_ieee_specials(name, overflow, big, inf):
    fmt = parse(name)
    for sign in (1, -1):
        want = {"nan": math.nan, "max": sign * fmt.max_value, "inf": sign * math.inf}
        assert same(round_value(sign * 1e30, fmt, overflow=overflow), want[big])
        assert same(round_value(sign * math.inf, fmt, overflow=overflow), want[inf])


# ----------------------------------------------------- float16 vs NumPy casts
def test_float16_every_code_round_trips():
    codes = np.arange(2**16, dtype=np.uint16)
    for code, x in zip(codes.tolist(), codes.view(np.float16).astype(np.float64).tolist(), strict=True):
        r = round_value(x, FLOAT16)
        if math.isnan(x):
            assert math.isnan(r)
        else:
            assert encode_value(r, FLOAT16) == code, hex(code)


def _check_float16_against_numpy(xs: np.ndarray):
    want = float16_codes(xs)
    for x, code in zip(xs.tolist(), want.tolist(), strict=True):
        r = round_value(x, FLOAT16)
        if math.isnan(x):
            assert math.isnan(r)
        else:
            assert encode_value(r, FLOAT16) == code, (x, hex(code))


def test_float16_every_midpoint_and_neighbours_vs_numpy():
    values = np.arange(0x7C00, dtype=np.uint16).view(np.float16).astype(np.float64)
    mids = (values[:-1] + values[1:]) / 2  # exact in float64
    mids = np.concatenate([mids, [65520.0]])
    xs = np.concatenate([mids, np.nextafter(mids, np.inf), np.nextafter(mids, 0)])
    _check_float16_against_numpy(np.concatenate([xs, -xs[::7]]))


def test_float16_random_float64_vs_numpy():
    rng = np.random.default_rng(1234)
    raw = rng.integers(0, 2**64, size=4000, dtype=np.uint64).view(np.float64)
    near = rng.uniform(-1, 1, 6000) * np.exp2(rng.integers(-28, 18, 6000))
    _check_float16_against_numpy(np.concatenate([raw, near, [math.inf, -math.inf, -0.0]]))


# ------------------------------------------------------------- ml_dtypes
ML_DTYPES = [
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e5m2",
    "float8_e5m2fnuz",
    "float8_e4m3b11fnuz",
    "float8_e3m4",
    "float8_e4m3",
    "float6_e2m3fn",
    "float6_e3m2fn",
    "float4_e2m1fn",
    "bfloat16",
]
ML_DTYPES += [n for n in ("float8_e5m3fnu",) if hasattr(ml_dtypes, n)]  # an ml_dtypes type from 0.7 on


def _float32_inputs(fmt: FloatFormat, rng, n: int) -> np.ndarray:
    """Random float32s: raw bit patterns, values near the format's range, and
    every midpoint of a 4000-code sample (exact in float32), +-1 ulp."""
    raw = rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    scale = np.exp2(rng.integers(fmt.emin - fmt.man_bits - 3, fmt.emax + 3, n))
    with np.errstate(over="ignore"):
        near = (rng.uniform(-1, 1, n) * scale).astype(np.float32)
    values = np.array([float(v) for v in representable_values(fmt)], dtype=np.float32)
    if values.size > 4000:
        values = np.sort(rng.choice(values, 4000, replace=False))
    mids = ((values[:-1].astype(np.float64) + values[1:]) / 2).astype(np.float32)
    ulp = Fraction(2) ** (fmt.emax - fmt.man_bits)
    top = [float(fmt.max_value + k * ulp / 4) for k in (1, 2, 3)]  # below, at, above the tie
    mids = np.concatenate([mids, top, [-t for t in top], [np.inf, -np.inf, -0.0, 0.0]]).astype(np.float32)
    ties = np.concatenate([mids, np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(0))])
    xs = np.concatenate([raw, near, ties])
    return xs[~np.isnan(xs)]


@pytest.mark.parametrize("name", ML_DTYPES)
def test_float32_casts_vs_ml_dtypes(name):
    fmt = parse(name)
    dtype = getattr(ml_dtypes, name)
    uint = np.uint16 if fmt.bits == 16 else np.uint8
    xs = _float32_inputs(fmt, np.random.default_rng(7), 1500)
    with np.errstate(over="ignore", invalid="ignore"):
        want = xs.astype(dtype).view(uint)
    for x, code in zip(xs.astype(np.float64).tolist(), want.tolist(), strict=True):
        r = round_value(x, fmt)
        if fmt.is_nan_code(code):  # ml_dtypes keeps the input's sign on a NaN
            assert isinstance(r, float) and math.isnan(r), (name, x)
        else:
            assert encode_value(r, fmt) == code, (name, x, hex(code))


def test_e8m0fnu_vs_ml_dtypes_ties_away():
    """ml_dtypes rounds E8M0 ties up in value: our NEAREST_AWAY (0.5.0 ties to
    the even code: our NEAREST_EVEN). Positive float32 normals only: for float32
    subnormals in (2**-127, 2**-126) ml_dtypes 0.5 and 0.6 round up (e.g.
    2**-127 + 2**-149 -> 2**-126); 0.7 does not."""
    ties_even = tuple(int(p) for p in re.findall(r"\d+", ml_dtypes.__version__)[:3]) == (0, 5, 0)
    fmt = parse("float8_e8m0fnu")
    rng = np.random.default_rng(8)
    powers = np.exp2(np.arange(-126, 128, dtype=np.float64))
    ties = np.concatenate([1.5 * powers, powers, 1.25 * powers, 1.75 * powers]).astype(np.float32)
    ties = np.concatenate([ties, np.nextafter(ties, np.float32(0)), np.nextafter(ties, np.float32(np.inf))])
    raw = rng.integers(0x00800000, 0x7F800001, size=3000).astype(np.uint32).view(np.float32)
    xs = np.concatenate([ties, raw])
    with np.errstate(over="ignore"):
        want = xs.astype(ml_dtypes.float8_e8m0fnu).view(np.uint8)
    for x, code in zip(xs.astype(np.float64).tolist(), want.tolist(), strict=True):
        r = round_value(x, fmt, Rounding.NEAREST_EVEN if ties_even else Rounding.NEAREST_AWAY)
        if code == fmt.nan_code:
            assert isinstance(r, float) and math.isnan(r), x
        else:
            assert encode_value(r, fmt) == code, (x, hex(code))
    assert round_value(3.0, fmt) == 2  # ties to the even code 128 (2**1)
    assert math.isnan(round_value(0.0, fmt)) and math.isnan(round_value(-1.0, fmt))
    assert round_value(1e-300, fmt) == fmt.smallest_normal


# -------------------------------------------------- every code of every preset
SMALL_PRESETS = [n for n, f in presets("float").items() if f.bits <= 16 and n not in ("float32", "float64", "tf32")]


@pytest.mark.parametrize("name", SMALL_PRESETS)
def test_every_code_decodes_and_reencodes(name):
    fmt = parse(name)
    modes = list(Rounding) if fmt.bits <= 8 else [Rounding.NEAREST_EVEN]
    finite = set()
    for code in range(2**fmt.bits):
        value = decode_code(code, fmt)
        if fmt.is_nan_code(code):
            assert isinstance(value, float) and math.isnan(value)
            continue
        assert encode_value(value, fmt) == code, (name, hex(code), value)
        for mode in modes:
            kw = dict(random_bits=1, n_bits=3) if mode.is_stochastic else {}
            assert same(round_value(value, fmt, mode, **kw), value), (name, hex(code), mode)
        if not isinstance(value, float) or value == 0:
            finite.add(Fraction(value))
    assert representable_values(fmt) == sorted(finite)
    assert len(finite) == fmt.num_finite


# ------------------------------------------------------------------- ties
def test_ties_to_even_code_with_precision_one():
    p1 = parse("binary8p1se")  # codes are exponent fields: 2**e has code e + 64
    assert [round_value(x, p1) for x in (3.0, 6.0, 12.0, 24.0)] == [4, 4, 16, 16]
    assert [encode_value(round_value(x, p1), p1) % 2 for x in (3.0, 6.0, 12.0)] == [0, 0, 0]
    tiny = p1.smallest_normal
    assert same(round_value(tiny / 2, p1), 0.0)  # code 0 is even, 2**emin's code 1 is odd
    assert round_value(tiny * 3 / 4, p1) == tiny


def test_ties_and_to_odd_small_cases():
    f = FloatFormat(4, 2)
    assert round_value(Fraction(9, 8), f) == 1  # 1.001b -> 1.00b (even)
    assert round_value(Fraction(11, 8), f) == Fraction(3, 2)  # 1.011b -> 1.10b
    assert round_value(Fraction(9, 8), f, "nearest_away") == Fraction(5, 4)
    assert round_value(Fraction(-9, 8), f, "nearest_away") == Fraction(-5, 4)
    assert round_value(Fraction(17, 16), f, "to_odd") == Fraction(5, 4)
    assert round_value(Fraction(21, 16), f, "to_odd") == Fraction(5, 4)
    assert round_value(Fraction(3, 2), f, "to_odd") == Fraction(3, 2)  # exact stays


# --------------------------------------------------------------- underflow
def test_flush_to_zero():
    on, flush = FloatFormat(4, 3), FloatFormat(4, 3, subnormals="flush")
    below = on.smallest_normal * Fraction(255, 256)
    for mode in Rounding:
        kw = dict(random_bits=7, n_bits=3) if mode.is_stochastic else {}
        assert same(round_value(below, flush, mode, **kw), 0.0)
        assert same(round_value(-below, flush, mode, **kw), -0.0)
    for x in (on.smallest_normal, Fraction(3, 7), Fraction(-100)):
        assert round_value(x, flush) == round_value(x, on)


def test_round_to_normal_rule():
    f = FloatFormat(4, 3, subnormals="round_to_normal")
    tiny = f.smallest_normal
    assert round_value(tiny / 2, f) == tiny  # the tie goes to 2**emin (chop's rule)
    assert same(round_value(-tiny * Fraction(127, 256), f), -0.0)
    assert same(round_value(tiny / 2, f, "toward_zero"), 0.0)
    assert round_value(tiny / 1024, f, "toward_positive") == tiny
    assert round_value(-tiny / 1024, f, "to_odd") == -tiny
    assert round_value(tiny * Fraction(17, 16), f) == tiny  # normal range unchanged
    assert len(representable_values(f)) == 2 * (14 * 8) + 1 == f.num_finite


def test_signed_zero_results():
    assert same(round_value(-1e-30, FLOAT16), -0.0)
    assert same(round_value(-1e-30, FLOAT16, "toward_negative"), -FLOAT16.smallest_subnormal)
    assert same(round_value(-1e-30, parse("e4m3fnuz")), 0.0)
    assert same(round_value(-0.0, parse("binary8p3se")), 0.0)
    assert same(round_value(-0.0, parse("e4m3fn")), -0.0)
    assert same(round_value(0, FLOAT16), 0.0)


# --------------------------------------------------------------- specials
def test_specials_inputs():
    assert math.isnan(round_value(math.nan, FLOAT16))
    assert math.isnan(round_value(math.nan, parse("float4_e2m1fn")))
    unsigned = parse("binary8p3ue")
    assert math.isnan(round_value(-1.0, unsigned)) and math.isnan(round_value(-math.inf, unsigned))
    assert same(round_value(-0.0, unsigned), 0.0)
    assert same(round_value(math.inf, unsigned), math.inf)
    assert same(round_value(math.inf, parse("binary8p3uf")), unsigned.replace(specials="p3109_finite").max_value)


def test_encode_specials_and_errors():
    e4m3fn, e5m2 = parse("float8_e4m3fn"), parse("float8_e5m2")
    assert encode_value(-math.nan, e4m3fn) == 0xFF and encode_value(math.nan, e4m3fn) == 0x7F
    assert encode_value(-math.nan, e5m2) == 0xFE and encode_value(-math.inf, e5m2) == 0xFC
    assert encode_value(-math.nan, parse("e4m3fnuz")) == 0x80
    assert encode_value(-0.0, parse("e4m3fnuz")) == 0
    assert encode_value(-math.inf, parse("binary8p3se")) == 0xFF
    for v, fmt in [
        (math.nan, "float4_e2m1fn"),
        (math.inf, "float8_e4m3fn"),
        (0.0, "float8_e8m0fnu"),
        (-1.0, "binary8p3ue"),
        (Fraction(1, 3), "float16"),
        (480, "float8_e4m3fn"),
        (2.0**-30, "float16"),
    ]:
        with pytest.raises(ValueError):
            encode_value(v, parse(fmt))
    assert decode_code(0x80, e4m3fn) == 0 and math.copysign(1, decode_code(0x80, e4m3fn)) == -1


def test_argument_validation():
    with pytest.raises(ValueError, match="random_bits"):
        round_value(1.5, FLOAT16, "stochastic_a")
    with pytest.raises(ValueError, match="random_bits"):
        round_value(1.5, FLOAT16, "stochastic_a", random_bits=8, n_bits=3)
    with pytest.raises(ValueError, match="deterministic"):
        round_value(1.5, FLOAT16, random_bits=1, n_bits=3)
    with pytest.raises(TypeError, match="x must be"):
        round_value("1.5", FLOAT16)
    with pytest.raises(TypeError, match="fmt"):
        round_value(1.5, 16)
    with pytest.raises(ValueError, match="rounding"):
        round_value(1.5, FLOAT16, "nearest_odd")
    with pytest.raises(TypeError, match="code"):
        decode_code(1.0, FLOAT16)
    with pytest.raises(ValueError, match="24 bits"):
        representable_values(parse("float32"))


# ------------------------------------------------------------- stochastic
@settings(max_examples=300)
@given(ieee_case(), st.sampled_from(STOCHASTIC), st.integers(1, 6))
def test_stochastic_counts_vs_mpfr_neighbours(case, rounding, n):
    """Over all 2**N random words: results are the MPFR RTZ/RTA neighbours, the
    up decisions form the top of the range (A, B, C), and their number is
    floor(v 2^N) (A), floor(v 2^N + 1/2) (B), RNE(v 2^N) (C), 2^(N-1) (EQUAL)."""
    fmt, x = case
    if math.isnan(x) or math.isinf(x) or x == 0:
        return
    down = mpfr_round(x, fmt, gmpy2.RoundToZero, emax=10**6)
    up = mpfr_round(x, fmt, gmpy2.RoundAwayZero, emax=10**6)
    results = [round_value(x, fmt, rounding, random_bits=r, n_bits=n) for r in range(2**n)]
    exact = Fraction(x)
    if down == exact:
        assert all(same(r, round_value(x, fmt)) for r in results)
        return
    v = (exact - Fraction(down)) / (Fraction(up) - Fraction(down))
    want_up = {
        Rounding.STOCHASTIC: math.floor(v * 2**n),
        Rounding.STOCHASTIC_A: math.floor(v * 2**n),
        Rounding.STOCHASTIC_B: math.floor(v * 2**n + Fraction(1, 2)),
        Rounding.STOCHASTIC_C: round(v * 2**n),  # Fraction rounds half to even
        Rounding.STOCHASTIC_EQUAL: 2 ** (n - 1),
    }[rounding]
    if abs(Fraction(down)) > fmt.max_value:  # both neighbours overflow
        assert all(same(r, math.copysign(math.inf, x)) for r in results)
        return
    over = abs(Fraction(up)) > fmt.max_value
    up_result = math.copysign(math.inf, x) if over else canon(up)
    down_result = canon(down) if Fraction(down) != 0 else math.copysign(0.0, x)
    went_up = [same(r, up_result) for r in results]
    assert all(u or same(r, down_result) for r, u in zip(results, went_up, strict=True))
    assert sum(went_up) == want_up, (fmt, x, rounding, n)
    if rounding is not Rounding.STOCHASTIC_EQUAL:
        assert went_up == sorted(went_up)  # up iff R >= threshold
