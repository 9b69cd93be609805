"""Formats whose range reaches beyond the input dtype, in every mode and overflow
policy, vs the exact reference: each result is the reference's, or chop raises
(NumPy, eager JAX; refused at trace time under jax.jit) where the input dtype
cannot hold it. Regimes: above the dtype's max (carries, saturation), formats
whose smallest value lies above the dtype's max (bias far below 0), unsigned
formats' negative inputs (NaN, never an error).
"""

from fractions import Fraction

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import numfmt
from numfmt import FloatFormat
from numfmt.float.reference import round_value
from numfmt.testing import assert_bits_equal

MODES = ["nearest_even", "nearest_away", "toward_zero", "toward_positive", "toward_negative", "to_odd"]
OVERFLOWS = ["sat_finite", "sat_propagate", "sat_none"]
CASES = [
    ("float8_e8m0fnu", np.float16), ("float8_e8m0fnu", ml_dtypes.bfloat16), ("float8_e8m0fnu", np.float32),
    (FloatFormat(5, 2, bias=-200), np.float32), (FloatFormat(5, 2, bias=-200), np.float16),
    (FloatFormat(5, 2, bias=-1030), np.float64), (FloatFormat(5, 0, bias=-14, specials="fn"), np.float16),
    (FloatFormat(5, 2, bias=-200, specials="fn", subnormals="no_zero"), np.float32),
]  # fmt: skip


def _inputs(dtype):
    info = ml_dtypes.finfo(dtype)
    p, top, bottom = info.nmant, info.maxexp, info.minexp - info.nmant
    exps = [bottom, bottom + 1, -1, 0, 1, top - 2, top - 1]
    mags = [np.ldexp(f, e) for e in exps for f in (1, 1 + 2.0**-p, 1.5, 1.75, 2 - 2.0**-p)]
    with np.errstate(over="ignore"):
        return np.array(mags + [-m for m in mags] + [0.0, -0.0, np.inf, -np.inf], dtype)


def _fits(v, dtype) -> bool:
    if isinstance(v, float):
        return True
    if abs(v) >= 2**1024:
        return False
    with np.errstate(over="ignore", under="ignore"):
        w = np.array(float(v)).astype(dtype)
    return bool(np.isfinite(w)) and Fraction(float(w)) == v


@pytest.mark.parametrize(("fmt", "dtype"), CASES, ids=lambda c: str(c) if not isinstance(c, type) else c.__name__)
def test_results_match_the_reference_or_raise(fmt, dtype):
    """Regressions: 1.0 in float32 to bias=-200 toward_positive gave 0; float16
    57344 to e8m0fnu to_odd gave inf; -49184 in float16 to e8m0fnu raised
    though its result is NaN."""
    x = _inputs(dtype)
    for mode in MODES:
        for ov in OVERFLOWS:
            ref = [round_value(float(v), fmt, mode, ov) for v in x.astype(np.float64)]
            fits = np.array([_fits(r, dtype) for r in ref])
            want = np.array([float(r) for r in np.array(ref, object)[fits]]).astype(dtype)
            got = numfmt.chop(x[fits], fmt, mode, overflow=ov)
            assert_bits_equal(got, want, err_msg=f"{fmt} {mode} {ov}")
            for v in x[~fits]:
                with pytest.raises(ValueError, match="cannot hold"):
                    numfmt.chop(np.array([v]), fmt, mode, overflow=ov)
            if not fits.all():
                with pytest.raises(ValueError, match="cannot hold"):
                    numfmt.chop(jnp.asarray(x), fmt, mode, overflow=ov)
    for mode in ("nearest_even", "to_odd", "toward_positive"):
        ref = [round_value(float(v), fmt, mode) for v in x.astype(np.float64)]
        if all(_fits(r, dtype) for r in ref):  # right, or refused statically (where the plan cannot rule it out)
            want = np.array([float(r) for r in ref]).astype(dtype)
            try:
                got = jax.jit(lambda v, m=mode: numfmt.chop(v, fmt, m))(jnp.asarray(x))
            except ValueError as e:
                assert "under tracing" in str(e)
            else:
                assert_bits_equal(got, want)
        else:
            with pytest.raises(ValueError, match="cannot hold|under tracing"):
                jax.jit(lambda v, m=mode: numfmt.chop(v, fmt, m))(jnp.asarray(x))
