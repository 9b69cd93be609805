"""Convolutions with a rounded accumulator (accum=, chunk=) against an explicit loop.

The reference walks each output element's K terms in the documented order
(kernel taps outer in row-major order, input channels of the group inner),
sums each chunk exactly (Fractions) and rounds the accumulator after each
chunk with NumPy's float16 or ``chop``.
"""

import itertools
import math
import pathlib
import sys
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numfmt
from numfmt import chop

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # pytest runs with --import-mode=importlib
from accum_reference import accumulate  # noqa: E402


def round_to(value, fmt):
    if fmt == "float16":  # NumPy's float64 -> float16 conversion is correctly rounded
        return float(np.float16(value))
    return float(chop(np.float64(value), fmt))


def exact_float(value):
    """A Fraction as a float, checked to be exact (one rounding follows, into the accumulator)."""
    assert float(value) == value
    return float(value)


def chunk_sum(acc, terms):
    """``acc + sum(terms)`` exactly when finite (checked to fit float64), else in float arithmetic."""
    if all(math.isfinite(t) for t in (acc, *terms)):
        exact = Fraction(acc) + sum((Fraction(t) for t in terms), Fraction(0))
        assert float(exact) == exact  # one rounding below, into the accumulator
        return float(exact)
    return sum(terms, acc)  # inf and NaN propagate as in IEEE arithmetic


def reference_conv(x, w, params, out_shape, chunk, accum, promote=None):
    """Canonical x (N, C, *S), w (O, C/G, *k), float64 values of the input format -> (N, O, *out).

    With ``promote``, each group of ``promote`` terms is accumulated from +0 and added into a float32
    accumulator (tests/accum_reference.py).
    """
    batch, _, *size = x.shape
    o_count, per_group, *kernel = w.shape
    per_out = o_count // params["feature_group_count"]
    bgroups = params["batch_group_count"]  # batch group g: the g-th consecutive slice of the batch
    out = np.empty((batch // bgroups, o_count, *out_shape))
    for index in np.ndindex(batch // bgroups, o_count, *out_shape):
        b, o, pos = index[0], index[1], index[2:]
        group = o // per_out
        b += (o // (o_count // bgroups)) * (batch // bgroups)
        terms = []
        for tap in itertools.product(*map(range, kernel)):  # taps outer, row-major
            for c in range(per_group):  # input channels inner
                coords = []
                for i, n in enumerate(size):
                    p = pos[i] * params["window_strides"][i] + tap[i] * params["rhs_dilation"][i]
                    p -= params["padding"][i][0]
                    d = params["lhs_dilation"][i]
                    if p % d or not 0 <= p // d < n:
                        break
                    coords.append(p // d)
                value = x[(b, group * per_group + c, *coords)] if len(coords) == len(size) else 0.0
                terms.append(float(value) * float(w[(o, c, *tap)]))
        if promote is not None:
            out[index] = accumulate(terms, chunk, lambda v: round_to(exact_float(v), accum), promote)
            continue
        acc = 0.0
        for start in range(0, max(len(terms), 1), chunk):
            acc = round_to(chunk_sum(acc, terms[start : start + chunk]), accum)
        out[index] = acc
    return out


def conv_params(f, x, w):
    (eqn,) = [e for e in jax.make_jaxpr(f)(x, w).eqns if e.primitive.name == "conv_general_dilated"]
    return eqn.params, eqn.outvars[0].aval.shape


def to_canonical(a, spec):
    """Array in layout ``spec`` (e.g. "NHWC", "HWIO") -> (N, C, spatial...) / (O, I, spatial...)."""
    first, second = ("N", "C") if "N" in spec else ("O", "I")
    spatial = [c for c in spec if c not in (first, second)]
    return np.transpose(a, [spec.index(c) for c in (first, second, *spatial)])


def run_case(shape_x, shape_w, specs, chunk, accum, fmt_in="float8_e4m3fn", out="float32", seed=0, **conv):
    rng = np.random.default_rng(seed)
    x = chop(rng.standard_normal(shape_x) * 4, fmt_in).astype(np.float32)
    w = chop(rng.standard_normal(shape_w) * 4, fmt_in).astype(np.float32)
    f = lambda x, w: jax.lax.conv_general_dilated(x, w, dimension_numbers=specs, **conv)  # noqa: E731
    policy = f"compute=float32,matmul_in={fmt_in},accum={accum},chunk={chunk},out={out}"
    got = np.asarray(jax.jit(numfmt.emulate(f, policy))(x, w), np.float64)
    params, out_shape = conv_params(f, x, w)
    cx, cw = to_canonical(x, specs[0]), to_canonical(w, specs[1])
    canon_out = [out_shape[specs[2].index(c)] for c in specs[2] if c not in "NC"]
    want = chop(reference_conv(cx, cw, params, canon_out, chunk, accum), out)
    np.testing.assert_array_equal(to_canonical(got, specs[2]), want)
    exact = np.asarray(f(x.astype(np.float64), w.astype(np.float64)))
    return got, exact


NCH, NCHW, NHWC = ("NCH", "OIH", "NCH"), ("NCHW", "OIHW", "NCHW"), ("NHWC", "HWIO", "NHWC")
CASES = {
    "1d": ((2, 3, 11), (4, 3, 3), NCH, dict(window_strides=(1,), padding="VALID")),
    "1d_strided_same": ((2, 3, 12), (2, 3, 4), NCH, dict(window_strides=(3,), padding="SAME")),
    "1d_dilated": ((1, 2, 9), (3, 2, 3), NCH, dict(window_strides=(1,), padding=((2, -1),), lhs_dilation=(2,),
                                                  rhs_dilation=(3,))),
    "2d_nchw": ((2, 4, 6, 5), (3, 4, 3, 2), NCHW, dict(window_strides=(2, 1), padding=((1, 1), (0, 2)))),
    "2d_nhwc_same": ((1, 5, 6, 4), (3, 3, 4, 2), NHWC, dict(window_strides=(1, 2), padding="SAME")),
    "2d_dilated": ((1, 2, 7, 6), (2, 2, 2, 3), NCHW, dict(window_strides=(1, 1), padding=((1, 0), (2, 1)),
                                                         lhs_dilation=(1, 2), rhs_dilation=(2, 1))),
    "2d_grouped": ((2, 4, 5, 5), (6, 2, 2, 2), NCHW, dict(window_strides=(1, 1), padding="SAME",
                                                         feature_group_count=2)),
    "2d_depthwise_nhwc": ((1, 5, 5, 3), (3, 3, 1, 6), NHWC, dict(window_strides=(1, 1), padding="VALID",
                                                                feature_group_count=3)),
    # more than 16 taps along a dimension: the patches are gathered, not sliced per tap
    "1d_long_dilated": ((1, 2, 40), (2, 2, 19), NCH, dict(window_strides=(2,), padding=((3, -2),), lhs_dilation=(2,),
                                                         rhs_dilation=(3,))),
    "2d_long_and_short": ((1, 2, 21, 5), (2, 2, 17, 2), NCHW, dict(window_strides=(1, 2), padding=((0, 1), (1, 0)))),
}  # fmt: skip


@pytest.mark.parametrize("chunk", [1, 5])
@pytest.mark.parametrize("case", list(CASES))
def test_conv_accumulation_equals_reference_loop(case, chunk):
    shape_x, shape_w, specs, conv = CASES[case]
    got, exact = run_case(shape_x, shape_w, specs, chunk, "float16", **conv)
    if chunk == 1 and case in ("2d_nchw", "2d_grouped"):
        assert np.any(got != exact)  # the accumulator rounding is visible


@pytest.mark.parametrize(("accum", "chunk", "out"), [("bfloat16", 4, "float32"), ("float16", 36, "bfloat16"),
                                                     ("float8_e5m2", 3, "float32")])  # fmt: skip
def test_other_accumulators_and_whole_k_chunk(accum, chunk, out):
    # K = 4 channels x 9 taps = 36: chunk=36 is one chunk, one accumulator rounding
    got, exact = run_case((1, 4, 6, 6), (2, 4, 3, 3), NCHW, chunk, accum, out=out, seed=chunk,
                          window_strides=(1, 1), padding="SAME")  # fmt: skip
    if accum != "float16":
        assert np.any(got != exact)


def term_order_case(specs, x_canon, w_canon):
    f = lambda x, w: jax.lax.conv_general_dilated(x, w, (1,) * (x.ndim - 2), "VALID", dimension_numbers=specs)  # noqa: E731
    x = np.transpose(x_canon, _inverse(specs[0], "NC"))
    w = np.transpose(w_canon, _inverse(specs[1], "OI"))
    return f, x, w


def _inverse(spec, lead):
    """Permutation taking a canonical (lead..., spatial...) array to layout ``spec``."""
    canon = [*lead, *(c for c in spec if c not in lead)]
    return [canon.index(c) for c in spec]


@pytest.mark.parametrize("specs", [NCH, ("NHC", "HIO", "NHC")])
def test_taps_outer_channels_inner_order(specs):
    # terms (tap, channel): (0,0)=2048, (0,1)=1, (1,0)=-2048, (1,1)=1. Taps outer: 2048, 2048 (2049 ties
    # to even), 0, 1 -> 1. Channels outer: 2048, 0, 1, 2 -> 2. Channels reversed: 1, 2048, 2048, 0 -> 0.
    x_canon = np.array([[[2048.0, -2048.0], [1.0, 1.0]]], np.float32)  # (N=1, C=2, W=2)
    w_canon = np.ones((1, 2, 2), np.float32)
    f, x, w = term_order_case(specs, x_canon, w_canon)
    got = numfmt.emulate(f, "compute=float32,accum=float16,chunk=1")(x, w)
    assert got.shape == (1, 1, 1) and float(got.ravel()[0]) == 1.0
    assert float(numfmt.emulate(f, "compute=float32,accum=float16,chunk=4")(x, w).ravel()[0]) == 2.0  # one chunk
    assert float(f(x, w).ravel()[0]) == 2.0


def test_taps_row_major_over_spatial_dims():
    # one channel, 2x2 taps: (0,0)=2048, (0,1)=1, (1,0)=-2048, (1,1)=1; row-major gives 1, column-major 2
    x = np.array([[[[2048.0, 1.0], [-2048.0, 1.0]]]], np.float32)
    w = np.ones((1, 1, 2, 2), np.float32)
    f = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "VALID")  # noqa: E731
    assert float(numfmt.emulate(f, "compute=float32,accum=float16,chunk=1")(x, w)[0, 0, 0, 0]) == 1.0
    # the same data with H and W swapped in the layout: still row-major in the spec's spatial order
    g = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NCWH", "OIWH", "NCWH"))  # noqa: E731
    xt, wt = np.swapaxes(x, 2, 3), np.swapaxes(w, 2, 3)  # taps (w outer, h inner): 2048, 0, 1, 2
    assert float(numfmt.emulate(g, "compute=float32,accum=float16,chunk=1")(xt, wt)[0, 0, 0, 0]) == 2.0


def test_float16_accumulation_stagnates_on_a_long_conv():
    x = jnp.ones((1, 2, 2052), jnp.float32)  # K = 2 channels x 2048 taps = 4096 ones per output
    w = jnp.ones((1, 2, 2048), jnp.float32)
    f = lambda x, w: jax.lax.conv_general_dilated(x, w, (2,), "VALID")  # noqa: E731
    exact = np.asarray(f(x, w))
    np.testing.assert_array_equal(exact, np.full((1, 1, 3), 4096.0))
    got = numfmt.emulate(f, "compute=float32,accum=float16,chunk=1")(x, w)
    want = reference_conv(np.ones((1, 2, 2052)), np.ones((1, 2, 2048)), conv_params(f, x, w)[0], [3], 1, "float16")
    np.testing.assert_array_equal(want, np.full((1, 1, 3), 2048.0))  # 2048 + 1 ties back to 2048
    np.testing.assert_array_equal(np.asarray(got), want)
    got32 = numfmt.emulate(f, "compute=float32,accum=float16,chunk=32")(x, w)
    np.testing.assert_array_equal(np.asarray(got32), exact)


def test_specials_are_copied_not_multiplied():
    # conv_general_dilated_patches would spread 0 * inf = NaN to other taps and flush float32 subnormals
    tiny = np.float32(2.0**-140)
    x = np.array([[[1.0, np.inf, 2.0, 0.0, tiny, -tiny * 3, 0.0, np.nan, 4.0, 5.0]]], np.float32)
    w = np.array([[[1.0, 1.0]]], np.float32)
    f = lambda x, w: jax.lax.conv_general_dilated(x, w, (1,), ((1, 1),))  # noqa: E731
    got = np.asarray(numfmt.emulate(f, "compute=float32,accum=float32,chunk=1")(x, w))[0, 0]
    params, (_, _, n) = conv_params(f, x, w)
    want = reference_conv(x.astype(np.float64), w.astype(np.float64), params, [n], 1, "float32")[0, 0]
    np.testing.assert_array_equal(got, want)
    assert np.isposinf(got[1:3]).all() and np.isnan(got[7:9]).all()  # only the windows holding them
    np.testing.assert_array_equal(got[[0, 3, 9, 10]], [1.0, 2.0, 9.0, 5.0])
    np.testing.assert_array_equal(got[4:7].view(np.uint32), np.array([tiny, -2 * tiny, -3 * tiny]).view(np.uint32))


def test_a_long_kernel_copies_specials_too():
    # 24 taps: the gathered patches must copy -0, subnormals, infinities and NaN as the slices do
    tiny = np.float32(2.0**-140)
    x = np.zeros((1, 1, 120), np.float32)
    x[0, 0, [3, 8, 40, 70, 75]] = [np.inf, -0.0, np.nan, tiny, -tiny * 5]
    x[0, 0, 100:] = np.arange(1, 21)
    w = np.ones((1, 1, 24), np.float32)
    f = lambda x, w: jax.lax.conv_general_dilated(x, w, (1,), ((2, 2),))  # noqa: E731
    got = np.asarray(numfmt.emulate(f, "compute=float32,accum=float32,chunk=1")(x, w))[0, 0]
    params, (_, _, n) = conv_params(f, x, w)
    want = reference_conv(x.astype(np.float64), w.astype(np.float64), params, [n], 1, "float32")[0, 0]
    bits, want_bits = got.view(np.uint32), want.astype(np.float32).view(np.uint32)
    np.testing.assert_array_equal(bits[~np.isnan(got)], want_bits[~np.isnan(want)])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got).any() and np.isposinf(got).any()
    assert {tiny.view(np.uint32), (-4 * tiny).view(np.uint32)} <= set(got.view(np.uint32))  # subnormal sums kept


@pytest.mark.parametrize("jit", [False, True])
def test_stochastic_accumulator_reproducible_with_a_key(jit):
    x = jnp.full((1, 1, 64), 1.1, jnp.float32)
    w = jnp.full((1, 1, 60), 1.1, jnp.float32)
    f = lambda x, w: jax.lax.conv_general_dilated(x, w, (1,), "VALID")  # noqa: E731
    g = numfmt.emulate(f, "compute=float32,rounding=stochastic,accum=float8_e5m2,chunk=1,out=float32")
    g = jax.jit(g) if jit else g
    first = np.asarray(g(x, w, key=jax.random.key(0)))
    np.testing.assert_array_equal(first, np.asarray(g(x, w, key=jax.random.key(0))))
    results = {np.asarray(g(x, w, key=jax.random.key(k))).tobytes() for k in range(6)}
    assert len(results) > 1
    assert len(set(first.ravel())) > 1  # output elements get different random bits


def test_jit_equals_eager_and_the_gradient_is_emulated_in_both_orders():
    rng = np.random.default_rng(3)
    x = chop(rng.standard_normal((2, 4, 6, 6)), "e4m3fn").astype(np.float32)
    w = chop(rng.standard_normal((6, 2, 3, 3)), "e4m3fn").astype(np.float32)
    f = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=2)  # noqa: E731
    policy = "compute=float32,matmul_in=float8_e4m3fn,accum=bfloat16,chunk=4,out=float32"
    g = numfmt.emulate(f, policy)
    np.testing.assert_array_equal(np.asarray(jax.jit(g)(x, w)), np.asarray(g(x, w)))
    cot = chop(rng.standard_normal((2, 6, 6, 6)), "e4m3fn").astype(np.float32)
    loss = lambda x, w: jnp.sum(f(x, w) * cot)  # noqa: E731
    # the weight gradient of a grouped convolution is a convolution with batch_group_count=2
    got = jax.jit(jax.grad(numfmt.emulate(loss, policy), argnums=(0, 1)))(x, w)
    inner = jax.jit(numfmt.emulate(jax.grad(loss, argnums=(0, 1)), policy))(x, w)
    for a, b in zip(got, inner, strict=True):
        np.testing.assert_array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32))
    x64, w64, cot64 = (a.astype(np.float64) for a in (x, w, cot))
    want = jax.grad(lambda x, w: jnp.sum(f(x, w) * cot64), argnums=(0, 1))(x64, w64)
    for a, b in zip(got, want, strict=True):  # bfloat16 accumulation of e4m3 products: close, not equal
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b), rtol=0.05, atol=0.5)
        assert np.any(np.asarray(a, np.float64) != np.asarray(b))


def test_preferred_element_type_gives_the_output_dtype():
    rng = np.random.default_rng(4)
    x = chop(rng.standard_normal((1, 3, 9)) * 8, "e4m3fn").astype(np.float16)
    w = chop(rng.standard_normal((2, 3, 4)) * 8, "e4m3fn").astype(np.float16)
    f = lambda x, w: jax.lax.conv_general_dilated(x, w, (1,), "VALID", preferred_element_type=jnp.float32)  # noqa: E731
    got = numfmt.emulate(f, "compute=float16,accum=float16,chunk=2,out=float32")(x, w)
    assert got.dtype == jnp.float32
    params, shape = conv_params(f, x, w)
    want = reference_conv(x.astype(np.float64), w.astype(np.float64), params, shape[2:], 2, "float16")
    np.testing.assert_array_equal(np.asarray(got, np.float64), want)


def test_without_accum_the_conv_is_one_rounding_of_xla_conv():
    x = jnp.ones((1, 1, 8), jnp.float32)
    w = jnp.ones((1, 1, 3), jnp.float32)
    conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1,), "VALID")  # noqa: E731
    np.testing.assert_array_equal(numfmt.emulate(conv, "compute=bfloat16")(x, w), conv(x, w))


@pytest.mark.parametrize("chunk", [1, 4])
@pytest.mark.parametrize(("bgroups", "specs"), [(2, NCH), (3, NCH), (2, NHWC), (3, NCHW)])
def test_batch_group_count(bgroups, specs, chunk):
    # the weight gradient of a grouped convolution has batch_group_count > 1: batch group g is the g-th
    # consecutive slice of the batch; checked against XLA's float64 convolution (small integers: every sum
    # exact) and bit for bit against the reference loop with roundings
    rng = np.random.default_rng(bgroups)
    spatial = (7,) if specs == NCH else (5, 4)
    x_canon = rng.integers(-4, 5, (2 * bgroups, 3, *spatial)).astype(np.float32)
    w_canon = rng.integers(-4, 5, (2 * bgroups, 3, *(3,) * len(spatial))).astype(np.float32)
    x = np.transpose(x_canon, _inverse(specs[0], "NC"))
    w = np.transpose(w_canon, _inverse(specs[1], "OI"))
    f = lambda x, w: jax.lax.conv_general_dilated(x, w, (1,) * len(spatial), "SAME", dimension_numbers=specs,  # noqa: E731
                                                  batch_group_count=bgroups)  # fmt: skip
    got = numfmt.emulate(f, f"compute=float32,accum=float32,chunk={chunk}")(x, w)
    with jax.enable_x64(True):
        want = np.asarray(f(x.astype(np.float64), w.astype(np.float64)))
    np.testing.assert_array_equal(np.asarray(got, np.float64), want)
    run = run_case(x.shape, w.shape, specs, chunk, "bfloat16", out="float32", seed=bgroups,
                   window_strides=(1,) * len(spatial), padding="SAME", batch_group_count=bgroups)  # fmt: skip
    assert np.any(run[0] != run[1])  # bfloat16 accumulation rounds


def test_backward_convolutions_under_emulate_of_grad():
    # emulate(jax.grad(f)) sees the transposed convolutions (lhs dilation, kernel reversed via rev, swapped
    # dimension numbers); small integers keep every sum exact, so they equal XLA's gradient bit for bit.
    rng = np.random.default_rng(5)
    x = rng.integers(-3, 4, (2, 4, 7, 6)).astype(np.float32)
    w = rng.integers(-3, 4, (6, 4, 3, 2)).astype(np.float32)
    conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (2, 1), "SAME", rhs_dilation=(1, 2))  # noqa: E731
    grad = jax.grad(lambda x, w: jnp.sum(conv(x, w) ** 2), argnums=(0, 1))
    got = numfmt.emulate(grad, "compute=float32,accum=float32,chunk=3")(x, w)
    for a, b in zip(got, grad(x, w), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the weight gradient of a grouped convolution has batch_group_count=2
    grouped = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=2)  # noqa: E731
    ggrad = jax.grad(lambda x, w: jnp.sum(grouped(x, w) ** 2), argnums=1)
    assert "batch_group_count=2" in str(jax.make_jaxpr(ggrad)(x, w[:, :2]))
    got = numfmt.emulate(ggrad, "compute=float32,accum=float32")(x, w[:, :2])
    np.testing.assert_array_equal(np.asarray(got), np.asarray(ggrad(x, w[:, :2])))


@pytest.mark.parametrize(
    "xs,ws", [((0, 3, 5, 5), (4, 3, 2, 2)), ((2, 3, 5, 5), (0, 3, 2, 2)), ((2, 3, 1, 1), (4, 3, 2, 2))]
)
def test_empty_convolutions(xs, ws):
    conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "VALID")  # noqa: E731
    x, w = jnp.ones(xs, jnp.float32), jnp.ones(ws, jnp.float32)
    got = numfmt.emulate(conv, "compute=float32,accum=float16,chunk=2")(x, w)
    assert got.shape == conv(x, w).shape and got.size == 0
