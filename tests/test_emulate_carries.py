"""emulate's loop carries: a carry the body returns in the format it entered with stays known across iterations.

The interpreter then carries it in the dtype the body stores it in (float64
for bfloat16 values held in float32 variables) and does not round and
convert it again in every iteration. These tests check that the bits do not
change (against hand-written chop-after-every-op loops, and against the same
loop unrolled, where no carry exists), that a carry is known only when the
fixed point allows it, and that the saving is really there (the compiled
loop carries float64).
"""

import functools
import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numfmt
from numfmt import chop
from numfmt.emulation import control

RNG = np.random.default_rng(11)
BF16 = "compute=bfloat16"


def bits(a):
    a = np.asarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_same_bits(got, want):
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(bits(g), bits(w))


def _c(v, fmt="bfloat16"):
    return chop(jnp.asarray(v, jnp.float32), fmt)


def rnn(x, h0):
    """An Elman-style scan: h' = tanh(h * 0.75 + x); ys = h' * 3 (the carry is read and rebuilt every step)."""

    def step(h, xi):
        h = jnp.tanh(h * 0.75 + xi)
        return h, h * 3.0

    return jax.lax.scan(step, h0, x)


def rnn_by_hand(x, h0, fmt="bfloat16"):
    """rnn with chop after every operation; the carry is rounded where the body reads it, as the first time."""
    c = lambda v: _c(v, fmt)  # noqa: E731
    x = c(x)

    def step(h, xi):
        h = c(jnp.tanh(c(c(c(h) * c(0.75)) + xi)))
        return h, c(h * c(3.0))

    return jax.lax.scan(step, h0, x)


@pytest.mark.parametrize("fmt", ["bfloat16", "float16", "float8_e4m3fn"])
@pytest.mark.parametrize("init", ["zeros", "inexact", "rounded"])
def test_scan_carry_bits_equal_hand_written_chop(fmt, init):
    x = jnp.asarray(RNG.standard_normal((7, 16)), jnp.float32)
    h0 = {
        "zeros": lambda: jnp.zeros(16, jnp.float32),  # a literal: known, exact in every format
        "inexact": lambda: jnp.full(16, 0.1, jnp.float32),  # not a value of fmt: the first read rounds it
        "rounded": lambda: None,  # made inside the emulated function by an emulated op
    }[init]()
    if h0 is None:
        f = lambda x: rnn(x, x[0] * 0.3)  # noqa: E731
        want = rnn_by_hand(x, _c(_c(x[0], fmt) * _c(0.3, fmt), fmt), fmt)
    else:
        f = lambda x: rnn(x, h0)  # noqa: E731
        want = rnn_by_hand(x, h0, fmt)
    got = jax.jit(numfmt.emulate(f, f"compute={fmt}"))(x)
    assert_same_bits(got, want)


def test_scan_equals_its_unrolled_loop_forward_and_backward():
    # unrolled, nothing is carried: every value is an ordinary variable of the emulated program
    x = jnp.asarray(RNG.standard_normal((6, 5, 8)), jnp.float32)
    w = jnp.asarray(RNG.standard_normal((8, 8)) / 3, jnp.float32)

    def scanned(x, w):
        def step(c, xi):
            h, acc = c
            h = jnp.tanh(xi + h @ w)
            return (h, acc + jnp.sum(h * h)), h

        (h, acc), ys = jax.lax.scan(step, (jnp.zeros((5, 8), jnp.float32), jnp.zeros((), jnp.float32)), x)
        return acc + jnp.sum(ys * h)

    def unrolled(x, w):
        h, acc, ys = jnp.zeros((5, 8), jnp.float32), jnp.zeros((), jnp.float32), []
        for t in range(x.shape[0]):
            h = jnp.tanh(x[t] + h @ w)
            acc = acc + jnp.sum(h * h)
            ys.append(h)
        return acc + jnp.sum(jnp.stack(ys) * h)

    for policy in (BF16, "compute=float16", "compute=bfloat16,grad=float8_e5m2"):
        a = jax.jit(jax.value_and_grad(numfmt.emulate(scanned, policy), argnums=(0, 1)))(x, w)
        b = jax.jit(jax.value_and_grad(numfmt.emulate(unrolled, policy), argnums=(0, 1)))(x, w)
        assert_same_bits(a, b)


def test_stochastic_scan_carries_keep_every_value_in_the_format():
    x = jnp.asarray(RNG.standard_normal((9, 32)), jnp.float32)
    f = numfmt.emulate(lambda x: rnn(x, jnp.zeros(32, jnp.float32)), "compute=bfloat16,rounding=stochastic")
    a = jax.jit(f)(x, key=jax.random.key(1))
    assert_same_bits(a, jax.jit(f)(x, key=jax.random.key(1)))
    assert not np.array_equal(bits(a[1]), bits(jax.jit(f)(x, key=jax.random.key(2))[1]))
    for leaf in jax.tree.leaves(a):
        np.testing.assert_array_equal(bits(leaf), bits(_c(leaf)))


def test_while_loop_carry_bits_equal_hand_written_chop():
    def f(x):
        return jax.lax.while_loop(lambda v: v[0] < 50.0, lambda v: v * 1.1 + 0.3, x * 1.0)

    x = jnp.asarray(np.abs(RNG.standard_normal(12)) + 0.5, jnp.float32)
    for fmt in ("bfloat16", "float16"):
        got = jax.jit(numfmt.emulate(f, f"compute={fmt}"))(x)
        want = _c(_c(x, fmt) * 1.0, fmt)
        while float(want[0]) < 50.0:
            want = _c(_c(want * _c(1.1, fmt), fmt) + _c(0.3, fmt), fmt)
        np.testing.assert_array_equal(bits(got), bits(want))


def test_fori_loop_inside_scan_inside_while():
    # nested loops: every body is traced a few times, and the bits equal the hand-written loops
    def f(x):
        def inner(i, v):
            return v * 0.5 + x[0]

        def outer(c, xi):
            return jax.lax.fori_loop(0, 3, inner, c + xi), c

        def cond(s):
            return s[1] < 2

        def body(s):
            c, k = s
            c, _ = jax.lax.scan(outer, c, x)
            return c, k + 1

        return jax.lax.while_loop(cond, body, (jnp.zeros(x.shape[1:], jnp.float32), 0))[0]

    def by_hand(x):
        x = _c(x)
        c = jnp.zeros(x.shape[1:], jnp.float32)
        for _ in range(2):
            for t in range(x.shape[0]):
                c = _c(c + x[t])
                for _ in range(3):
                    c = _c(_c(c * 0.5) + x[0])
        return c

    x = jnp.asarray(RNG.standard_normal((4, 6)), jnp.float32)
    np.testing.assert_array_equal(bits(jax.jit(numfmt.emulate(f, BF16))(x)), bits(by_hand(x)))


def _all_carries_unknown(self, step, kinds, dtypes, avals, xs):
    """The fixed point switched off: every carry unknown and in its traced dtype (emulate before it)."""
    return [None] * len(kinds), [a.dtype for a in avals]


def test_carries_of_unrounded_operations_keep_the_bits_they_had():
    # a running max with its argmax: a select (which passes its operands' formats through), an integer
    # carry and an infinite initial value; the bits are those of the loop with every carry unknown
    def f(x, infinite):
        def step(c, xi):
            best, idx, t = c
            better = xi > best
            return (jnp.where(better, xi, best), jnp.where(better, t, idx), t + 1), best * 1.0

        first = jnp.full(x.shape[1:], -jnp.inf, jnp.float32) if infinite else x[0] * 1.0  # unknown / known
        return jax.lax.scan(step, (first, jnp.zeros(x.shape[1:], jnp.int32), 0), x)

    x = jnp.asarray(RNG.standard_normal((10, 7)), jnp.float32)
    for policy, infinite in itertools.product((BF16, "compute=float8_e4m3fn", "compute=posit8_0"), (True, False)):
        g = functools.partial(f, infinite=infinite)
        got = jax.jit(numfmt.emulate(g, policy))(x)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(control.ControlFlow, "_carry_fixed_point", _all_carries_unknown)
            want = jax.jit(numfmt.emulate(g, policy))(x)
        assert_same_bits(got, want)


def _loop_carry_types(hlo_text):
    """The element types of the loop-carried tuples of every while loop in optimised HLO."""
    return [m.group(1) for m in re.finditer(r"= (\([^()]*\)) while\(", hlo_text)]


def test_the_compiled_loop_carries_the_format_in_float64():
    # the saving itself: a bfloat16 carry (float32 in the traced program) is carried as float64, so the
    # body neither rounds nor converts it on entry; with the fixed point switched off it is float32
    x = jnp.asarray(RNG.standard_normal((8, 64)), jnp.float32)
    f = jax.jit(numfmt.emulate(lambda x: rnn(x, jnp.zeros(64, jnp.float32))[0], BF16))
    carries = _loop_carry_types(f.lower(x).compile().as_text())
    assert carries and any("f64[64]" in c for c in carries), carries
    assert not any("f32[64]" in c for c in carries), carries


def test_the_compiled_loop_carries_float32_without_the_fixed_point(monkeypatch):
    # the check above can fail: with every carry unknown (the behaviour before), the carry is float32
    monkeypatch.setattr(control.ControlFlow, "_carry_fixed_point", _all_carries_unknown)
    x = jnp.asarray(RNG.standard_normal((8, 64)), jnp.float32)
    f = jax.jit(numfmt.emulate(lambda x: rnn(x, jnp.zeros(64, jnp.float32))[0], BF16))
    carries = _loop_carry_types(f.lower(x).compile().as_text())
    assert any("f32[64]" in c for c in carries) and not any("f64[64]" in c for c in carries), carries
    # and the bits do not depend on it
    np.testing.assert_array_equal(bits(f(x)), bits(rnn_by_hand(x, jnp.zeros(64, jnp.float32))[0]))


def test_explain_lists_a_loop_body_once():
    def f(x):
        return jax.lax.scan(lambda c, xi: (c * 0.5 + xi, c), jnp.zeros(3, jnp.float32), x)

    x = jnp.ones((4, 3), jnp.float32)
    rows = numfmt.emulate(f, BF16).explain(x)
    body = [r.primitive for r in rows]
    assert body.count("mul") == 1 and body.count("add") == 1, body


def test_literals_exact_in_the_format_are_not_rounded_again():
    # 0.75 and 3.0 are bfloat16 values: no rounding site is spent on them; 0.1 is not, and is rounded
    x = jnp.ones(4, jnp.float32)
    assert _sites_drawn(lambda x: x * 0.1 + 3.0, x) == _sites_drawn(lambda x: x * 0.75 + 3.0, x) + 1


def _sites_drawn(fn, *args):
    """How many seeds a stochastic emulation of ``fn`` draws: one per rounding site (and per body)."""
    from numfmt.emulation import sites as _sites

    counts = []
    real = _sites.Sites.next_words

    def counting(self):
        counts.append(1)
        return real(self)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(_sites.Sites, "next_words", counting)
        jax.make_jaxpr(numfmt.emulate(fn, "compute=bfloat16,rounding=stochastic"))(*args, key=jax.random.key(0))
    return len(counts)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda x: jax.lax.cond(x[0] > 0, lambda v: v * 0.5, lambda v: v + 1.0, x),
        lambda x: jax.lax.switch(2, [lambda v: v * 0.5, lambda v: v - 1.0, lambda v: jnp.sin(v)], x),
        lambda x: jax.checkpoint(lambda v: jnp.tanh(v) * 2.0)(x),
        lambda x: jax.lax.scan(lambda c, xi: (c + xi, c), jnp.zeros((), jnp.float32), x)[0],
    ],
    ids=["cond", "switch", "checkpoint", "scan"],
)
def test_results_of_control_flow_keep_their_format(wrap):
    # the output of a cond / switch / checkpoint / scan whose every branch rounds it into bfloat16 is known
    # to be bfloat16: an operation reading it spends one rounding site (its result's), not two
    x = jnp.asarray(RNG.standard_normal(6), jnp.float32)
    assert _sites_drawn(lambda x: wrap(x) * 3.0, x) == _sites_drawn(wrap, x) + 1
    # and the bits are those of chop after every operation
    got = jax.jit(numfmt.emulate(lambda x: wrap(x) * 3.0, BF16))(x)
    np.testing.assert_array_equal(bits(got), bits(_c(_c(jax.jit(numfmt.emulate(wrap, BF16))(x)) * 3.0)))


def test_a_cond_whose_branches_disagree_leaves_its_result_unknown():
    # one branch returns its operand unrounded (no operation): the result is rounded where it is read
    x = jnp.asarray(RNG.standard_normal(6), jnp.float32)
    wrap = lambda x: jax.lax.cond(x[0] > 0, lambda v: v * 0.5, lambda v: v, x)  # noqa: E731
    assert _sites_drawn(lambda x: wrap(x) * 3.0, x) == _sites_drawn(wrap, x) + 2
    got = jax.jit(numfmt.emulate(lambda x: wrap(x) * 3.0, BF16))(-jnp.abs(x))
    np.testing.assert_array_equal(bits(got), bits(_c(_c(-jnp.abs(x)) * 3.0)))
