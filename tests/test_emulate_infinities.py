"""Infinities used as identities and masks under emulate (issue #15).

In a format without infinities (posits, ``fn``/``fnuz`` and finite floats,
fixed point) emulate keeps a value's infinities instead of rounding them to
NaN, NaR or the largest value, and treats a finite value of the dtype's
largest magnitude (a ``jnp.finfo(dtype).min`` mask) as an infinity: softmax's
``max(-inf, ...)``, ``where(mask, x, -inf)`` and causal masks then give what
they give in IEEE formats, ``exp(-inf - m) = 0``. The references below
compute each operation in float64 and round it with ``numfmt.chop``, keeping
infinities (docs/emulate.md, "Infinities").
"""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numfmt

FORMATS = ["posit16_1", "posit8_0", "float8_e4m3fn", "float6_e2m3fn", "bfloat16", "float16"]
F32_MIN = float(jnp.finfo(jnp.float32).min)
N = 6
CAUSAL = np.tril(np.ones((N, N), bool))


def _r(v, fmt):
    """``v`` (float64) rounded into ``fmt``, infinities kept (the documented rule)."""
    v = np.asarray(v, np.float64)
    return np.where(np.isinf(v), v, numfmt.chop(v, fmt))


def _ref_softmax_parts(x, fmt):
    """(x - m, exp(x - m), sum) of the emulated softmax, rounded per op; masked entries are -inf in ``x``."""
    x = _r(x, fmt)
    m = np.max(x, axis=-1, keepdims=True)
    d = _r(x - m, fmt)
    e = _r(np.asarray(jnp.exp(jnp.asarray(d))), fmt)
    s = _r(np.sum(e, axis=-1, keepdims=True), fmt)
    return d, e, s


def _ref_softmax(x, fmt):
    _, e, s = _ref_softmax_parts(x, fmt)
    return _r(e / s, fmt)


def _ref_log_softmax(x, fmt):
    d, _, s = _ref_softmax_parts(x, fmt)
    return _r(d - _r(np.asarray(jnp.log(jnp.asarray(s))), fmt), fmt)


def _ref_logsumexp(x, fmt):
    m = np.max(_r(x, fmt), axis=-1)
    _, _, s = _ref_softmax_parts(x, fmt)
    return _r(_r(np.asarray(jnp.log(jnp.asarray(s[..., 0]))), fmt) + m, fmt)


def _scores(fmt):
    rng = np.random.default_rng(15)
    scale = 1.0 if fmt == "float6_e2m3fn" else 3.0  # e2m3fn's largest value is 7.5
    return (rng.standard_normal((N, N)) * scale).astype(np.float32)


def _bits(a):
    return np.asarray(a, np.float32).view(np.uint32)


def _masked(s, mask_value):
    return jnp.where(CAUSAL, s, mask_value)


FUNCS = {
    "softmax": (lambda s: jax.nn.softmax(s, axis=-1), _ref_softmax),
    "log_softmax": (lambda s: jax.nn.log_softmax(s, axis=-1), _ref_log_softmax),
    "logsumexp": (lambda s: jax.scipy.special.logsumexp(s, axis=-1), _ref_logsumexp),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(FUNCS))
@pytest.mark.parametrize("mask_value", [-np.inf, F32_MIN, None], ids=["inf", "finfo_min", "nomask"])
def test_softmax_family_matches_reference(fmt, name, mask_value):
    fn, ref = FUNCS[name]
    s = _scores(fmt)
    if mask_value is None:
        mask, body = np.ones((N, N), bool), fn
    else:
        mask, body = CAUSAL, lambda s: fn(_masked(s, mask_value))
    got = np.asarray(jax.jit(numfmt.emulate(body, f"compute={fmt}"))(jnp.asarray(s)))
    want = ref(np.where(mask, s.astype(np.float64), -np.inf), fmt)
    if name == "log_softmax":  # log(0) is -inf in every format: the masked entries
        assert np.all(np.isfinite(got[mask])) and np.all(got[~mask] == -np.inf)
    else:
        assert np.all(np.isfinite(got)), got
    np.testing.assert_array_equal(_bits(got), _bits(want))
    if name == "softmax":
        assert np.all(got[~mask] == 0.0)


def _attention(mask_value):
    def attn(q, k, v):
        s = q @ k.T / jnp.sqrt(jnp.float32(q.shape[-1]))
        w = jax.nn.softmax(jnp.where(CAUSAL, s, mask_value), axis=-1)
        return s, w, w @ v

    return attn


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mask_value", [-np.inf, F32_MIN], ids=["inf", "finfo_min"])
def test_causal_attention(fmt, mask_value):
    rng = np.random.default_rng(7)
    q, k, v = (jnp.asarray(rng.standard_normal((N, 4)).astype(np.float32)) for _ in range(3))
    policy = f"compute={fmt}"
    s, w, out = jax.jit(numfmt.emulate(_attention(mask_value), policy))(q, k, v)
    s, w, out = np.asarray(s), np.asarray(w), np.asarray(out)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(w))
    assert np.all(w[~CAUSAL] == 0.0)
    np.testing.assert_array_equal(_bits(w), _bits(_ref_softmax(np.where(CAUSAL, s.astype(np.float64), -np.inf), fmt)))
    # A masked position adds exact zeros: row i is the product over its first i + 1 positions.
    row = jax.jit(numfmt.emulate(lambda w, v: w @ v, policy))
    for i in range(N):
        np.testing.assert_array_equal(_bits(out[i]), _bits(row(jnp.asarray(w[i, : i + 1]), v[: i + 1])))


def _xent(logits, labels):
    """Cross-entropy of causally masked logits; picks the label's entry (0 * -inf would be NaN in any format)."""
    logp = jax.nn.log_softmax(jnp.where(CAUSAL, logits, -jnp.inf), axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


@pytest.mark.parametrize("fmt", FORMATS)
def test_grad_of_masked_softmax_cross_entropy(fmt):
    logits = jnp.asarray(_scores(fmt))
    labels = jnp.arange(N) // 2  # never a masked position
    policy = f"compute={fmt}"
    assert np.isfinite(np.asarray(_xent(logits, labels)))  # float32: finite
    loss = jax.jit(numfmt.emulate(_xent, policy))(logits, labels)
    assert np.isfinite(np.asarray(loss))
    for g in (jax.jit(jax.grad(numfmt.emulate(_xent, policy)))(logits, labels),
              jax.jit(numfmt.emulate(jax.grad(_xent), policy))(logits, labels)):  # fmt: skip
        g = np.asarray(g)
        assert np.all(np.isfinite(g)), g
        assert np.all(g[~CAUSAL] == 0.0)
        assert np.any(g[CAUSAL] != 0.0)


X64_OFF = r"""
import jax, jax.numpy as jnp, numpy as np, numfmt
c = np.tril(np.ones((5, 5), bool))
s = jnp.asarray(np.random.default_rng(1).standard_normal((5, 5)).astype(np.float32))
bad = []
for fmt in ["float8_e4m3fn", "float6_e2m3fn", "float16"]:  # bfloat16 and posits need x64
    for mv in [-jnp.inf, jnp.finfo(jnp.float32).min]:
        for fn in [jax.nn.softmax, jax.nn.log_softmax, jax.scipy.special.logsumexp]:
            y = np.asarray(jax.jit(numfmt.emulate(lambda s: fn(jnp.where(c, s, mv), axis=-1), "compute=" + fmt))(s))
            if np.isnan(y).any() or (fn is jax.nn.softmax and (y[~c] != 0).any()):
                bad.append((fmt, float(mv), fn.__name__))
print(bad)
"""


def test_masks_with_x64_off():
    """Users run with x64 off: Python-float masks are float32 there; still finite, masked weights 0."""
    out = subprocess.run([sys.executable, "-c", X64_OFF], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
