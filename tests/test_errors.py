"""Bad input gets a clear error that names the argument and the fix."""

import ml_dtypes
import numpy as np
import pytest

import numfmt


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.arange(3), "dtype int64.*Convert integers"),
        (np.ones(3, np.complex64), "dtype complex64"),
        (np.array([1.0], dtype=object), "dtype object"),
        (np.array([True]), "dtype bool"),
        (np.ones(3, ml_dtypes.float8_e4m3fn), "convert exactly"),
    ],
)
def test_unsupported_arrays(x, message):
    with pytest.raises(TypeError, match=message):
        numfmt.chop(x, "bfloat16")


def test_unknown_names_suggest_close_ones():
    with pytest.raises(ValueError, match="Closest names: float8_e4m3fn"):
        numfmt.chop(np.ones(2), "float8_e4m3f")
    with pytest.raises(ValueError, match="unknown rounding 'nearest_eve'.*Did you mean 'nearest_even'"):
        numfmt.chop(np.ones(2), "bfloat16", "nearest_eve")
    with pytest.raises(ValueError, match="unknown overflow 'clamp'"):
        numfmt.chop(np.ones(2), "bfloat16", overflow="clamp")
    with pytest.raises(TypeError, match="rounding must be a Rounding member"):
        numfmt.chop(np.ones(2), "bfloat16", 1)


@pytest.mark.parametrize(
    ("name", "listed"),
    [
        ("fp8_e4m3", r"float8_e4m3fn \(OCP FP8 E4M3, max 448, no inf\); float8_e4m3 \(IEEE-style, max 240, inf\)"),
        ("OCP_E4M3", r"float8_e4m3fn \(OCP FP8 E4M3, max 448"),
        ("fp8_e5m2", r"float8_e5m2 \(OCP FP8 E5M2, IEEE-style, max 57344, inf\); float8_e5m2fnuz \(max 57344"),
        ("fp4_e2m1", r"float4_e2m1fn \(OCP MX FP4, max 6, no inf\)"),
    ],
)
def test_unknown_fp8_names_list_the_formats_with_that_layout(name, listed):
    with pytest.raises(ValueError, match=f"unknown format '{name}'. Formats with the layout [^:]+: {listed}"):
        numfmt.parse(name)


def test_bare_e4m3_is_the_ieee_style_format_not_ocp():
    # Kept for compatibility (ml_dtypes' short name); documented in README and docs/concepts/formats.md.
    for name in ("E4M3", "e4m3", "float8_e4m3"):
        f = numfmt.parse(name)
        assert f is numfmt.float8_e4m3 and f.max_value == 240 and f.has_inf
    assert numfmt.parse("e4m3fn").max_value == 448


def test_stochastic_needs_a_key_and_deterministic_refuses_one():
    with pytest.raises(ValueError, match="needs key="):
        numfmt.chop(np.ones(2), "bfloat16", "stochastic")
    with pytest.raises(ValueError, match="is deterministic"):
        numfmt.chop(np.ones(2), "bfloat16", key=0)
    with pytest.raises(TypeError, match="key must be"):
        numfmt.chop(np.ones(2), "bfloat16", "stochastic", key="seed")


def test_random_bits_rules():
    with pytest.raises(ValueError, match="needs random_bits=N"):
        numfmt.chop(np.ones(2), "bfloat16", "stochastic_a", key=0)
    with pytest.raises(ValueError, match="random_bits=32 is out of range.*1..31"):
        numfmt.chop(np.ones(2, np.float32), "bfloat16", "stochastic_b", key=0, random_bits=32)
    with pytest.raises(ValueError, match="only used by stochastic_a"):
        numfmt.chop(np.ones(2), "bfloat16", "stochastic", key=0, random_bits=8)


def test_result_the_dtype_cannot_hold_is_an_error_not_inf():
    with pytest.raises(ValueError, match="float16 cannot hold.*1 elements, first input 65504.0"):
        numfmt.chop(np.float16([1.0, 65504.0]), "bfloat16")
    # rounding down is fine, and so is a float32 input
    assert numfmt.chop(np.float16([65504.0]), "bfloat16", "toward_zero")[0] == 65280
    assert numfmt.chop(np.float32([65504.0]), "bfloat16")[0] == 65536


def test_encode_refuses_nan_for_formats_without_nan():
    with pytest.raises(ValueError, match="cannot encode.*no NaN"):
        numfmt.encode(np.float32([1.0, np.nan]), "float4_e2m1fn")


def test_decode_checks_codes_and_dtype():
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 2\*\*4\)"):
        numfmt.decode(np.array([16]), "float4_e2m1fn")
    with pytest.raises(TypeError, match="integer array"):
        numfmt.decode(np.array([1.0]), "float4_e2m1fn")
    with pytest.raises(ValueError, match="dtype=float16 cannot hold"):
        numfmt.decode(np.array([1], np.uint8), "float8_e8m0fnu", dtype=np.float16)
    assert numfmt.decode(np.array([0], np.uint8), "float8_e8m0fnu").dtype == np.float32


def test_specials_per_format():
    x = np.float32([np.inf, -np.inf, -0.0, 1e30, -1e-30])
    np.testing.assert_array_equal(numfmt.chop(x, "float8_e5m2"), np.float32([np.inf, -np.inf, -0.0, np.inf, -0.0]))
    assert np.signbit(numfmt.chop(x, "float8_e5m2")[[2, 4]]).all()
    fn = numfmt.chop(x, "float8_e4m3fn")
    assert np.isnan(fn[[0, 1, 3]]).all() and np.signbit(fn[[2, 4]]).all()
    fnuz = numfmt.chop(x, "float8_e4m3fnuz")
    assert not np.signbit(fnuz[[2, 4]]).any()  # no -0 in fnuz
    np.testing.assert_array_equal(numfmt.chop(x, "float4_e2m1fn")[:2], [6.0, -6.0])  # saturates
    sat = numfmt.chop(x, "float8_e5m2", overflow="sat_finite")
    np.testing.assert_array_equal(sat[[0, 1, 3]], [57344.0, -57344.0, 57344.0])
    prop = numfmt.chop(x, "float8_e5m2", overflow="sat_propagate")
    np.testing.assert_array_equal(prop[[0, 1, 3]], [np.inf, -np.inf, 57344.0])
    e8m0 = numfmt.chop(np.float32([0.0, -1.0, 2.0**-140]), "float8_e8m0fnu")
    assert np.isnan(e8m0[:2]).all() and e8m0[2] == 2.0**-127


@pytest.mark.parametrize(
    ("mode", "pos", "neg"),
    [
        ("nearest_even", np.inf, -np.inf),
        ("toward_zero", 57344.0, -57344.0),
        ("toward_positive", np.inf, -57344.0),
        ("toward_negative", 57344.0, -np.inf),
        ("to_odd", 57344.0, -57344.0),
    ],
)
def test_ieee_overflow_by_rounding_mode(mode, pos, neg):
    np.testing.assert_array_equal(numfmt.chop(np.float32([1e6, -1e6]), "float8_e5m2", mode), [pos, neg])


def test_e4m3fn_464_is_the_tie():
    x = np.float32([464.0, np.nextafter(np.float32(464), np.float32(500)), 500.0])
    np.testing.assert_array_equal(numfmt.chop(x, "e4m3fn")[:1], [448.0])
    assert np.isnan(numfmt.chop(x, "e4m3fn")[1:]).all()
    np.testing.assert_array_equal(numfmt.chop(x, "e4m3fn", overflow="sat_finite"), [448.0, 448.0, 448.0])


def test_scalars_keep_their_type():
    y = numfmt.chop(np.float32(0.1), "bfloat16")
    assert isinstance(y, np.float32)
    assert isinstance(numfmt.chop(0.1, "bfloat16"), np.float64)
    assert numfmt.chop(np.zeros((2, 0, 3), np.float32), "e4m3fn").shape == (2, 0, 3)


def test_masked_arrays_and_matrices_are_refused_not_dropped():
    """Regression: chop of a masked array dropped the mask, rounded the masked
    data and raised about values the user had masked out."""
    m = np.ma.masked_array([1.0, 1e9, 3.3], mask=[False, True, False])
    for call in (lambda: numfmt.chop(m, "float16"), lambda: numfmt.encode(m, "int8"),
                 lambda: numfmt.chop(m, "mxfp4_e2m1"), lambda: numfmt.encode(m, "int8_per_tensor")):  # fmt: skip
        with pytest.raises(TypeError, match=r"x is a numpy.ma.MaskedArray.*mask=x.mask"):
            call()
    with pytest.warns(PendingDeprecationWarning):
        matrix = np.matrix([[1.0, 2.0]])
    with pytest.raises(TypeError, match=r"x is a numpy.matrix.*pass np.asarray\(x\)"):
        numfmt.chop(matrix, "bfloat16")
    codes = np.ma.masked_array(np.array([1, 2], np.uint8), mask=[False, True])
    with pytest.raises(TypeError, match=r"codes is a numpy.ma.MaskedArray.*numfmt.decode\(codes.filled"):
        numfmt.decode(codes, "int8")
    with pytest.raises(TypeError, match="codes is a numpy.ma.MaskedArray"):
        numfmt.decode((codes, np.ones(1, np.uint8)), "mxfp4_e2m1")
