"""emulate keeps rounded values in the dtype they were computed in: exactness at every hand-over.

bfloat16 arithmetic runs in float64, and a chain of such operations keeps its
values in float64 until a primitive needs the traced float32. Values here are
chosen in bfloat16's subnormal range, which float32 holds only as subnormals:
XLA on CPU flushes those in a plain float64 -> float32 conversion, so any
hand-over that is not exact shows up as a zero.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import numfmt
from numfmt import chop

FMT = "bfloat16"
POLICY = f"compute={FMT}"
# multiples of bfloat16's smallest subnormal 2**-133, i.e. float32 subnormals, and normal values
TINY = np.asarray([3, -5, 127, 1, -1, 64], np.float64) * 2.0**-133
X = np.concatenate([TINY, [1.5, -2.25, 3e38, -7.0]]).astype(np.float32)
Y = np.concatenate([np.full(6, 0.5), [0.75, 1.0, 0.25, 0.5]]).astype(np.float32)


def bits(a):
    a = np.asarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def c(v):
    return chop(np.asarray(v, np.float64), FMT)


def test_chain_output_is_exact_and_in_traced_dtype():
    # x * y lands in bfloat16's subnormal range; the result goes through movement
    # ops, a select, a comparison and a concatenation before leaving the function
    def f(x, y):
        p = x * y + x  # float64 work, stored wide
        q = jnp.where(p > 0, p, -p)  # select_n of a wide value and a wide negation
        r = jnp.concatenate([q[::-1], x])  # wide and traced-dtype operands (movement: x is not rounded)
        return jnp.pad(r.reshape(2, -1), ((0, 0), (1, 1)), constant_values=0.5), jnp.max(q)

    got, top = jax.jit(numfmt.emulate(f, POLICY))(X, Y)
    assert got.dtype == jnp.float32 and top.dtype == jnp.float32
    p = c(c(c(X) * c(Y)) + c(X))
    q = np.abs(p)
    want = np.pad(np.concatenate([q[::-1], X]).reshape(2, -1), ((0, 0), (1, 1)), constant_values=0.5)
    np.testing.assert_array_equal(bits(got), bits(want.astype(np.float32)))
    np.testing.assert_array_equal(bits(top), bits(np.float32(q.max())))
    assert np.count_nonzero(np.abs(want) < 2.0**-126) >= 6  # the subnormal values are really there


def test_bit_level_and_integer_consumers_see_the_traced_dtype():
    def f(x, y):
        p = x * y  # wide
        return lax.bitcast_convert_type(p, jnp.uint32), p.astype(jnp.int32), p.astype(jnp.float16)

    u, i, h = jax.jit(numfmt.emulate(f, POLICY))(X, Y)
    p = c(c(X) * c(Y)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(u), bits(p))
    small = np.abs(p) < 2.0**31  # XLA and NumPy differ on out-of-range casts, which are not the point here
    np.testing.assert_array_equal(np.asarray(i)[small], p[small].astype(np.int32))
    assert h.dtype == jnp.float16


def test_control_flow_and_custom_rules_take_wide_values():
    def f(x, y):
        p = x * y  # wide, then into scan carries, cond operands and a custom_jvp function
        s, _ = lax.scan(lambda carry, _: (carry * 2.0, None), p, None, length=3)
        t = lax.cond(jnp.sum(y) > 0, lambda a: a + p, lambda a: a - p, s)
        return jax.nn.relu(t), jax.jit(lambda a: a * 0.5)(p)

    got, half = jax.jit(numfmt.emulate(f, POLICY))(X, Y)
    p = c(c(X) * c(Y))
    s = c(c(c(p * 2) * 2) * 2)
    np.testing.assert_array_equal(bits(got), bits(np.maximum(c(s + p), 0).astype(np.float32)))
    np.testing.assert_array_equal(bits(half), bits(c(p * 0.5).astype(np.float32)))


@pytest.mark.parametrize("rounding", ["nearest_even", "toward_zero"])
def test_grad_through_wide_chain(rounding):
    # straight-through: d/dx sum(x * y + x) = y + 1 in the traced dtype
    f = numfmt.emulate(lambda x, y: jnp.sum(x * y + x), f"{POLICY},rounding={rounding}")
    g = jax.jit(jax.grad(f))(X, Y)
    assert g.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(g), Y + 1)


def test_exact_ops_on_subnormal_inputs_are_not_flushed():
    # inputs that are float32 subnormals (bfloat16 subnormals) go straight into exact primitives
    def f(x):
        return (-x, jnp.maximum(x, 0.0), jnp.sign(x), jnp.sort(x), lax.cummax(x), jnp.argmin(x),
                x > 0, x.astype(jnp.float64))  # fmt: skip

    neg, relu, sign, srt, cmax, amin, pos, wide = jax.jit(numfmt.emulate(f, POLICY))(X)
    x = c(X)
    assert neg.dtype == relu.dtype == sign.dtype == srt.dtype == cmax.dtype == jnp.float32
    np.testing.assert_array_equal(bits(neg), bits((-x).astype(np.float32)))
    np.testing.assert_array_equal(bits(relu), bits(np.maximum(x, 0).astype(np.float32)))
    np.testing.assert_array_equal(np.asarray(sign), np.sign(x))
    np.testing.assert_array_equal(bits(srt), bits(np.sort(x).astype(np.float32)))
    np.testing.assert_array_equal(bits(cmax), bits(np.maximum.accumulate(x).astype(np.float32)))
    assert int(amin) == int(np.argmin(x))
    np.testing.assert_array_equal(np.asarray(pos), x > 0)
    np.testing.assert_array_equal(bits(wide), bits(x))


def test_exact_ops_on_subnormal_formats_with_x64_off():
    # bfloat16 subnormals compare in float64, which emulate enables while tracing (the flag stays off)
    f = numfmt.emulate(lambda x: jnp.maximum(x, -x), POLICY)
    x = jnp.asarray([2.0**-130, -(2.0**-133), 0.0, -1.5], jnp.float32)  # bfloat16 subnormals, flushed by XLA:CPU in float32
    with jax.enable_x64(False):
        got = f(x)
        assert not jax.config.read("jax_enable_x64")
    assert got.dtype == jnp.float32
    np.testing.assert_array_equal(bits(got), bits(np.float32([2.0**-130, 2.0**-133, 0.0, 1.5])))
    # formats whose values are all float32 normals do not
    with jax.enable_x64(False):
        g = numfmt.emulate(lambda x: jnp.maximum(x, 0.0), "compute=float8_e4m3fn")
        np.testing.assert_array_equal(g(jnp.asarray([-1.0, 0.3], jnp.float32)), [0.0, 0.3125])


def test_conversions_round_once_into_the_site_format():
    # an override for convert_element_type takes effect (it was silently ignored)
    f = numfmt.emulate(lambda x: x.astype(jnp.float32), "compute=float32,prim.convert_element_type=float8_e4m3fn")
    assert float(f(jnp.float64(1.3))) == 1.25
    # int -> float rounds into the compute format, so exact ops after it see a format value
    g = numfmt.emulate(lambda n: (n.astype(jnp.float32), jnp.maximum(n.astype(jnp.float32), 0.0)), POLICY)
    conv, relu = g(jnp.asarray([1_000_001, -3, 2**24 + 1], jnp.int32))
    want = c(np.asarray([1_000_001, -3, 2**24 + 1], np.float64)).astype(np.float32)  # 999424, -3, 2**24
    np.testing.assert_array_equal(np.asarray(conv), want)
    np.testing.assert_array_equal(np.asarray(relu), np.maximum(want, 0))
    # into a dtype narrower than the format: rounded to the format, then XLA rounds into the dtype
    h = numfmt.emulate(lambda x: x.astype(jnp.float16), POLICY)
    x = np.asarray([1.3, 70000.0, 3e-6, -2.0**-30], np.float32)
    with np.errstate(over="ignore"):  # 70000 overflows float16 to inf, on purpose
        want16 = c(x).astype(np.float16)
    np.testing.assert_array_equal(bits(h(x)), bits(want16))


def test_conversions_to_bool_int_and_from_narrow_floats():
    x = np.float32([2.0**-65, 2.0**-64, 3.0])
    y = np.float32([2.0**-65, -(2.0**-64), 0.5])
    # x * y is a bfloat16 subnormal (a float32 subnormal): nonzero, so True
    b = numfmt.emulate(lambda x, y: (x * y).astype(bool), POLICY)(x, y)
    np.testing.assert_array_equal(np.asarray(b), [True, True, True])
    # float16 input, bfloat16 format: rounded in a dtype that holds bfloat16
    h = numfmt.emulate(lambda v: v.astype(jnp.float32) * 2.0, POLICY)(jnp.float16([1.5, 65504.0]))
    np.testing.assert_array_equal(np.asarray(h), c(c(np.float64([1.5, 65504.0])) * 2))


@pytest.mark.parametrize("rounding", ["toward_zero", "toward_positive", "toward_negative", "nearest_even"])
def test_integer_conversions_round_once(rounding):
    # an int32 beyond float32's exact range is rounded once from its exact value
    n = np.asarray([2**25 - 1, 2**25 + 1, -(2**25) - 3, 123457], np.int32)
    f = numfmt.emulate(lambda n: n.astype(jnp.float32), f"compute=float(e=6,m=5),rounding={rounding}")
    want = chop(n.astype(np.float64), "float(e=6,m=5)", rounding).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(f(n)), want)
