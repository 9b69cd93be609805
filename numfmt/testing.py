"""Assertions for testing code against number formats.

``numfmt``'s own test suite uses these; they are public so that users can test
their kernels and quantizers the same way. This module does not import
hypothesis (the strategies will live in ``numfmt.testing.strategies``).
"""

from __future__ import annotations

import numpy as np

from numfmt._xp import FLOAT_LAYOUTS

__all__ = ["assert_bits_equal"]


def _bits(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype not in FLOAT_LAYOUTS:
        raise TypeError(f"expected a float16/bfloat16/float32/float64 array, got dtype {a.dtype}")
    return a.view(f"uint{a.dtype.itemsize * 8}")


def assert_bits_equal(actual, desired, *, nan_payload: bool = False, err_msg: str = "") -> None:
    """Assert two float arrays are equal bit for bit.

    -0.0 and +0.0 differ. NaNs compare equal to NaNs regardless of sign and
    payload unless ``nan_payload`` is set.

    Args:
      actual, desired: arrays (NumPy or JAX) of the same float dtype and shape.
      nan_payload: also require NaN bit patterns to match.
      err_msg: prepended to the failure message.

    Raises:
      AssertionError: listing the number of differing elements and the first
        few with their values and hex bit patterns.

    Examples:
      >>> import numpy as np
      >>> assert_bits_equal(np.float32([0.0, np.nan]), np.float32([0.0, -np.nan]))
    """
    a, d = np.asarray(actual), np.asarray(desired)
    if a.dtype != d.dtype or a.shape != d.shape:
        raise AssertionError(f"{err_msg}dtype/shape differ: {a.dtype}{a.shape} vs {d.dtype}{d.shape}")
    ab, db = _bits(a), _bits(d)
    bad = ab != db
    if not nan_payload:
        with np.errstate(invalid="ignore"):
            bad &= ~(np.isnan(a.astype(np.float64)) & np.isnan(d.astype(np.float64)))
    if not bad.any():
        return
    idx = np.argwhere(bad)[:8]
    width = ab.dtype.itemsize * 2
    rows = "\n".join(
        f"  at {tuple(int(i) for i in ix)}: actual {a[tuple(ix)]!r} (0x{int(ab[tuple(ix)]):0{width}x}), "
        f"desired {d[tuple(ix)]!r} (0x{int(db[tuple(ix)]):0{width}x})"
        for ix in idx
    )
    raise AssertionError(f"{err_msg}{int(bad.sum())} of {bad.size} elements differ in their bits:\n{rows}")
