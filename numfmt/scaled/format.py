"""Scaled integer formats: per-tensor, per-channel and per-group int quantization.

A :class:`ScaledIntFormat` stores ``bits``-bit integers ``q`` in
``[qmin, qmax]`` with one scale ``s`` (a value of the ``scale`` float format,
float32 by default) per group, and for asymmetric formats one integer zero
point ``z`` per group; the value is ``(q - z) * s`` (``z = 0`` when symmetric).
The definitions (torchao / PyTorch conventions, computed exactly, see
:mod:`numfmt.scaled.kernel`)::

    symmetric:  s = RN_scale(amax / qmax)
                q = clamp(round(x / s), qmin, qmax)
    asymmetric: lo = min(min(x), 0), hi = max(max(x), 0)
                s = RN_scale((hi - lo) / (qmax - qmin))
                z = clamp(qmin - RNE(lo / s), qmin, qmax)
                q = clamp(round(x / s) + z, qmin, qmax)

Ranges: signed ``[-2**(b-1), 2**(b-1)-1]``; symmetric formats are
"restricted" by default (``qmin = -qmax``, torchao's ``int8`` weight
default and the symmetric range the zero point does not shift); pass
``restricted=False`` for the full range ``[-2**(b-1), 2**(b-1)-1]`` (the
scale still divides by ``qmax``). Unsigned ``[0, 2**b - 1]`` (asymmetric only).

A group whose ``amax`` (or ``hi - lo``) is 0 has ``s = 0`` (whatever the
scale format, e8m0 included), zero point 0 and zero codes.

Granularity: ``"tensor"`` (one group: the whole array), ``"channel"`` (one
group per index of ``axis``, reduced over all other axes; default axis 0,
the output channels of a ``(out, in)`` weight) or ``"group"`` (groups of
``group_size`` consecutive elements along ``axis``, default -1; a trailing
partial group is quantized as if zero-padded, which changes neither amax nor
``lo``/``hi``).

Grammar (registered with ``numfmt.parse``; spaces ignored)::

    scaled := preset | preset "(" items ")" | "scaled(" items ")"
    items  := key "=" value ("," key "=" value)*
      bits (2..16), per (tensor|channel|group), axis, group (the group size),
      sym (true|false), signed (true|false), restricted (true|false),
      scale (a float format name, default float32)

Presets: ``int8_per_tensor``, ``int8_per_channel``, ``int8_asym_per_tensor``,
``uint8_asym_per_tensor``, ``uint8_asym_per_channel``, ``int8_g32``,
``int4_g32``, ``int4_g128``, ``int4_asym_g128``. ``str(fmt)`` is the preset
name, or ``scaled(...)`` with every key, and ``parse(str(fmt)) == fmt``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from numfmt.block.format import MAX_BLOCK
from numfmt.block.names import _top_level_split
from numfmt.core.names import parse, register_family
from numfmt.float.format import FloatFormat

__all__ = ["ScaledIntFormat"]

F32 = parse("float32")
_GRANULARITIES = ("tensor", "channel", "group")


def _fits_float32(f: FloatFormat) -> bool:
    """True if every finite value of ``f`` is a float32 value."""
    return f.man_bits <= 23 and f.max_value <= F32.max_value and f.smallest_subnormal >= F32.smallest_subnormal


@dataclasses.dataclass(frozen=True)
class ScaledIntFormat:
    """Integers with a float scale (and zero point) per tensor, channel or group.

    See the module docstring for the definitions and the grammar.

    Args:
      bits: integer width, 2..16.
      granularity: ``"tensor"``, ``"channel"`` or ``"group"``.
      axis: the channel axis (``"channel"``, default 0) or the axis groups run
        along (``"group"``, default -1); None for ``"tensor"``.
      group_size: elements per group (``"group"`` only), 1..2**31.
      symmetric: True (zero point 0) or False (an integer zero point per group).
      signed: False for unsigned codes ``[0, 2**bits - 1]`` (asymmetric only).
      restricted: symmetric signed only: True (default) for ``[-qmax, qmax]``,
        False for ``[-qmax - 1, qmax]``.
      scale: the scale format: a :class:`numfmt.FloatFormat` (or its name)
        whose values are all float32 values (float32, bfloat16, float16,
        float8 formats, e8m0, ...).

    Raises:
      TypeError: a non-int ``bits``/``axis``/``group_size``, or a scale that
        is not a float format.
      ValueError: a parameter out of range or not meaningful for the
        granularity.

    Examples:
      >>> import numfmt
      >>> f = numfmt.parse("int8_per_channel")
      >>> f.granularity, f.axis, f.qmin, f.qmax
      ('channel', 0, -127, 127)
      >>> str(numfmt.parse("scaled(bits=4,per=group,group=64)"))
      'scaled(bits=4,per=group,axis=-1,group=64,sym=true,signed=true,restricted=true,scale=float32)'
    """

    bits: int
    granularity: str = "tensor"
    axis: int | None = None
    group_size: int | None = None
    symmetric: bool = True
    signed: bool = True
    restricted: bool = True
    scale: Any = F32  # a FloatFormat (or its name, parsed in __post_init__)
    name: str | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self):
        for arg in ("bits", "axis", "group_size"):
            v = getattr(self, arg)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                raise TypeError(f"ScaledIntFormat {arg} must be an int, got {v!r}")
        for arg in ("symmetric", "signed", "restricted"):
            if not isinstance(getattr(self, arg), bool):
                raise TypeError(f"ScaledIntFormat {arg} must be True or False, got {getattr(self, arg)!r}")
        if not 2 <= self.bits <= 16:
            raise ValueError(f"ScaledIntFormat bits={self.bits} is out of range; it must be 2..16")
        if self.granularity not in _GRANULARITIES:
            raise ValueError(
                f"ScaledIntFormat granularity={self.granularity!r} must be 'tensor', 'channel' or 'group'"
            )
        g = self.granularity
        if g == "tensor" and (self.axis is not None or self.group_size is not None):
            raise ValueError("granularity='tensor' has one scale for the whole array: leave axis and group_size None")
        if g == "channel" and self.group_size is not None:
            raise ValueError("granularity='channel' has no group_size (use granularity='group')")
        if g == "group" and (self.group_size is None or not 1 <= self.group_size <= MAX_BLOCK):
            raise ValueError(
                f"granularity='group' needs group_size >= 1 and <= 2**31, got group_size={self.group_size!r}"
            )
        if g != "tensor" and self.axis is None:
            object.__setattr__(self, "axis", 0 if g == "channel" else -1)
        if self.symmetric and not self.signed:
            raise ValueError("symmetric=True needs signed=True (unsigned codes are asymmetric: pass symmetric=False)")
        if not (self.symmetric and self.signed) and not self.restricted:
            raise ValueError("restricted=False applies to symmetric signed formats only; leave restricted=True")
        scale = parse(self.scale) if isinstance(self.scale, str) else self.scale
        if not isinstance(scale, FloatFormat):
            raise TypeError(f"scale must be a FloatFormat such as 'float32' or 'float16', got {self.scale!r}")
        if not _fits_float32(scale):
            raise ValueError(
                f"scale={scale}: scale formats must have values that are all float32 values "
                "(at most 23 fraction bits, inside float32's range); use float32 or a narrower format"
            )
        object.__setattr__(self, "scale", scale)

    @property
    def qmax(self) -> int:
        """Largest integer code value."""
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1

    @property
    def qmin(self) -> int:
        """Smallest integer code value."""
        if not self.signed:
            return 0
        return -self.qmax if self.symmetric and self.restricted else -(2 ** (self.bits - 1))

    @property
    def divisor(self) -> int:
        """The integer the scale's numerator is divided by: ``qmax`` or ``qmax - qmin``."""
        return self.qmax if self.symmetric else self.qmax - self.qmin

    def for_contraction(self, axis: int, shape) -> ScaledIntFormat:
        """The format of one matmul operand of ``shape`` contracted along ``axis`` (for ``emulate``).

        Per-tensor stays per-tensor; groups run along the contraction axis;
        per-channel means one scale per index of every other axis (per output
        channel of a weight, per row of an activation): groups of the whole
        contraction axis.
        """
        if self.granularity == "tensor":
            return self
        size = self.group_size if self.granularity == "group" else max(int(shape[axis]), 1)
        return self.replace(granularity="group", axis=axis, group_size=size)

    def replace(self, **changes) -> ScaledIntFormat:
        """A copy with some parameters changed (the preset name is dropped)."""
        changes.setdefault("name", None)
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        return self.name if self.name is not None else self.spec

    @property
    def spec(self) -> str:
        """The explicit grammar form, every key given."""
        parts = [f"bits={self.bits}", f"per={self.granularity}"]
        if self.axis is not None:
            parts.append(f"axis={self.axis}")
        if self.group_size is not None:
            parts.append(f"group={self.group_size}")
        b = {True: "true", False: "false"}
        parts += [f"sym={b[self.symmetric]}", f"signed={b[self.signed]}", f"restricted={b[self.restricted]}"]
        parts.append(f"scale={self.scale}")
        return f"scaled({','.join(parts)})"


def _presets() -> dict:
    S = ScaledIntFormat
    p = {
        "int8_per_tensor": S(8),
        "int8_per_channel": S(8, "channel"),
        "int8_asym_per_tensor": S(8, symmetric=False),
        "uint8_asym_per_tensor": S(8, symmetric=False, signed=False),
        "uint8_asym_per_channel": S(8, "channel", symmetric=False, signed=False),
        "int8_g32": S(8, "group", group_size=32),
        "int4_g32": S(4, "group", group_size=32),
        "int4_g128": S(4, "group", group_size=128),
        "int4_asym_g128": S(4, "group", group_size=128, symmetric=False),
    }
    return {k: dataclasses.replace(v, name=k) for k, v in p.items()}


PRESETS = _presets()
_CALL_RE = re.compile(r"([a-z0-9_]+)\((.*)\)")
_KEYS = {"bits": "bits", "per": "granularity", "axis": "axis", "group": "group_size", "sym": "symmetric",
         "signed": "signed", "restricted": "restricted", "scale": "scale"}  # fmt: skip


def _value(key: str, k: str, v: str):
    if k in ("bits", "axis", "group"):
        try:
            return int(v)
        except ValueError:
            raise ValueError(f"in format {key!r}: {k}={v!r} is not an integer") from None
    if k in ("sym", "signed", "restricted"):
        if v not in ("true", "false"):
            raise ValueError(f"in format {key!r}: {k}={v!r} must be 'true' or 'false'")
        return v == "true"
    return v  # per, scale: checked by ScaledIntFormat


def _parse(key: str):
    if key in PRESETS:
        return PRESETS[key]
    m = _CALL_RE.fullmatch(key)
    if not m or not (m[1] == "scaled" or m[1] in PRESETS):
        return None
    fields: dict = {}
    for item in filter(None, _top_level_split(m[2])):
        k, sep, v = item.partition("=")
        if not sep or k not in _KEYS:
            raise ValueError(f"in format {key!r}: {item!r} is not one of {', '.join(k + '=...' for k in _KEYS)}")
        if _KEYS[k] in fields:
            raise ValueError(f"in format {key!r}: key {k!r} is given twice")
        fields[_KEYS[k]] = _value(key, k, v)
    if m[1] == "scaled":
        if "bits" not in fields:
            raise ValueError(f"in format {key!r}: scaled(...) needs bits=, e.g. scaled(bits=8,per=channel)")
        if fields.get("granularity", "tensor") != "group" and "axis" not in fields:
            fields.setdefault("axis", None)
        return ScaledIntFormat(**fields)
    base = PRESETS[m[1]]
    if "granularity" in fields and fields["granularity"] != base.granularity:
        fields.setdefault("axis", None)
        fields.setdefault("group_size", None)
    return base.replace(**fields)


register_family(
    ScaledIntFormat,
    _parse,
    PRESETS,
    "'scaled(bits=B,per=tensor|channel|group,axis=A,group=G,sym=...,signed=...,scale=F)', 'int8_per_channel(axis=1)'",
    family="scaled",
)
