"""The assertions of ``numfmt.testing`` for posit, fixed-point, block and scaled integer formats.

:mod:`numfmt.testing.asserts` and :mod:`numfmt.testing.asserts_rounding` hand these
families here. Expected results come from the exact references
(:mod:`numfmt.testing.family_grid`, :mod:`numfmt.testing.block`), never from the
array kernels.
"""

from __future__ import annotations

import numpy as np

from numfmt.block.format import BlockFormat
from numfmt.block.table import TableElement
from numfmt.core.rounding import Rounding
from numfmt.scaled.format import ScaledIntFormat
from numfmt.testing import family_grid as _family_grid
from numfmt.testing.asserts import _call, bits, elementwise_lines, exact, mismatches, report

__all__ = ["compare_tensors", "family_inputs", "family_reference", "representable_lines", "rounds_like_block",
           "rounds_like_scaled"]


def representable_lines(a: np.ndarray, fmt, err_msg: str) -> list[str]:
    """Failure lines of ``assert_representable`` for a posit, fixed or block ``fmt`` (empty: passes)."""
    if isinstance(fmt, BlockFormat):
        from numfmt.testing.block import check_block_format, reference_chop

        check_block_format(fmt, a.dtype, "assert_representable")
        return _fixed_point_lines(a, reference_chop(a, fmt), fmt, err_msg, "block")
    if isinstance(fmt, ScaledIntFormat):
        from numfmt.testing.scaled import check_scaled
        from numfmt.testing.scaled import reference_chop as scaled_reference

        check_scaled(fmt, a.dtype, "assert_representable")
        return _fixed_point_lines(a, scaled_reference(a, fmt), fmt, err_msg, "group")
    return elementwise_lines(a, fmt, err_msg, _family_grid.representable, _family_grid.why_not)


def _fixed_point_lines(a: np.ndarray, want: np.ndarray, fmt, err_msg: str, unit: str) -> list[str]:
    """Failure lines for an array ``a`` that one exact rounding ``want`` should leave unchanged."""
    bad = mismatches(a, want, nan_payload=False)
    if not bad.any():
        return []
    header = (
        f"{err_msg}{int(bad.sum())} of {bad.size} elements are not fixed points of one rounding into {fmt} "
        f"(the exact {unit} reference moves them):"
    )
    return [report(bad, {"x": (a, False), "rounded": (want, False)}, None, header)]


def family_inputs(fmt, dtype, n_random: int, max_gaps: int, rng) -> np.ndarray:
    """Inputs for ``assert_rounds_like`` of a posit or fixed ``fmt``: boundary
    points of (a sample of) the gaps, raw bit patterns, values spread in range."""
    n_gaps = _family_grid.count(fmt) - 1
    if n_gaps <= max_gaps:
        gaps = range(n_gaps)
    else:
        ends = list(range(max_gaps // 4)) + list(range(n_gaps - max_gaps // 4, n_gaps))
        mid = n_gaps // 2  # the gaps around zero
        near_zero = range(max(0, mid - max_gaps // 8), min(n_gaps, mid + max_gaps // 8))
        middle = rng.integers(0, n_gaps, size=max_gaps // 4)
        gaps = sorted(set(ends) | set(near_zero) | {int(i) for i in middle})  # type: ignore[assignment]
    boundary = _family_grid.boundary_array(fmt, gaps, dtype)
    width = dtype.itemsize * 8
    raw = rng.integers(0, 2**width, size=n_random, dtype=f"uint{width}").view(dtype)
    top = float(max(abs(_family_grid.value_at(fmt, 0)), abs(_family_grid.value_at(fmt, n_gaps))))
    low = float(_family_grid.landmarks(fmt)[0])
    exponents = rng.uniform(np.log2(low) - 2, np.log2(top) + 2, size=n_random)
    with np.errstate(over="ignore", under="ignore"):
        spread = (rng.choice([-1.0, 1.0], size=n_random) * np.exp2(exponents)).astype(dtype)
    return np.concatenate([boundary, raw, spread])


def family_reference(x: np.ndarray, fmt, rounding: Rounding, overflow) -> np.ndarray:
    """One exact rounding of every element of ``x`` into a posit or fixed ``fmt``."""
    from numfmt.float import grid as _grid

    flat = x.reshape(-1)
    unique, inverse = np.unique(bits(flat), return_inverse=True)
    with np.errstate(invalid="ignore"):
        values = unique.view(x.dtype).astype(np.float64)
    want = _grid.to_dtype([_family_grid.round_exact(exact(v), fmt, rounding, overflow) for v in values], x.dtype)
    return want[inverse.reshape(-1)].reshape(x.shape)


def rounds_like_block(f, fmt: BlockFormat, rounding: Rounding, dtype, n_random: int, seed: int, err_msg: str):
    """``assert_rounds_like`` for a block format (see its docstring)."""
    from numfmt.testing.block import _block_rows, check_block_format, is_scaled, reference_chop

    dtype = check_block_format(fmt, dtype, "assert_rounds_like")
    if fmt.axis not in (0, 1, -1, -2):
        raise ValueError(f"assert_rounds_like probes 2-D arrays: the block axis must be 0, 1, -1 or -2, not {fmt.axis}")
    if isinstance(fmt.elem, TableElement) and rounding is not Rounding.NEAREST_EVEN:
        raise ValueError(f"{fmt} rounds to the nearest table value only; rounding={rounding.value!r} does not apply")
    rng = np.random.default_rng(seed)
    if is_scaled(fmt):
        from numfmt.testing.block_scaled import scaled_tensors

        tensors = scaled_tensors(fmt, dtype, n_random, rng)
    else:
        tensors = [_block_rows(fmt, n_random, rng)]
    if fmt.axis in (0, -2):
        tensors = [np.ascontiguousarray(x.T) for x in tensors]
    compare_tensors(f, tensors, lambda x: reference_chop(x, fmt, rounding), fmt, rounding, err_msg)


def rounds_like_scaled(f, fmt, rounding: Rounding, dtype, n_random: int, seed: int, err_msg: str):
    """``assert_rounds_like`` for a scaled integer format (see its docstring)."""
    from numfmt.testing.scaled import check_scaled, reference_chop, scaled_tensors

    dtype = check_scaled(fmt, dtype, "assert_rounds_like", two_d=True)
    tensors = scaled_tensors(fmt, dtype, n_random, np.random.default_rng(seed))
    compare_tensors(f, tensors, lambda x: reference_chop(x, fmt, rounding), fmt, rounding, err_msg)


def compare_tensors(f, tensors, reference, fmt, rounding: Rounding, err_msg: str) -> None:
    """Call ``f`` on each tensor and compare with ``reference(tensor)``, bit for bit; tensors
    whose exact results overflow the dtype are skipped (chop raises there)."""
    for x in tensors:
        want = reference(x)
        with np.errstate(invalid="ignore"):
            if (np.isinf(want) & np.isfinite(x)).any():
                continue  # a result beyond the dtype: chop raises, nothing to compare
        with np.errstate(over="ignore", invalid="ignore"):
            got = _call(f, x, "f")
        bad = mismatches(got, want, nan_payload=False)
        if bad.any():
            header = f"{err_msg}{int(bad.sum())} of {bad.size} elements differ from one {rounding.value}"
            header += f" rounding into {fmt}:"
            columns = {"input": (x, False), "got": (got, False), "want": (want, False)}
            raise AssertionError(report(bad, columns, None, header))
