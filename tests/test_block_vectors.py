"""Block formats: the vectors of shared/FORMATS.md and edge cases, checked against
the exact block reference and hand-derived values (bits, not tolerances)."""

import dataclasses
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numfmt
from numfmt.block.reference import as_dtype, quantize_block, tensor_scale
from numfmt.testing import assert_bits_equal, formats

V = [1, -2, 3, 0.5, 0.3, -7, 100, 0.01]




def check_against_reference(x, f):
    _, _, ref = quantize_block([float(v) for v in x], f)
    want = as_dtype(ref, x.dtype)
    if want is None:
        with pytest.raises(ValueError, match="cannot hold"):
            numfmt.chop(x, f)
    else:
        assert_bits_equal(numfmt.chop(x, f), want, err_msg=f"{x.tolist()}: ")


# (format, input, scale code, dequantized elements) from FORMATS.md's block table
SPEC = [
    ("mxfp8_e4m3", V, 0x7D, [1, -2, 3, 0.5, 0.3125, -7, 96, 0.009765625]),
    ("mxfp4_e2m1", V, 0x83, [0, -0.0, 0, 0, 0, -8, 96, 0]),
    ("mxfp6_e3m2", V, 0x81, [1, -2, 3, 0.5, 0.25, -7, 96, 0]),
    ("mxfp8_e4m3", [500, 1, -3], 0x7F, [448, 1, -3]),
    ("mxfp4_e2m1", [7, 1, -0.6], 0x7F, [6, 1, -0.5]),
    ("mxfp8_e4m3", [0.0] * 5, 0x00, [0.0] * 5),
    ("mxfp6_e2m3", [0.0] * 5, 0x00, [0.0] * 5),
    ("mxfp8_e4m3", [float("nan"), 1, -2], 0xFF, [float("nan")] * 3),
    ("mxint8", [1, -1, 0.5, -0.99, 1.99, -1.999, 0.0078125, 0.01171875], 0x7F,
     [1, -1, 0.5, -0.984375, 1.984375, -2, 0, 0.015625]),
]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("fmt", "x", "scale_code", "want"), SPEC)
def test_spec_vectors(fmt, x, scale_code, want, dtype):
    x = np.array(x, dtype)
    assert_bits_equal(numfmt.chop(x, fmt), np.array(want, dtype))
    _, scales = numfmt.encode(x, fmt)
    assert scales.tolist() == [scale_code]
    _, _, ref = quantize_block([float(v) for v in x], numfmt.parse(fmt))
    assert_bits_equal(np.array([float(r) for r in ref], dtype), np.array(want, dtype))


def test_nvfp4_two_level_vector():
    x = np.array([10, -5, 1, 0.8, 2.4], np.float32)
    elems, scales, g = numfmt.encode(x, "nvfp4")
    assert float(g) == np.float32(2688 / 10)  # tensor scale as encoded: g = 448*6/amax
    assert scales.tolist() == [0x7E]
    e2m1 = numfmt.decode(numfmt.unpack_nibbles(elems, 5), "float4_e2m1fn")
    assert e2m1.tolist() == [6, -3, 0.5, 0.5, 1.5]
    got = numfmt.chop(x, "nvfp4")
    assert numfmt.decode(scales, "float8_e4m3fn").tolist() == [448.0]
    g_ref = tensor_scale(x.tolist(), numfmt.nvfp4)
    assert g_ref == Fraction(float(g))
    scale, elems, ref = quantize_block(x.tolist(), numfmt.nvfp4, g=g_ref)
    assert scale == 448 and [float(e) for e in elems] == [6, -3, 0.5, 0.5, 1.5]
    assert_bits_equal(got, np.array([float(r) for r in ref], np.float32))  # each ref is a float32 value
    assert_bits_equal(numfmt.decode(numfmt.encode(x, "nvfp4"), "nvfp4")[:5], got)  # odd length: one pad code
    assert np.allclose(got, [10, -5, 0.8333, 0.8333, 2.5], atol=2e-3)


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4_e2m1", "mxint8"])
def test_edge_blocks_match_reference(fmt):
    f = numfmt.parse(fmt)
    tiny = float(np.float32(2.0**-149))
    blocks = [
        [0.0, -0.0, 0.0],  # zero block: smallest scale, signed zeros kept
        [tiny, -tiny, 0.0],  # subnormal amax
        [float(np.float32(2.0**-140 * 1.75)), tiny * 3],  # subnormal amax, not a power of two
        [float(np.nextafter(np.float32(4), np.float32(0))), 1.0, -0.25],  # amax just below a power of two
        [float(np.nextafter(np.float32(2), np.float32(0))), -1.0],
        [float(f.elem.max_value), -float(f.elem.max_value), 1.0],  # values at the clamp
        [float(f.elem.max_value) * 1.0625, 1.0],  # above the element max: clamps
        [3.0e38, -3.4e38, 1.0],  # near float32's max
        [1e-45, 5e-40, 1e-39],  # all subnormal
        [-1.999, 1.0, 0.5],  # MXINT8's -2
    ]
    for block in blocks:
        for dtype in (np.float32, np.float64):
            check_against_reference(np.array(block, dtype), f)
        for rule in ("ceil", "even", "rceil"):
            check_against_reference(np.array(block, np.float32), f.replace(rule=rule))
    with pytest.raises(ValueError, match="float32 cannot hold"):
        numfmt.chop(np.float32([-3.4e38]), "mxint8")  # -2 * 2**127


def test_mxint8_reaches_minus_two_only_from_below():
    x = np.array([1.999, -1.999, -2.0, 1.0], np.float32)  # amax 2 -> scale 2**1 for 2.0
    got = numfmt.chop(x[:2], "mxint8")
    assert got.tolist() == [1.984375, -2.0]


def test_inf_policies():
    x = np.array([np.inf, 1.0, -2.0], np.float64)
    assert np.isnan(numfmt.chop(x, "mxfp8_e4m3")).all()
    _, scales = numfmt.encode(x, "mxfp8_e4m3")
    assert scales.tolist() == [0xFF]
    sat = numfmt.parse("mx(elem=e4m3,inf=saturate)")
    got = numfmt.chop(x, sat)
    assert got.tolist() == [448 * 2.0**127, 0.0, -0.0]
    _, _, ref = quantize_block(list(x), sat)
    assert [float(r) for r in ref] == got.tolist()
    with pytest.raises(ValueError, match="cannot hold"):
        numfmt.chop(x.astype(np.float32), sat)  # 448 * 2**127 is beyond float32


@pytest.mark.parametrize("rule", ["floor", "ceil", "even", "rceil"])
def test_scale_rules_at_binade_edges(rule):
    f = numfmt.parse(f"mx(elem=e2m1,rule={rule})")
    # amax 6 fits e2m1 exactly at scale 1; 6.5 rounds up past 6 (floor clamps,
    # ceil/rceil take scale 2); 7.9 rounds to 8 at 2 bits (even takes scale 2).
    expect = {"floor": [0x7F, 0x7F, 0x7F], "ceil": [0x7F, 0x80, 0x80], "rceil": [0x7F, 0x80, 0x80],
              "even": [0x7F, 0x7F, 0x80]}[rule]  # fmt: skip
    for amax, code in zip([6.0, 6.5, 7.9], expect, strict=True):
        _, scales = numfmt.encode(np.array([amax, 1.0], np.float64), f)
        assert scales.tolist() == [code], (rule, amax)


def test_rceil_differs_from_ceil_only_beyond_float32_precision():
    x = np.array([6.0 * (1 + 2.0**-30), 1.0])  # float64: the float32 quotient rounds to exactly 1
    ceil = numfmt.encode(x, "mx(elem=e2m1,rule=ceil)")[1]
    rceil = numfmt.encode(x, "mx(elem=e2m1,rule=rceil)")[1]
    assert ceil.tolist() == [0x80] and rceil.tolist() == [0x7F]


def test_bfp_keeps_m_bits_of_the_largest_element():
    x = np.array([1.0 + 2.0**-7 + 2.0**-9, 0.3, -0.001, 2.0**-8], np.float32)
    got = numfmt.chop(x, numfmt.bfp(8, 4))
    want = np.array([1 + 2.0**-7, 0.296875, -0.0, 2.0**-7 * 0], np.float32)
    want[3] = 0.0  # 2**-8 is a tie between 0 and 2**-7: even -> 0
    assert_bits_equal(got, want)


def test_partial_block_is_zero_padding():
    x = np.arange(1, 41, dtype=np.float32) / 7
    got = numfmt.chop(x, "mxfp4_e2m1")
    padded = numfmt.chop(np.concatenate([x, np.zeros(24, np.float32)]), "mxfp4_e2m1")[:40]
    assert_bits_equal(got, padded)


def test_nf4_vector():
    x = np.array([2.0, -1.0, 0.5, 0.15, 0.0, -2.0], np.float32)  # amax 2: x / amax = 1, -.5, .25, .075, 0, -1
    codes, scales = numfmt.encode(x, "nf4")
    assert scales.tolist() == [2.0]
    idx = numfmt.unpack_nibbles(codes, 6)
    assert idx.tolist() == [15, 2, 10, 8, 7, 0]
    vals = numfmt.nf4.elem.values
    want = np.array([np.float32(vals[i]) * np.float32(2.0) for i in idx], np.float32)  # products by 2: exact
    assert_bits_equal(numfmt.chop(x, "nf4"), want)
    assert_bits_equal(numfmt.decode((codes, scales), "nf4")[:6], want)


@pytest.mark.parametrize(
    "fmt",
    [
        numfmt.mx(numfmt.IntElement(4, 2)),
        numfmt.mx(numfmt.parse("float(e=3,m=2,specials=finite)"), block_size=16),
        numfmt.bfp(8, 16),
        *numfmt.presets("block").values(),
    ],
    ids=str,
)
def test_grammar_round_trip_with_nested_element_formats(fmt):
    # Element formats nest their own comma-separated parameters.
    assert numfmt.parse(str(fmt)) == fmt and str(numfmt.parse(str(fmt))) == str(fmt)


@pytest.mark.parametrize("name", ["mxfp4_e2m1", "nf4", "nvfp4"])
def test_packed_codes_of_an_odd_length_decode_to_the_padded_length(name):
    # Packed nibbles do not record the length: decode gives the even length,
    # the padding element decodes to 0; "unpacked" keeps the exact shape.
    x = np.linspace(-1, 1, 7).astype(np.float32)
    fmt = numfmt.parse(name)
    out = numfmt.decode(numfmt.encode(x, fmt), fmt)
    assert out.shape == (8,)
    assert_bits_equal(out[:7], numfmt.chop(x, fmt))
    assert out[7] == 0
    unpacked = dataclasses.replace(fmt, nibbles="unpacked")
    assert_bits_equal(numfmt.decode(numfmt.encode(x, unpacked), unpacked), numfmt.chop(x, fmt))


@given(st.one_of(formats("block", kind="mx"), formats("block", exact_in=np.float32, kind=["nvfp4", "nf4"])))
def test_every_block_format_prints_a_name_that_parses_back(fmt):
    # Variants of presets (other element, scale, table) must not print the preset's name.
    assert numfmt.parse(str(fmt)) == fmt and str(numfmt.parse(str(fmt))) == str(fmt)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [((np.array([1, 16]),), {}, ValueError, "codes must hold integers in 0..15; got 16"),
     ((np.array([1, -1]),), {}, ValueError, "codes must hold integers in 0..15; got -1"),
     ((np.array([1.5, 2.0]),), {}, ValueError, "codes must hold integers in 0..15; got 1.5"),
     ((np.array(["a"]),), {}, TypeError, "codes must be an integer array"),
     ((np.array([1, 2]),), {"order": "high"}, ValueError, "order='high' is not valid; use 'low_first'"),
     ((np.array([1, 2]),), {"order": "unpacked"}, ValueError, "order='unpacked' is not valid"),
     ((np.array([1, 2, 3]),), {"pad": 16}, ValueError, "pad=16 must be a code in 0..15")],
)  # fmt: skip
def test_pack_nibbles_refuses_what_it_would_mask(args, kwargs, error, match):
    """Regression: 16 packed as 0, -1 as 15, 1.5 as 1, and any order was taken as high_first."""
    with pytest.raises(error, match=match):
        numfmt.pack_nibbles(*args, **kwargs)
    if args[0].dtype.kind != "U":
        with pytest.raises(error, match=match):
            numfmt.pack_nibbles(jnp.asarray(args[0]), **kwargs)


def test_unpack_nibbles_checks_its_arguments():
    packed = np.array([33, 3], np.uint8)
    assert numfmt.pack_nibbles(np.array([1.0, 2.0, 3.0])).tolist() == [33, 3]  # integral floats are codes
    with pytest.raises(ValueError, match="n=-1 must lie in 0..4"):
        numfmt.unpack_nibbles(packed, -1)  # would drop the last code silently
    with pytest.raises(ValueError, match="n=5 must lie in 0..4"):
        numfmt.unpack_nibbles(packed, 5)
    with pytest.raises(ValueError, match="packed must hold integers in 0..255; got 300"):
        numfmt.unpack_nibbles(np.array([300, 3]))
    with pytest.raises(ValueError, match="order='x' is not valid"):
        numfmt.unpack_nibbles(packed, order="x")
    with pytest.raises(TypeError, match="under tracing pass integer codes"):
        jax.jit(numfmt.pack_nibbles)(jnp.array([1.0, 2.0]))
    assert jax.jit(numfmt.pack_nibbles)(jnp.array([1, 2, 3], jnp.uint8)).tolist() == [33, 3]
