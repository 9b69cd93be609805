"""Assertion about a user's deterministic quantizer: ``assert_rounds_like``.

It compares against the exact scalar reference (``numfmt.float.reference``),
never against numfmt's fast kernels (stochastic rounding:
:mod:`numfmt.testing.unbiased`).
"""

from __future__ import annotations

import numpy as np

from numfmt.block.format import BlockFormat
from numfmt.core.names import parse
from numfmt.core.rounding import Overflow, Rounding
from numfmt.core.xp import FLOAT_LAYOUTS
from numfmt.float import grid as _grid
from numfmt.float.reference import round_value
from numfmt.scaled.format import ScaledIntFormat
from numfmt.testing import family_grid as _family_grid
from numfmt.testing.asserts import _call, bits, exact, float_format, mismatches, report
from numfmt.testing.asserts_families import family_inputs, family_reference, rounds_like_block, rounds_like_scaled

__all__ = ["assert_rounds_like"]


def _inputs(fmt, dtype, n_random: int, max_gaps: int, rng) -> np.ndarray:
    """Boundary inputs of (a sample of) the gaps, raw bit patterns, and random
    values spread over the format's exponent range."""
    n_gaps = _grid.count(fmt) - 1
    if n_gaps <= max_gaps:
        gaps = range(n_gaps)
    else:
        ends = list(range(max_gaps // 4)) + list(range(n_gaps - max_gaps // 4, n_gaps))
        middle = rng.integers(max_gaps // 4, n_gaps - max_gaps // 4, size=max_gaps // 2)
        gaps = sorted(set(ends) | {int(i) for i in middle})  # type: ignore[assignment]
    boundary = _grid.boundary_array(fmt, gaps, dtype)
    width = dtype.itemsize * 8
    raw = rng.integers(0, 2**width, size=n_random, dtype=f"uint{width}").view(dtype)
    lowest = fmt.emin - fmt.man_bits - 2
    exponents = rng.integers(lowest, fmt.emax + 3, size=n_random).astype(np.float64)
    with np.errstate(over="ignore", under="ignore"):  # beyond the dtype: +-inf or 0, still valid inputs
        spread = (rng.uniform(-2.0, 2.0, size=n_random) * np.exp2(exponents)).astype(dtype)
    return np.concatenate([boundary, raw, spread])


def _reference(x: np.ndarray, fmt, rounding, overflow) -> np.ndarray:
    flat = x.reshape(-1)
    unique, inverse = np.unique(bits(flat), return_inverse=True)
    with np.errstate(invalid="ignore"):  # signalling NaN patterns
        values = unique.view(x.dtype).astype(np.float64)
    want = _grid.to_dtype([round_value(exact(v), fmt, rounding, overflow) for v in values], x.dtype)
    return want[inverse.reshape(-1)].reshape(x.shape)


def assert_rounds_like(
    f, fmt, rounding="nearest_even", *, dtype=np.float64, overflow=None, n_random: int = 2048,
    max_gaps: int = 1024, seed: int = 0, err_msg: str = "",
) -> None:  # fmt: skip
    """Assert a quantizer ``f`` rounds into ``fmt`` exactly as ``rounding`` says.

    ``f`` is called once, on a 1-D ``dtype`` array of generated inputs: for
    every gap between neighbouring values of ``fmt`` (or ``max_gaps`` of them,
    the lowest and highest included, for bigger formats) its lower value and
    its midpoint, each exactly and one ``dtype`` ulp either side; the regime
    landmarks (underflow tie, smallest subnormal and normal, 1, max, overflow
    threshold); +-0, +-inf and NaN; all with both signs; then ``n_random``
    raw bit patterns and ``n_random`` values spread over the format's
    exponent range. Its results must equal, bit for bit (NaN payloads
    aside), one rounding of each exact input by ``numfmt.float.reference``.

    Posit and fixed-point formats: the same kinds of inputs over their
    value grid (the gaps around zero and at both ends, for big formats),
    checked against ``numfmt.fixed.reference``. Block formats
    (power-of-two scales): ``f`` gets a 2-D float64 array with blocks along
    ``fmt.axis`` (0, 1, -1 or -2); each line holds a full block whose amax
    is ``2**k`` or one ulp below or above it (k around 0 and at both ends
    of the scale range), then a partial block; plus lines with NaN, +-inf,
    +-0 and raw bit patterns. Expected: ``numfmt.block.reference``.
    NVFP4- and NF4-style formats (``dtype`` float32, float16 or bfloat16):
    ``f`` is called once per tensor, as each has its own tensor scale:
    NVFP4 tensors whose tensor scale is a power of two and whose blocks
    hold every positive scale (a sample, for three of the four tensor
    scales) times every element value and tie, each one ulp either side and
    with both signs, so every tie is exact in the dtype; NF4 tensors with
    every table value and midpoint times power-of-two and odd amaxes; then
    random, near-underflow, raw-bit-pattern and NaN/inf/zero tensors.
    Tensors whose exact results overflow the dtype are skipped (chop raises
    there). Scaled integer formats (any float ``dtype``): ``f`` is called
    once per tensor (per-tensor formats: one tensor per group) on the
    arrays described in :func:`boundary_values`; expected results from
    ``numfmt.scaled.reference``, group by group.

    Args:
      f: the quantizer: a function of one array returning an array of the
        same dtype and shape (NumPy or JAX).
      fmt: a float, posit, fixed-point or block format object or string;
        ``dtype`` must hold its values (block formats: float64 for MX and
        bfp; float32, float16 or bfloat16 for NVFP4 and NF4).
      rounding: a deterministic :class:`numfmt.Rounding` member or name.
      dtype: float dtype of the inputs (float16, bfloat16, float32, float64).
      overflow: an :class:`numfmt.Overflow` member or name (fixed point:
        ``"saturate"``/``"wrap"``; posits: only ``"sat_finite"``; block
        formats: None); None: ``fmt.overflow``.
      n_random: how many random bit patterns and random in-range values.
      max_gaps: how many gaps of the format to probe at most.
      seed: seed of the random inputs (the same seed gives the same inputs).
      err_msg: prepended to the failure message.

    Raises:
      AssertionError: if ``f`` returns the wrong dtype or shape, or naming how
        many results differ and the first few with their inputs, results and
        expected results, each with its bits and its code in ``fmt``.
      ValueError: for a stochastic ``rounding`` (use :func:`assert_unbiased`),
        a ``dtype`` that cannot hold every value of ``fmt``, or a format
        family not supported yet.

    Examples:
      >>> import numpy as np, numfmt
      >>> assert_rounds_like(lambda x: numfmt.chop(x, "float8_e4m3fn"), "float8_e4m3fn")
      >>> assert_rounds_like(lambda x: numfmt.chop(x, "posit8_0"), "posit8_0")
      >>> ties_away = lambda x: numfmt.chop(x, "float8_e4m3fn", "nearest_away")
      >>> assert_rounds_like(ties_away, "float8_e4m3fn")  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      AssertionError: ... elements differ from one nearest_even rounding into float8_e4m3fn (overflow=sat_none):
        at (0,): input 0.0009765625 (0x3f50000000000000), got 0.001953125 ... [code 0x01], want 0.0 ...
    """
    fmt = parse(fmt)
    rounding = Rounding.parse(rounding)
    if rounding.is_stochastic:
        raise ValueError(
            f"rounding={rounding.value!r} is stochastic; assert_rounds_like checks deterministic modes, "
            "use assert_unbiased(sr_fn, x, n, fmt=fmt) for stochastic rounding"
        )
    if isinstance(fmt, BlockFormat):
        if overflow is not None:
            raise ValueError(f"overflow={overflow!r}: block elements always saturate; leave overflow=None")
        return rounds_like_block(f, fmt, rounding, dtype, n_random, seed, err_msg)
    if isinstance(fmt, ScaledIntFormat):
        if overflow is not None:
            raise ValueError(f"overflow={overflow!r}: {fmt} codes always saturate at [qmin, qmax]; leave overflow=None")
        return rounds_like_scaled(f, fmt, rounding, dtype, n_random, seed, err_msg)
    family = _family_grid.is_family(fmt)
    if not family:
        fmt = float_format(fmt, "assert_rounds_like")
    overflow = _family_grid.parse_overflow(fmt, overflow) if family else (
        fmt.overflow if overflow is None else Overflow.parse(overflow))  # fmt: skip
    if np.dtype(dtype) not in FLOAT_LAYOUTS:
        raise ValueError(f"dtype={dtype!r} must be float16, bfloat16, float32 or float64")
    dtype = np.dtype(dtype)
    if not (_family_grid.fits if family else _grid.fits)(fmt, dtype):
        raise ValueError(f"dtype={dtype.name} cannot hold every value of {fmt} exactly; pass a wider dtype")
    rng = np.random.default_rng(seed)
    x = family_inputs(fmt, dtype, n_random, max_gaps, rng) if family else _inputs(fmt, dtype, n_random, max_gaps, rng)
    got = _call(f, x, "f")
    want = family_reference(x, fmt, rounding, overflow) if family else _reference(x, fmt, rounding, overflow)
    fmt_codes = None if family else fmt
    bad = mismatches(got, want, nan_payload=False)
    if bad.any():
        header = (
            f"{err_msg}{int(bad.sum())} of {bad.size} elements differ from one {rounding.value} rounding "
            f"into {fmt} (overflow={overflow.value}):"
        )
        columns = {"input": (x, False), "got": (got, True), "want": (want, True)}
        raise AssertionError(report(bad, columns, fmt_codes, header))
