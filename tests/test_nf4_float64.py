"""NF4 on float64 input: scale RN_f32(amax), exact comparisons, vs the Fraction reference."""

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numfmt
from numfmt.block.reference import as_dtype, quantize_block
from numfmt.float.format import FloatFormat
from numfmt.testing import assert_bits_equal, float_bits

F64 = FloatFormat(11, 52)
_jit_chop = jax.jit(lambda v: numfmt.chop(v, "nf4"))
TABLE = [Fraction(v) for v in numfmt.nf4.elem.values]
MIDS = [(a + b) / 2 for a, b in zip(TABLE, TABLE[1:], strict=False)]


def reference(x, f):
    """Reference results (float64) block by block; None if a block is NaN only by a float32 scale overflow."""
    res = []
    for start in range(0, x.size, f.block_size):
        block = [float(v) for v in x[start : start + f.block_size]]
        res += quantize_block(block, f, out=F64)[2]
    return as_dtype(res, np.float64)


def scale_overflows(x, f):
    limit = np.finfo(np.float32).max * (1 + 2.0**-24)  # RN_f32 of anything >= this is inf
    for start in range(0, x.size, f.block_size):
        b = x[start : start + f.block_size]
        if np.all(np.isfinite(b)) and np.max(np.abs(b)) >= limit:
            return True
    return False


def check(x, f):
    if scale_overflows(x, f):
        with pytest.raises(ValueError, match="float32's max"):
            numfmt.chop(x, f)
        return
    assert_bits_equal(numfmt.chop(x, f), reference(x, f), err_msg=f"{f} {x.tolist()}: ")


def clustered64():
    """float64 blocks whose exponents lie within 40 binades of a centre, which sweeps float32's range."""
    centre = st.integers(1023 - 160, 1023 + 140)
    elem = st.tuples(st.booleans(), st.integers(0, 40), st.integers(0, 2**52 - 1), st.integers(0, 20))

    def build(c, items):
        out = [(s << 63) | (0 if z == 0 else (max(c - d, 0) << 52) | fr) for s, d, fr, z in items]
        return np.array(out, np.uint64).view(np.float64)

    return st.builds(build, centre, st.lists(elem, min_size=1, max_size=20))


@given(x=st.one_of(clustered64(), float_bits(np.float64, st.integers(1, 20))), block=st.sampled_from([1, 5, 64]))
def test_float64_vs_reference(x, block):
    check(x, numfmt.nf4.replace(block_size=block))


def f32_scales():
    """float32 scale values from subnormal to near max (as float64)."""
    return st.integers(1, 0x7F7FFFFF).map(lambda u: float(np.array(u, np.uint32).view(np.float32)))


@given(s=f32_scales(), j=st.integers(0, 14), nudge=st.integers(-1, 1), below=st.integers(0, 2**28 - 1))
def test_ties_at_midpoints_of_a_rounded_scale(s, j, nudge, below):
    """x = midpoint * s exactly (and one float64 ulp either side), with amax a float64
    that rounds to the float32 scale s: the tie is decided against s, not amax."""
    s32 = Fraction(s)
    # amax: s plus up to just under half a float32 ulp of s (rounds to s; ties go to even s).
    ulp = Fraction(float(np.spacing(np.float32(s))))
    amax = float(s32 + ulp * below / 2**29)
    tie = float(MIDS[j] * s32)
    assert Fraction(tie) == MIDS[j] * s32  # 25 x 24 bits: exact in float64
    x = np.nextafter(tie, np.inf * nudge) if nudge else tie
    block = np.array([amax, x], np.float64)
    got = numfmt.chop(block, "nf4")
    want = reference(block, numfmt.nf4)
    assert_bits_equal(got, want)
    if nudge == 0 and x != 0:
        t = TABLE[j] if j % 2 == 0 else TABLE[j + 1]
        assert Fraction(float(got[1])) == t * s32


def test_scale_is_float32_rounded():
    amax = 1 + 2.0**-30
    x = np.array([amax, 0.5], np.float64)
    codes, scales = numfmt.encode(x, "nf4")
    assert scales.dtype == np.float32 and float(scales[0]) == 1.0
    assert numfmt.chop(x, "nf4")[0] == 1.0


def test_subnormal_float32_scales_survive_encode_on_jax():
    x = np.array([2.0**-140, 2.0**-142])
    assert_bits_equal(np.asarray(numfmt.encode(jnp.asarray(x), "nf4")[1]), numfmt.encode(x, "nf4")[1])
    assert float(numfmt.encode(x, "nf4")[1][0]) == 2.0**-140


def test_scale_overflow_raises_and_is_nan_under_jit():
    x = np.array([1e300, 1.0])
    with pytest.raises(ValueError, match="float32's max"):
        numfmt.chop(x, "nf4")
    with pytest.raises(ValueError, match="float32's max"):
        numfmt.encode(x, "nf4")
    with pytest.raises(ValueError, match="float32's max"):
        numfmt.chop(jnp.asarray(x), "nf4")
    assert np.all(np.isnan(np.asarray(_jit_chop(jnp.asarray(x)))))


def test_tiny_amax_gives_a_zero_block():
    x = np.array([1e-300, -1e-310, 0.0])
    assert_bits_equal(numfmt.chop(x, "nf4"), np.zeros(3))


@settings(max_examples=40)
@given(x=float_bits(np.float64, 70))
def test_jax_equals_numpy(x):
    x = np.where(np.abs(x) > 1e38, 1.0, x)  # keep scales in float32's range
    want = numfmt.chop(x, "nf4")
    assert_bits_equal(_jit_chop(jnp.asarray(x)), want, nan_payload=True)
    ce, cs = numfmt.encode(x, "nf4")
    je, js = numfmt.encode(jnp.asarray(x), "nf4")
    np.testing.assert_array_equal(np.asarray(je), ce)
    assert_bits_equal(np.asarray(js), cs, nan_payload=True)


@pytest.mark.parametrize("dtype", [np.float16, jnp.bfloat16, np.float32, np.float64])
def test_decode_of_encode_is_chop_for_every_block(dtype):
    """Regression: a NaN or inf block decoded to +inf (chop gives NaN): from_f64 took the NaN scale as finite."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 64)).astype(dtype)
    x[0, 3], x[1, 60], x[2, :2], x[3] = np.nan, np.inf, [-np.inf, np.nan], 0.0  # rows 4, 5 ordinary
    x[5, 7] = -0.0
    want = numfmt.chop(x, "nf4")
    assert np.isnan(want[:3]).all() and not np.isnan(want[3:]).any()
    codes = numfmt.encode(x, "nf4")
    assert_bits_equal(numfmt.decode(codes, "nf4", dtype=dtype), want)
    jcodes = numfmt.encode(jnp.asarray(x), "nf4")
    assert_bits_equal(numfmt.decode(jcodes, "nf4", dtype=dtype), want)
    assert_bits_equal(jax.jit(lambda c: numfmt.decode(c, "nf4", dtype=dtype))(jcodes), want)
