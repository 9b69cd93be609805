# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # An FP8 training recipe, and accumulator precision against K
#
# Two experiments a low-precision training study starts with:
#
# 1. **An FP8 training recipe** on a small flax model, against bfloat16 and
#    float32: E4M3 inputs to the forward matmuls, E5M2 inputs to the
#    backward matmuls (the gradients), float32 accumulation, bfloat16
#    elsewhere, the first and last layers wholly in bfloat16, and float32
#    master weights with Adam in float32 outside the emulated step.
# 2. **Accumulation**: the error of one dot product of K FP8 products as the
#    accumulator's precision and K vary, and what promoting a narrow
#    accumulator into float32 every 128 products (as FP8 GEMMs on current
#    GPUs do) buys.
#
# Every policy is one string; `numfmt.emulate` runs the unchanged model
# code. JAX runs with its defaults (64-bit types off). Every claim in the text
# is checked by an `assert`, so the notebook fails if a claim stops being true.

# %%
import flax.linen as nn
import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

import numfmt

# %% [markdown]
# ## 1. The recipe
#
# | run | policy |
# |---|---|
# | `float32` | none: the model run natively |
# | `bfloat16` | `compute=bfloat16` (forward and backward pass) |
# | `fp8` | `compute=bfloat16,matmul_in=float8_e4m3fn,accum=float32,out=bfloat16,` |
# | | `bwd.matmul_in=float8_e5m2,scope(Dense_0\|head)=bfloat16` (one string) |
#
# `bwd.matmul_in` sets the matmul inputs of the backward pass only: the
# derivative of an emulated function is itself emulated, operation by
# operation (`jax.grad(numfmt.emulate(loss, policy))`). `scope(Dense_0|head)=bfloat16`
# runs the flax modules named `Dense_0` and `head` (the first and the last
# layer) under `compute=bfloat16` alone, forward and backward.

# %%
POLICIES = {
    "float32": None,
    "bfloat16": "compute=bfloat16",
    "fp8": "compute=bfloat16,matmul_in=float8_e4m3fn,accum=float32,out=bfloat16,"
    "bwd.matmul_in=float8_e5m2,scope(Dense_0|head)=bfloat16",
}
for name, spec in POLICIES.items():
    if spec is not None:
        p = numfmt.Policy.parse(spec)
        print(f"{name:8}  hidden layer forward: {p.for_scope('MLP/Dense_1')}")
        print(f"{'':8}  hidden layer backward: {p.for_scope('MLP/Dense_1').backward()}")
        print(f"{'':8}  first/last layer: {p.for_scope('MLP/head')} (backward: {p.for_scope('MLP/head').backward()})")

# %% [markdown]
# The data: 8x8 images of 4 classes, a fixed random mean image per class
# buried in noise three times its size, flattened. The model: three dense
# layers with GELU activations.

# %%
CLASSES, DIM, STEPS, BATCH = 4, 64, 150, 64
rng = np.random.default_rng(0)
means = rng.normal(0.0, 1.0, (CLASSES, DIM)).astype(np.float32)


def make(n):
    labels = rng.integers(0, CLASSES, n).astype(np.int32)
    return (means[labels] + rng.normal(0.0, 3.0, (n, DIM))).astype(np.float32), labels


x_train, y_train = make(STEPS * BATCH)
x_test, y_test = make(2000)


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.gelu(nn.Dense(128)(x))
        x = nn.gelu(nn.Dense(128)(x))
        return nn.Dense(CLASSES, name="head")(x)


model = MLP()
params0 = model.init(jax.random.key(0), x_train[:1])["params"]
optimizer = optax.adam(3e-3)


def loss(params, x, y):
    logits = model.apply({"params": params}, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def run(spec):
    """Train STEPS Adam steps; the loss and its gradient emulated under `spec` (None: native)."""
    value_and_grad = jax.value_and_grad(loss if spec is None else numfmt.emulate(loss, spec))

    @jax.jit
    def step(params, opt_state, x, y):
        value, grads = value_and_grad(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value, grads

    params, opt_state, losses = params0, optimizer.init(params0), []
    for i in range(STEPS):
        sl = slice(i * BATCH, (i + 1) * BATCH)
        params, opt_state, value, grads = step(params, opt_state, x_train[sl], y_train[sl])
        losses.append(float(value))
    accuracy = float(np.mean(np.argmax(model.apply({"params": params}, x_test), -1) == y_test))
    return {"losses": np.array(losses), "accuracy": accuracy, "grads": grads}


results = {name: run(spec) for name, spec in POLICIES.items()}
for name, r in results.items():
    first, last = r["losses"][0], r["losses"][-1]
    print(f"{name:8} first loss {first:.4f}  last loss {last:.4f}  test accuracy {r['accuracy']:.1%}")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
window = 10
for name, r in results.items():
    smooth = np.convolve(r["losses"], np.ones(window) / window, mode="valid")
    ax.plot(np.arange(window - 1, STEPS), smooth, label=name)
ax.set_xlabel("step")
ax.set_ylabel(f"training loss (mean of {window} steps)")
ax.set_title("FP8 recipe vs bfloat16 vs float32")
ax.legend()
plt.show()

# %% [markdown]
# All three runs learn (asserted: the mean loss of the last 20 steps is below
# half that of the first 20, and the test accuracy is above 85%), and the
# curves lie close together (printed above; not asserted): on a model this
# small, with activations and weights of order 1, the recipe costs little.
# Real FP8 recipes also scale each tensor into E4M3's range (per-tensor or
# per-block scales); this one does not, so a model whose values drift far
# from 1 would underflow or saturate where a scaled recipe would not (the MX
# formats, `matmul_in=mxfp8_e4m3`, carry such scales per block of 32).
# The gradients of the emulated runs are bfloat16 values (the backward
# matmuls' `out=bfloat16`, and bfloat16 elementwise arithmetic), asserted
# below; the float32 run's are not.

# %%
for name, r in results.items():
    early, late = r["losses"][:20].mean(), r["losses"][-20:].mean()
    assert late < early / 2, f"{name} does not learn: {early:.3f} -> {late:.3f}"
    assert r["accuracy"] > 0.85, f"{name}: test accuracy {r['accuracy']:.1%}"
    grads = [np.asarray(g) for g in jax.tree.leaves(r["grads"])]
    in_bf16 = all(np.array_equal(g, numfmt.chop(g, "bfloat16")) for g in grads)
    assert in_bf16 == (name != "float32"), name
print("every run learns; emulated gradients are bfloat16 values")

# %% [markdown]
# ## 2. Accumulator precision against K
#
# One dot product of K products of E4M3 values drawn from [0, 1) (all
# positive: the hard case for an accumulator, whose sum only grows), summed
# in order into an accumulator of format F, one rounding per product
# (`accum=F`, `chunk=1`). The exact sum is known (every product and partial
# sum is exact in float64 here), so each run's relative error is exact. The
# accumulators:
#
# * `float32`, `float16`, `bfloat16`;
# * `float(e=8,m=13)`: a 14-bit significand, the limited accumulator precision
#   reported for FP8 tensor cores, with and without `promote=128` (its value
#   added into a float32 accumulator every 128 products, as the DeepSeek-V3
#   FP8 GEMMs do).
#
# The worst-case bound of a recursive sum grows as K u (u the unit roundoff);
# for these positive terms the error of round to nearest grows about as
# fast, until the partial sum's spacing exceeds the terms and the sum
# stagnates.

# %%
ACCUMULATORS = {
    "float32": "accum=float32",
    "float(e=8,m=13)": "accum=float(e=8,m=13)",
    "float(e=8,m=13), promote=128": "accum=float(e=8,m=13),promote=128",
    "float16": "accum=float16",
    "bfloat16": "accum=bfloat16",
}
KS = [2**k for k in range(4, 15, 2)]
TRIALS = 16
drng = np.random.default_rng(1)
errors = {name: [] for name in ACCUMULATORS}
for k in KS:
    a = numfmt.chop(drng.random((TRIALS, k)), "float8_e4m3fn").astype(np.float32)
    b = numfmt.chop(drng.random(k), "float8_e4m3fn").astype(np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)  # exact: every partial sum fits float64
    for name, acc in ACCUMULATORS.items():
        dot = numfmt.emulate(lambda u, v: u @ v, f"compute=float32,matmul_in=float8_e4m3fn,{acc},out=float32")
        got = np.asarray(dot(a, b), np.float64)
        errors[name].append(float(np.mean(np.abs(got - exact) / exact)))

print("K:       " + "".join(f"{k:>10}" for k in KS))
for name, errs in errors.items():
    print(f"{name:29}" + "".join(f"{e:10.2e}" for e in errs))

# %%
fig, ax = plt.subplots(figsize=(7, 4.5))
for name, errs in errors.items():
    ax.loglog(KS, errs, "o-", label=name)
ks = np.array(KS, float)
ax.loglog(ks, ks * 2.0**-14, "k:", label="K * 2**-14 (14-bit u)")
ax.set_xlabel("K (products per dot product)")
ax.set_ylabel("mean relative error")
ax.set_title("E4M3 dot products: accumulator precision vs K")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# What the figure shows (each asserted below):
#
# * the error of every narrow accumulator grows with K, by more than 10x from
#   K = 16 to K = 16384;
# * bfloat16 and float16 accumulators are useless at large K: at K = 16384
#   the error is above 10% (bfloat16) and 1% (float16): the sum stagnates;
# * the 14-bit accumulator loses more than 0.1% at K = 16384, and promoting it
#   into float32 every 128 products cuts that error by more than 10x: the
#   narrow accumulator then never sums more than 128 terms;
# * a float32 accumulator stays below 1e-5 at every K.

# %%
e = {name: np.array(errs) for name, errs in errors.items()}
for name in ("float(e=8,m=13)", "float16", "bfloat16"):
    assert e[name][-1] > 10 * e[name][0], name
assert e["bfloat16"][-1] > 0.1 and e["float16"][-1] > 0.01
assert e["float(e=8,m=13)"][-1] > 1e-3
assert e["float(e=8,m=13), promote=128"][-1] < e["float(e=8,m=13)"][-1] / 10
assert np.all(e["float32"] < 1e-5)
print("claims hold")
