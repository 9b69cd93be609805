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
# # Training under `numfmt.emulate`
#
# A 2-32-32-3 perceptron learns the three-armed spirals of `numfmt.cli.demo`
# (600 training points, 300 held out; generated, no download) with mini-batch
# SGD. The same JAX loss function is trained natively in float32 and under
# `numfmt.emulate` with three recipes, each with round-to-nearest-even and
# with stochastic rounding:
#
# | recipe | forward and loss | matmul inputs (weights and activations) | gradients | stored weights |
# |---|---|---|---|---|
# | `bfloat16` | bfloat16 | bfloat16 | bfloat16 | bfloat16 |
# | `fp8` | bfloat16 | float8_e4m3fn; output bfloat16 | bfloat16; matmul inputs float8_e5m2 | bfloat16 |
# | `mxfp4` | bfloat16 | mxfp4_e2m1 (blocks along K); output bfloat16 | bfloat16; matmul inputs mxfp4_e2m1 | bfloat16 |
#
# The loss and its gradient come from
# `jax.jit(jax.value_and_grad(numfmt.emulate(loss, policy)))`: the backward
# pass is emulated too, operation by operation, under the policy (its matmul
# inputs in the format `bwd.matmul_in=` gives, as FP8 recipes use E5M2 for
# gradients; see the emulate guide, "Gradients"). The SGD update
# `w - lr * g` is itself emulated in bfloat16 with the run's rounding, so the
# weights are always bfloat16 values. Block formats as `matmul_in` are blocked
# along each operand's contraction dimension K, as MX hardware does. Every claim
# in the text is checked by an `assert`, so the notebook fails if it stops
# being true.

# %%
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import numfmt
import numfmt.testing
from numfmt.cli.demo import spirals

x_train, y_train = spirals(200, seed=0)
x_test, y_test = spirals(100, seed=1)
SIZES, LR, EPOCHS, BATCH = (2, 32, 32, 3), 0.5, 40, 50


def forward(params, x):
    """Logits of the perceptron (ReLU hidden layers)."""
    h = x
    for w, b in params[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = params[-1]
    return h @ w + b


def loss_fn(params, x, y):
    """Mean softmax cross-entropy."""
    logp = jax.nn.log_softmax(forward(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def sgd(params, grads):
    """One SGD step, ``w - lr * g`` for every array."""
    return jax.tree.map(lambda w, g: w - jnp.float32(LR) * g, params, grads)


def init(seed):
    """He-initialized float32 weights, zero biases."""
    rng = np.random.default_rng(seed)
    return [
        (jnp.asarray(rng.normal(0, np.sqrt(2 / m), (m, n)).astype(np.float32)), jnp.zeros(n, np.float32))
        for m, n in zip(SIZES[:-1], SIZES[1:], strict=True)
    ]


FORWARD = {
    "bfloat16": "compute=bfloat16",
    "fp8": "compute=bfloat16,matmul_in=float8_e4m3fn,out=bfloat16",
    "mxfp4": "compute=bfloat16,matmul_in=mxfp4_e2m1,out=bfloat16",
}
BACKWARD = {"fp8": ",bwd.matmul_in=float8_e5m2"}  # the other recipes' backward pass: as their forward


def policies(recipe, rounding):
    """(training policy, update policy) strings of a recipe and rounding."""
    train = FORWARD[recipe]
    update = "compute=bfloat16"
    if rounding == "stochastic":
        train += ",rounding=stochastic"
        update += ",rounding=stochastic"
    train += BACKWARD.get(recipe, "")
    return train, update


RUNS = [("float32", "native")] + [(r, m) for r in FORWARD for m in ("nearest_even", "stochastic")]
for recipe, rounding in RUNS[1:]:
    print(f"{recipe:8} {rounding:12}", " | ".join(policies(recipe, rounding)))

# %% [markdown]
# ## Training
#
# Each run starts from the same initial weights (rounded to bfloat16 for the
# emulated runs) and sees the same mini-batches. The step returns the loss, the
# gradients and the new weights. At the last step the cell finds the weights
# whose update `lr * g` is below 1/8 of a bfloat16 ulp of the weight, and
# counts how many of them the update moved. Round-to-nearest must leave every
# one unchanged; stochastic rounding moves each with a probability equal to its
# share of the ulp, so the update is applied in expectation. Test accuracy is measured with the run's
# forward policy under round-to-nearest (float32 for the native run).


# %%
def make_step(recipe, rounding):
    if recipe == "float32":
        value_and_grad, update, stochastic = jax.value_and_grad(loss_fn), sgd, False
    else:
        train, upd = policies(recipe, rounding)
        value_and_grad = jax.value_and_grad(numfmt.emulate(loss_fn, train))
        update, stochastic = numfmt.emulate(sgd, upd), rounding == "stochastic"

    @jax.jit
    def step(params, xb, yb, key):
        k1, k2 = jax.random.split(key)
        loss, grads = value_and_grad(params, xb, yb, **({"key": k1} if stochastic else {}))
        return update(params, grads, **({"key": k2} if stochastic else {})), loss, grads

    return step


evaluate = {r: jax.jit(numfmt.emulate(forward, FORWARD[r])) for r in FORWARD}
evaluate["float32"] = jax.jit(forward)
results = {}
start = time.perf_counter()
for recipe, rounding in RUNS:
    step = make_step(recipe, rounding)
    params = init(0)
    if recipe != "float32":
        params = jax.tree.map(lambda w: jnp.asarray(numfmt.chop(np.asarray(w), "bfloat16")), params)
    order, key, losses = np.random.default_rng(2), jax.random.key(0), []
    for _ in range(EPOCHS):
        perm, total = order.permutation(len(y_train)), 0.0
        for s in range(0, len(y_train), BATCH):
            idx = perm[s : s + BATCH]
            key, sub = jax.random.split(key)
            before = params
            params, loss, grads = step(params, x_train[idx], y_train[idx], sub)
            total += float(loss) * len(idx)
        losses.append(total / len(y_train))
    g, new, old = (np.concatenate([np.asarray(t, np.float64).ravel() for t in jax.tree.leaves(tree)])
                   for tree in (grads, params, before))
    ulp = np.ldexp(1.0, np.frexp(old)[1] - 8)  # bfloat16 spacing at each old weight (8 significant bits)
    tiny = (g != 0) & (old != 0) & (np.abs(LR * g) < ulp / 8)  # updates far below half an ulp
    small, moved = float(np.mean(tiny[g != 0])), float(np.mean(new[tiny] != old[tiny])) if tiny.any() else 0.0
    accuracy = float(np.mean(np.argmax(np.asarray(evaluate[recipe](params, x_test)), 1) == y_test))
    results[recipe, rounding] = dict(losses=np.array(losses), accuracy=accuracy, params=params, grads=grads,
                                     last_loss=loss, small=small, moved=moved)
    print(f"{recipe:8} {rounding:12} final loss {losses[-1]:.4f}  test accuracy {accuracy:.1%}  "
          f"last step: {small:.1%} of the updates below 1/8 ulp, {moved:.1%} of those moved their weight")
print(f"all runs: {time.perf_counter() - start:.0f} s (mostly compilation)")

# %%
fig, axes = plt.subplots(1, len(FORWARD), figsize=(14, 4), sharey=True)
epochs = np.arange(1, EPOCHS + 1)
for ax, recipe in zip(axes, FORWARD, strict=True):
    ax.semilogy(epochs, results["float32", "native"]["losses"], "k-", label="float32 (native)")
    for rounding, style in (("nearest_even", "-"), ("stochastic", "--")):
        ax.semilogy(epochs, results[recipe, rounding]["losses"], style, label=f"{recipe}, {rounding}")
    ax.set_title(recipe)
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
axes[0].set_ylabel("mean training cross-entropy")
fig.tight_layout()
plt.show()

lines = ["| run | rounding | first-epoch loss | final loss | test accuracy | updates < 1/8 ulp (last step) "
         "| of those, weights moved |",
         "|---|---|---|---|---|---|---|"]
for (recipe, rounding), r in results.items():
    lines.append(f"| `{recipe}` | {rounding} | {r['losses'][0]:.4f} | {r['losses'][-1]:.4f} | "
                 f"{r['accuracy']:.1%} | {r['small']:.1%} | {r['moved']:.1%} |")
display(Markdown("\n".join(lines)))

native = results["float32", "native"]
for (recipe, rounding), r in results.items():
    assert r["losses"][-1] < r["losses"][0] / 5, f"{recipe} {rounding} no longer learns"
    assert r["accuracy"] > 0.9, f"{recipe} {rounding}: test accuracy {r['accuracy']:.1%}"
    if recipe != "float32":
        assert r["losses"][-1] > native["losses"][-1], f"{recipe} {rounding} now beats float32"
for recipe in FORWARD:
    rne, sr = results[recipe, "nearest_even"], results[recipe, "stochastic"]
    assert rne["small"] > 0.05 and sr["small"] > 0.05, f"{recipe}: few updates are below 1/8 ulp"
    assert rne["moved"] == 0, f"{recipe}: round-to-nearest moved a weight by less than half an ulp"
    assert sr["moved"] > 0, f"{recipe}: stochastic rounding moved no weight by a tiny update"
assert results["bfloat16", "stochastic"]["losses"][-1] < results["bfloat16", "nearest_even"]["losses"][-1]

# %% [markdown]
# Every run learns: its final loss is below a fifth of its first-epoch loss
# and its test accuracy above 90% (asserted), and float32 ends with the lowest
# training loss of all (asserted). Late in training many SGD steps are tiny
# next to the bfloat16 weights: in every emulated run more than 5% of the
# last step's updates are below 1/8 ulp (asserted; the shares are in the
# table). Round-to-nearest discards all of them (asserted: no such weight
# moved); stochastic rounding moves some of them (asserted), which is how it
# keeps small updates in expectation. In
# this run, with these seeds, stochastic rounding also ends with a lower
# training loss than round-to-nearest for the bfloat16 recipe (asserted);
# for fp8 and MXFP4, whose rounding is far coarser (and stochastic in the
# backward pass too under `rounding=stochastic`), the curves and the table
# show how the two compare (no claim is made).
#
# ## Were the runs really rounded?
#
# The checks below use `numfmt.testing.assert_representable` (an exact
# check against each format's codes): every stored weight of every emulated
# run is a bfloat16 value, every loss a bfloat16 value, and every gradient
# a bfloat16 value (the backward pass's format). The float32 run's weights
# are not bfloat16 values. For MXFP4 the emulated matrix product of the
# trained first-layer activations with the second-layer weights is compared
# bit for bit with an independent computation: both operands quantized with
# `numfmt.chop` to MXFP4 along the contraction (activations along their
# last axis, weights along their first), multiplied in float64 (exact here),
# and rounded once to bfloat16.

# %%
for (recipe, rounding), r in results.items():
    if recipe == "float32":
        continue
    for w in jax.tree.leaves(r["params"]):
        numfmt.testing.assert_representable(w, "bfloat16", err_msg=f"{recipe} {rounding} weight")
    numfmt.testing.assert_representable(r["last_loss"], "bfloat16", err_msg=f"{recipe} {rounding} loss")
    for g in jax.tree.leaves(r["grads"]):
        numfmt.testing.assert_representable(g, "bfloat16", err_msg=f"{recipe} {rounding} gradient")
native_w = np.asarray(native["params"][0][0])
assert not np.array_equal(native_w, numfmt.chop(native_w, "bfloat16")), "float32 weights are bfloat16 values"
print("weights, losses and gradients of the emulated runs: bfloat16 values")

params = results["mxfp4", "nearest_even"]["params"]
(w1, b1), (w2, _) = params[0], params[1]
a = np.asarray(numfmt.emulate(lambda x: jax.nn.relu(x @ w1 + b1), FORWARD["mxfp4"])(x_test))  # first layer
got = np.asarray(numfmt.emulate(lambda a, b: a @ b, FORWARD["mxfp4"])(a, w2))
qa = numfmt.chop(a, numfmt.mxfp4_e2m1.replace(axis=-1)).astype(np.float64)
qw = numfmt.chop(np.asarray(w2), numfmt.mxfp4_e2m1.replace(axis=0)).astype(np.float64)
want = numfmt.chop(qa @ qw, "bfloat16").astype(np.float32)
assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), "emulated MXFP4 matmul differs from the reference"
plain = numfmt.chop(a.astype(np.float64) @ np.asarray(w2, np.float64), "bfloat16").astype(np.float32)
print(f"MXFP4 matmul: {got.size} outputs equal the chop reference bit for bit; "
      f"{np.mean(got != plain):.1%} of them differ from the unquantized product rounded to bfloat16")
assert np.mean(got != plain) > 0.5

# %% [markdown]
# The MXFP4 product matches the independent reference bit for bit, and most
# of its outputs differ from the product of the unquantized operands rounded
# to bfloat16 (asserted above one half; the share is printed): the 4-bit
# quantization of the matmul inputs really happened.
#
# ## Summary
#
# * `jax.jit(jax.value_and_grad(numfmt.emulate(loss, policy)))` trains the
#   same JAX function in bfloat16, fp8 (E4M3 matmul inputs, E5M2 gradients)
#   and MXFP4 matmul inputs, with no change to the model code.
# * With bfloat16 weights, round-to-nearest loses part of each late, small
#   SGD step; stochastic rounding applies it in expectation.
# * The emulated values are exactly what the policy says: bfloat16 weights
#   and losses, E5M2 gradients, and MXFP4 products equal to a reference built
#   from `numfmt.chop`.
