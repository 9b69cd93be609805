"""Format facts, presets and the string grammar."""

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given

import numfmt
import numfmt.testing
from numfmt import FloatFormat

ML_DTYPES = [
    "bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz", "float8_e4m3", "float8_e5m2",
    "float8_e5m2fnuz", "float8_e3m4", "float8_e8m0fnu", "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn",
]  # fmt: skip
ML_DTYPES += [n for n in ("float8_e5m3fnu",) if hasattr(ml_dtypes, n)]  # an ml_dtypes type from 0.7 on


@pytest.mark.parametrize("name", ML_DTYPES + ["float16", "float32", "float64"])
def test_facts_match_finfo(name):
    fmt = numfmt.parse(name)
    dtype = getattr(ml_dtypes, name, None) or getattr(np, name)
    info = ml_dtypes.finfo(dtype)
    assert fmt.bits == info.bits
    assert fmt.max_value == Fraction(float(info.max))
    assert fmt.smallest_normal == Fraction(float(info.smallest_normal))
    assert fmt.smallest_subnormal == Fraction(float(info.smallest_subnormal))
    assert fmt.eps == Fraction(float(info.eps))
    assert fmt.precision == info.nmant + 1


@pytest.mark.parametrize("name", ML_DTYPES + ["float16"])
def test_num_finite_counts_codes(name):
    fmt = numfmt.parse(name)
    codes = np.arange(2**fmt.bits, dtype=np.uint32).astype(np.uint16 if fmt.bits > 8 else np.uint8)
    with np.errstate(invalid="ignore"):  # NaN codes
        values = codes.view(getattr(ml_dtypes, name, None) or np.float16).astype(np.float64)
    finite = values[np.isfinite(values)]
    assert fmt.num_finite == len(np.unique(finite))


def test_p3109_layout():
    f = numfmt.parse("binary8p3se")
    assert (f.exp_bits, f.man_bits, f.bias) == (5, 2, 16)
    assert (f.nan_code, f.inf_code, f.max_magnitude_code) == (0x80, 0x7F, 0x7E)
    u = numfmt.parse("binary8p3ue")
    assert (u.exp_bits, u.bias, u.nan_code, u.inf_code) == (6, 32, 0xFF, 0xFE)
    assert numfmt.parse("binary8p3sf").max_value == numfmt.parse("binary8p3sf").code_to_value(0x7F)
    p1 = numfmt.parse("binary8p1se")
    assert p1.code_to_value(1) == Fraction(2) ** (1 - 64) and p1.code_to_value(0) == 0


def test_derived_facts_exact_beyond_float64():
    f = FloatFormat(15, 112)  # IEEE binary128
    assert f.max_value == (2 - Fraction(1, 2**112)) * Fraction(2) ** 16383
    assert f.smallest_subnormal == Fraction(1, 2 ** (16382 + 112))
    assert f.unit_roundoff == Fraction(1, 2**113)


# every variant, E <= 11, M <= 30, any bias (values beyond float64 included)
formats = numfmt.testing.formats(max_bits=42, exact_in=None, exp_bits=(2, 11), man_bits=(1, 30))


@given(formats)
def test_grammar_round_trip(fmt):
    assert numfmt.parse(str(fmt)) == fmt
    assert hash(numfmt.parse(fmt.spec)) == hash(fmt)


@pytest.mark.parametrize("name", sorted(numfmt.presets()))
def test_preset_names_round_trip(name):
    fmt = numfmt.parse(name)
    assert str(fmt) == name
    assert numfmt.parse(fmt.spec) == fmt


FAMILY_TYPES = {
    "float": numfmt.FloatFormat,
    "posit": numfmt.PositFormat,
    "fixed": numfmt.FixedFormat,
    "block": numfmt.BlockFormat,
    "scaled": numfmt.ScaledIntFormat,
}


def test_presets_by_family():
    everything = numfmt.presets()
    by_family = {family: numfmt.presets(family) for family in FAMILY_TYPES}
    # the families partition presets(), in the order float, posit, fixed, block, scaled
    assert list(everything) == [name for named in by_family.values() for name in named]
    for family, named in by_family.items():
        assert named, family
        assert all(type(f) is FAMILY_TYPES[family] for f in named.values()), family
    assert {"posit8_0", "posit16_1", "posit32_2"} <= set(by_family["posit"])
    assert {f"{s}int{b}" for s in ("", "u") for b in (1, 2, 4, 8, 16, 32, 64)} == set(by_family["fixed"])
    assert set(by_family["block"]) == {
        "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4_e2m1", "mxint8", "nvfp4", "nf4",
    }  # fmt: skip
    assert numfmt.presets("float") is not numfmt.presets("float")  # a new dict each call


def test_every_preset_but_p3109_is_a_module_attribute():
    for name, fmt in numfmt.presets().items():
        if name.startswith("binary"):
            assert not hasattr(numfmt, name)
        else:
            assert getattr(numfmt, name) is fmt and name in numfmt.__all__, name


@pytest.mark.parametrize("family", ["Float", "posits", "int", ""])
def test_presets_unknown_family(family):
    with pytest.raises(ValueError, match=r"unknown family; valid families are 'float', 'posit', 'fixed', 'block'"):
        numfmt.presets(family)


@pytest.mark.parametrize(
    ("alias", "name"),
    [("e4m3fn", "float8_e4m3fn"), ("bf16", "bfloat16"), ("HALF", "float16"), ("e2m1fn", "float4_e2m1fn")],
)
def test_aliases(alias, name):
    assert numfmt.parse(alias) is numfmt.parse(name)


def test_p3109_any_k():
    f = numfmt.parse("binary16p11se")
    assert (f.exp_bits, f.man_bits, f.bias, f.bits) == (5, 10, 16, 16)


def test_presets_are_hashable_static_args():
    assert len({numfmt.float8_e4m3fn: 1, FloatFormat(4, 3, specials="fn"): 2}) == 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("float8_e4m3f", "float8_e4m3fn"),
        ("e4m3fnz", "e4m3fnuz"),
        ("binary8p8se", "P=8 is out of range"),
        ("binary17p3se", "K=17 is out of range"),
        ("binary2p1se", "no positive finite value"),
        ("float(e=4)", "missing required key"),
        ("float(e=4,m=3,colour=red)", "unknown key 'colour'"),
        ("float(e=x,m=3)", "not an integer"),
        ("float(e=4,m=3,specials=weird)", "unknown specials"),
    ],
)
def test_parse_errors_name_the_fix(spec, message):
    with pytest.raises(ValueError, match=message):
        numfmt.parse(spec)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(exp_bits=0, man_bits=3), ValueError, "exp_bits=0"),
        (dict(exp_bits=4, man_bits=-1), ValueError, "man_bits=-1"),
        (dict(exp_bits=4, man_bits=3, bias=2**30), ValueError, "bias=.*out of range"),
        (dict(exp_bits=4.0, man_bits=3), TypeError, "exp_bits must be an int"),
        (dict(exp_bits=4, man_bits=3, specials="posit"), ValueError, "unknown specials 'posit'"),
        (dict(exp_bits=4, man_bits=0), ValueError, "specials='ieee'"),
        (dict(exp_bits=4, man_bits=3, signed=False), ValueError, "signed=False needs"),
        (dict(exp_bits=1, man_bits=0, specials="fn"), ValueError, "no positive finite value"),
    ],
)
def test_invalid_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        FloatFormat(**kwargs)


def test_parse_rejects_non_strings():
    with pytest.raises(TypeError, match="format object or a string"):
        numfmt.parse(8)
