"""What the compiled-kernel tests share: ``chop`` with the kernels on and off, each on a fresh key of one value."""

from __future__ import annotations

import ml_dtypes
import numpy as np

import numfmt
from numfmt.core import native as core_native
from numfmt.core.random import hash_bits
from numfmt.core.xp import NUMPY

# the unsigned integer dtype of each float dtype the kernels read
UINT = {np.float16: np.uint16, ml_dtypes.bfloat16: np.uint16, np.float32: np.uint32, np.float64: np.uint64}


def chop_or_message(x, fmt, mode, overflow, key, random_bits):
    """``numfmt.chop``'s result, or its ValueError's message (both paths must refuse alike)."""
    kw = {}
    if mode.startswith("stochastic"):
        kw["key"] = key
        if mode[-2:] in ("_a", "_b", "_c"):
            kw["random_bits"] = random_bits
    try:
        return numfmt.chop(x, fmt, mode, overflow=overflow, **kw)
    except ValueError as err:
        return str(err)


def kernel_and_numpy(x, fmt, mode, overflow, key, random_bits):
    """``(compiled kernels' result, NumPy path's result)``; an int ``key`` seeds a fresh Generator for each."""
    fresh = (lambda: np.random.default_rng(key)) if isinstance(key, int) else (lambda: key)
    got = chop_or_message(x, fmt, mode, overflow, fresh(), random_bits)
    previous = core_native.set_enabled(False)
    try:
        want = chop_or_message(x, fmt, mode, overflow, fresh(), random_bits)
    finally:
        core_native.set_enabled(previous)
    return got, want


def assert_fallback_warns_once(monkeypatch, family_native, x, fmt):
    """With ``family_native``'s extension made unimportable, ``chop(x, fmt)`` warns once and gives the NumPy bits."""
    import pytest

    from numfmt.core import chop as chop_module

    want = numfmt.chop(x, fmt)
    monkeypatch.setattr(family_native._KERNEL, "ext", None)
    monkeypatch.setattr(family_native._KERNEL, "error", "test")
    monkeypatch.setattr(family_native._KERNEL, "loaded", True)
    monkeypatch.setitem(core_native.STATE, "warned", False)
    monkeypatch.setattr(chop_module, "_LANES", {})
    with pytest.warns(core_native.ExtensionWarning, match="compiled kernel is not available"):
        got = numfmt.chop(x, fmt)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    got = numfmt.chop(x, fmt, "stochastic", key=1)  # no second warning (warnings are errors here)
    assert got.dtype == np.float32


def assert_hash_past_2_32(family_native, plan, x, U, seed):
    """The kernel's counter hash at runs straddling 2**32 and beyond equals the NumPy plan's rounding."""
    for start in [2**32 - 1000, 2**33 + 5]:
        rbits = hash_bits(NUMPY, np.asarray(seed, np.uint32), start, x.size, plan.container)
        want, _ = plan.round_bits(NUMPY, x.view(U).astype(rbits.dtype), rbits)
        got = np.empty_like(x)
        ext = family_native._KERNEL.ext
        assert ext.round_into(family_native._packed(plan), x.view(U), got.view(U), 1, start, seed, None) == -1
        np.testing.assert_array_equal(got.view(U), want.astype(U))


def round_numpy(u, plan, words):
    """The NumPy plan's rounding of the patterns ``u`` with the random words ``words``, in ``u``'s dtype."""
    out, _ = plan.round_bits(NUMPY, u.astype(words.dtype), words)
    return out.astype(u.dtype)
