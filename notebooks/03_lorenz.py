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
# # Lorenz 63 in reduced precision
#
# The Lorenz system `x' = s (y - x)`, `y' = x (r - z) - y`, `z' = x y - b z`
# with `s = 10`, `r = 28`, `b = 8/3`, integrated with the classical
# fourth-order Runge-Kutta scheme, step `dt = 0.02`. The same scheme runs in
# float64 (the reference) and with every operation rounded into float32,
# float16 or bfloat16, with round-to-nearest or stochastic rounding.
#
# Each operation is computed in float64 on values of the format and rounded
# once with `numfmt.chop`. Products of two values with at most 24 significant
# bits are exact in float64; every sum is checked to be exact (TwoSum's error
# term is zero), so each rounding is one correct rounding of the exact result.
# The constants `s`, `r`, `b`, `dt/2` and `dt/6` are rounded into the format
# first. An ensemble of initial conditions is integrated at once.

# %%
import matplotlib.pyplot as plt
import numpy as np

import numfmt

S, R, B, DT = 10.0, 28.0, 8.0 / 3.0, 0.02
CASES = [
    ("float32", "nearest_even"),
    ("float16", "nearest_even"),
    ("float16", "stochastic"),
    ("bfloat16", "nearest_even"),
    ("bfloat16", "stochastic"),
]
ENSEMBLE = 32  # initial conditions
STEPS = 1000  # 20 time units
SPINUP = 250  # steps discarded before the statistics


class Arith:
    """+, -, * rounded once into ``fmt`` (None: plain float64)."""

    def __init__(self, fmt, mode="nearest_even", seed=0):
        self.fmt, self.mode = fmt, mode
        self.rng = np.random.default_rng(seed) if mode == "stochastic" else None

    def q(self, v):
        return v if self.fmt is None else numfmt.chop(v, self.fmt, self.mode, key=self.rng)

    def const(self, c):
        """A constant, rounded to nearest into the format."""
        return np.float64(c) if self.fmt is None else numfmt.chop(np.float64(c), self.fmt)

    def add(self, a, b):
        s = a + b
        if self.fmt is not None:
            bb = s - a
            if np.any((a - (s - bb)) + (b - bb) != 0):
                raise ArithmeticError("an inexact float64 sum: the premise of one rounding fails")
        return self.q(s)

    def sub(self, a, b):
        return self.add(a, -b)

    def mul(self, a, b):
        return self.q(a * b)


def integrate(ar, v0, steps):
    """RK4 for the Lorenz system; ``v0`` has shape (3, ENSEMBLE); returns (steps + 1, 3, ENSEMBLE)."""
    s, r, b, h2, h6 = (ar.const(c) for c in (S, R, B, DT / 2, DT / 6))
    h = ar.const(DT)

    def f(v):
        x, y, z = v
        d = ar.sub(np.stack([y, np.broadcast_to(r, z.shape)]), np.stack([x, z]))  # y - x, r - z
        left = np.stack([np.broadcast_to(s, x.shape), x, x, np.broadcast_to(b, z.shape)])
        p = ar.mul(left, np.stack([d[0], d[1], y, z]))  # s (y - x), x (r - z), x y, b z
        rest = ar.sub(p[1:3], np.stack([y, p[3]]))  # x (r - z) - y, x y - b z
        return np.stack([p[0], rest[0], rest[1]])

    out = np.empty((steps + 1, *v0.shape))
    out[0] = v = ar.q(v0)
    for i in range(steps):
        k1 = f(v)
        k2 = f(ar.add(v, ar.mul(h2, k1)))
        k3 = f(ar.add(v, ar.mul(h2, k2)))
        k4 = f(ar.add(v, ar.mul(h, k3)))
        # 2 k is exact in binary formats (no overflow here), so it needs no rounding
        total = ar.add(ar.add(ar.add(k1, 2 * k2), 2 * k3), k4)
        out[i + 1] = v = ar.add(v, ar.mul(h6, total))
    return out


rng = np.random.default_rng(0)
v0 = np.array([1.0, 1.0, 20.0])[:, None] + rng.normal(0.0, 5.0, (3, ENSEMBLE))
reference = integrate(Arith(None), v0, STEPS)
runs = {case: integrate(Arith(*case), v0, STEPS) for case in CASES}
t = np.arange(STEPS + 1) * DT
print("integrated", len(CASES), "formats x roundings and the float64 reference,", ENSEMBLE, "initial conditions each")

# %% [markdown]
# ## Trajectories
#
# The first member of the ensemble, `x` against time, and its butterfly in
# the `(x, z)` plane. Every run starts from the same point (rounded into its
# format) and follows the float64 reference for a while before the rounding
# errors, amplified by the chaotic dynamics, take it elsewhere on the
# attractor.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [2, 1]})
axes[0].plot(t, reference[:, 0, 0], "k", lw=1.2, label="float64")
for case in CASES:
    axes[0].plot(t, runs[case][:, 0, 0], lw=0.8, label=" ".join(case))
axes[0].set_xlim(0, 12)
axes[0].set_xlabel("t")
axes[0].set_ylabel("x")
axes[0].legend(fontsize=7, ncol=2)
axes[1].plot(reference[:, 0, 0], reference[:, 2, 0], "k", lw=0.5, label="float64")
axes[1].plot(runs["bfloat16", "nearest_even"][:, 0, 0], runs["bfloat16", "nearest_even"][:, 2, 0], lw=0.5,
             label="bfloat16 nearest_even")
axes[1].set_xlabel("x")
axes[1].set_ylabel("z")
axes[1].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Distance to float64
#
# The Euclidean distance between each run and the float64 reference, median
# over the ensemble, against time on a log axis. It grows exponentially, at
# a rate set by the dynamics (the leading Lyapunov exponent of the Lorenz
# system, about 0.9), from a starting level set by the format's precision,
# until it saturates at the size of the attractor. The table gives the first
# time the median distance exceeds 1, and the growth rate fitted to the
# log-distance while it is between 1e-5 and 1 (where a run gets there).

# %%
fig, ax = plt.subplots(figsize=(9, 4))
print(f"{'format':9} {'rounding':13} {'median distance > 1 from t =':>28} {'fitted growth rate':>19}")
for case in CASES:
    dist = np.median(np.linalg.norm(runs[case] - reference, axis=1), axis=1)
    ax.semilogy(t, np.maximum(dist, 1e-18), label=" ".join(case))
    crossed = np.flatnonzero(dist > 1)
    start = t[crossed[0]] if len(crossed) else float("nan")
    window = (dist > 1e-5) & (t < start)
    rate = np.polyfit(t[window], np.log(dist[window]), 1)[0] if window.sum() > 50 else float("nan")
    print(f"{case[0]:9} {case[1]:13} {start:>28.2f} {rate:>19.2f}")
ax.set_xlabel("t")
ax.set_ylabel("median distance to float64")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Long-run statistics
#
# A single trajectory cannot be predicted past that time, but its statistics
# can: the distribution of `z` over the attractor (after `SPINUP` steps,
# pooled over the ensemble and time) per run, and the mean and standard
# deviation of `x`, `y`, `z`. A format that reproduces the climate of the
# system gives the reference's histogram; the Wasserstein-1 distance between
# the `z` distributions of each run and of float64 measures how far it is.

# %%
def wasserstein(a, b):
    """W1 distance between two equal-size samples: the mean gap of their sorted values."""
    return float(np.mean(np.abs(np.sort(a) - np.sort(b))))


z_ref = reference[SPINUP:, 2].ravel()
bins = np.linspace(0, 50, 51)
fig, ax = plt.subplots(figsize=(9, 4))
ax.hist(z_ref, bins, density=True, histtype="step", color="k", lw=1.5, label="float64")
m, sd = reference[SPINUP:].mean(axis=(0, 2)), reference[SPINUP:].std(axis=(0, 2))
print(f"{'run':23} {'mean x, y, z':>22} {'std x, y, z':>22} {'W1(z)':>7}")
print(f"{'float64':23} {m[0]:7.2f}{m[1]:7.2f}{m[2]:8.2f} {sd[0]:7.2f}{sd[1]:7.2f}{sd[2]:8.2f} {0:7.3f}")
for case in CASES:
    run = runs[case][SPINUP:]
    ax.hist(run[:, 2].ravel(), bins, density=True, histtype="step", label=" ".join(case))
    m, sd = run.mean(axis=(0, 2)), run.std(axis=(0, 2))
    w = wasserstein(run[:, 2].ravel(), z_ref)
    print(f"{' '.join(case):23} {m[0]:7.2f}{m[1]:7.2f}{m[2]:8.2f} {sd[0]:7.2f}{sd[1]:7.2f}{sd[2]:8.2f} {w:7.3f}")
ax.set_xlabel("z")
ax.set_ylabel("density")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# The smaller W1 is, the closer a run's distribution of `z` is to the
# reference's. The ensemble is finite (the reference's own sampling noise is
# part of every W1), so compare the numbers with each other rather than with
# zero.
