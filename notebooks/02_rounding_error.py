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
# # Rounding error of long sums: stagnation, and stochastic rounding
#
# A running sum `s = s + x_k` computed in a low-precision format rounds after
# every addition. Once the terms fall below half the gap between `s` and its
# neighbours, round-to-nearest returns `s` unchanged: the sum **stagnates**.
# Stochastic rounding rounds up with probability proportional to the distance,
# so each addition is exact in expectation and the sum keeps growing.
#
# Every operation below is rounded with `numfmt.chop` from an exact float64
# result: the sum of two float16 or bfloat16 values is exact in float64 as long
# as their exponents differ by fewer than 53 - 11 bits, and the helper `add`
# checks that exactness on every call (TwoSum's error term must be zero), so
# each step is one correct rounding of the exact sum.

# %%
import matplotlib.pyplot as plt
import numpy as np

import numfmt

FORMATS = ["float16", "bfloat16"]
MODES = ["nearest_even", "stochastic"]
RUNS = 16  # independent stochastic runs (rows of every array)


def add(a, b, fmt, mode, rng):
    """``a + b`` rounded once into ``fmt``; refuses if float64 did not hold the exact sum."""
    s = a + b
    bb = s - a
    if np.any((a - (s - bb)) + (b - bb) != 0):
        raise ArithmeticError("a float64 sum was inexact: this experiment's premise fails")
    return numfmt.chop(s, fmt, mode, key=rng if mode == "stochastic" else None)


# %% [markdown]
# ## The harmonic series
#
# `H_n = 1 + 1/2 + ... + 1/n` diverges like `ln n`. Each term `1/k` is first
# rounded into the format (from float64, one rounding), then added.

# %%
N = 4096
k = np.arange(1, N + 1, dtype=np.float64)
harmonic = {}
for fmt in FORMATS:
    terms = numfmt.chop(1.0 / k, fmt)
    exact = np.cumsum(terms)  # exact: float64 holds every partial sum of these terms (checked below)
    assert np.all(np.diff(exact) == terms[1:])
    for mode in MODES:
        rng = np.random.default_rng(1)
        s = np.zeros(RUNS)
        out = np.empty((N, RUNS))
        for i in range(N):
            s = add(s, np.full(RUNS, terms[i]), fmt, mode, rng)
            out[i] = s
        harmonic[fmt, mode] = (out, exact)

for fmt in FORMATS:
    out, exact = harmonic[fmt, "nearest_even"]
    stuck = int(np.argmax(out[:, 0] == out[-1, 0])) + 1
    print(
        f"{fmt:9} nearest_even: H_{N} = {out[-1, 0]:.6g}, constant from n = {stuck} on; "
        f"exact sum of the rounded terms {exact[-1]:.6g}"
    )
    out_sr = harmonic[fmt, "stochastic"][0]
    print(f"{fmt:9} stochastic:   H_{N} over {RUNS} runs: mean {out_sr[-1].mean():.6g}, std {out_sr[-1].std():.3g}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, fmt in zip(axes, FORMATS, strict=True):
    exact = harmonic[fmt, "nearest_even"][1]
    ax.plot(k, exact, "k", lw=1, label="exact (float64)")
    ax.plot(k, harmonic[fmt, "nearest_even"][0][:, 0], label="nearest_even")
    sr = harmonic[fmt, "stochastic"][0]
    ax.plot(k, sr.mean(axis=1), label=f"stochastic (mean of {RUNS})")
    ax.fill_between(k, sr.min(axis=1), sr.max(axis=1), alpha=0.3, color="C1")
    ax.set_xscale("log")
    ax.set_title(fmt)
    ax.set_xlabel("n")
axes[0].set_ylabel("partial sum H_n")
axes[0].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Error versus n: a long sum of random terms
#
# Now `RUNS` independent sums of `n` terms drawn uniformly from [0, 1) (each
# term rounded into the format first), compared with the exact sum of the same
# rounded terms. The classical worst-case bound of recursive summation with
# round-to-nearest grows like `n u` (`u` the unit roundoff); for stochastic
# rounding, Connolly, Higham and Mary prove a bound that grows like
# `sqrt(n) u` with high probability. The dashed and dotted lines draw `n u`
# and `sqrt(n) u`.

# %%
N2 = 8192
data = np.random.default_rng(2).random((N2, RUNS))
errors = {}
for fmt in FORMATS:
    terms = numfmt.chop(data, fmt)
    exact = np.cumsum(terms, axis=0)
    # float64 holds these partial sums exactly (each difference gives back its term; add() checks each step too)
    assert np.all(np.diff(exact, axis=0) == terms[1:])
    for mode in MODES:
        rng = np.random.default_rng(3)
        s = np.zeros(RUNS)
        err = np.empty((N2, RUNS))
        for i in range(N2):
            s = add(s, terms[i], fmt, mode, rng)
            err[i] = np.abs(s - exact[i]) / exact[i]
        errors[fmt, mode] = err

n = np.arange(1, N2 + 1)
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, fmt in zip(axes, FORMATS, strict=True):
    u = float(numfmt.parse(fmt).unit_roundoff)
    for mode in MODES:
        ax.loglog(n, errors[fmt, mode].mean(axis=1), label=mode)
    ax.loglog(n, n * u, "k--", lw=0.8, label="n u")
    ax.loglog(n, np.sqrt(n) * u, "k:", lw=0.8, label="sqrt(n) u")
    ax.set_ylim(1e-6, 2)
    ax.set_title(f"{fmt}: sum of n uniform [0, 1) terms")
    ax.set_xlabel("n")
axes[0].set_ylabel(f"relative error (mean of {RUNS} runs)")
axes[0].legend()
fig.tight_layout()
plt.show()

for fmt in FORMATS:
    for mode in MODES:
        e = errors[fmt, mode].mean(axis=1)
        print(f"{fmt:9} {mode:13} mean relative error at n = 256: {e[255]:.3g}, at n = {N2}: {e[-1]:.3g}")

# %% [markdown]
# Once the round-to-nearest sum stagnates, its relative error heads for 1: the
# exact sum keeps growing and the computed one does not. The cell below
# prints, for each curve, the log-log slope over the last decade of `n` and
# whether the mean error stays below the `n u` and `sqrt(n) u` lines at every
# `n`.

# %%
tail = n >= N2 // 10
for fmt in FORMATS:
    u = float(numfmt.parse(fmt).unit_roundoff)
    for mode in MODES:
        e = errors[fmt, mode].mean(axis=1)
        slope = np.polyfit(np.log(n[tail]), np.log(e[tail]), 1)[0]
        print(
            f"{fmt:9} {mode:13} slope over n in [{N2 // 10}, {N2}]: {slope:5.2f};  "
            f"below n*u everywhere: {bool(np.all(e <= n * u))};  "
            f"below sqrt(n)*u everywhere: {bool(np.all(e <= np.sqrt(n) * u))}"
        )
