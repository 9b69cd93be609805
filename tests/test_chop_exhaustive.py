"""Exhaustive tests over every code and every midpoint of small formats.

The expected results come from the codes themselves, not from a rounding
algorithm: between two neighbours ``lo < hi`` the midpoint rounds to the even
code (nearest-even), to ``hi`` (nearest-away, up), to ``lo`` (toward zero,
down), to the odd code (to-odd); one float64 ulp below/above the midpoint goes
to ``lo``/``hi`` in the nearest modes. Negative inputs mirror this.
"""

import numpy as np
import pytest

import numfmt
from numfmt.testing import assert_bits_equal

SMALL = [n for n, f in numfmt.presets("float").items() if f.bits <= 16] + [
    "float(e=5,m=7)",
    "float(e=3,m=2,bias=-2)",
    "float(e=4,m=3,subnormals=flush)",
    "float(e=4,m=3,subnormals=round_to_normal)",
    "float(e=2,m=0,specials=fn)",
    "binary6p1se",
    "binary12p5uf",
]
DIRECTED = ["nearest_even", "nearest_away", "toward_zero", "toward_positive", "toward_negative", "to_odd"]


def positive_grid(fmt):
    """Codes and float64 values of every positive finite value, ascending."""
    codes = np.arange(1 << (fmt.bits - int(fmt.signed)), dtype=np.uint64)
    values = numfmt.decode(codes, fmt, dtype=np.float64)
    keep = np.isfinite(values) & (values > 0)
    if fmt.subnormals.value in ("flush", "round_to_normal"):
        keep &= values >= float(fmt.smallest_normal)
    return codes[keep], values[keep]


@pytest.mark.parametrize("name", SMALL)
def test_every_code_round_trips(name):
    fmt = numfmt.parse(name)
    codes = np.arange(1 << fmt.bits, dtype=np.uint64)
    values = numfmt.decode(codes, fmt, dtype=np.float64)
    is_nan = np.array([fmt.is_nan_code(int(c)) for c in codes])
    assert np.isnan(values[is_nan]).all()
    again = numfmt.encode(values[~is_nan], fmt)
    sub = (values[~is_nan] != 0) & (np.abs(values[~is_nan]) < float(fmt.smallest_normal))
    if fmt.subnormals.value in ("flush", "round_to_normal"):  # subnormal codes decode but are never produced
        np.testing.assert_array_equal(again[~sub], codes[~is_nan][~sub])
    else:
        np.testing.assert_array_equal(again, codes[~is_nan])
    # the values themselves are fixed points of chop
    finite = values[np.isfinite(values)]
    assert_bits_equal(numfmt.chop(finite[np.abs(finite) >= float(fmt.smallest_normal)], fmt),
                      finite[np.abs(finite) >= float(fmt.smallest_normal)])


def expected_between(lo_codes, hi_codes, lo, hi, mode, where):
    """Expected magnitude for inputs between lo and hi (positive inputs)."""
    odd = np.where(lo_codes % 2 == 1, lo, hi)
    even = np.where(lo_codes % 2 == 0, lo, hi)
    directed = dict(toward_zero=lo, toward_positive=hi, toward_negative=lo, to_odd=odd)
    nearest = {
        "below": dict(nearest_even=lo, nearest_away=lo),
        "mid": dict(nearest_even=even, nearest_away=hi),
        "above": dict(nearest_even=hi, nearest_away=hi),
    }
    return {**directed, **nearest[where]}[mode]


@pytest.mark.parametrize("mode", DIRECTED)
@pytest.mark.parametrize("name", SMALL)
def test_midpoints_and_neighbours(name, mode):
    fmt = numfmt.parse(name)
    codes, values = positive_grid(fmt)
    lo_c, hi_c, lo, hi = codes[:-1], codes[1:], values[:-1], values[1:]
    mid = lo + (hi - lo) / 2  # exact in float64: the formats have <= 16 bits
    below, above = np.nextafter(mid, 0), np.nextafter(mid, np.inf)
    for where, x in (("below", below), ("mid", mid), ("above", above)):
        want = expected_between(lo_c, hi_c, lo, hi, mode, where)
        assert_bits_equal(numfmt.chop(x, fmt, mode), want, err_msg=f"{name} {mode} {where}: ")
        mirrored = {"toward_positive": "toward_negative", "toward_negative": "toward_positive"}.get(mode, mode)
        mirror_want = -want if fmt.signed else np.full_like(want, np.nan)  # unsigned: negatives are NaN
        assert_bits_equal(numfmt.chop(-x, fmt, mirrored), mirror_want, err_msg=f"{name} -{mode} {where}: ")
        if fmt.precision <= 11:  # midpoints and their float32 neighbours are float32 values
            x32 = mid.astype(np.float32)
            step = {"below": np.float32(0), "mid": None, "above": np.float32(np.inf)}[where]
            x32 = x32 if step is None else np.nextafter(x32, step)
            if np.isfinite(x32).all() and (x32 > 0).all():
                got = numfmt.chop(x32, fmt, mode)
                assert_bits_equal(got, want.astype(np.float32), err_msg=f"{name} {mode} {where} float32: ")
