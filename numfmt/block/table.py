"""The element type of table (codebook) block formats: ``TableElement`` and the NF4 codebook.

The kernels that round into a table live in :mod:`numfmt.block.nf4`.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np

__all__ = ["NF4_VALUES", "TableElement"]

# QLoRA / bitsandbytes NF4 codebook (float32 values), index = code.
NF4_VALUES = tuple(float(np.float32(v)) for v in (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0,
))  # fmt: skip


@dataclasses.dataclass(frozen=True)
class TableElement:
    """Elements that are one of up to 16 float32 values (a 4-bit codebook), ascending.

    Examples:
      >>> TableElement(NF4_VALUES).bits
      4
    """

    values: tuple

    def __post_init__(self):
        vals = tuple(float(v) for v in self.values)
        if not 2 <= len(vals) <= 16 or any(b <= a for a, b in zip(vals, vals[1:], strict=False)):
            raise ValueError("a table element needs 2..16 strictly ascending values")
        if any(float(np.float32(v)) != v for v in vals) or max(abs(v) for v in vals) != 1.0:
            raise ValueError("table values must be float32 values in [-1, 1] with max |value| = 1")
        object.__setattr__(self, "values", vals)

    @property
    def bits(self) -> int:
        return 4

    @property
    def max_value(self) -> Fraction:
        return Fraction(1)

    @property
    def smallest_subnormal(self) -> Fraction:
        return min(abs(Fraction(v)) for v in self.values if v != 0)

    @property
    def midpoints(self) -> tuple:
        """Exact midpoints between neighbouring values."""
        v = [Fraction(x) for x in self.values]
        return tuple((a + b) / 2 for a, b in zip(v, v[1:], strict=False))

    def __str__(self) -> str:
        return "nf4_table" if self.values == NF4_VALUES else f"table({len(self.values)} values)"
