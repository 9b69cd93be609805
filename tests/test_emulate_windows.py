"""emulate on pooling, scatters and cumulative ops: bit equality with chop applied to float64 NumPy.

Documented semantics (docs/emulate.md, numfmt/emulation/windows.py): a window sum, a
scatter-add slot (operand plus all its updates, duplicates included) and a
max-pool gradient position are summed in the work dtype and rounded once;
window/scatter max and min are exact. The test data keep every float64 sum
exact, so the reference is ``chop`` of the exact result.
"""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import numfmt
from numfmt import chop

FORMATS = ["bfloat16", "float16", "float8_e4m3fn"]
RNG = np.random.default_rng(11)
X = (RNG.standard_normal((2, 7, 6, 3)) * 3).astype(np.float32)


def bits(a):
    a = np.asarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_bits(got, want):
    got, want = np.asarray(got), np.asarray(want).astype(np.asarray(got).dtype)
    np.testing.assert_array_equal(bits(got), bits(want))


def window_reduce(x, init, reduce, dims, strides, padding, base=None, dilation=None):
    """Explicit reduce_window over float64 NumPy: each output element reduces its window's values in order."""
    base = base or (1,) * x.ndim
    dilation = dilation or (1,) * x.ndim
    spread = np.full([(n - 1) * b + 1 for n, b in zip(x.shape, base, strict=True)], init)
    spread[tuple(slice(None, None, b) for b in base)] = x
    padded = np.pad(spread, padding, constant_values=init)
    spans = [(w - 1) * d + 1 for w, d in zip(dims, dilation, strict=True)]
    shape = [(n - s) // st + 1 for n, s, st in zip(padded.shape, spans, strides, strict=True)]
    out = np.empty(shape)
    for idx in np.ndindex(*shape):
        window = padded[
            tuple(slice(i * st, i * st + s, d) for i, st, s, d in zip(idx, strides, spans, dilation, strict=True))
        ]
        out[idx] = reduce(window.ravel())
    return out


POOLS = [  # (window, strides, padding, base dilation, window dilation)
    ((1, 2, 2, 1), (1, 2, 2, 1), ((0, 0), (0, 0), (0, 0), (0, 0)), None, None),
    ((1, 3, 3, 1), (1, 2, 1, 1), ((0, 0), (1, 1), (0, 2), (0, 0)), None, None),
    ((1, 2, 3, 2), (1, 1, 2, 1), ((0, 0), (0, 1), (1, 0), (0, 0)), (1, 2, 1, 1), (1, 1, 2, 1)),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("pool", range(len(POOLS)))
@pytest.mark.parametrize("op", ["sum", "max", "min"])
def test_reduce_window_equals_explicit_windows(fmt, pool, op):
    dims, strides, padding, base, dilation = POOLS[pool]
    monoid, init, reduce = {"sum": (lax.add, 0.0, np.sum), "max": (lax.max, -np.inf, np.max),
                            "min": (lax.min, np.inf, np.min)}[op]  # fmt: skip

    def f(x):
        return lax.reduce_window(x, init, monoid, dims, strides, padding, base, dilation)

    assert f"reduce_window_{op}" in str(jax.make_jaxpr(f)(X))
    got = jax.jit(numfmt.emulate(f, f"compute={fmt}"))(X)
    want = window_reduce(chop(X.astype(np.float64), fmt), init, reduce, dims, strides, padding, base, dilation)
    assert_bits(got, chop(want, fmt))  # max/min: chop is the identity on these values


def test_generic_reduce_window_with_a_traced_init_includes_it_in_the_one_rounding():
    def f(x, init):  # a traced init value: a generic reduce_window whose body is `add`
        return lax.reduce_window(x, init, lax.add, (1, 2, 2, 1), (1, 1, 1, 1), "VALID")

    init = np.float32(0.3)
    assert "reduce_window[" in str(jax.make_jaxpr(f)(X, init))
    got = jax.jit(numfmt.emulate(f, "compute=bfloat16"))(X, init)
    x = chop(X.astype(np.float64), "bfloat16")
    want = window_reduce(x, 0.0, np.sum, (1, 2, 2, 1), (1, 1, 1, 1), ((0, 0),) * 4) + chop(0.3, "bfloat16")
    assert_bits(got, chop(want, "bfloat16"))
    g = lambda x, i: lax.reduce_window(x, i, lax.max, (1, 2, 2, 1), (1, 1, 1, 1), "VALID")  # noqa: E731
    got = jax.jit(numfmt.emulate(g, "compute=float8_e4m3fn"))(X, np.float32(-0.3))
    want = np.maximum(window_reduce(chop(X.astype(np.float64), "e4m3fn"), -np.inf, np.max, (1, 2, 2, 1),
                                    (1, 1, 1, 1), ((0, 0),) * 4), chop(-0.3, "e4m3fn"))  # fmt: skip
    assert_bits(got, want)


def test_window_sum_is_one_rounding_not_a_rounded_running_sum():
    # float16: 2048 + 1 + 1 is 2050 exactly; rounding after each add would stay at 2048
    x = np.asarray([[2048.0, 1.0, 1.0]], np.float32)
    f = lambda v: lax.reduce_window(v, 0.0, lax.add, (1, 3), (1, 1), "VALID")  # noqa: E731
    assert float(numfmt.emulate(f, "compute=float16")(x)[0, 0]) == 2050.0


@pytest.mark.parametrize("fmt", FORMATS)
def test_avg_pool_gradient_pads_and_sums_overlapping_windows_once(fmt):
    # the transpose of a stride-1 window sum is an interior/edge pad then a window sum (both emulated)
    pool = lambda x: lax.reduce_window(x, 0.0, lax.add, (1, 2, 2, 1), (1, 1, 1, 1), "VALID") / 4.0  # noqa: E731
    cot = (np.random.default_rng(108).standard_normal(pool(X).shape) * 2).astype(np.float32)
    grad = lambda x, c: jax.vjp(pool, x)[1](c)[0]  # noqa: E731
    assert "pad[" in str(jax.make_jaxpr(grad)(X, cot))
    got = jax.jit(numfmt.emulate(grad, f"compute={fmt}"))(X, cot)
    quarter = chop(chop(cot.astype(np.float64), fmt) / chop(4.0, fmt), fmt)
    want = np.zeros(X.shape)
    for i in range(2):
        for j in range(2):  # each input element gets the cotangents of the (up to 4) windows holding it
            want[:, i : i + quarter.shape[1], j : j + quarter.shape[2], :] += quarter
    assert_bits(got, chop(want, fmt))


def test_zero_sums_toward_negative_are_minus_zero_unless_every_term_is_plus_zero():
    # IEEE 754 6.3, as for reduce_sum: windows [1, -1] and [-0, -0] sum to -0, [+0, +0] to +0
    x = np.asarray([[1.0, -1.0, -0.0, -0.0, 0.0, 0.0]], np.float32)
    f = lambda v: lax.reduce_window(v, 0.0, lax.add, (1, 2), (1, 2), "VALID")  # noqa: E731
    got = numfmt.emulate(f, "compute=float16,rounding=toward_negative")(x)
    assert_bits(got, np.asarray([[-0.0, -0.0, 0.0]], np.float32))
    g = lambda v, u: v.at[np.asarray([0, 0, 1, 2])].add(u)  # noqa: E731
    got = numfmt.emulate(g, "compute=float16,rounding=toward_negative")(
        np.asarray([1.0, -0.0, 0.0, 0.0], np.float32), np.asarray([-0.5, -0.5, 0.0, 0.0], np.float32)
    )
    assert_bits(got, np.asarray([-0.0, -0.0, 0.0, 0.0], np.float32))  # slot 3: no update, +0 stays
    got = numfmt.emulate(g, "compute=float16")(  # round to nearest: XLA's +0
        np.asarray([1.0, -0.0, 0.0, 0.0], np.float32), np.asarray([-0.5, -0.5, 0.0, 0.0], np.float32)
    )
    assert_bits(got, np.asarray([0.0, 0.0, 0.0, 0.0], np.float32))


def _select_and_scatter_ref(x, cot, dims, strides, padding):
    """Max-pool gradient: each window's cotangent goes to its first maximal element, summed per element."""
    padded = np.pad(x, padding, constant_values=-np.inf)
    out = np.zeros_like(padded)
    for idx in np.ndindex(*cot.shape):
        corner = [i * s for i, s in zip(idx, strides, strict=True)]
        window = padded[tuple(slice(c, c + w) for c, w in zip(corner, dims, strict=True))]
        hit = np.unravel_index(np.argmax(window), window.shape)  # first maximum in row-major order
        out[tuple(c + h for c, h in zip(corner, hit, strict=True))] += cot[idx]
    return out[tuple(slice(lo, n - hi) for (lo, hi), n in zip(padding, padded.shape, strict=True))]


@pytest.mark.parametrize("fmt", FORMATS)
def test_max_pool_gradient_sums_overlapping_windows_once(fmt):
    dims, strides, padding = (1, 3, 3, 1), (1, 2, 1, 1), ((0, 0), (1, 1), (0, 2), (0, 0))
    pool = lambda x: lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, padding)  # noqa: E731
    cot = (np.random.default_rng(136).standard_normal(pool(X).shape) * 2).astype(np.float32)
    grad = lambda x, c: jax.vjp(pool, x)[1](c)[0]  # noqa: E731
    assert "select_and_scatter_add" in str(jax.make_jaxpr(grad)(X, cot))
    got = jax.jit(numfmt.emulate(grad, f"compute={fmt}"))(X, cot)
    x, c = (chop(a.astype(np.float64), fmt) for a in (X, cot))
    assert_bits(got, chop(_select_and_scatter_ref(x, c, dims, strides, padding), fmt))


def test_max_pool_gradient_ties_go_to_the_first_maximum():
    # 1.01 and 1.0 are equal in float8_e4m3fn: the tie is made by the rounding, and broken in row-major order
    x = np.asarray([[[[1.0], [1.01]], [[0.5], [1.0]]]], np.float32)  # (1, 2, 2, 1): one 2x2 window
    pool = lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 1, 1, 1), "VALID")  # noqa: E731
    grad = lambda x, c: jax.vjp(pool, x)[1](c)[0]  # noqa: E731
    got = jax.jit(numfmt.emulate(grad, "compute=float8_e4m3fn"))(x, np.full((1, 1, 1, 1), 3.0, np.float32))
    assert_bits(got, np.asarray([[[[3.0], [0.0]], [[0.0], [0.0]]]], np.float32))
    got = jax.jit(numfmt.emulate(grad, "compute=float16"))(x, np.full((1, 1, 1, 1), 3.0, np.float32))
    assert_bits(got, np.asarray([[[[0.0], [3.0]], [[0.0], [0.0]]]], np.float32))


def test_max_pool_jvp_gathers_the_tangent_of_the_maximum():
    dims, strides = (1, 2, 2, 1), (1, 2, 2, 1)
    pool = lambda x: lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, "VALID")  # noqa: E731
    tangent = np.random.default_rng(158).standard_normal(X.shape).astype(np.float32)
    jvp = lambda x, t: jax.jvp(pool, (x,), (t,))[1]  # noqa: E731
    assert "select_and_gather_add" in str(jax.make_jaxpr(jvp)(X, tangent))
    got = jax.jit(numfmt.emulate(jvp, "compute=float8_e4m3fn"))(X, tangent)
    x = chop(X.astype(np.float64), "e4m3fn")
    want = np.empty(got.shape)
    for idx in np.ndindex(*got.shape):
        sl = tuple(slice(i * s, i * s + w) for i, s, w in zip(idx, strides, dims, strict=True))
        hit = np.unravel_index(np.argmax(x[sl]), x[sl].shape)
        want[idx] = tangent[sl][hit]  # a tangent is data here: copied, not rounded
    assert_bits(got, want)


# -- scatters -----------------------------------------------------------------

OPERAND = (RNG.standard_normal(6) * 4).astype(np.float32)
INDEX = np.asarray([0, 3, 0, 5, 3, 0, 1])  # duplicates: slot 0 three times, slot 3 twice
UPDATES = (RNG.standard_normal(7) * 4).astype(np.float32)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("op", ["add", "mul", "min", "max"])
def test_scatter_with_duplicate_indices_rounds_each_slot_once(fmt, op):
    f = lambda v, u: getattr(v.at[INDEX], op)(u)  # noqa: E731
    assert f"scatter-{op}" in str(jax.make_jaxpr(f)(OPERAND, UPDATES))
    got = jax.jit(numfmt.emulate(f, f"compute={fmt}"))(OPERAND, UPDATES)
    want = chop(OPERAND.astype(np.float64), fmt)
    {"add": np.add, "mul": np.multiply, "min": np.minimum, "max": np.maximum}[op].at(
        want, INDEX, chop(UPDATES.astype(np.float64), fmt)
    )  # float64: exact for these few terms
    assert_bits(got, chop(want, fmt))


def test_scatter_add_rounds_the_sum_of_duplicates_once():
    # float16: 2048 + 1 + 1 = 2050 rounded once; sequential rounding would give 2048
    f = lambda v, u: v.at[np.asarray([0, 0])].add(u)  # noqa: E731
    got = numfmt.emulate(f, "compute=float16")(np.asarray([2048.0], np.float32), np.ones(2, np.float32))
    assert float(got[0]) == 2050.0


def test_scatter_set_moves_values_without_rounding_them():
    f = lambda v, u: v.at[np.asarray([1, 4])].set(u)  # noqa: E731
    got = jax.jit(numfmt.emulate(f, "compute=bfloat16"))(OPERAND, UPDATES[:2])
    want = OPERAND.copy()
    want[[1, 4]] = UPDATES[:2]
    assert_bits(got, want)
    # with both rounded first (known bfloat16 values), the result is bfloat16 and stays so
    g = lambda v, u: (v * 1.0).at[np.asarray([1, 4])].set(u * 1.0)  # noqa: E731
    got = jax.jit(numfmt.emulate(g, "compute=bfloat16"))(OPERAND, UPDATES[:2])
    assert_bits(got, chop(want.astype(np.float64), "bfloat16"))


def test_integer_label_cross_entropy_gradient():
    logits = (np.random.default_rng(211).standard_normal((5, 4)) * 2).astype(np.float32)
    labels = np.asarray([0, 3, 3, 1, 2])

    def loss(z, y):
        return -jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], axis=-1))

    assert "scatter-add" in str(jax.make_jaxpr(jax.grad(loss))(logits, labels))
    got = np.asarray(jax.jit(numfmt.emulate(jax.grad(loss), "compute=bfloat16"))(logits, labels))
    assert_bits(got, chop(got.astype(np.float64), "bfloat16"))  # a bfloat16 value
    np.testing.assert_allclose(got, jax.grad(loss)(logits, labels), atol=0.03)  # and the gradient


# -- cumulative ops -----------------------------------------------------------

CUM = (RNG.standard_normal((4, 9)) * 2).astype(np.float32)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("op", ["cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp"])
def test_cumulative_ops_round_each_prefix_once(fmt, reverse, op):
    x = CUM if op != "cumprod" else chop(CUM, "float(e=5,m=2)")  # products of 3-bit values stay exact in float64
    f = lambda v: getattr(lax, op)(v, axis=1, reverse=reverse)  # noqa: E731
    got = jax.jit(numfmt.emulate(f, f"compute={fmt}"))(x)
    v = chop(x.astype(np.float64), fmt)[:, ::-1] if reverse else chop(x.astype(np.float64), fmt)
    acc = {"cumsum": np.add, "cumprod": np.multiply, "cummax": np.maximum, "cummin": np.minimum,
           "cumlogsumexp": np.logaddexp}[op].accumulate(v, axis=1)  # fmt: skip
    assert_bits(got, chop(acc[:, ::-1] if reverse else acc, fmt))


# -- models -------------------------------------------------------------------


def cnn(params, x):
    """A flax-style CNN written with lax: conv, avg_pool, max_pool (SAME), dense, mean squared loss."""
    w1, w2 = params
    h = lax.conv_general_dilated(x, w1, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    h = jax.nn.relu(h)
    h = lax.reduce_window(h, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4.0  # nn.avg_pool
    h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 1, 1, 1), "SAME")  # nn.max_pool
    return jnp.mean((h.reshape(h.shape[0], -1) @ w2) ** 2)


@pytest.mark.parametrize("order", ["emulate(grad)", "grad(emulate)"])
def test_pooling_model_gradient_in_both_orders(order):
    rng = np.random.default_rng(0)  # its own stream: data independent of the tests selected before it
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    params = (rng.standard_normal((3, 3, 3, 4)).astype(np.float32) * 0.5,
              rng.standard_normal((4 * 4 * 4, 2)).astype(np.float32) * 0.2)  # fmt: skip
    policy = "compute=bfloat16"
    g = numfmt.emulate(jax.grad(cnn), policy) if order == "emulate(grad)" else jax.grad(numfmt.emulate(cnn, policy))
    got = jax.jit(g)(params, x)
    want = jax.grad(cnn)(params, x)
    for a, b in zip(got, want, strict=True):
        a = np.asarray(a)
        if order == "emulate(grad)":  # the backward pass is emulated: every gradient is a bfloat16 value
            assert_bits(a, chop(a.astype(np.float64), "bfloat16"))
        assert np.linalg.norm(a - b) < 0.05 * np.linalg.norm(b)  # near the float32 gradient (0.6% here)


# -- x64 off ------------------------------------------------------------------

SCRIPT = r"""
import jax, jax.numpy as jnp, numpy as np
from jax import lax
import numfmt
from numfmt import chop
assert not jax.config.read("jax_enable_x64")
rng = np.random.default_rng(3)
x = (np.round(rng.standard_normal((2, 6, 6, 3)) * 256) / 64).astype(np.float32)  # 2**-6 multiples: exact float32 sums
def pools(v):
    s = lax.reduce_window(v, 0.0, lax.add, (1, 3, 3, 1), (1, 1, 1, 1), "VALID")
    m = lax.reduce_window(v, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    return s, m, v[0, 0, :, 0].at[np.asarray([0, 0, 1])].add(v[1, 1, :3, 0]), jnp.cumsum(v, axis=2)
# bfloat16 needs float64 work (XLA:CPU flushes float32 subnormals); emulate enables it while tracing
for fmt in ("float16", "bfloat16"):
    s, m, sc, cs = jax.jit(numfmt.emulate(pools, f"compute={fmt}"))(x)
    assert s.dtype == np.float32
    q = chop(x.astype(np.float64), fmt)
    ws = sum(q[:, i:i + 4, j:j + 4, :] for i in range(3) for j in range(3))
    wm = q.reshape(2, 3, 2, 3, 2, 3).max(axis=(2, 4))
    wc = q[0, 0, :, 0].copy(); np.add.at(wc, np.asarray([0, 0, 1]), q[1, 1, :3, 0])
    def same(a, b):
        return np.array_equal(np.asarray(a).view(np.uint32), chop(b, fmt).astype(np.float32).view(np.uint32))
    print(fmt, "sum", same(s, ws), "max", same(m, wm), "scatter", same(sc, wc),
          "cumsum", same(cs, np.cumsum(q, axis=2)))
print("x64 still off", not jax.config.read("jax_enable_x64"), s.dtype)
"""


def test_x64_off_float16_and_bfloat16_match_the_reference():
    root = pathlib.Path(__file__).resolve().parents[1]
    env = dict(os.environ, JAX_ENABLE_X64="0", JAX_PLATFORMS="cpu", PYTHONPATH=str(root))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "\nfloat16 sum True max True scatter True cumsum True" in "\n" + proc.stdout, proc.stdout
    assert "bfloat16 sum True max True scatter True cumsum True" in proc.stdout, proc.stdout
    assert "x64 still off True float32" in proc.stdout, proc.stdout
