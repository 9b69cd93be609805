"""Stochastic rounding into a narrower exponent range: the complete sequence of numfmt.float.fast_sr.

bfloat16, float16, float8 (and float6/float4) from float64, and float16, float8
(...) from float32, rounded stochastically (variant A, the default), run on JAX
by the short sequence of :mod:`numfmt.float.fast_sr` alone. It must give the general
kernel's bits (``numfmt.float.kernel.round_bits``) for every input pattern and every
random word: here on every gap of the format (lower end and tie) and every
landmark, each +-1 and +-2 input ulps; every input binade below the format's
smallest subnormal (where the dropped bits outnumber the random bits) with its
edges; input subnormals; the top of the range up to inf; +-0, +-inf and NaN
payloads; hypothesis raw bits; and millions of random patterns under jax.jit.
Random words: 0, all ones, the words at which each input's decision flips
(found from the exact value, independently of both sequences), and hashed
words; every overflow policy. The plan must be complete (the JAX chop runs the
sequence: checked by counting its calls), and broken constants are caught.
"""

import dataclasses
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numfmt
import numfmt.float.fast
from numfmt.core.random import hash_bits, seed_words
from numfmt.core.xp import NUMPY, jax_namespace
from numfmt.float.fast import complete_round_bits, fast_plan
from numfmt.float.grid import boundary_array, count
from numfmt.float.kernel import make_plan, round_bits
from numfmt.testing import boundary_values, float_bits

NAMES = ["bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float6_e2m3fn", "float4_e2m1fn"]
CASES = [(np.float64, n) for n in NAMES] + [(np.float32, n) for n in [*NAMES[1:], "float(e=5,m=22)"]]
OVERFLOWS = list(numfmt.Overflow)


def sr_plan(dtype, name, overflow=None):
    fmt, w = numfmt.parse(name), np.dtype(dtype).itemsize * 8
    return make_plan(fmt, np.dtype(dtype), numfmt.Rounding.STOCHASTIC, overflow or fmt.overflow, w - 1)


def layout(dtype):
    U = np.dtype(f"uint{np.dtype(dtype).itemsize * 8}")
    return U, U.itemsize * 8, {32: 23, 64: 52}[U.itemsize * 8]


def around(u, k=2):
    """Patterns ``u`` and their neighbours up to ``k`` input ulps away (magnitudes, clipped at 0)."""
    steps = np.arange(-k, k + 1, dtype=np.int64)
    v = u.astype(np.int64)[:, None] + steps[None, :]
    return v[v >= 0].astype(u.dtype)


def gaps(fmt):
    """Every gap of formats up to 10 bits; else every subnormal gap and those of the first normal
    binade (their ends, for wide significands), the top binade's and a sample of the rest."""
    n, binade = count(fmt) - 1, 1 << fmt.man_bits
    if n <= 1 << 10:
        return range(n)
    e = min(binade, 1 << 10)
    sample = np.random.default_rng(0).integers(2 * binade, n - binade, 1000).tolist()
    ends = [*range(e), *range(binade - e, binade + e), *range(2 * binade - e, 2 * binade), *range(n - e, n)]
    return sorted(set(ends) | set(sample))


def hard_patterns(dtype, name):
    """The gaps, landmarks, input binades below the smallest subnormal, top and specials, both signs."""
    fmt, (U, w, man) = numfmt.parse(name), layout(dtype)
    x = boundary_array(fmt, gaps(fmt), dtype)  # gap ends and ties, landmarks, +-1 ulp
    x = x[np.isfinite(x) & (x > 0)].view(U)
    in_bias = {32: 127, 64: 1023}[w]
    # every input binade from the smallest subnormal down through the input subnormals: its edges and
    # a few inner patterns (here the dropped bits grow past the random bits and the result goes to 0)
    qe = fmt.emin - fmt.man_bits
    fields = np.arange(0, qe + in_bias + 2, dtype=np.uint64)
    inner = np.array([0, 1, 2, 1 << (man - 1), (1 << man) - 2, (1 << man) - 1, 0x5A5A5A5A5 & ((1 << man) - 1)])
    below = (fields[:, None] << np.uint64(man)) | inner.astype(np.uint64)[None, :]
    # the top: the max up to the largest finite input, and inf
    top = int(np.array(float(fmt.max_value), dtype).view(U))
    inf = ((1 << (w - 1 - man)) - 1) << man
    d = man - fmt.man_bits
    high = np.array([top + j for j in (1, 2, (1 << d) - 1, 1 << d, (1 << d) + 1)] + [inf - 2, inf - 1], np.uint64)
    u = np.concatenate([around(x), around(below.reshape(-1).astype(U)), around(high.astype(U)), np.array([0, inf], U)])
    nans = np.array([inf + 1, inf + (1 << (man - 1)), inf + 12345, (1 << (w - 1)) - 1], U)
    u = np.unique(np.concatenate([u[u <= inf], nans]))
    return np.concatenate([u, u | U.type(1 << (w - 1))])


def flip_words(u, dtype, name):
    """For each finite nonzero input below the max: the smallest word that rounds it up, and that word - 2.

    From the exact value (Fractions), not from either sequence: with ``N = w - 1``
    random bits the kernel rounds up iff ``floor(frac * 2**N) + (r >> 1) >= 2**N``,
    ``frac`` the input's position in its gap of the format. Inputs it can never
    round up (``floor(frac * 2**N) == 0``) get all ones and 0.
    """
    fmt, (U, w, _) = numfmt.parse(name), layout(dtype)
    n, qe_sub = w - 1, fmt.emin - fmt.man_bits
    x = u.view(dtype)
    up, down = np.full(u.size, (1 << w) - 1, U), np.zeros(u.size, U)
    for i, v in enumerate(x.tolist()):
        if not math.isfinite(v) or v == 0 or abs(v) > float(fmt.max_value):
            continue
        f = abs(Fraction(v))
        e = math.frexp(abs(v))[1] - 1  # 2**e <= |v| < 2**(e+1)
        quantum = Fraction(2) ** max(e - fmt.man_bits, qe_sub)
        k = (f / quantum * 2**n).__floor__() % (1 << n)  # floor(frac * 2**N)
        if k:
            up[i] = (2**n - k) << 1
            down[i] = up[i] - 2
    return up, down


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{np.dtype(c[0]).name}-{c[1]}")
def case(request):
    dtype, name = request.param
    u = hard_patterns(dtype, name)
    return dtype, name, u, flip_words(u, dtype, name)


def test_the_plans_are_complete_and_the_jax_chop_runs_the_sequence(monkeypatch):
    for dtype, name in CASES:
        for overflow in OVERFLOWS:
            fp = fast_plan(sr_plan(dtype, name, overflow))
            assert fp is not None and fp.complete and fp.narrow_sr is not None, (dtype, name, overflow)
    for name in ["float8_e4m3fnuz", "float8_e5m2fnuz"]:  # no -0: the general kernel
        assert fast_plan(sr_plan(np.float64, name)) is None
    calls = []
    real = numfmt.float.fast.narrow_sr_round_bits
    monkeypatch.setattr(numfmt.float.fast, "narrow_sr_round_bits", lambda *a: calls.append(1) or real(*a))
    x = jnp.linspace(-3.0, 3.0, 7, dtype=jnp.float64)
    for name in ["bfloat16", "float8_e5m2"]:
        jax.jit(lambda v, k, name=name: numfmt.chop(v, name, "stochastic", key=k))(x, jax.random.key(0))
    assert len(calls) == 2


def words_for(u, w, flips):
    U = u.dtype
    rng = hash_bits(NUMPY, [5, 6, 7, 8], 0, u.size, w)
    return {
        "zero": np.zeros(u.size, U), "ones": np.full(u.size, (1 << w) - 1, U), "hashed": rng,
        "flip-up": flips[0], "flip-down": flips[1], "flip-down+1": flips[1] | U.type(1),
    }  # fmt: skip


def test_equals_the_general_kernel_on_numpy(case):
    dtype, name, u, flips = case
    _, w, _ = layout(dtype)
    for overflow in OVERFLOWS:
        plan = sr_plan(dtype, name, overflow)
        fp = fast_plan(plan)
        for label, r in words_for(u, w, flips).items():
            want, unrep = round_bits(NUMPY, u, plan, r)
            assert unrep is None
            got = complete_round_bits(NUMPY, u, fp, r)
            bad = np.flatnonzero(got != want)
            assert bad.size == 0, (overflow, label, u[bad[:4]], r[bad[:4]], got[bad[:4]], want[bad[:4]])


def test_the_flip_words_flip(case):
    """The words from the exact value round down, then up, so the boundary itself is what is compared."""
    dtype, name, u, (up, down) = case
    plan = sr_plan(dtype, name)
    lo, _ = round_bits(NUMPY, u, plan, down)
    hi, _ = round_bits(NUMPY, u, plan, up)
    flips = up != np.iinfo(u.dtype).max
    assert np.count_nonzero(flips) > 1000
    mag_lo, mag_hi = (np.abs(v[flips].view(dtype).astype(np.float64)) for v in (lo, hi))
    assert np.all(mag_hi > mag_lo)


def test_equals_the_general_kernel_under_jit(case):
    dtype, name, u, flips = case
    _, w, _ = layout(dtype)
    jx = jax_namespace()
    for overflow in OVERFLOWS:
        plan = sr_plan(dtype, name, overflow)
        fp = fast_plan(plan)
        f = jax.jit(lambda v, r, fp=fp: complete_round_bits(jx, v, fp, r))
        for label, r in words_for(u, w, flips).items():
            want, _ = round_bits(NUMPY, u, plan, r)
            got = np.asarray(f(jnp.asarray(u), jnp.asarray(r)))
            assert np.count_nonzero(got != want) == 0, (overflow, label)
    # the chop numfmt.emulate runs: jitted, default overflow, the key's words
    key = jax.random.key(11)
    r = hash_bits(NUMPY, np.asarray(seed_words(key)), 0, u.size, w)
    want, _ = round_bits(NUMPY, u, sr_plan(dtype, name), r)
    got = jax.jit(lambda v, k: numfmt.chop(v, name, "stochastic", key=k))(jnp.asarray(u.view(dtype)), key)
    np.testing.assert_array_equal(np.asarray(got).view(u.dtype), want)


@pytest.mark.parametrize(("dtype", "name"), [(np.float64, "bfloat16"), (np.float32, "float8_e4m3fn")])
def test_millions_of_random_patterns_under_jit(dtype, name):
    size = 1 << 21
    U, w, _ = layout(dtype)
    u = hash_bits(NUMPY, [1, 9, 9, 7], 0, size, w)
    plan = sr_plan(dtype, name)
    # half uniform over all patterns; half with exponent fields uniform from 100 binades below
    # the format's smallest subnormal to just past its max (either sign, random significands)
    man = plan.in_man
    lo_field, hi_field = plan.q_sub_bits >> man, (plan.max_bits >> man) + 2
    half = u[: size // 2]
    fields = lo_field - 100 + (half >> U.type(w - 20)) % U.type(hi_field - lo_field + 101)
    u[: size // 2] = (half & U.type((1 << man) - 1 | 1 << (w - 1))) | fields << U.type(man)
    r = hash_bits(NUMPY, [2, 0, 2, 6], 0, size, w)
    want, _ = round_bits(NUMPY, u, plan, r)
    fp, jx = fast_plan(plan), jax_namespace()
    got = jax.jit(lambda v, k: complete_round_bits(jx, v, fp, k))(jnp.asarray(u), jnp.asarray(r))
    assert np.count_nonzero(np.asarray(got) != want) == 0


@given(st.sampled_from(CASES), st.sampled_from(OVERFLOWS), st.data())
def test_raw_bits_raw_words_and_boundary_values(case, overflow, data):
    dtype, name = case
    U, w, _ = layout(dtype)
    raw = data.draw(float_bits(dtype, st.integers(1, 32))).reshape(-1)
    near = np.array([data.draw(boundary_values(name, dtype=dtype)) for _ in range(8)], dtype)
    u = np.concatenate([raw, near]).view(U)
    words = st.one_of(st.integers(0, 2**w - 1), st.sampled_from([0, 1, 2**(w - 1) - 1, 2**(w - 1), 2**w - 1]))
    r = np.array(data.draw(st.lists(words, min_size=u.size, max_size=u.size)), U)
    plan = sr_plan(dtype, name, overflow)
    want, _ = round_bits(NUMPY, u, plan, r)
    np.testing.assert_array_equal(complete_round_bits(NUMPY, u, fast_plan(plan), r), want)


def broken(c, field, delta):
    """``c`` with ``field`` moved by the integer ``delta``, or scaled by the float ``delta``."""
    v = getattr(c, field)
    return dataclasses.replace(c, **{field: type(v)(v * delta if isinstance(delta, float) else int(v) + delta)})


@pytest.mark.parametrize(("dtype", "name"), [(np.float64, "bfloat16"), (np.float32, "float8_e4m3fn")])
def test_broken_constants_are_caught(dtype, name):
    u = hard_patterns(dtype, name)
    _, w, _ = layout(dtype)
    flips = flip_words(u, dtype, name)
    plan = sr_plan(dtype, name)
    fp = fast_plan(plan)
    c = fp.narrow_sr
    # exp_lo - 1 and below_q + 1 only move guards for elements that a select replaces (|x| < q): harmless
    wrongs = [(f, s) for f in ["exp_hi", "r_base", "d_base", "q_bits", "top"] for s in (-1, 1)]
    wrongs += [("exp_lo", 1), ("below_q", -1), ("scale", 2.0), ("scale", 0.5)]
    runs = [(r, round_bits(NUMPY, u, plan, r)[0]) for r in words_for(u, w, flips).values()]
    for field, delta in wrongs:
        bad = dataclasses.replace(fp, narrow_sr=broken(c, field, delta))
        caught = sum(np.count_nonzero(complete_round_bits(NUMPY, u, bad, r) != want) for r, want in runs)
        assert caught > 0, (field, delta)
