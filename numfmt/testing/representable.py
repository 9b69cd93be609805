"""``assert_representable``: is every element a value rounding into the format can produce?"""

from __future__ import annotations

import math

from numfmt.core.names import parse
from numfmt.float import grid as _grid
from numfmt.float.format import FloatFormat, Subnormals
from numfmt.float.reference import round_value
from numfmt.testing.asserts import elementwise_lines, float_array
from numfmt.testing.asserts_families import representable_lines

__all__ = ["assert_representable"]


def _why_not(v, fmt: FloatFormat) -> str:
    if isinstance(v, float) and math.isnan(v):
        return f"NaN, but {fmt} has no NaN"
    if isinstance(v, float) and v == 0:
        return f"-0.0, but {fmt} has no -0 (use +0.0)" if fmt.has_zero else f"zero, but {fmt} has no zero"
    if v < 0 and not fmt.signed:
        return f"negative, but {fmt} is unsigned"
    if isinstance(v, float):
        return f"infinite, but {fmt} has no infinity"
    if abs(v) > fmt.max_value:
        return f"beyond the largest finite value {float(fmt.max_value)!r}"
    if fmt.subnormals in (Subnormals.FLUSH, Subnormals.ROUND_TO_NORMAL) and abs(v) < fmt.smallest_normal:
        return f"below the smallest normal, which {fmt} (subnormals={fmt.subnormals.value}) never produces"
    lo, hi = (float(round_value(v, fmt, mode)) for mode in ("toward_negative", "toward_positive"))
    return f"between the neighbouring values {lo!r} and {hi!r}"


def assert_representable(x, fmt, *, err_msg: str = "") -> None:
    """Assert every element of ``x`` is a value rounding into ``fmt`` can produce.

    Checked exactly against the format's codes (``numfmt.float.reference``): a
    NaN needs a format with NaN, +-inf one with infinities, -0.0 one with a
    -0 code; negative values need a signed format; subnormals of ``flush``
    and ``round_to_normal`` formats do not count (rounding never gives them).
    Posits: a posit, or NaN for NaR (no -0, no inf). Fixed point: a multiple
    of the quantum within range (no NaN, no -0). Block formats: ``x`` must be
    a fixed point, bit for bit, of one exact rounding into ``fmt``
    (``numfmt.block.reference``, block by block along ``fmt.axis``; float64
    ``x`` for power-of-two scales, float32/float16/bfloat16 for NVFP4 and
    NF4; scaled integer formats likewise, against
    ``numfmt.scaled.reference``, any float dtype). Being decodable is not enough: a block whose codes are valid but
    whose scale the rule would not pick (e.g. element 240 at scale 1 in
    ``mxfp8_e4m3``: chop gives 224) is not a value rounding can produce; and
    since chop is idempotent (tested), its results are exactly these fixed
    points. NVFP4: the tensor scale is recomputed from ``x``'s own largest
    finite magnitude. Limitation: when an infinity made NaN the block that
    held the input's largest finite magnitude, the tensor scale chop used
    cannot be read off the result, and a correct result can be reported as
    not representable; check such arrays without their NaN blocks.

    Args:
      x: array (NumPy or JAX) or scalar of float16, bfloat16, float32 or float64.
      fmt: a format object or string.
      err_msg: prepended to the failure message.

    Raises:
      AssertionError: naming how many elements are not values of ``fmt`` and,
        for the first few, where they are and why.
      TypeError: for a non-float ``x``.
      ValueError: for an unknown format, or block input of a dtype the
        format does not take (float64 for MX and bfp; float32, float16 or
        bfloat16 for NVFP4 and NF4).

    Examples:
      >>> import numpy as np
      >>> assert_representable(np.float32([448.0, -0.0, 0.1015625]), "float8_e4m3fn")
      >>> assert_representable(np.float32([1.0, 0.1]), "float8_e4m3fn")
      Traceback (most recent call last):
      ...
      AssertionError: 1 of 2 elements are not values of float8_e4m3fn:
        at (1,): 0.10000000149011612 (0x3dcccccd): between the neighbouring values 0.09375 and 0.1015625
      >>> assert_representable(np.array([1.0, 1.01]), "posit8_0")
      Traceback (most recent call last):
      ...
      AssertionError: 1 of 2 elements are not values of posit8_0:
        at (1,): 1.01 (0x3ff028f5c28f5c29): between the neighbouring values 1.0 and 1.03125
    """
    fmt = parse(fmt)
    a = float_array(x, "x")
    if not isinstance(fmt, FloatFormat):
        lines = representable_lines(a, fmt, err_msg)
    else:
        lines = elementwise_lines(a, fmt, err_msg, _grid.representable, _why_not)
    if lines:
        raise AssertionError("\n".join(lines))
