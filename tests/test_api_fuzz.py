"""Property-based fuzz of the public API: chop, encode and decode of every family.

Each call draws a format (``numfmt.testing.formats``, every family), an input
(dtype, shape, memory layout, NumPy or JAX), a rounding mode, an overflow
policy, a key and ``random_bits``, some of them deliberately wrong. Every call
is classified:

* ``correct``: the result agrees, bit for bit, with the exact references
  (``numfmt.float.reference``, ``_family_grid``, ``_block_reference``,
  ``_scaled_reference``); stochastic results lie on one of the two directed
  roundings, repeat for the same key, and an int seed gives NumPy and JAX input
  the same bits; ``decode(encode(x))`` equals ``chop(x)``.
* ``refused``: a ``ValueError``/``TypeError`` whose message names the argument
  (for a deliberately wrong argument: that argument).
* anything else fails the test: an internal exception (AttributeError,
  IndexError, KeyError, ZeroDivisionError, OverflowError, ...), a wrong
  argument accepted, an error that names no argument, or a wrong result.

Run with ``-s`` to see how many calls were made and how each ended (also
recorded as hypothesis events: ``--hypothesis-show-statistics``); with
``NUMFMT_FUZZ_MESSAGES=1`` also every distinct refusal message and the slow
calls. To hunt: ``HYPOTHESIS_PROFILE=dev NUMFMT_FUZZ_JAX=5``.
"""

from __future__ import annotations

import collections
import math
import os
import re
import time
from fractions import Fraction

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

import numfmt
from numfmt import testing as nt
from numfmt.block.format import BlockFormat
from numfmt.core.rounding import Overflow, Rounding
from numfmt.float.format import FloatFormat
from numfmt.scaled.format import ScaledIntFormat
from numfmt.testing.asserts import mismatches
from numfmt.testing.asserts_families import family_reference
from numfmt.testing.asserts_rounding import _reference as float_reference
from numfmt.testing.block import reference_chop as block_reference
from numfmt.testing.scaled import reference_chop as scaled_reference

OUTCOMES: collections.Counter = collections.Counter()
MESSAGES: collections.Counter = collections.Counter()  # (outcome, message with numbers blanked)
INTERNAL = (
    AttributeError,
    IndexError,
    KeyError,
    ZeroDivisionError,
    OverflowError,
    UnboundLocalError,
    RuntimeError,
    AssertionError,
    NotImplementedError,
    FloatingPointError,
)
# One call in JAX_ONE_IN takes JAX input (NUMFMT_FUZZ_JAX=N to hunt with more).
JAX_ONE_IN = int(os.environ.get("NUMFMT_FUZZ_JAX", "40"))
FLOATS = [np.float16, ml_dtypes.bfloat16, np.float32, np.float64]
WRONG_DTYPES = [np.int32, np.bool_, np.complex64, object, np.dtype(">f4"), ml_dtypes.float8_e4m3fn]
SR_BITS = (Rounding.STOCHASTIC_A, Rounding.STOCHASTIC_B, Rounding.STOCHASTIC_C)
# What each deliberately wrong argument's error message must contain.
TOKENS = {"x": ("x ", "x has"), "key": ("key",), "random_bits": ("random_bits",), "rounding": ("rounding",),
          "overflow": ("overflow",), "dtype": ("dtype=",)}  # fmt: skip


class Refused(Exception):
    """A ValueError/TypeError of numfmt, classified."""


def _range(fmt) -> tuple[int, int]:
    """log2 of the smallest and largest magnitudes of an elementwise format (block and scaled: +-40)."""
    lo = getattr(fmt, "smallest_subnormal", None) or getattr(fmt, "minpos", None) or getattr(fmt, "resolution", None)
    hi = getattr(fmt, "max_value", None) or getattr(fmt, "maxpos", None)
    if lo is None or hi is None or isinstance(fmt, BlockFormat):
        return -40, 40
    e = [max(-1074, min(1023, _floor_log2(Fraction(v)) if v > 0 else 0)) for v in (lo, hi)]
    return e[0] - 2, e[1] + 2


def _floor_log2(v: Fraction) -> int:
    """floor(log2(v)) of a positive Fraction, exactly (formats reach beyond float64's range)."""
    e = v.numerator.bit_length() - v.denominator.bit_length()
    return e if v >= Fraction(2) ** e else e - 1


def _values(rng, kind: str, shape, dtype, fmt=None) -> np.ndarray:
    n = math.prod(shape)
    if kind == "format":  # across the format's own range, and a little beyond
        lo, hi = _range(fmt)
        with np.errstate(over="ignore", under="ignore"):
            x = rng.uniform(-2, 2, size=n) * np.exp2(rng.integers(lo, hi + 1, size=n).astype(np.float64))
            return x.astype(dtype).reshape(shape)
    if kind == "bits":  # raw patterns: NaN, inf, subnormals, everything
        width = np.dtype(dtype).itemsize * 8
        raw = rng.integers(0, 2**width, size=n, dtype=np.uint64).astype(f"uint{width}")
        return raw.view(dtype).reshape(shape)
    spread = rng.integers(-30, 30, size=n) if kind == "wide" else rng.integers(-4, 4, size=n)
    with np.errstate(over="ignore", under="ignore"):
        x = (rng.standard_normal(n) * np.exp2(spread)).astype(dtype)
    if kind == "specials" and n:
        idx = rng.integers(0, n, size=max(1, n // 8))
        x[idx] = rng.choice(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0]), size=idx.size).astype(dtype)
    return x.reshape(shape)


def _layout(x: np.ndarray, layout: str):
    if layout == "fortran":
        return np.asfortranarray(x) if x.ndim else x  # (asfortranarray makes a 0-d array 1-d)
    if layout == "strided":  # every other element of a twice larger array
        big = np.empty((*x.shape[:-1], 2 * x.shape[-1]) if x.ndim else (2,), x.dtype)
        if not x.ndim:
            return x
        big[..., ::2] = x
        return big[..., ::2]
    if layout == "reversed":
        return np.flip(np.flip(x).copy()) if x.ndim else x  # negative strides, the same values
    if layout == "readonly":
        x = x.copy()
        x.flags.writeable = False
        return x
    if layout == "scalar" and x.ndim == 0:
        return x[()]
    if layout == "python" and x.ndim == 0 and x.dtype == np.float64:
        return float(x)
    return x


@st.composite
def calls(draw):
    """One call: a dict of the arguments, and the argument that is wrong on purpose (if any)."""
    family = draw(st.sampled_from(["float", "posit", "fixed", "block", "scaled"]))
    fmt = draw(nt.formats(family=family, exact_in=None))
    mistake = draw(st.sampled_from([None] * 6 + ["x", "rounding", "random_bits", "key", "overflow", "dtype"]))
    api = draw(st.sampled_from(["encode"] if mistake == "dtype" else ["chop", "chop", "encode"]))
    dtype = draw(st.sampled_from(WRONG_DTYPES if mistake == "x" else FLOATS))
    shape = draw(st.sampled_from([(), (0,), (1,), (5,), (33,), (2, 3), (3, 0), (0, 4), (4, 17), (2, 3, 5), (700,)]))
    kind = draw(st.sampled_from(["normal", "wide", "specials", "bits", "format"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if mistake == "x":
        logical = np.zeros(shape, dtype) if dtype is object else _values(rng, "normal", shape, np.float64).astype(dtype)
    else:
        logical = _values(rng, kind, shape, dtype, fmt)
    # JAX calls compile (seconds each on a loaded CPU): few of them keep the run short.
    on_jax = mistake != "x" and shape != (700,) and draw(st.integers(1, JAX_ONE_IN)) == 1
    layouts = ["c", "fortran", "strided", "reversed", "readonly", "scalar", "python"]
    layout = "jax" if on_jax else draw(st.sampled_from(layouts))
    x = jnp.asarray(logical) if on_jax else _layout(logical, layout)

    rounding = "bogus" if mistake == "rounding" else draw(st.sampled_from(list(Rounding)))
    stochastic = rounding != "bogus" and rounding.is_stochastic
    limit = 63 if np.dtype(dtype).itemsize == 8 else 31
    n = draw(st.integers(1, limit))
    random_bits = draw(st.sampled_from([n, np.int64(n)])) if rounding in SR_BITS else None
    if mistake == "random_bits":
        wrong = [0, limit + 1, True, float(n), None] if rounding in SR_BITS else [8]
        random_bits = draw(st.sampled_from(wrong))

    seed = draw(st.integers(0, 2**32 - 1))
    good_keys = {"int": seed, "numpy_int": np.uint32(seed), "jax": jax.random.key(seed),
                 "legacy": jax.random.PRNGKey(seed)}  # fmt: skip
    if not on_jax and mistake != "dtype":  # (encode with a Generator is not compared, so not decoded)
        good_keys["generator"] = np.random.default_rng(seed)
    key = good_keys[draw(st.sampled_from(sorted(good_keys)))] if stochastic else None
    if mistake == "key":
        bad_keys = [-1 - seed % 100, True, "seed", 1.5, jax.random.split(jax.random.key(seed), 2)]
        if on_jax:
            bad_keys.append(np.random.default_rng(seed))
        key = draw(st.sampled_from(bad_keys + [None])) if stochastic else 0

    overflow = None
    if isinstance(fmt, FloatFormat):
        overflow = draw(st.sampled_from([None, None, *Overflow]))
    elif isinstance(fmt, numfmt.PositFormat):
        overflow = draw(st.sampled_from([None, "sat_finite"]))
    elif isinstance(fmt, numfmt.FixedFormat):
        overflow = draw(st.sampled_from([None, None, "saturate", "wrap"]))
    if mistake == "overflow":  # block and scaled formats take no overflow policy
        fixed = isinstance(fmt, numfmt.FixedFormat)  # (fixed point takes sat_finite for saturate)
        overflow = "bogus" if overflow is not None or fixed or draw(st.booleans()) else "sat_finite"
    decode_dtype = draw(st.sampled_from([np.int32, "float13", np.dtype(">f4")])) if mistake == "dtype" else None
    wrong = set() if mistake is None else {mistake}
    if mistake == "overflow" and overflow == "sat_finite" and isinstance(fmt, (FloatFormat, numfmt.PositFormat)):
        wrong = set()  # a valid policy after all
    return dict(fmt=fmt, x=x, logical=logical, rounding=rounding, key=key, random_bits=random_bits,
                overflow=overflow, api=api, decode_dtype=decode_dtype, layout=layout, kind=kind), wrong  # fmt: skip


def _fresh(key):
    """An equivalent key for a repeat call (a Generator is consumed by use)."""
    if isinstance(key, np.random.Generator):
        return None  # cannot be replayed: the caller skips the repeat
    return key


def _run(stage, fn, *args, **kw):
    try:
        with np.errstate(all="ignore"):
            return fn(*args, **kw)
    except INTERNAL:
        raise
    except (ValueError, TypeError) as e:
        raise Refused(stage, str(e)) from e


def _reference(x: np.ndarray, fmt, rounding, overflow) -> np.ndarray:
    if isinstance(fmt, FloatFormat):
        return float_reference(x, fmt, rounding, overflow)
    if isinstance(fmt, BlockFormat):
        return block_reference(x, fmt, rounding)
    if isinstance(fmt, ScaledIntFormat):
        return scaled_reference(x, fmt, rounding)
    return family_reference(x, fmt, rounding, overflow)


def _check_result(c, y) -> None:
    """``y`` (the result of chop) against the exact references."""
    x, fmt, rounding = c["logical"], c["fmt"], Rounding.parse(c["rounding"])
    y = np.asarray(y)
    assert y.shape == x.shape and y.dtype == x.dtype, f"chop returned {y.dtype}{y.shape} for {x.dtype}{x.shape}"
    if isinstance(c["x"], float):
        assert isinstance(numfmt.chop(c["x"], fmt, "nearest_even"), np.floating) or not isinstance(fmt, FloatFormat)
    if not x.size:
        return
    with np.errstate(all="ignore"):
        if not rounding.is_stochastic:
            want = _reference(x, fmt, rounding, c["overflow"])
            bad = mismatches(y, want, nan_payload=False)
        else:
            down = _reference(x, fmt, Rounding.TOWARD_NEGATIVE, c["overflow"])
            up = _reference(x, fmt, Rounding.TOWARD_POSITIVE, c["overflow"])
            bad = mismatches(y, down, nan_payload=False) & mismatches(y, up, nan_payload=False)
            want = np.where(bad, down, y)
    if bad.any():
        i = np.flatnonzero(bad.reshape(-1))[:5]
        flat = x.reshape(-1)
        raise AssertionError(
            f"wrong result: chop({x.dtype} {c['layout']}, {fmt}, {rounding.value}, overflow={c['overflow']}) "
            f"differs in {int(bad.sum())} of {bad.size} elements; inputs {flat[i].tolist()} got "
            f"{y.reshape(-1)[i].tolist()} want {want.reshape(-1)[i].tolist()}"
        )


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and not mismatches(a, b, nan_payload=False).any()


def _call(c):
    kw = dict(overflow=c["overflow"], key=c["key"], random_bits=c["random_bits"])
    y = _run("chop", numfmt.chop, c["x"], c["fmt"], c["rounding"], **kw)
    _check_result(c, y)
    rounding = Rounding.parse(c["rounding"])
    if rounding.is_stochastic and _fresh(c["key"]) is not None:
        assert _same(numfmt.chop(c["x"], c["fmt"], c["rounding"], **kw), y), "same key, different bits"
        if isinstance(c["key"], (int, np.integer)) and isinstance(c["x"], jax.Array):
            y_np = numfmt.chop(c["logical"], c["fmt"], c["rounding"], **kw)
            assert _same(y_np, y), "an int seed gives NumPy and JAX input different bits"
    if c["api"] != "encode":
        return
    if rounding.is_stochastic and _fresh(c["key"]) is None:
        return  # a Generator: encode would draw other bits than chop did
    codes = _run("encode", numfmt.encode, c["x"], c["fmt"], c["rounding"], **kw)
    exact_dtype = isinstance(c["fmt"], (BlockFormat, ScaledIntFormat))
    dtype = c["decode_dtype"] or (c["logical"].dtype if exact_dtype else None)
    back = np.asarray(_run("decode", numfmt.decode, codes, c["fmt"], dtype=dtype))
    y = np.asarray(y)
    if isinstance(c["fmt"], BlockFormat) and back.shape != y.shape:  # packed nibbles: an odd axis comes back padded
        back = np.moveaxis(np.moveaxis(back, c["fmt"].axis, -1)[..., : y.shape[c["fmt"].axis]], -1, c["fmt"].axis)
    with np.errstate(invalid="ignore"):
        assert _same(back.astype(np.float64), y.astype(np.float64)), (
            f"decode(encode(x)) != chop(x) for {c['fmt']}: {back.reshape(-1)[:6]} vs {y.reshape(-1)[:6]}"
        )


def _names_argument(message: str, wrong: set, c) -> bool:
    if wrong and any(t in message for arg in wrong for t in TOKENS[arg]):
        return True
    tokens = ("x ", "x has", "key", "random_bits", "rounding", "overflow", "axis", "dtype", "input", "elem", "shape")
    return any(t in message for t in tokens) or str(c["fmt"]) in message


@given(calls())
def test_api_fuzz(call):
    c, wrong = call
    note(f"call: {c['api']} fmt={c['fmt']} x={type(c['x']).__name__} {c['logical'].dtype}{c['logical'].shape} "
         f"layout={c['layout']} values={c['kind']} rounding={c['rounding']} overflow={c['overflow']} "
         f"key={type(c['key']).__name__} random_bits={c['random_bits']!r} decode_dtype={c['decode_dtype']} "
         f"wrong={sorted(wrong)}")  # fmt: skip
    t0 = time.perf_counter()
    try:
        _call(c)
    except Refused as e:
        stage, message = e.args
        note(f"refused by {stage}: {message}")
        if not _names_argument(message, wrong, c):
            OUTCOMES["failure: error names no argument"] += 1
            raise AssertionError(f"error message names none of {sorted(wrong) or 'the arguments'}: {message}") from e
        named = not wrong or any(t in message for arg in wrong for t in TOKENS[arg])
        # A call can be refused for another real problem before its wrong argument is looked at.
        outcome = f"refused ({', '.join(sorted(wrong)) if named else 'another reason first'})"
        if not wrong:
            outcome = "refused (valid-looking call)"
        MESSAGES[(outcome, re.sub(r"[-+]?\d[\d.e+-]*", "N", message)[:150])] += 1
        OUTCOMES[outcome] += 1
        event(outcome)
        return
    except AssertionError:
        OUTCOMES["failure: wrong result"] += 1
        raise
    except Exception:
        OUTCOMES["failure: internal exception"] += 1
        raise
    if wrong:
        OUTCOMES["failure: wrong argument accepted"] += 1
        raise AssertionError(f"numfmt accepted wrong {sorted(wrong)}")
    dt = time.perf_counter() - t0
    if os.environ.get("NUMFMT_FUZZ_MESSAGES") and dt > 2:
        print(f"slow call, {dt:.1f} s: {c['api']} {c['fmt']} {c['layout']} {c['logical'].shape} {c['rounding']}")
    OUTCOMES[f"correct ({c['api']})"] += 1
    event(f"correct ({c['api']})")


@pytest.fixture(scope="module", autouse=True)
def _summary():
    yield
    total = sum(OUTCOMES.values())
    print(f"\napi fuzz: {total} calls")
    for outcome, count in sorted(OUTCOMES.items()):
        print(f"  {count:6d}  {outcome}")
    if os.environ.get("NUMFMT_FUZZ_MESSAGES"):  # the refusals, for review
        for (outcome, message), count in sorted(MESSAGES.items()):
            print(f"  {count:6d}  {outcome}: {message}")


# ------------------------------------------------------------------ emulate


def _emulate_reference(a: np.ndarray, fmt, rounding) -> np.ndarray:
    """``a * a + 1`` with the input and each operation rounded once into ``fmt`` (exact references)."""

    from numfmt.float.grid import to_dtype
    from numfmt.float.reference import round_value

    out = []
    for v in a.reshape(-1).astype(np.float64):
        r = round_value(float(v), fmt, rounding)
        if isinstance(r, Fraction):
            r = round_value(r * r, fmt, rounding)
        else:
            r = r * r
        r = round_value(r + 1 if isinstance(r, Fraction) else r + 1.0, fmt, rounding)
        out.append(r)
    return to_dtype(out, a.dtype).reshape(a.shape)


@settings(max_examples=12)  # each call compiles; the elementwise kernels are fuzzed above
@given(
    fmt=nt.formats(family="float", exact_in=np.float32, max_bits=12),
    rounding=st.sampled_from([*Rounding, "bogus"]),
    key_kind=st.sampled_from(["none", "jax", "int", "batch", "generator"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_emulate_fuzz(fmt, rounding, key_kind, seed):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(7) * np.exp2(rng.integers(-6, 6, 7))).astype(np.float32)
    stochastic = rounding != "bogus" and Rounding.parse(rounding).is_stochastic
    key = {"none": None, "jax": jax.random.key(seed), "int": seed, "batch": jax.random.split(jax.random.key(seed), 2),
           "generator": np.random.default_rng(seed)}[key_kind]  # fmt: skip
    wrong = rounding == "bogus" or (key is None) == stochastic or key_kind in ("batch", "generator")
    wrong = wrong or rounding in SR_BITS or key_kind == "int"  # (policies take no random_bits; keys: JAX only)
    note(f"emulate fmt={fmt} rounding={rounding} key={key_kind} wrong={wrong}")
    try:
        with np.errstate(all="ignore"):
            policy = numfmt.Policy(compute=fmt, rounding=rounding)
            f = numfmt.emulate(lambda v: v * v + 1.0, policy)
            y = np.asarray(f(jnp.asarray(a), key=key))
    except INTERNAL:
        OUTCOMES["failure: internal exception (emulate)"] += 1
        raise
    except (ValueError, TypeError) as e:
        message = str(e)
        assert any(t in message for t in ("key", "rounding", "policy", "compute", str(fmt))), message
        OUTCOMES["refused (emulate)" if wrong else "refused (emulate, valid-looking call)"] += 1
        MESSAGES[("emulate", re.sub(r"[-+]?\d[\d.e+-]*", "N", message)[:150])] += 1
        return
    assert not wrong, f"emulate accepted rounding={rounding!r} with key kind {key_kind}"
    if stochastic:
        again = np.asarray(f(jnp.asarray(a), key=key))
        assert _same(again, y), "emulate: same key, different bits"
    else:
        want = _emulate_reference(a, fmt, Rounding.parse(rounding))
        bad = mismatches(y, want, nan_payload=False)
        assert not bad.any(), f"emulate a*a+1 in {fmt} {rounding}: {a[bad]} gave {y[bad]}, want {want[bad]}"
    OUTCOMES["correct (emulate)"] += 1
