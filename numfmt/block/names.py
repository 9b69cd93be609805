"""The block family's string forms: ``mx(...)``, ``bfp(...)``, ``nvfp4(...)``, ``nf4(...)``, ``int(...)``.

Grammar (lower-case, spaces ignored; registered with ``numfmt.core.names``)::

    block  := preset | "mx(" items ")" | "bfp(" items ")" | "nvfp4(" items ")" | "nf4(" items ")"
    preset := "mxfp8_e4m3" | "mxfp8_e5m2" | "mxfp6_e2m3" | "mxfp6_e3m2" | "mxfp4_e2m1"
            | "mxint8" | "nvfp4" | "nf4"
    mx     items: elem= (required; OCP names: e4m3 is float8_e4m3fn), scale=,
                  block=, axis=, rule=, inf=, nibbles=
    bfp    items: m= (required), block=, axis=, rule=, inf=, nibbles=
    nvfp4  items: elem=, scale=, block=, axis=, nibbles=
    nf4    items: table=v;v;... (ascending float32 values in [-1, 1]), scale=, block=, axis=, nibbles=
    int    := "int(bits=B,frac=F[,sm])"   (an integer element: B bits, value code * 2**-F)

``parse(str(fmt)) == fmt`` for every block format.
"""

from __future__ import annotations

import dataclasses
import re

from numfmt.block.format import PRESETS, BlockFormat, _elem, bfp
from numfmt.block.int_element import IntElement
from numfmt.block.table import TableElement
from numfmt.core.names import register_family

__all__: list[str] = []

_CALL_RE = re.compile(r"(mx|nvfp4|nf4|bfp)\((.*)\)")
_INT_RE = re.compile(r"int\(bits=(-?\d+),frac=(-?\d+)(,sm)?\)")


def _top_level_split(body: str) -> list[str]:
    """Split at commas outside parentheses (element formats nest: ``elem=int(bits=4,frac=2)``)."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
    items.append(body[start:])
    return items


def _items(key: str, body: str, allowed: tuple) -> dict:
    out: dict = {}
    for item in filter(None, _top_level_split(body)):
        k, sep, v = item.partition("=")
        if not sep or k not in allowed:
            raise ValueError(f"in format {key!r}: {item!r} is not one of {', '.join(a + '=...' for a in allowed)}")
        if k in out:
            raise ValueError(f"in format {key!r}: key {k!r} is given twice")
        out[k] = v
    return out


def _int(key: str, name: str, v: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"in format {key!r}: {name}={v!r} is not an integer") from None


def _floats(key: str, v: str) -> tuple:
    try:
        return tuple(float(t) for t in v.split(";"))
    except ValueError:
        raise ValueError(f"in format {key!r}: table={v!r} is not a ';'-separated list of numbers") from None


def _parse_int(key: str):
    m = _INT_RE.fullmatch(key)
    return IntElement(int(m[1]), int(m[2]), bool(m[3])) if m else None


def _parse(key: str):
    if key in PRESETS:
        return PRESETS[key]
    m = _CALL_RE.fullmatch(key)
    if not m:
        return None
    head, body = m[1], m[2]
    common = ("block", "axis", "rule", "inf", "nibbles")
    kw: dict = {}
    if head == "mx":
        items = _items(key, body, ("elem", "scale", *common))
        if "elem" not in items:
            raise ValueError(f"in format {key!r}: mx(...) needs elem=, e.g. mx(elem=e2m1)")
        elem = _elem(items["elem"])
        kw["scale"] = _elem(items.get("scale", "float8_e8m0fnu"))
        base = BlockFormat(elem, **kw)
    elif head == "bfp":
        items = _items(key, body, ("m", *common))
        if "m" not in items:
            raise ValueError(f"in format {key!r}: bfp(...) needs m=, e.g. bfp(m=8,block=16)")
        base = bfp(_int(key, "m", items["m"]))
    elif head == "nvfp4":
        items = _items(key, body, ("elem", "scale", "block", "axis", "nibbles"))
        base = PRESETS[head]
        for k in ("elem", "scale"):
            if k in items:
                base = dataclasses.replace(base, **{k: _elem(items[k])})
    else:
        items = _items(key, body, ("table", "scale", "block", "axis", "nibbles"))
        base = PRESETS[head]
        if "table" in items:
            base = dataclasses.replace(base, elem=TableElement(_floats(key, items["table"])))
        if "scale" in items:
            base = dataclasses.replace(base, scale=_elem(items["scale"]))
    changes: dict = {}
    if "block" in items:
        changes["block_size"] = _int(key, "block", items["block"])
    if "axis" in items:
        changes["axis"] = _int(key, "axis", items["axis"])
    for k in ("rule", "inf", "nibbles"):
        if k in items:
            changes[k] = items[k]
    return dataclasses.replace(base, name=None, **changes)


register_family(IntElement, _parse_int, {}, "'int(bits=B,frac=F[,sm])'")
register_family(
    BlockFormat,
    _parse,
    PRESETS,
    "'mx(elem=...,block=N,axis=A,rule=...,inf=...)', 'bfp(m=M,block=N)', "
    "'nvfp4(elem=...,scale=...,block=N)', 'nf4(table=v;v;...,block=N)'",
    family="block",
)
