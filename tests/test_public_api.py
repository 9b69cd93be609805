"""The public API: ``numfmt.__all__`` and ``numfmt.testing.__all__`` (as before the layout change, plus the
presets float8_e5m3fnu, int1 and uint1 added with it, and get_num_threads/set_num_threads since).

Only ``numfmt`` and ``numfmt.testing`` are public; everything under
``numfmt.core``, the family packages and the wings may move. This records the
two faces so that a reorganisation cannot drop or rename a public name.
"""

import importlib

import pytest

import numfmt

NUMFMT_ALL = [
    "BlockFormat",
    "FixedFormat",
    "FixedOverflow",
    "FloatFormat",
    "InfPolicy",
    "IntElement",
    "PositFormat",
    "ScaleRule",
    "ScaledIntFormat",
    "bfp",
    "mx",
    "pack_nibbles",
    "unpack_nibbles",
    "Overflow",
    "Policy",
    "Rounding",
    "Specials",
    "Subnormals",
    "chop",
    "decode",
    "emulate",
    "encode",
    "get_num_threads",
    "parse",
    "presets",
    "set_num_threads",
    "bfloat16",
    "float16",
    "float32",
    "float4_e2m1fn",
    "float64",
    "float6_e2m3fn",
    "float6_e3m2fn",
    "float8_e3m4",
    "float8_e4m3",
    "float8_e4m3b11fnuz",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e5m2",
    "float8_e5m2fnuz",
    "float8_e5m3fnu",
    "float8_e8m0fnu",
    "int1",
    "int16",
    "int2",
    "int32",
    "int4",
    "int4_asym_g128",
    "int4_g128",
    "int4_g32",
    "int64",
    "int8",
    "int8_asym_per_tensor",
    "int8_g32",
    "int8_per_channel",
    "int8_per_tensor",
    "mxfp4_e2m1",
    "mxfp6_e2m3",
    "mxfp6_e3m2",
    "mxfp8_e4m3",
    "mxfp8_e5m2",
    "mxint8",
    "nf4",
    "nvfp4",
    "posit16_1",
    "posit16_2",
    "posit32_2",
    "posit8_0",
    "posit8_1",
    "posit8_2",
    "tf32",
    "uint1",
    "uint16",
    "uint2",
    "uint32",
    "uint4",
    "uint64",
    "uint8",
    "uint8_asym_per_channel",
    "uint8_asym_per_tensor",
]
TESTING_ALL = [
    "assert_bits_equal",
    "assert_representable",
    "assert_rounds_like",
    "assert_unbiased",
    "boundary_values",
    "float_bits",
    "formats",
    "grid_points",
    "keys",
    "values",
]


def test_numfmt_all_is_unchanged():
    assert list(numfmt.__all__) == NUMFMT_ALL


def test_testing_all_is_unchanged():
    testing = importlib.import_module("numfmt.testing")
    assert list(testing.__all__) == TESTING_ALL


@pytest.mark.parametrize("name", NUMFMT_ALL)
def test_numfmt_names_resolve(name):
    obj = getattr(numfmt, name)
    assert not isinstance(obj, type(numfmt)), f"numfmt.{name} is a module, not the public object"


@pytest.mark.parametrize("name", TESTING_ALL)
def test_testing_names_resolve(name):
    testing = importlib.import_module("numfmt.testing")
    obj = getattr(testing, name)
    assert callable(obj) and not isinstance(obj, type(numfmt)), name
