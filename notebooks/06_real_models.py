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
# # Flax and equinox models under `numfmt.emulate`
#
# `numfmt.emulate` works on any JAX function, so a model written with flax or
# equinox is emulated without changing its code: wrap the loss, take its
# gradient, and keep the optimizer (optax) outside, in float32:
#
# ```python
# value_and_grad = jax.value_and_grad(numfmt.emulate(loss, policy))
# ```
#
# This notebook trains two small image classifiers, written in the style of
# the flax and equinox MNIST examples, on synthetic images, under five
# policies:
#
# | run | policy | what it emulates |
# |---|---|---|
# | `float32` | (none: the model run natively) | the reference |
# | `bfloat16` | `compute=bfloat16` | every operation in bfloat16 |
# | `fp8` | `compute=float32,matmul_in=float8_e4m3fn,bwd.matmul_in=float8_e5m2` | FP8 matmul inputs (E5M2 backward) |
# | `mxfp4` | `compute=float32,matmul_in=mxfp4_e2m1` | MXFP4 inputs (blocks of 32 along the contraction) |
# | `posit16` | `compute=posit16_1` | every operation in 16-bit posits (es = 1) |
#
# The second half shows which optax settings break when the optimizer itself
# runs in a low-precision format, and why. JAX runs with its defaults here
# (64-bit types off). Every claim in the text is checked by an `assert`, so
# the notebook fails if a claim stops being true.

# %%
import time

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from IPython.display import Markdown, display

import numfmt
import numfmt.testing

POLICIES = {
    "float32": None,
    "bfloat16": "compute=bfloat16",
    "fp8": "compute=float32,matmul_in=float8_e4m3fn,bwd.matmul_in=float8_e5m2",
    "mxfp4": "compute=float32,matmul_in=mxfp4_e2m1",
    "posit16": "compute=posit16_1",
}
for name, policy in POLICIES.items():
    if policy is not None:
        print(f"{name:9} {numfmt.Policy.parse(policy)}")

# Synthetic 8x8 grayscale images of 4 classes: a fixed random mean image per
# class, buried in noise three times its size. The class is learnable, not trivial.
CLASSES, SIDE, STEPS, BATCH = 4, 8, 60, 64
rng = np.random.default_rng(0)
class_means = rng.normal(0.0, 1.0, (CLASSES, SIDE, SIDE, 1)).astype(np.float32)


def make_images(n):
    """n noisy images (n, 8, 8, 1) and their labels."""
    labels = rng.integers(0, CLASSES, n).astype(np.int32)
    noise = rng.normal(0.0, 3.0, (n, SIDE, SIDE, 1))
    return (class_means[labels] + noise).astype(np.float32), labels


x_train, y_train = make_images(STEPS * BATCH)  # every run sees the same batches, each once
x_test, y_test = make_images(1000)
batches = [(x_train[i : i + BATCH], y_train[i : i + BATCH]) for i in range(0, STEPS * BATCH, BATCH)]
optimizer = optax.adam(learning_rate=1e-2)


def train(step, params, opt_state):
    """One pass of `step` over `batches`: the final parameters, every step's loss, the last loss."""
    losses = []
    for xb, yb in batches:
        params, opt_state, loss = step(params, opt_state, xb, yb)
        losses.append(float(loss))
    return params, np.array(losses), loss


# %% [markdown]
# ## A flax linen CNN
#
# Convolution, ReLU and average pooling, then two dense layers: the shape of
# the flax MNIST example, scaled down. The loss takes the parameters and a
# batch; `numfmt.emulate(loss, policy)` is a function with the same
# signature, and `jax.value_and_grad` differentiates it (the backward pass is
# emulated under the same policy). Adam's state and update stay outside `emulate`, in
# float32; the forward pass, loss included, is what the policy rounds.


# %%
class FlaxCNN(nn.Module):
    """Conv 3x3 (8 channels) -> relu -> avg pool 2x2 -> dense 32 -> relu -> dense 4."""

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(features=8, kernel_size=(3, 3))(x)
        x = nn.avg_pool(nn.relu(x), window_shape=(2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(features=32)(x))
        return nn.Dense(features=CLASSES)(x)


flax_model = FlaxCNN()
flax_init = flax_model.init(jax.random.key(0), x_train[:1])["params"]


def flax_loss(params, x, y):
    """Mean softmax cross-entropy of the CNN's logits."""
    logits = flax_model.apply({"params": params}, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def flax_step(policy):
    """A jitted training step: loss and gradient under `policy` (None: native), Adam in float32."""
    loss_fn = flax_loss if policy is None else numfmt.emulate(flax_loss, policy)
    value_and_grad = jax.value_and_grad(loss_fn)

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = value_and_grad(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


@jax.jit
def flax_accuracy(params):
    """Held-out accuracy of `params`, evaluated natively in float32."""
    return jnp.mean(jnp.argmax(flax_model.apply({"params": params}, x_test), -1) == y_test)


results, start = {}, time.perf_counter()
for name, policy in POLICIES.items():
    params, losses, last = train(flax_step(policy), flax_init, optimizer.init(flax_init))
    accuracy = float(flax_accuracy(params))
    results["flax", name] = dict(losses=losses, last=last, params=params, accuracy=accuracy)
    print(f"flax {name:9} loss {losses[0]:.3f} -> {losses[-10:].mean():.3f} (mean of the last 10 steps)")
print(f"flax, all runs: {time.perf_counter() - start:.1f} s (mostly compilation)")


# %% [markdown]
# ## An equinox CNN, passed whole
#
# The equinox model is one `eqx.Module` holding its layers and its activation
# function. Equinox layers take one example (channels first), so the loss
# maps the model over the batch with `jax.vmap`. The module goes into the
# emulated loss whole: `emulate` traces its array leaves and passes the
# other leaves (here the `jax.nn.relu` function) through unchanged. Only
# `jax.grad` needs help with a function leaf, which is what
# `eqx.filter_value_and_grad` is for; the step is an `eqx.filter_jit`.


# %%
class EqxCNN(eqx.Module):
    """Conv 3x3 (8 channels) -> relu -> max pool 2x2 -> linear 32 -> relu -> linear 4."""

    conv: eqx.nn.Conv2d
    pool: eqx.nn.MaxPool2d
    hidden: eqx.nn.Linear
    output: eqx.nn.Linear
    activation: object  # a function: a pytree leaf that is not an array

    def __init__(self, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.conv = eqx.nn.Conv2d(1, 8, kernel_size=3, padding=1, key=k1)
        self.pool = eqx.nn.MaxPool2d(2, 2)  # its init, -inf, is a Python number: emulate keeps it static
        self.hidden = eqx.nn.Linear(8 * (SIDE // 2) ** 2, 32, key=k2)
        self.output = eqx.nn.Linear(32, CLASSES, key=k3)
        self.activation = jax.nn.relu

    def __call__(self, image):
        """Logits of one (1, 8, 8) image."""
        h = self.pool(self.activation(self.conv(image)))
        return self.output(self.activation(self.hidden(jnp.ravel(h))))


def eqx_loss(model, x, y):
    """Mean softmax cross-entropy; x is a batch of channels-last images."""
    logits = jax.vmap(model)(jnp.moveaxis(x, -1, 1))
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def eqx_step(policy):
    """A filtered, jitted training step: the model passed whole, Adam on its array leaves."""
    loss_fn = eqx_loss if policy is None else numfmt.emulate(eqx_loss, policy)
    value_and_grad = eqx.filter_value_and_grad(loss_fn)

    @eqx.filter_jit
    def step(model, opt_state, x, y):
        loss, grads = value_and_grad(model, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    return step


@eqx.filter_jit
def eqx_accuracy(model):
    """Held-out accuracy of `model`, evaluated natively in float32."""
    logits = jax.vmap(model)(jnp.moveaxis(x_test, -1, 1))
    return jnp.mean(jnp.argmax(logits, -1) == y_test)


eqx_init = EqxCNN(jax.random.key(1))
assert any(leaf is jax.nn.relu for leaf in jax.tree.leaves(eqx_init)), "no function leaf"
same = numfmt.emulate(lambda model: model, "compute=bfloat16")(eqx_init)
assert same.activation is jax.nn.relu, "emulate did not pass the function leaf through"

start = time.perf_counter()
for name, policy in POLICIES.items():
    opt_state = optimizer.init(eqx.filter(eqx_init, eqx.is_array))
    model, losses, last = train(eqx_step(policy), eqx_init, opt_state)
    accuracy = float(eqx_accuracy(model))
    results["equinox", name] = dict(losses=losses, last=last, params=model, accuracy=accuracy)
    print(f"equinox {name:9} loss {losses[0]:.3f} -> {losses[-10:].mean():.3f} (mean of the last 10 steps)")
print(f"equinox, all runs: {time.perf_counter() - start:.1f} s (mostly compilation)")

# %% [markdown]
# ## Loss curves
#
# Each curve is the training loss of every step (a fresh batch of 64 images
# each), under the run's own policy; the table gives the mean of the first
# and last ten steps and the held-out accuracy of the trained weights
# (1000 images, evaluated natively in float32, so it measures the weights,
# not the arithmetic).

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
steps = np.arange(1, STEPS + 1)
for ax, framework in zip(axes, ("flax", "equinox"), strict=True):
    for name in POLICIES:
        native = name == "float32"
        style = dict(ls="--", color="k", zorder=3) if native else dict(ls="-", zorder=2)
        ax.plot(steps, results[framework, name]["losses"], lw=1.2, label=name, **style)
    ax.set_title(f"{framework} CNN, Adam (lr 1e-2) in float32")
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
axes[0].set_ylabel("training cross-entropy (batch of 64)")
fig.tight_layout()
plt.show()

lines = ["| model | run | loss, first 10 steps | loss, last 10 steps | held-out accuracy |",
         "|---|---|---|---|---|"]
for (framework, name), r in results.items():
    first, final = r["losses"][:10].mean(), r["losses"][-10:].mean()
    lines.append(f"| {framework} | `{name}` | {first:.3f} | {final:.3f} | {r['accuracy']:.1%} |")
display(Markdown("\n".join(lines)))

for (framework, name), r in results.items():
    assert np.all(np.isfinite(r["losses"])), f"{framework} {name}: a loss is not finite"
    assert r["losses"][-10:].mean() < r["losses"][:10].mean() / 2, f"{framework} {name}: no learning"
    floor = 0.75 if name == "mxfp4" else 0.8
    assert r["accuracy"] > floor, f"{framework} {name}: held-out accuracy {r['accuracy']:.1%}"

# %% [markdown]
# Every run learns under every policy: its loss over the last ten steps is
# below half that of the first ten, and its weights classify more than 80%
# of the held-out images (75% under MXFP4, whose backward products take 4-bit
# inputs too) (asserted). At this size and learning rate the
# curves stay close: bfloat16, FP8 and posit16 end within 10% of the
# float32 loss, and MXFP4 (4-bit elements; in the first convolution, whose
# input has one channel, each block holds a single value) ends with the
# highest loss of the five in both models (asserted).
#
# Were the losses really rounded? The loss of each step is the output of the
# emulated function, so under `compute=bfloat16` it is a bfloat16 value and
# under `compute=posit16_1` a posit16_1 value (checked exactly with
# `numfmt.testing.assert_representable`); the native float32 loss is not a
# bfloat16 value. The FP8 and MXFP4 runs compute in float32, but their first
# loss, from the same initial weights and the same batch as the native run,
# differs from the native one: the matmul inputs were quantized (asserted).

# %%
for framework in ("flax", "equinox"):
    final = {name: results[framework, name]["losses"][-10:].mean() for name in POLICIES}
    for name in ("bfloat16", "fp8", "posit16"):
        assert abs(final[name] / final["float32"] - 1) < 0.1, f"{framework} {name}: far from float32"
    assert max(final, key=final.get) == "mxfp4", f"{framework}: MXFP4 no longer ends highest"
    for name, fmt in (("bfloat16", "bfloat16"), ("posit16", "posit16_1")):
        last = results[framework, name]["last"]
        numfmt.testing.assert_representable(last, fmt, err_msg=f"{framework} {name}")
    native = results[framework, "float32"]
    assert numfmt.chop(np.asarray(native["last"]), "bfloat16") != native["last"], framework
    for name in ("fp8", "mxfp4"):
        first = results[framework, name]["losses"][0]
        print(f"{framework:7} {name:5} first loss {first:.7f}, native {native['losses'][0]:.7f}")
        assert first != native["losses"][0], f"{framework} {name}: the policy changed nothing"

# %% [markdown]
# ## Optax in low precision
#
# The runs above keep Adam in float32, outside `emulate`. Running the
# optimizer itself in a narrow format breaks Adam's default settings,
# `b1=0.9, b2=0.999, eps=1e-8`:
#
# * **bfloat16** has 8 significant bits: below 1 its values are `2**-8`
#   apart, so `0.999` (`1 - 0.001`) rounds to `1.0`. Then the second moment
#   `nu = b2 * nu + (1 - b2) * g**2` never decays: it becomes a running sum
#   instead of an average. Worse, the bias correction divides by
#   `1 - b2**t = 1 - 1 = 0`: `nu_hat = nu / 0` is `inf` wherever `nu > 0`,
#   so the update `mu_hat / (sqrt(nu_hat) + eps)` is exactly 0, and it is
#   `0 / 0 = NaN` wherever the gradient has been zero. Adam stops without an
#   error (or writes NaN into the weights). `eps = 1e-8` is fine in
#   bfloat16, which has float32's exponent range.
# * Even with `b2` kept in float32, a second moment **stored** in bfloat16
#   cannot decay: `0.999 * nu` is within half a bfloat16 ulp of `nu` (a
#   relative step of `1e-3` against a half-ulp of at least `2**-9`), so it
#   rounds back to `nu`, for every bfloat16 value.
# * **float16** has 11 significant bits, so `b2` survives (`0.999` becomes
#   `0.99902`), but its range ends at the smallest subnormal `2**-24`
#   (about `6e-8`): `eps = 1e-8` rounds to 0, and so does the second-moment
#   increment `(1 - b2) * g**2 = 0.001 * g**2` for every `|g|` below about
#   `5.5e-3`. Then `sqrt(nu_hat) + eps` is 0: the update is
#   `mu_hat / 0 = inf` for such a small gradient and `0 / 0 = NaN` for a
#   zero one.
#
# Below, `numfmt.chop` shows the roundings and `numfmt.emulate(adam.update,
# policy)` runs optax's own Adam update under the policy, on a gradient with
# a normal, a large, a zero and a small element.

# %%
assert numfmt.chop(np.float32(0.999), "bfloat16") == 1.0
assert numfmt.chop(np.float32(1 - 2**-9), "bfloat16") == 1.0  # from 1 - 2**-9 up (a tie, to even)
assert numfmt.chop(np.nextafter(np.float32(1 - 2**-9), np.float32(0)), "bfloat16") < 1  # below it
assert numfmt.chop(np.float32(0.9), "bfloat16") == 0.8984375  # b1 moves, but stays below 1
assert numfmt.chop(np.float32(1e-8), "bfloat16") > 0  # eps survives in bfloat16
assert numfmt.chop(np.float32(0.999), "float16") == 1 - 2 * 2.0**-11  # b2 survives in float16
assert numfmt.float16.smallest_subnormal == 2**-24
assert numfmt.chop(np.float32(1e-8), "float16") == 0  # eps does not
print("0.999 in bfloat16:", numfmt.chop(np.float32(0.999), "bfloat16"), "  in float16:",
      numfmt.chop(np.float32(0.999), "float16"))
print("1e-8  in bfloat16:", numfmt.chop(np.float32(1e-8), "bfloat16"), "  in float16:",
      numfmt.chop(np.float32(1e-8), "float16"), f"  (float16's smallest subnormal: {2.0**-24:.3g})")

# float16: (1 - 0.999) * g**2 is 0 for every float16 g in (0, 0.005455]; the next value is 0.005459
increment = numfmt.emulate(lambda g: (1 - 0.999) * g**2, "compute=float16")
g16 = numfmt.decode(np.arange(1, 0x3C00, dtype=np.uint16), "float16").astype(np.float32)  # (0, 1)
lost = np.asarray(increment(g16)) == 0
assert lost[g16 < 0.005457].all() and not lost[g16 > 0.005457].any()
print(f"float16: (1 - 0.999) * g**2 is 0 for every g up to {g16[lost].max():.6g}")

# every positive finite bfloat16 value v: 0.999 * v (in float32) rounds back to v
v = numfmt.decode(np.arange(1, 0x7F80, dtype=np.uint16), "bfloat16")
assert np.array_equal(numfmt.chop(np.float32(0.999) * v, "bfloat16"), v)
print(f"all {v.size} positive finite bfloat16 values v: round(0.999 * v) == v")

grad = {"w": jnp.array([0.5, -2.0, 0.0, 0.005], jnp.float32)}
adam = optax.adam(learning_rate=1e-3)
RUNS = {  # label: (policy of the update, optimizer)
    "float32 (native)": (None, adam),
    "bfloat16": ("compute=bfloat16", adam),
    "bfloat16, b2=0.99": ("compute=bfloat16", optax.adam(learning_rate=1e-3, b2=0.99)),
    "float16": ("compute=float16", adam),
    "float16, eps=1e-4": ("compute=float16", optax.adam(learning_rate=1e-3, eps=1e-4)),
}
rows = ["| Adam, update in | g = 0.5 | g = -2 | g = 0 | g = 0.005 |", "|---|---|---|---|---|"]
updates = {}
for label, (policy, opt) in RUNS.items():
    update = opt.update if policy is None else jax.jit(numfmt.emulate(opt.update, policy))
    u, s = update(grad, opt.init(grad))
    u2, s2 = update(grad, s)  # a second step, from the first step's state
    updates[label] = (np.asarray(u["w"]), np.asarray(u2["w"]), (s[0], s2[0]))
    rows.append(f"| {label} | " + " | ".join(f"{x:.4g}" for x in np.asarray(u["w"])) + " |")
display(Markdown("\n".join(rows)))

native, _, _ = updates["float32 (native)"]
assert np.all(np.isfinite(native)) and np.all(np.abs(native[[0, 1, 3]]) > 9e-4)  # about lr
bf16, bf16_second, states = updates["bfloat16"]
nu1, nu2 = (np.asarray(state.nu["w"]) for state in states)
assert np.all(bf16[[0, 1, 3]] == 0) and np.isnan(bf16[2]), "bfloat16 Adam: expected 0 and NaN"
assert np.all(bf16_second[[0, 1, 3]] == 0) and np.isnan(bf16_second[2])  # and again at step 2
assert np.array_equal(nu2, 2 * nu1)  # b2 = 1: nu is a running sum of (1 - 0.999) * g**2
assert numfmt.chop(np.float32(0.99), "bfloat16") == 0.98828125
for label in ("bfloat16, b2=0.99", "float16, eps=1e-4"):
    first, second, _ = updates[label]
    assert np.all(np.isfinite(first)) and np.all(np.isfinite(second)) and first[2] == 0, label
    assert np.all(np.abs(first[[0, 1]] / native[[0, 1]] - 1) < 0.1), label  # steps of about lr
assert abs(updates["bfloat16, b2=0.99"][0][3] / native[3] - 1) < 0.1
f16, _, (f16_state, _) = updates["float16"]
assert np.isnan(f16[2]) and np.isinf(f16[3]), "float16 Adam, eps=1e-8: expected NaN and inf"
assert f16_state.nu["w"][3] == 0  # (1 - b2) * g**2 underflowed
assert updates["float16, eps=1e-4"][0][3] / native[3] > 40  # finite, but 50 times too large

# %% [markdown]
# The table is the first Adam step (learning rate `1e-3`) for each element of
# the gradient. Natively every nonzero gradient moves its weight by about
# `lr = 1e-3`. With the update in bfloat16 the moved weights get an update
# of exactly 0 and the zero-gradient weight gets NaN, at the first step and
# the second (asserted): the bias correction divided by `1 - 1**t = 0`.
# In float16 the large elements are right, but the zero gradient gives
# NaN (`0 / (0 + 0)`) and the small one `-inf` (`mu_hat / 0`, since
# `(1 - b2) * g**2` underflowed to 0 in the state; asserted). With
# `b2=0.99` in bfloat16 (it rounds to `0.98828125`) every update is a step
# of about `lr`, as natively (asserted). With `eps=1e-4` in float16 every
# update is finite and the zero gradient's is 0, but the small gradient's
# second moment is still 0, so its step is `lr * mu_hat / eps`, about 50
# times `lr` (asserted): finite, not right.
#
# What to do:
#
# * Keep the optimizer state (`mu`, `nu`) and its update in float32, outside
#   `emulate`, as the training loops above do: emulate the model's loss and
#   gradient, and hand optax float32 gradients. Mixed-precision training on
#   real hardware keeps float32 optimizer state for the same reasons.
# * If the update itself must run in bfloat16, use a `b2` that rounds below
#   1 (from `1 - 2**-9` up every value rounds to 1; `0.99` is safe). In
#   float16, `eps >= 1e-4` (`1e-8` is 0) removes the inf and NaN updates
#   but not the underflow of `nu` for gradients below about `5.5e-3`.

# %% [markdown]
# ## Summary
#
# * A flax linen model and an equinox module train under
#   `jax.value_and_grad(numfmt.emulate(loss, policy))` with no change to
#   their code: bfloat16, FP8 and MXFP4 matmul inputs, and posit16 compute
#   all learn the task (asserted), and their losses are values of the
#   policy's format (asserted).
# * An equinox module goes into `emulate` whole; only the gradient needs
#   `eqx.filter_value_and_grad`, because of its function leaf.
# * Adam's defaults break in low precision: `b2=0.999` is 1 in bfloat16 (the
#   bias correction divides by zero: updates of 0 or NaN), `eps=1e-8` is 0 in
#   float16, as is the second moment of gradients below about `5.5e-3`
#   (updates of inf or NaN). Keep optax in float32.
