"""Block (scaled) formats: OCP MX, NVFP4, NF4, block floating point.

A :class:`BlockFormat` is element format x scale format x block size x axis x
scale rule. Blocks are ``block_size`` consecutive elements along ``axis``;
each block shares one scale. With a power-of-two scale format (E8M0) the
scale is ``X = 2**e`` with ``e`` from the block's largest magnitude ``amax``
by the :class:`ScaleRule`; with a scale format that has fraction bits
(NVFP4's e4m3fn) it is ``amax / max_elem`` (times the optional float32
tensor scale) rounded into the scale format; with a table element (NF4) it
is ``amax`` itself (see :mod:`numfmt.block.nf4`).

Grammar (case-insensitive, spaces ignored; registered with ``numfmt.parse``)::

    block := preset | "mx(" items ")" | "nvfp4(" items ")" | "nf4(" items ")" | "bfp(" items ")"
    preset := "mxfp8_e4m3" | "mxfp8_e5m2" | "mxfp6_e2m3" | "mxfp6_e3m2"
            | "mxfp4_e2m1" | "mxint8" | "nvfp4" | "nf4"
    items  := key "=" value ("," key "=" value)*
      all:   nibbles (low_first|high_first|unpacked)
      mx:    elem (a format name; e4m3, e5m2, e2m3, e3m2, e2m1 name OCP's
             elements, e.g. e4m3 = float8_e4m3fn; int8 is MXINT8's element),
             block, axis, rule (floor|ceil|even|rceil), inf (nan|saturate),
             scale (a format name, default float8_e8m0fnu)
      nvfp4: elem (default e2m1), scale (default float8_e4m3fn), block, axis
      nf4:   table (ascending values separated by ';', default the NF4
             table), scale (default float32), block, axis
      bfp:   m (mantissa magnitude bits, >= 1), block, axis, rule, inf

``str(fmt)`` gives the preset name, or the ``mx(...)``/``bfp(...)``/
``nvfp4(...)``/``nf4(...)`` form with the non-default keys, and ``parse(str(fmt)) == fmt``.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from fractions import Fraction
from typing import Any

from numfmt.block.int_element import IntElement
from numfmt.block.table import NF4_VALUES, TableElement
from numfmt.core.names import parse
from numfmt.core.rounding import _parse_enum
from numfmt.float.format import FloatFormat

__all__ = ["BlockFormat", "InfPolicy", "ScaleRule", "bfp", "mx"]


class ScaleRule(enum.Enum):
    """How a power-of-two block scale ``X = 2**e`` is chosen from ``amax``.

    ``emax`` is ``floor(log2(max_elem))``, ``M = max_elem / 2**emax``. All rules
    are computed exactly from the bits of ``amax`` (no float ``log2``).

    * ``FLOOR``: ``e = floor(log2(amax)) - emax`` (OCP MX v1.0). Elements above
      ``max_elem`` after scaling are clamped.
    * ``CEIL``: the smallest ``e`` with ``amax / 2**e <= max_elem``, i.e.
      ``ceil(log2(amax / max_elem))`` of the exact quotient: nothing clamps.
    * ``EVEN``: ``floor(log2(amax'))  - emax`` where ``amax'`` is ``amax``
      rounded to the element's precision (nearest; ties to even and ties away
      agree here): a larger scale when ``amax`` would round up to the next
      binade.
    * ``RCEIL``: ``ceil(log2(q))`` where ``q`` is ``amax / max_elem`` rounded to
      nearest-even at float32 precision (24 bits, exponent unbounded): what a
      float32 division followed by the round-up conversion to E8M0 gives
      (cuBLAS, TransformerEngine). Equal to ``CEIL`` for inputs of at most 24
      bits of precision.
    """

    FLOOR = "floor"
    CEIL = "ceil"
    EVEN = "even"
    RCEIL = "rceil"


class InfPolicy(enum.Enum):
    """What an infinite element does to its block (NaN always makes a NaN block).

    * ``NAN``: the block becomes NaN: scale code NaN, every element NaN
      (microxcaling, torchao HEAD).
    * ``SATURATE``: the scale becomes the largest scale, the infinite elements
      the largest element value of their sign, the others are quantized with
      that scale (gfloat).
    """

    NAN = "nan"
    SATURATE = "saturate"


_RULE_NAMES = {r.value for r in ScaleRule}
# Sizes of blocks (and of scaled-integer groups): beyond this no array fits in memory.
MAX_BLOCK = 2**31


def _elem_error(elem) -> Exception:
    allowed = (
        "a FloatFormat (e.g. 'e2m1', 'float8_e4m3fn'), an IntElement ('int8' = MXINT8's element, "
        "'int(bits=B,frac=F[,sm])') or a table element (nf4(table=...))"
    )
    hint = ""
    if getattr(elem, "int_bits", None) is not None and elem.signed and 2 <= elem.bits <= 32:  # signed fixed point
        hint = f"; for {elem} use the integer element int(bits={elem.bits},frac={elem.frac_bits}), which has its values"
    kind = type(elem).__name__
    if kind in ("PositFormat", "FixedFormat"):
        return ValueError(f"elem={elem} ({kind}) is not a block element: elements are {allowed}{hint}")
    return TypeError(f"elem={elem!r} ({kind}) is not a block element: elements are {allowed}")
E8M0 = parse("float8_e8m0fnu")


@dataclasses.dataclass(frozen=True)
class BlockFormat:
    """A block format; see the module docstring.

    Args:
      elem: element format (a name is parsed): a :class:`numfmt.FloatFormat`,
        an :class:`IntElement` (``"int8"``, ``"int(bits=B,frac=F[,sm])"``) or,
        for NF4-style formats, a table element. Posits and fixed point
        (:class:`numfmt.PositFormat`, :class:`numfmt.FixedFormat`) are
        refused: for a signed fixed-point element ``qI.F`` use the integer
        element ``int(bits=1+I+F,frac=F)``, which has the same values.
      scale: scale format: a power-of-two format (``man_bits == 0``, e.g.
        E8M0) or, for NVFP4-style scales, a float format such as e4m3fn.
      block_size: elements per block, 1..2**31.
      axis: the axis blocks run along (an int; negative counts from the end).
      rule: a :class:`ScaleRule` (power-of-two scales only).
      inf: an :class:`InfPolicy`.
      tensor_scale: True for NVFP4's second level: a float32 per-tensor scale
        ``g = (max_scale * max_elem) / amax_tensor`` (rounded to float32).
      nibbles: how :func:`numfmt.encode` stores element codes of 4 bits or
        fewer: ``"low_first"`` (default; two per byte along ``axis``, element
        0 in the low nibble, as torchao and TransformerEngine), ``"high_first"``
        or ``"unpacked"`` (one code per byte).

    Raises:
      TypeError, ValueError: for parameters of the wrong type or range; a
        ValueError for an element format without negative values or without
        zero (``float8_e8m0fnu``, ``signed=False`` or ``subnormals='no_zero'``
        formats): as in OCP MX, elements are signed and hold zero.

    Examples:
      >>> import numfmt
      >>> numfmt.mxfp4_e2m1.block_size, str(numfmt.mxfp4_e2m1.elem)
      (32, 'float4_e2m1fn')
      >>> str(numfmt.parse("mx(elem=e2m1,block=16)"))
      'mx(elem=e2m1,block=16)'
    """

    elem: Any
    scale: Any = E8M0  # a FloatFormat (or its name, parsed in __post_init__)
    block_size: int = 32
    axis: int = -1
    rule: ScaleRule = ScaleRule.FLOOR
    inf: InfPolicy = InfPolicy.NAN
    tensor_scale: bool = False
    nibbles: str = "low_first"
    name: str | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "elem", _elem(self.elem) if isinstance(self.elem, str) else self.elem)
        object.__setattr__(self, "scale", parse(self.scale))
        object.__setattr__(self, "rule", _parse_enum(ScaleRule, self.rule, "rule", {}))
        object.__setattr__(self, "inf", _parse_enum(InfPolicy, self.inf, "inf", {}))
        for arg in ("block_size", "axis"):
            v = getattr(self, arg)
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{arg} must be an int, got {v!r}")
        if self.nibbles not in ("low_first", "high_first", "unpacked"):
            raise ValueError(f"nibbles={self.nibbles!r} must be 'low_first', 'high_first' or 'unpacked'")
        if not 1 <= self.block_size <= MAX_BLOCK:
            raise ValueError(f"block_size={self.block_size} is out of range; it must be in 1..2**31")
        if not isinstance(self.elem, (FloatFormat, IntElement, TableElement)):
            raise _elem_error(self.elem)
        if not isinstance(self.scale, FloatFormat):
            raise TypeError(f"scale must be a FloatFormat (e.g. 'e8m0fnu' or 'e4m3fn'), got {self.scale!r}")
        _check_signed_elem(self.elem)
        if self.scale.man_bits == 0 and self.tensor_scale:
            raise ValueError("tensor_scale=True needs a scale format with fraction bits (NVFP4: scale='e4m3fn')")
        if self.scale.man_bits > 0 and self.rule is not ScaleRule.FLOOR:
            raise ValueError(
                f"rule={self.rule.value!r} applies to power-of-two scales; {self.scale} scales are "
                "amax / max_elem rounded into the scale format: leave rule at 'floor'"
            )

    @property
    def pow2_scale(self) -> bool:
        """True if scales are powers of two (the MX family)."""
        return self.scale.man_bits == 0

    @property
    def elem_emax(self) -> int:
        """``floor(log2(max_elem))``."""
        m = Fraction(self.elem.max_value)
        e = m.numerator.bit_length() - m.denominator.bit_length()
        return e if Fraction(2) ** e <= m else e - 1

    def replace(self, **changes) -> BlockFormat:
        """A copy with some parameters changed (the preset name is dropped unless only ``axis`` changes)."""
        if set(changes) - {"axis"}:
            changes.setdefault("name", None)
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        if self.name is not None and PRESETS.get(self.name) == self:
            return self.name
        return self.spec

    @property
    def spec(self) -> str:
        """The explicit grammar form (see the module docstring)."""
        if self.tensor_scale:
            head, parts = "nvfp4", []
            nv = PRESETS["nvfp4"]
            if self.elem != nv.elem:
                parts.append(f"elem={_short(self.elem)}")
            if self.scale != nv.scale:
                parts.append(f"scale={_short(self.scale)}")
            if self.block_size != 16:
                parts.append(f"block={self.block_size}")
        elif isinstance(self.elem, TableElement):
            head, parts = "nf4", []
            if self.elem.values != NF4_VALUES:
                parts.append("table=" + ";".join(repr(v) for v in self.elem.values))
            if self.scale != PRESETS["nf4"].scale:
                parts.append(f"scale={_short(self.scale)}")
            if self.block_size != 64:
                parts.append(f"block={self.block_size}")
        elif _is_bfp_elem(self.elem):
            head, parts = "bfp", [f"m={self.elem.bits - 1}"]
            if self.block_size != 32:
                parts.append(f"block={self.block_size}")
        else:
            head = "mx"
            parts = [f"elem={_short(self.elem)}"]
            if self.block_size != 32:
                parts.append(f"block={self.block_size}")
            if self.scale != E8M0:
                parts.append(f"scale={_short(self.scale)}")
        if self.axis != -1:
            parts.append(f"axis={self.axis}")
        if self.rule is not ScaleRule.FLOOR:
            parts.append(f"rule={self.rule.value}")
        if self.inf is not InfPolicy.NAN:
            parts.append(f"inf={self.inf.value}")
        if self.nibbles != "low_first":
            parts.append(f"nibbles={self.nibbles}")
        return f"{head}({','.join(parts)})"


def _check_signed_elem(elem) -> None:
    """Refuse elements without negative values or zero (e8m0fnu): OCP MX elements have both."""
    if getattr(elem, "signed", True) and getattr(elem, "has_zero", True):
        return
    lack = "negative values" if not getattr(elem, "signed", True) else "zero"
    raise ValueError(
        f"elem={elem} has no {lack}; block formats need a signed element format with zero "
        "(e.g. e4m3, e5m2, e2m3, e3m2, e2m1, int8): e8m0fnu serves as a scale, not as an element"
    )


# Element names inside mx(...) follow the OCP MX spec: e4m3 is OCP's e4m3fn.
_MX_ELEMS = {
    "e4m3": "float8_e4m3fn",
    "e5m2": "float8_e5m2",
    "e2m3": "float6_e2m3fn",
    "e3m2": "float6_e3m2fn",
    "e2m1": "float4_e2m1fn",
}


def _elem(name: str):
    name = re.sub(r"\s+", "", name).lower()
    if name == "int8":
        return IntElement(8, 6)
    return parse(_MX_ELEMS.get(name, name))


def _is_bfp_elem(elem) -> bool:
    return isinstance(elem, IntElement) and elem.sign_magnitude and elem.frac_bits == elem.bits - 2


def _short(fmt) -> str:
    if fmt == IntElement(8, 6):
        return "int8"
    for short, full in _MX_ELEMS.items():
        if fmt == parse(full):
            return short
    return str(fmt)


def mx(elem, block_size: int = 32, **kw) -> BlockFormat:
    """An OCP MX format with element ``elem`` and an E8M0 scale.

    Examples:
      >>> import numfmt
      >>> numfmt.mx("e2m1") == numfmt.mxfp4_e2m1
      True
    """
    return BlockFormat(elem, E8M0, block_size, **kw)


def bfp(m: int, block_size: int = 32, **kw) -> BlockFormat:
    """Block floating point: a shared power-of-two exponent, sign-magnitude mantissas.

    Each element is ``+-k * 2**(e - m + 1)`` with ``0 <= k < 2**m``; the shared
    exponent is ``e = floor(log2(amax))`` (rule FLOOR), so the largest element
    keeps ``m`` significant bits. Codes are ``m + 1`` bits (sign, magnitude).

    Examples:
      >>> import numpy as np, numfmt
      >>> numfmt.chop(np.array([1.0, 0.3, -0.01], np.float32), numfmt.bfp(4, 3))
      array([ 1.  ,  0.25, -0.  ], dtype=float32)
    """
    if not isinstance(m, int) or isinstance(m, bool) or not 1 <= m <= 31:
        raise ValueError(f"bfp m={m!r} must be an int in 1..31 (mantissa magnitude bits)")
    return BlockFormat(IntElement(m + 1, m - 1, sign_magnitude=True), E8M0, block_size, **kw)


def _presets() -> dict:
    p = {
        "mxfp8_e4m3": mx("float8_e4m3fn"),
        "mxfp8_e5m2": mx("float8_e5m2"),
        "mxfp6_e2m3": mx("float6_e2m3fn"),
        "mxfp6_e3m2": mx("float6_e3m2fn"),
        "mxfp4_e2m1": mx("float4_e2m1fn"),
        "mxint8": mx(IntElement(8, 6)),
        "nvfp4": BlockFormat("float4_e2m1fn", "float8_e4m3fn", 16, tensor_scale=True),
        "nf4": BlockFormat(TableElement(NF4_VALUES), "float32", 64),
    }
    return {k: dataclasses.replace(v, name=k) for k, v in p.items()}


PRESETS = _presets()
