"""Float presets, aliases and string forms, registered with :mod:`numfmt.core.names`.

Grammar (case-insensitive, spaces ignored)::

    format   := preset | short | alias | p3109 | explicit
    preset   := "float64" | "float32" | "float16" | "bfloat16" | "tf32"
              | "float8_e4m3fn" | ... | "float4_e2m1fn"   (ml_dtypes names)
    short    := preset without its "floatN_" prefix, e.g. "e4m3fn", "e8m0fnu"
    alias    := "half" | "single" | "double" | "fp16" | "bf16" | "fp32" | "fp64"
    p3109    := "binary" K "p" P ("s" | "u") ("e" | "f")
                K in 2..16; signed: 1 <= P < K; unsigned: 1 <= P <= K
    explicit := "float(" key "=" value ("," key "=" value)* ")"
                keys: e (exp_bits), m (man_bits), bias, specials, subnormals,
                signed (true/false), overflow; e and m are required.

``str(fmt)`` gives the preset name for presets and the explicit form
otherwise, and ``parse(str(fmt)) == fmt`` for every format.
"""

from __future__ import annotations

import re

from numfmt.core.names import register_family, register_hint
from numfmt.float.format import FloatFormat, Specials

__all__: list[str] = []  # registers itself; parse and presets are in numfmt.core.names


def _p3109(k: int, p: int, signed: bool, extended: bool) -> FloatFormat:
    name = f"binary{k}p{p}{'s' if signed else 'u'}{'e' if extended else 'f'}"
    if not 2 <= k <= 16:
        raise ValueError(f"{name}: K={k} is out of range; P3109 formats here have 2 <= K <= 16")
    if extended and signed and k == 2:
        raise ValueError(f"{name} has no positive finite value (its codes are 0, +inf, NaN, -inf); use K >= 3")
    if not (1 <= p < k if signed else 1 <= p <= k):
        allowed = f"1 <= P < {k}" if signed else f"1 <= P <= {k}"
        raise ValueError(f"{name}: P={p} is out of range; it needs {allowed}")
    return FloatFormat(
        exp_bits=k - p + (0 if signed else 1),
        man_bits=p - 1,
        specials=Specials.P3109 if extended else Specials.P3109_FINITE,
        signed=signed,
        name=name,
    )


def _build_presets() -> dict[str, FloatFormat]:
    table: dict[str, dict] = {
        "float64": dict(exp_bits=11, man_bits=52),
        "float32": dict(exp_bits=8, man_bits=23),
        "float16": dict(exp_bits=5, man_bits=10),
        "bfloat16": dict(exp_bits=8, man_bits=7),
        "tf32": dict(exp_bits=8, man_bits=10),
        "float8_e5m2": dict(exp_bits=5, man_bits=2),
        "float8_e4m3": dict(exp_bits=4, man_bits=3),
        "float8_e3m4": dict(exp_bits=3, man_bits=4),
        "float8_e4m3fn": dict(exp_bits=4, man_bits=3, specials="fn"),
        "float8_e4m3fnuz": dict(exp_bits=4, man_bits=3, specials="fnuz"),
        "float8_e4m3b11fnuz": dict(exp_bits=4, man_bits=3, bias=11, specials="fnuz"),
        "float8_e5m2fnuz": dict(exp_bits=5, man_bits=2, specials="fnuz"),
        "float8_e8m0fnu": dict(exp_bits=8, man_bits=0, specials="fn", signed=False, subnormals="no_zero"),
        "float8_e5m3fnu": dict(exp_bits=5, man_bits=3, specials="fn", signed=False),
        "float6_e2m3fn": dict(exp_bits=2, man_bits=3, specials="finite"),
        "float6_e3m2fn": dict(exp_bits=3, man_bits=2, specials="finite"),
        "float4_e2m1fn": dict(exp_bits=2, man_bits=1, specials="finite"),
    }
    out = {name: FloatFormat(name=name, **kw) for name, kw in table.items()}
    for k in (8,):
        for signed in (True, False):
            for p in range(1, k + (0 if signed else 1)):
                for extended in (True, False):
                    f = _p3109(k, p, signed, extended)
                    out[str(f)] = f
    return out


_PRESETS = _build_presets()
_ALIASES = {
    "half": "float16",
    "fp16": "float16",
    "single": "float32",
    "fp32": "float32",
    "double": "float64",
    "fp64": "float64",
    "bf16": "bfloat16",
}
for _name in list(_PRESETS):
    _short = re.sub(r"^float\d+_", "", _name)
    if _short != _name:
        _ALIASES[_short] = _name

_P3109_RE = re.compile(r"binary(\d+)p(\d+)([su])([ef])")
_EXPLICIT_RE = re.compile(r"float\((.*)\)")
_KEYS = {
    "e": "exp_bits",
    "m": "man_bits",
    "bias": "bias",
    "specials": "specials",
    "subnormals": "subnormals",
    "signed": "signed",
    "overflow": "overflow",
}


# Presets that are NumPy or ml_dtypes dtypes (same name, same codes). float8_e5m3fnu
# is an ml_dtypes type from 0.7 on; with an older ml_dtypes its preset has no dtype.
_DTYPE_PRESETS = (
    "float64", "float32", "float16", "bfloat16", "float8_e5m2", "float8_e4m3", "float8_e3m4",
    "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz", "float8_e5m2fnuz", "float8_e8m0fnu",
    "float8_e5m3fnu", "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn",
)  # fmt: skip


def _parse(key: str, spec: str) -> FloatFormat | None:
    """The float format of a normalised string ``key`` (P3109 or explicit form), or None."""
    m = _P3109_RE.fullmatch(key)
    if m:
        return _p3109(int(m[1]), int(m[2]), m[3] == "s", m[4] == "e")
    m = _EXPLICIT_RE.fullmatch(key)
    if m:
        return _parse_explicit(spec, m[1])
    return None


# The standard each float preset follows, for the hint of unknown names such as
# "fp8_e4m3" (the bare short name "e4m3" parses as float8_e4m3: IEEE-style,
# max 240, not OCP's E4M3, which is float8_e4m3fn).
_STANDARD = {
    "float8_e4m3fn": "OCP FP8 E4M3",
    "float8_e5m2": "OCP FP8 E5M2, IEEE-style",
    "float8_e4m3": "IEEE-style",
    "float8_e3m4": "IEEE-style",
    "float6_e2m3fn": "OCP MX FP6",
    "float6_e3m2fn": "OCP MX FP6",
    "float4_e2m1fn": "OCP MX FP4",
    "float8_e8m0fnu": "OCP MX scale",
}


def _layout_hint(key: str) -> str:
    """For an unknown name holding an ``eXmY`` layout (``fp8_e4m3``, ``OCP_E4M3``): the presets with it."""
    m = re.search(r"e(\d+)m(\d+)", key)
    if m is None:
        return ""
    found = [f for name, f in _PRESETS.items() if re.fullmatch(rf"float\d+_{m[0]}(fn|fnu|fnuz|b\d+fnuz)?", name)]
    if not found:
        return ""
    found.sort(key=lambda f: (str(f) not in _STANDARD, "IEEE" in _STANDARD.get(str(f), "")))
    items = []
    for f in found:
        kind = f"{_STANDARD[str(f)]}, " if str(f) in _STANDARD else ""
        inf = "inf" if f.has_inf else "no inf"
        items.append(f"{f} ({kind}max {float(f.max_value):g}, {inf})")
    return f" Formats with the layout {m[0].upper()}: {'; '.join(items)}."


def _parse_explicit(spec: str, body: str) -> FloatFormat:
    kwargs: dict = {}
    for item in filter(None, body.split(",")):
        if "=" not in item:
            raise ValueError(f"in format {spec!r}: {item!r} is not of the form key=value")
        k, text = item.split("=", 1)
        v: object = text
        if k not in _KEYS:
            raise ValueError(f"in format {spec!r}: unknown key {k!r}; valid keys are {', '.join(_KEYS)}")
        if _KEYS[k] in kwargs:
            raise ValueError(f"in format {spec!r}: key {k!r} is given twice")
        if k in ("e", "m", "bias"):
            try:
                v = int(text)
            except ValueError:
                raise ValueError(f"in format {spec!r}: {k}={text!r} is not an integer") from None
        elif k == "signed":
            if v not in ("true", "false"):
                raise ValueError(f"in format {spec!r}: signed={v!r} must be true or false")
            v = text == "true"
        kwargs[_KEYS[k]] = v
    missing = [k for k in ("e", "m") if _KEYS[k] not in kwargs]
    if missing:
        raise ValueError(f"in format {spec!r}: missing required key(s) {', '.join(missing)}")
    return FloatFormat(**kwargs)


_FORMS = (
    "'binary{K}p{P}{s|u}{e|f}' for IEEE P3109, 'float(e=E,m=M[,bias=B,specials=...,"
    "subnormals=...,signed=...,overflow=...])'"
)
register_family(
    FloatFormat, _parse, _PRESETS, _FORMS, family="float", aliases=_ALIASES, dtypes=_DTYPE_PRESETS, wants_spec=True
)
register_hint(_layout_hint)
