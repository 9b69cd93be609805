"""Posits: facts, grammar, exhaustive codes vs the exact reference, SoftPosit,
stochastic rounding, NumPy == JAX (eager and jitted), errors.

Regimes: exact values, bit-string midpoints and +-1 ulp around them (ties),
beyond maxpos (saturation), below minpos (never to zero), specials (NaN, inf,
-0 -> NaR / 0).
"""

from fractions import Fraction

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import softposit as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import numfmt
from numfmt.core.rounding import Overflow, Rounding
from numfmt.core.xp import NUMPY
from numfmt.posit.format import PositFormat
from numfmt.posit.kernel import make_posit_plan
from numfmt.posit.reference import posit_round, posit_value
from numfmt.testing import assert_bits_equal, assert_unbiased, grid_points

DETERMINISTIC = ["nearest_even", "nearest_away", "toward_zero", "toward_positive", "toward_negative", "to_odd"]
SR_MODES = ["stochastic", "stochastic_a", "stochastic_b", "stochastic_c", "stochastic_equal"]


def all_codes(fmt):
    return np.arange(1 << fmt.n, dtype=np.uint64 if fmt.n > 32 else np.uint32)


def reference_codes(x, fmt, mode):
    return np.array([posit_round(float(v), fmt.n, fmt.es, Rounding.parse(mode)) for v in x])


# ------------------------------------------------------------------ facts
def test_facts():
    f = numfmt.posit16_1
    assert (f.n, f.es, f.bits, f.useed, f.nar_code, f.num_finite) == (16, 1, 16, 4, 0x8000, 65535)
    assert f.maxpos == 2**28 and f.minpos == Fraction(1, 2**28) and f.eps == Fraction(1, 2**12)
    g = numfmt.posit32_2
    assert g.maxpos == 2**120 and g.eps == Fraction(1, 2**27)
    assert numfmt.posit8_0.maxpos == 64 and numfmt.posit8_0.eps == Fraction(1, 32)
    for fmt in (numfmt.posit8_2, PositFormat(5, 3), PositFormat(2, 0)):
        values = [fmt.code_to_value(c) for c in range(1 << fmt.n) if c != fmt.nar_code]
        assert max(values) == fmt.maxpos and min(v for v in values if v > 0) == fmt.minpos
        assert len(set(values)) == fmt.num_finite


@pytest.mark.parametrize("spec", ["posit16_1", "posit32_2", "posit(n=12,es=2)", "Posit8_0", "posit(es=3,n=5)"])
def test_grammar_round_trip(spec):
    fmt = numfmt.parse(spec)
    assert isinstance(fmt, PositFormat)
    assert numfmt.parse(str(fmt)) == fmt and hash(numfmt.parse(str(fmt))) == hash(fmt)
    assert numfmt.parse("posit(n=12,es=2)") == PositFormat(12, 2) and str(PositFormat(12, 2)) == "posit12_2"


@pytest.mark.parametrize(
    "spec, match",
    [
        ("posit16", "does not say es"),
        ("posit(n=12)", "both n and es"),
        ("posit(n=12,es=x)", "not valid"),
        ("posit1_0", "n=1 is out of range"),
        ("posit33_2", "n=33 is out of range"),
        ("posit(n=8,es=-1)", "es=-1 is out of range"),
    ],
)
def test_bad_grammar(spec, match):
    with pytest.raises(ValueError, match=match):
        numfmt.parse(spec)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="es=-1 is out of range"):
        PositFormat(8, -1)
    with pytest.raises(ValueError, match="n=40"):
        PositFormat(40, 2)
    with pytest.raises(TypeError, match="n must be an int"):
        PositFormat(8.0, 2)


def test_bad_chop_arguments():
    x = np.float32([1.0])
    with pytest.raises(ValueError, match="one overflow rule"):
        numfmt.chop(x, "posit16_1", overflow="sat_none")
    with pytest.raises(ValueError, match="pass float64 input"):
        numfmt.chop(np.float16([1.0]), "posit16_1")  # maxpos 2**28 > float16 max
    with pytest.raises(ValueError, match="beyond what float64 holds"):
        numfmt.chop(np.float64([1.0]), "posit32_6")
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 2\*\*8\)"):
        numfmt.decode(np.array([256]), "posit8_0")
    with pytest.raises(ValueError, match="cannot hold every value"):
        numfmt.decode(np.array([1]), "posit32_2", dtype=np.float32)


# -------------------------------------------------- exhaustive, reference
@pytest.mark.parametrize("es", [0, 1, 2, 3])
@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 9])
def test_small_formats_every_code_and_midpoint_every_mode(n, es):
    fmt = PositFormat(n, es)
    values = numfmt.decode(all_codes(fmt), fmt, dtype=np.float64)
    for c, v in enumerate(values):
        want = posit_value(c, n, es)
        assert (want is None and np.isnan(v)) or Fraction(float(v)) == want == fmt.code_to_value(c)
    x = grid_points(fmt)
    for mode in DETERMINISTIC:
        np.testing.assert_array_equal(numfmt.encode(x, fmt, mode), reference_codes(x, fmt, mode), err_msg=mode)


@pytest.mark.parametrize("name", ["posit16_1", "posit16_2", "posit(n=13,es=3)"])
def test_16_bit_every_code_midpoint_and_neighbour(name):
    fmt = numfmt.parse(name)
    codes = all_codes(fmt)
    values = numfmt.decode(codes, fmt, dtype=np.float32)
    np.testing.assert_array_equal(numfmt.encode(values, fmt), codes)  # decode, re-encode
    x = grid_points(fmt, np.float32)
    np.testing.assert_array_equal(numfmt.encode(x, fmt), reference_codes(x, fmt, "nearest_even"))


# ------------------------------------------------------------- SoftPosit
def softposit_codes(x, n, es):
    if (n, es) == (8, 0):
        return np.array([sp.convertDoubleToP8(float(v)).v for v in x])
    if (n, es) == (16, 1):
        return np.array([sp.convertDoubleToP16(float(v)).v for v in x])
    if (n, es) == (32, 2):
        return np.array([sp.convertDoubleToP32(float(v)).v for v in x])
    return np.array([sp.convertDoubleToPX2(float(v), n).v >> (32 - n) for v in x])


def softposit_value(code, n, es):
    if (n, es) == (8, 0):
        p, f = sp.posit8_t(), sp.convertP8ToDouble
    elif (n, es) == (16, 1):
        p, f = sp.posit16_t(), sp.convertP16ToDouble
    else:
        p, f = sp.posit_2_t(), sp.convertPX2ToDouble
        code <<= 32 - n
    p.v = int(code)
    return f(p)


SOFTPOSIT = [(8, 0), (16, 1), (32, 2)] + [(n, 2) for n in range(2, 33)]


@pytest.mark.parametrize("n, es", SOFTPOSIT, ids=lambda v: str(v))
def test_softposit_random_float32_patterns(n, es):
    fmt = PositFormat(n, es)
    x = np.random.default_rng(n).integers(0, 2**32, size=2000, dtype=np.uint32).view(np.float32)
    x = np.concatenate([x, np.float32([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0])])
    np.testing.assert_array_equal(numfmt.encode(x, fmt), softposit_codes(x, n, es))
    codes = np.random.default_rng(n + 100).integers(0, 2**n, size=500, dtype=np.uint64)
    got = numfmt.decode(codes, fmt, dtype=np.float64)
    want = np.array([softposit_value(int(c), n, es) for c in codes])
    assert_bits_equal(got, np.where(codes == fmt.nar_code, np.nan, want))


@pytest.mark.parametrize("n, es", [(8, 0), (16, 1), (32, 2)] + [(n, 2) for n in (5, 12, 20, 27)])
@settings(max_examples=40)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=64, max_size=64))
def test_softposit_float64_patterns(n, es, bits):
    x = np.array(bits, np.uint64).view(np.float64)
    np.testing.assert_array_equal(numfmt.encode(x, PositFormat(n, es)), softposit_codes(x, n, es))


def test_softposit_posit8_every_code_and_midpoint():
    fmt = numfmt.posit8_0
    x = grid_points(fmt)
    np.testing.assert_array_equal(numfmt.encode(x, fmt), softposit_codes(x, 8, 0))


# ------------------------------------------------------- dtypes and specials
@pytest.mark.parametrize("dtype", [np.float32, np.float64, ml_dtypes.bfloat16])
def test_specials_and_saturation(dtype):
    f = numfmt.posit16_1
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e30, -1e30, 1e-30, -1e-30], dtype)
    y = numfmt.chop(x, f)
    want = np.array([np.nan, np.nan, np.nan, 0.0, 0.0, 2.0**28, -(2.0**28), 2.0**-28, -(2.0**-28)], dtype)
    assert_bits_equal(y, want)
    assert not np.signbit(y[3])  # no -0
    codes = numfmt.encode(x, f)
    assert codes.dtype == np.uint16
    np.testing.assert_array_equal(codes, [0x8000, 0x8000, 0x8000, 0, 0, 0x7FFF, 0x8001, 1, 0xFFFF])


@pytest.mark.parametrize("dtype, name", [(np.float16, "posit8_0"), (ml_dtypes.bfloat16, "posit16_1")])
def test_every_input_pattern_of_16_bit_dtypes(dtype, name):
    fmt = numfmt.parse(name)
    x = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(dtype)
    got = numfmt.encode(x, fmt)
    if dtype == np.float16:
        exact = x.astype(np.float64)
    else:  # bfloat16 -> float32 by its bits (a cast would warn on signalling NaNs)
        exact = (x.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    with np.errstate(invalid="ignore"):  # signalling NaN patterns
        want = softposit_codes(exact.astype(np.float64), fmt.n, fmt.es)
    np.testing.assert_array_equal(got, want)
    y = numfmt.chop(x, fmt)
    assert_bits_equal(y, numfmt.decode(got, fmt, dtype=np.float64).astype(x.dtype))


# ------------------------------------------------------------- stochastic
def kernel_with_bits(x, fmt, mode, rbits, nbits):
    plan = make_posit_plan(fmt, x.dtype, Rounding.parse(mode), Overflow.SAT_FINITE, nbits)
    out, _ = plan.round_bits(NUMPY, x.view(np.uint32), rbits)
    return out.view(np.float32)


@pytest.mark.parametrize("mode", SR_MODES)
@pytest.mark.parametrize("name", ["posit8_2", "posit(n=6,es=1)", "posit16_1"])
def test_stochastic_decisions_match_reference(name, mode):
    fmt = numfmt.parse(name)
    rng = np.random.default_rng(11)
    x = rng.integers(0, 2**32, size=300, dtype=np.uint32).view(np.float32)
    x = np.concatenate([x, rng.uniform(-4, 4, 300).astype(np.float32)])
    x = x[np.isfinite(x)]
    nbits = {"stochastic": 31, "stochastic_equal": 1}.get(mode, 7)
    rbits = rng.integers(0, 2**32, size=x.size, dtype=np.uint32)
    got = kernel_with_bits(x, fmt, mode, rbits, nbits)
    r = rbits >> np.uint32(32 - nbits)
    mode_ = Rounding.parse(mode)
    want = [posit_round(float(v), fmt.n, fmt.es, mode_, int(ri), nbits) for v, ri in zip(x, r, strict=True)]
    want = numfmt.decode(np.array(want, np.uint32), fmt, dtype=np.float64).astype(np.float32)
    assert_bits_equal(got, want)


@pytest.mark.parametrize("v", [0.125, 0.5, 0.8125])
def test_stochastic_frequency_is_the_distance(v):
    lo, hi = 1.0, 1.0 + 2.0**-12  # neighbours in posit16_1
    x = np.array([lo + v * (hi - lo), -(lo + v * (hi - lo))], np.float64)
    rng = np.random.default_rng(1)
    assert_unbiased(lambda a: numfmt.chop(a, "posit16_1", "stochastic", key=rng), x, 100_000, fmt="posit16_1")


def test_stochastic_never_zero_nor_nar_and_exact_values_stay():
    fmt = numfmt.posit8_2
    values = numfmt.decode(all_codes(fmt), fmt, dtype=np.float32)
    values = values[~np.isnan(values)]
    for mode in SR_MODES:
        extra = {"random_bits": 5} if mode[-2:] in ("_a", "_b", "_c") else {}
        assert_bits_equal(numfmt.chop(values, fmt, mode, key=3, **extra), values)
    tiny = np.full(1000, 1e-30, np.float32)
    huge = np.full(1000, 1e30, np.float32)
    assert (numfmt.chop(tiny, fmt, "stochastic", key=4) == np.float32(2.0**-24)).all()
    assert (numfmt.chop(huge, fmt, "stochastic", key=4) == np.float32(2.0**24)).all()


# ------------------------------------------------------------------- JAX
@pytest.mark.parametrize("name", ["posit8_0", "posit16_1", "posit32_2", "posit(n=10,es=3)"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, jnp.bfloat16])
def test_jax_eager_and_jit_equal_numpy(name, dtype):
    fmt = numfmt.parse(name)
    if fmt.max_scale > 127 and dtype != np.float64:
        pytest.skip("format range exceeds the dtype (refusal tested in test_bad_chop_arguments)")
    bits = np.dtype(dtype).itemsize * 8
    x = np.random.default_rng(0).integers(0, 2**bits, size=1 << 14, dtype=f"uint{bits}").view(dtype)
    for mode in ["nearest_even", "toward_zero", "to_odd"]:
        want = numfmt.chop(x, fmt, mode)
        xj = jnp.asarray(x)
        assert_bits_equal(numfmt.chop(xj, fmt, mode), want, nan_payload=True)
        assert_bits_equal(jax.jit(lambda v, m=mode: numfmt.chop(v, fmt, m))(xj), want, nan_payload=True)
    codes = numfmt.encode(x, fmt)
    np.testing.assert_array_equal(jax.jit(lambda v: numfmt.encode(v, fmt))(jnp.asarray(x)), codes)
    assert_bits_equal(jax.jit(lambda c: numfmt.decode(c, fmt))(jnp.asarray(codes)), numfmt.decode(codes, fmt))


def test_jax_stochastic_equals_numpy_with_the_same_key():
    x = np.random.default_rng(2).uniform(-100, 100, 4096).astype(np.float32)
    key = jax.random.key(5)
    want = numfmt.chop(x, "posit16_1", "stochastic", key=key)
    got = jax.jit(lambda v, k: numfmt.chop(v, "posit16_1", "stochastic", key=k))(jnp.asarray(x), key)
    assert_bits_equal(got, want)
