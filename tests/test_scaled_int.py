"""Scaled integer formats vs the exact Fraction reference, NumPy == JAX, errors (regimes: normal,
ties, zero groups, specials, subnormal scales, clamping)."""

from fractions import Fraction

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numfmt
from numfmt import ScaledIntFormat
from numfmt.float.format import FloatFormat
from numfmt.scaled.reference import quantize_group
from numfmt.testing import assert_bits_equal, float_bits

DTYPES = [np.float16, ml_dtypes.bfloat16, np.float32, np.float64]
OUT = {np.dtype(np.float16): FloatFormat(5, 10), np.dtype(ml_dtypes.bfloat16): FloatFormat(8, 7),
       np.dtype(np.float32): FloatFormat(8, 23), np.dtype(np.float64): FloatFormat(11, 52)}  # fmt: skip
LAYOUT = {2: (5, 10), 4: (8, 23), 8: (11, 52)}
DETERMINISTIC = ["nearest_even", "nearest_away", "toward_zero", "toward_positive", "toward_negative", "to_odd"]
STOCHASTIC = ["stochastic", "stochastic_a", "stochastic_b", "stochastic_c", "stochastic_equal"]
SCALES = ["float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e8m0fnu"]
_jchop = jax.jit(numfmt.chop, static_argnums=(1, 2))


def _layout(dtype):
    dtype = np.dtype(dtype)
    return (8, 7) if dtype == np.dtype(ml_dtypes.bfloat16) else LAYOUT[dtype.itemsize]


def clustered(dtype, shape):
    """Arrays whose exponents lie within 30 binades of a random centre, with some zeros."""
    e_bits, m_bits = _layout(dtype)
    width = np.dtype(dtype).itemsize * 8
    top = (1 << e_bits) - 2
    n = int(np.prod(shape))
    elem = st.tuples(st.integers(0, 1), st.integers(0, 30), st.integers(0, (1 << m_bits) - 1), st.integers(0, 12))

    def build(c, items):
        pats = [(s << (width - 1)) | (0 if z == 0 else (min(max(c - d, 0), top) << m_bits) | f) for s, d, f, z in items]
        return np.array(pats, f"uint{width}").view(dtype).reshape(shape)

    return st.builds(build, st.integers(0, top), st.lists(elem, min_size=n, max_size=n))


@st.composite
def formats(draw):
    bits = draw(st.sampled_from([2, 3, 4, 8, 16]))
    gran = draw(st.sampled_from(["tensor", "channel", "group"]))
    axis = None if gran == "tensor" else draw(st.sampled_from([0, 1, -1]))
    group = draw(st.sampled_from([1, 3, 5])) if gran == "group" else None
    sym = draw(st.booleans())
    signed = True if sym else draw(st.booleans())
    restricted = draw(st.booleans()) if sym else True
    return ScaledIntFormat(bits, gran, axis, group, sym, signed, restricted, draw(st.sampled_from(SCALES)))


def groups(shape, fmt):
    """Index arrays of each group (flat indices into an array of ``shape``), independent of the kernel."""
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    if fmt.granularity == "tensor":
        return [idx.ravel()]
    moved = np.moveaxis(idx, fmt.axis, -1)
    if fmt.granularity == "channel":
        return [np.moveaxis(idx, fmt.axis, 0)[i].ravel() for i in range(shape[fmt.axis])]
    rows = moved.reshape(-1, moved.shape[-1])
    g = fmt.group_size
    return [row[j : j + g] for row in rows for j in range(0, row.size, g)]


def reference(x, fmt, mode, rbits=None, n_bits=None):
    """Reference results (an array of x's dtype) or None where one overflows the dtype."""
    flat = x.ravel()
    out = np.empty(flat.size, np.float64)
    for gi, ix in enumerate(groups(x.shape, fmt)):
        rnd = None if rbits is None else [int(r) >> (64 - n_bits) for r in rbits[gi][: ix.size]]
        res = quantize_group([float(v) for v in flat[ix]], fmt, mode, random=rnd, n_bits=n_bits,
                             out=OUT[x.dtype])  # fmt: skip
        out[ix] = [float(r) for r in res[3]]
    with np.errstate(over="ignore", invalid="ignore"):
        if np.any(np.isinf(out)):
            return None
        return out.astype(x.dtype).reshape(x.shape)


def rbits_for(x, fmt, seed):
    """The random words the kernel draws for each group (in the order of ``groups``)."""
    n = len(groups(x.shape, fmt))
    b = {"tensor": x.size, "channel": x.size // max(x.shape[fmt.axis] if fmt.axis is not None else 1, 1)}
    width = fmt.group_size if fmt.granularity == "group" else b[fmt.granularity]
    return np.random.default_rng(seed).integers(0, 2**64, size=(n, width), dtype=np.uint64)


def check(x, fmt, mode, seed=None):
    kw: dict = {}
    rbits = n_bits = None
    if seed is not None:
        kw["key"] = seed
        n_bits = 63 if x.dtype == np.float64 else 31
        if mode in ("stochastic_a", "stochastic_b", "stochastic_c"):
            kw["random_bits"] = n_bits = 9
        elif n_bits > 51 - fmt.bits:
            with pytest.raises(ValueError, match="random bits"):
                numfmt.chop(x, fmt, mode, **kw)
            return
        rbits = rbits_for(x, fmt, seed)
    want = reference(x, fmt, mode, rbits, n_bits)
    if want is None:
        with pytest.raises(ValueError, match="overflow"):
            numfmt.chop(x, fmt, mode, **kw)
        return
    got = numfmt.chop(x, fmt, mode, **kw)
    assert_bits_equal(got, want, err_msg=f"{fmt} {mode} {x.tolist()}: ")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(data=st.data())
def test_vs_reference(dtype, data):
    shape = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 7)))
    x = data.draw(st.one_of(clustered(dtype, shape), float_bits(dtype, shape)))
    fmt = data.draw(formats())
    mode = data.draw(st.sampled_from(DETERMINISTIC + STOCHASTIC))
    check(x, fmt, mode, seed=data.draw(st.integers(0, 2**32)) if mode.startswith("stochastic") else None)


NAMES = ["int8_per_tensor", "int8_per_channel(axis=1)", "uint8_asym_per_channel", "int4_g32",
         "int4_asym_g128(group=5)", "scaled(bits=3,per=group,group=4,scale=e4m3fn)",
         "scaled(bits=16,per=channel,sym=false,scale=bfloat16)"]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", NAMES)
def test_gaussian_data_vs_reference_every_mode(dtype, name):
    """Typical data (no specials): every group has a nonzero scale and most codes differ."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((4, 9)) * 10.0 ** rng.integers(-2, 3, (4, 1))).astype(dtype)
    fmt = numfmt.parse(name)
    for mode in DETERMINISTIC + STOCHASTIC:
        check(x, fmt, mode, seed=11 if mode.startswith("stochastic") else None)
    assert len(np.unique(numfmt.encode(x, fmt)[0])) > 4


@given(k=st.integers(-126, 125), e=st.integers(-20, 20), mode=st.sampled_from(DETERMINISTIC))
def test_ties_at_half_integers(k, e, mode):
    """amax = 127 * 2**e makes s = 2**e exact; x = (k + 1/2) * s is a tie between two codes."""
    s = 2.0**e
    x = np.array([127 * s, (k + 0.5) * s, -(k + 0.5) * s], np.float32)
    fmt = numfmt.parse("int8_per_tensor")
    check(x, fmt, mode)
    if mode == "nearest_even":
        q = numfmt.encode(x, fmt)[0]
        assert q[1] % 2 == 0 and q[2] % 2 == 0


def test_zero_group_has_zero_scale_and_zero_codes():
    x = np.array([[0.0, -0.0, 0.0], [1.0, -2.0, 0.5]], np.float32)
    codes, scales, zps = numfmt.encode(x, "uint8_asym_per_channel")
    assert scales[0] == 0 and zps[0] == 0 and not codes[0].any()
    assert_bits_equal(numfmt.chop(x, "uint8_asym_per_channel")[0], np.zeros(3, np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_makes_its_group_nan(bad):
    x = np.array([[1.0, bad, 0.5], [1.0, -2.0, 0.5]], np.float32)
    out = numfmt.chop(x, "int8_per_channel")
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
    codes, scales = numfmt.encode(x, "int8_per_channel")
    assert np.isnan(scales[0]) and not codes[0].any()
    assert np.isnan(numfmt.decode((codes, scales), "int8_per_channel")[0]).all()


def test_subnormal_float16_scales():
    fmt = numfmt.parse("int8_per_tensor").replace(scale="float16")
    for amax in [1e-4, 1e-6, 3e-8, 2.0**-24 * 127 * 0.75, 2.0**-26]:
        x = np.array([amax, -amax / 3, amax / 7], np.float32)
        check(x, fmt, "nearest_even")
    s = Fraction(float(numfmt.encode(np.array([1e-4], np.float32), fmt)[1]))
    assert 0 < s < Fraction(2) ** -14  # a float16 subnormal
    assert not numfmt.chop(np.array([2.0**-30], np.float32), fmt).any()  # s rounds to 0


def test_clamping_at_qmin_and_qmax():
    full = numfmt.parse("int8_per_tensor").replace(restricted=False)
    x = np.array([1.0, -1.0, -1.01], np.float32)
    assert numfmt.encode(x, "int8_per_tensor")[0].tolist() == [126, -126, -127]
    assert numfmt.encode(x, full)[0].tolist()[2] == -127
    x = np.array([1.0, -1.0 * 128 / 127], np.float32)
    for mode in DETERMINISTIC:
        check(x, full, mode)
    # -128 is reached only where x / s rounds below -127: amax / s is 127 up to the rounding of s
    codes = [int(numfmt.encode(x, full, m)[0][1]) for m in DETERMINISTIC]
    assert set(codes) <= {-127, -128} and -128 not in numfmt.encode(x, "int8_per_tensor", "toward_negative")[0]
    # asymmetric: an all-positive group has lo = 0 and z = qmin
    codes, _, z = numfmt.encode(np.array([1.0, 2.0, 3.0], np.float32), "int8_asym_per_tensor")
    assert int(z) == -128 and codes.tolist()[2] == 127
    # a saturated float16 scale clamps the codes
    f16 = numfmt.parse("int8_per_tensor").replace(scale="float16")
    x = np.array([1e9, -3e8], np.float32)
    check(x, f16, "nearest_even")
    assert numfmt.encode(x, f16)[0].tolist() == [127, -127]


@given(fmt=formats(), data=st.data())
def test_encode_decode_round_trip(fmt, data):
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    x = data.draw(clustered(dtype, (3, 7)))
    enc = numfmt.encode(x, fmt)
    assert len(enc) == (2 if fmt.symmetric else 3)
    code_dtype = np.dtype(f"{'' if fmt.signed else 'u'}int{8 if fmt.bits <= 8 else 16}")
    assert enc[0].shape == x.shape and enc[0].dtype == code_dtype
    want_scale_shape = {"tensor": (), "channel": (x.shape[fmt.axis] if fmt.axis is not None else 0,)}
    if fmt.granularity == "group":
        ax = fmt.axis % 2
        shp = list(x.shape)
        shp[ax] = -(-shp[ax] // fmt.group_size)
        want_scale_shape["group"] = tuple(shp)
    assert enc[1].shape == want_scale_shape[fmt.granularity] and enc[1].dtype == np.float32
    assert_bits_equal(numfmt.decode(enc, fmt, x.dtype), numfmt.chop(x, fmt))
    assert np.all((enc[0] >= fmt.qmin) & (enc[0] <= fmt.qmax))


@pytest.mark.parametrize(
    ("name", "dtype"),
    [("int8_per_channel(axis=1)", np.float32), ("uint8_asym_per_tensor", np.float64),
     ("scaled(bits=4,per=group,group=3,sym=false,scale=float16)", np.float32)],
)  # fmt: skip
@settings(max_examples=8)  # one compilation per format and shape
@given(data=st.data())
def test_jax_equals_numpy(name, dtype, data):
    fmt = numfmt.parse(name)
    x = data.draw(st.one_of(clustered(dtype, (3, 7)), float_bits(dtype, (3, 7))))
    want = numfmt.chop(x, fmt)
    assert_bits_equal(_jchop(jnp.asarray(x), fmt), want, nan_payload=True)
    assert_bits_equal(numfmt.chop(jnp.asarray(x), fmt), want, nan_payload=True)
    got, exp = numfmt.encode(jnp.asarray(x), fmt), numfmt.encode(x, fmt)
    assert len(got) == len(exp)
    np.testing.assert_array_equal(np.asarray(got[0]), exp[0], strict=True)
    assert_bits_equal(np.asarray(got[1]), exp[1], nan_payload=True)
    if len(exp) == 3:
        np.testing.assert_array_equal(np.asarray(got[2]), exp[2], strict=True)


def test_jax_stochastic_equals_numpy_for_the_same_bits():
    x = np.linspace(-3, 3, 40, dtype=np.float32).reshape(4, 10)
    key = jax.random.key(7)
    a = numfmt.chop(jnp.asarray(x), "int4_g32", "stochastic", key=key)
    b = numfmt.chop(x, "int4_g32", "stochastic", key=key)
    assert_bits_equal(np.asarray(a), b)


def test_vmap_grad_and_jit():
    x = jnp.asarray(np.linspace(-2, 3, 24, dtype=np.float32).reshape(4, 6))
    per_row = jax.vmap(lambda r: numfmt.chop(r, "int8_per_tensor"))(x)
    assert_bits_equal(per_row, numfmt.chop(np.asarray(x), "int8_per_channel"))
    g = jax.grad(lambda v: jnp.sum(numfmt.chop(v, "int4_g32") * 3.0))(x)
    assert_bits_equal(g, np.full((4, 6), 3.0, np.float32))


def test_float16_results_near_max_match_reference_or_raise():
    x = np.array([65504.0, -65504.0, 1.0], np.float16)
    fmt = numfmt.parse("int8_asym_per_tensor")
    want = reference(x, fmt, "nearest_even")
    if want is None:
        with pytest.raises(ValueError, match="overflow"):
            numfmt.chop(x, fmt)
    else:
        assert_bits_equal(numfmt.chop(x, fmt), want)


def test_presets_and_grammar_round_trip():
    for name, f in numfmt.presets("scaled").items():
        assert str(f) == name and numfmt.parse(name) == f and numfmt.parse(f.spec) == f
    f = numfmt.parse("int8_per_channel(axis=1)")
    assert f.axis == 1 and numfmt.parse(str(f)) == f
    f = numfmt.parse("scaled(bits=4,per=group,group=64,sym=false,scale=bfloat16)")
    assert (f.group_size, f.symmetric, str(f.scale)) == (64, False, "bfloat16") and numfmt.parse(str(f)) == f


@given(fmt=formats())
def test_parse_str_round_trip(fmt):
    assert numfmt.parse(str(fmt)) == fmt


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"bits": 1}, ValueError, "bits=1 is out of range"),
        ({"bits": 17}, ValueError, "bits=17"),
        ({"bits": 8.0}, TypeError, "bits must be an int"),
        ({"bits": 8, "granularity": "row"}, ValueError, "granularity='row'"),
        ({"bits": 8, "granularity": "group", "group_size": 0}, ValueError, "group_size >= 1"),
        ({"bits": 8, "granularity": "group"}, ValueError, "group_size >= 1"),
        ({"bits": 8, "axis": 0}, ValueError, "leave axis and group_size None"),
        ({"bits": 8, "signed": False}, ValueError, "symmetric=True needs signed=True"),
        ({"bits": 8, "scale": "posit16_1"}, TypeError, "scale must be a FloatFormat"),
        ({"bits": 8, "scale": "float64"}, ValueError, "all float32 values"),
        ({"bits": 8, "symmetric": False, "restricted": False}, ValueError, "restricted=False"),
    ],
)
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ScaledIntFormat(**kwargs)


def test_bad_calls():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="axis=2 .* out of range"):
        numfmt.chop(x, "int8_per_channel(axis=2)")
    with pytest.raises(ValueError, match="overflow=.*saturate"):
        numfmt.chop(x, "int8_per_tensor", overflow="sat_none")
    with pytest.raises(ValueError, match="random bits"):
        numfmt.chop(x.astype(np.float64), "int8_per_tensor", "stochastic", key=0)
    with pytest.raises(TypeError, match="codes, scales, zero_points"):
        numfmt.decode(numfmt.encode(x, "int8_per_tensor"), "uint8_asym_per_tensor")
    with pytest.raises(ValueError, match="is not one of"):
        numfmt.parse("scaled(bits=8,foo=1)")
    with pytest.raises(ValueError, match="needs bits="):
        numfmt.parse("scaled(per=tensor)")
    with pytest.raises(TypeError, match="x has dtype int32"):
        numfmt.chop(np.ones(3, np.int32), "int8_per_tensor")


@pytest.mark.parametrize("name", ["int8_per_tensor", "int8_per_channel", "int4_g32", "uint8_asym_per_channel"])
def test_matmul_inputs_in_emulate(name):
    rng = np.random.default_rng(2)
    a = (rng.standard_normal((6, 40)) * 3).astype(np.float32)
    b = (rng.standard_normal((40, 5)) * 3).astype(np.float32)
    got = np.asarray(jax.jit(numfmt.emulate(lambda p, q: p @ q, f"compute=float32,matmul_in={name}"))(a, b))
    fmt = numfmt.parse(name)
    if fmt.granularity == "tensor":
        fa = fb = fmt
    else:  # per-channel: one scale per row of a and per column of b; groups along the contraction
        g = 40 if fmt.granularity == "channel" else fmt.group_size
        fa = fmt.replace(granularity="group", axis=1, group_size=g)
        fb = fmt.replace(granularity="group", axis=0, group_size=g)
    qa = numfmt.chop(a.astype(np.float64), fa)
    qb = numfmt.chop(b.astype(np.float64), fb)
    want = numfmt.chop(qa @ qb, "float32").astype(np.float32)
    assert_bits_equal(got, want)
    assert not np.array_equal(got, numfmt.chop(a.astype(np.float64) @ b.astype(np.float64), "float32"))
    if fmt.granularity == "channel":  # the same as per-channel along a's axis 0 and b's axis 1
        assert_bits_equal(qa, numfmt.chop(a.astype(np.float64), fmt.replace(axis=0)))
        assert_bits_equal(qb, numfmt.chop(b.astype(np.float64), fmt.replace(axis=1)))
