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
# # A tour of the 8-, 6- and 4-bit formats
#
# Every value a format can hold comes from decoding every one of its codes with
# `numfmt.decode`: the grids, spacings and the table below are computed, not
# typed in. To add a format to the tour, append its name to `FORMATS`.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

import numfmt

FORMATS = [
    "float8_e5m2",
    "float8_e4m3fn",
    "binary8p3se",
    "binary8p4se",
    "float6_e3m2fn",
    "float6_e2m3fn",
    "float4_e2m1fn",
]


def values(fmt):
    """The finite values of ``fmt``, sorted and without duplicates (+0 and -0 are one)."""
    fmt = numfmt.parse(fmt)
    codes = np.arange(2**fmt.bits, dtype=np.uint64).astype(f"uint{max(8, 2 ** math.ceil(math.log2(fmt.bits)))}")
    v = numfmt.decode(codes, fmt, np.float64)
    return np.unique(v[np.isfinite(v)])


grids = {name: values(name) for name in FORMATS}

# %% [markdown]
# ## The facts, from the grids
#
# For each format: the number of distinct finite values, the largest and the
# smallest positive value, the dynamic range in binades (powers of two between
# them) and the gap between 1 and the next value (the machine epsilon).

# %%
def facts(v):
    pos = v[v > 0]
    above_one = v[v > 1]
    return {
        "finite values": len(v),
        "max": pos.max(),
        "min positive": pos.min(),
        "binades": math.log2(pos.max() / pos.min()),
        "eps": above_one.min() - 1 if len(above_one) else math.nan,
    }


rows = {name: facts(v) for name, v in grids.items()}
cols = list(next(iter(rows.values())))
print(f"{'format':16}" + "".join(f"{c:>15}" for c in cols))
for name, r in rows.items():
    print(f"{name:16}" + "".join(f"{r[c]:>15.6g}" for c in cols))

# %% [markdown]
# For the IEEE-like formats the grid agrees with the exact facts that
# `FloatFormat` computes from its parameters (a check: this cell fails if not).

# %%
checked = []
for name in grids:
    f = numfmt.parse(name)
    if isinstance(f, numfmt.FloatFormat):
        assert rows[name]["max"] == f.max_value, name
        assert rows[name]["min positive"] == (f.smallest_subnormal if f.man_bits else f.smallest_normal), name
        assert rows[name]["eps"] == f.eps, name
        assert rows[name]["finite values"] == f.num_finite, name
        checked.append(name)
print("grid facts agree with FloatFormat's exact facts for", checked)

# %% [markdown]
# ## Where the values are
#
# Each tick is one positive value, on a logarithmic axis. Formats with more
# exponent bits spread their values over more binades; formats with more
# fraction bits put more values into each binade.

# %%
fig, ax = plt.subplots(figsize=(9, 0.45 * len(FORMATS) + 1))
ax.eventplot([np.log2(v[v > 0]) for v in grids.values()], lineoffsets=range(len(FORMATS)), linelengths=0.7)
ax.set_yticks(range(len(FORMATS)), list(grids))
ax.set_xlabel("log2(value)")
ax.set_title("positive values of each format")
ax.invert_yaxis()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Spacing: precision across the range
#
# The relative gap `(next - v) / v` from each positive value to the next is
# the precision the format offers at that magnitude. Float formats keep it
# within a factor of two across their normal range (the sawtooth) and lose
# precision in the subnormals, where the absolute gap is constant.

# %%
fig, ax = plt.subplots(figsize=(9, 4.5))
for name, v in grids.items():
    pos = v[v > 0]
    ax.step(pos[:-1], np.diff(pos) / pos[:-1], where="post", label=name)
ax.set_xscale("log", base=2)
ax.set_yscale("log", base=2)
ax.set_xlabel("value")
ax.set_ylabel("relative gap to the next value")
ax.legend(fontsize=8, ncol=2)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Dynamic range versus precision, every preset up to 16 bits
#
# Each point is a float preset of `numfmt.presets("float")`: binades of dynamic range
# against bits of precision at 1 (`-log2(eps)`). For a fixed width, every bit
# moved from the fraction to the exponent doubles the range in binades and
# halves the number of values per binade.

# %%
small = {n: f for n, f in numfmt.presets("float").items() if f.bits <= 16}
points = {}
for name in small:
    r = facts(values(name))
    if r["eps"] == r["eps"]:  # formats without a value above 1 have no eps
        points[name] = (r["binades"], -math.log2(r["eps"]), numfmt.parse(name).bits)
fig, ax = plt.subplots(figsize=(9, 5))
for bits in sorted({p[2] for p in points.values()}):
    sel = [p for p in points.values() if p[2] == bits]
    ax.scatter([p[0] for p in sel], [p[1] for p in sel], label=f"{bits} bits")
labelled = set()
for name, (x, y, _) in points.items():
    spot = (round(math.log2(x), 1), y)
    if not name.startswith("binary") and spot not in labelled:  # one label per spot
        labelled.add(spot)
        ax.annotate(name.removeprefix("float8_"), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
ax.set_xscale("log", base=2)
ax.set_xlabel("dynamic range (binades)")
ax.set_ylabel("precision at 1 (bits)")
ax.legend()
fig.tight_layout()
plt.show()
print(f"{len(points)} presets plotted")
