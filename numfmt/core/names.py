"""Named presets and the format string grammar.

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

import difflib
import re

import ml_dtypes
import numpy as np

from numfmt.float.format import FloatFormat, Specials

__all__ = ["dtype_for", "parse", "presets", "register_family"]

# Other format families (posits, fixed point, block formats) register here:
# their format class, a parser ``f(key) -> format | None`` for normalised
# (lower-case, space-free) strings, and their named presets.
_FAMILY_TYPES: tuple[type, ...] = (FloatFormat,)
_FAMILY_PARSERS: list = []
_FAMILY_PRESETS: dict = {}
_FAMILY_FORMS: list[str] = []
_BY_FAMILY: dict[str, dict] = {}  # family name -> its presets; "float" is added below


def register_family(cls: type, parser, named: dict, forms: str, family: str | None = None) -> None:
    """Make ``parse`` and ``presets`` know a format family (internal hook).

    ``forms`` describes the family's string forms for error messages, e.g.
    ``"'posit(n=N,es=E)'"``. ``family`` is the name ``presets(family)``
    selects the ``named`` presets by; a family without presets (an element
    type such as ``IntElement``) may leave it out.
    """
    global _FAMILY_TYPES
    if named and family is None:
        raise ValueError(f"register_family({cls.__name__}): presets need a family name for numfmt.presets(family)")
    if cls not in _FAMILY_TYPES:
        _FAMILY_TYPES = (*_FAMILY_TYPES, cls)
        _FAMILY_PARSERS.append(parser)
        _FAMILY_FORMS.append(forms)
    _FAMILY_PRESETS.update(named)
    if family is not None:
        _BY_FAMILY.setdefault(family, {}).update(named)


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
# The families in the order presets() lists them; others append as they register.
_BY_FAMILY.update({"float": _PRESETS, "posit": {}, "fixed": {}, "block": {}})
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


# Presets that are NumPy or ml_dtypes dtypes (same name, same codes).
_DTYPE_PRESETS = (
    "float64", "float32", "float16", "bfloat16", "float8_e5m2", "float8_e4m3", "float8_e3m4",
    "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz", "float8_e5m2fnuz", "float8_e8m0fnu",
    "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn",
)  # fmt: skip


def dtype_for(fmt: FloatFormat):
    """The dtype whose values and codes are those of ``fmt`` (overflow policy aside), or None."""
    for name in _DTYPE_PRESETS:
        preset = _PRESETS[name]
        if fmt.replace(overflow=preset.overflow) == preset:
            found = getattr(ml_dtypes, name, None) or getattr(np, name, None)
            return None if found is None else np.dtype(found)
    return None


def _parse_dtype(spec):
    try:
        dtype = np.dtype(spec)
    except TypeError:
        return None
    name = dtype.name
    if name in _PRESETS:
        return _PRESETS[name]
    if name in _FAMILY_PRESETS:
        return _FAMILY_PRESETS[name]
    raise ValueError(
        f"dtype {name} has no numfmt format; dtypes with one: "
        f"{', '.join(_DTYPE_PRESETS)} (and integer formats where registered)"
    )


def presets(family: str | None = None) -> dict:
    """The named presets, name -> format (a new dict each call).

    Families: ``"float"`` (:class:`numfmt.FloatFormat`: IEEE, OCP FP8/FP6/FP4,
    P3109 for K = 8; ``parse`` accepts any K in 2..16), ``"posit"``
    (:class:`numfmt.PositFormat`), ``"fixed"`` (:class:`numfmt.FixedFormat`:
    ``int8``, ``uint4``, ...) and ``"block"`` (:class:`numfmt.BlockFormat`:
    MX, NVFP4, NF4). Only the float family has code fields (exponent,
    fraction, bias); use ``presets("float")`` where those are needed.

    Args:
      family: one family name, or None (the default) for every family.

    Returns:
      A dict of preset name -> format, floats first, then posits, fixed
      point and block formats.

    Raises:
      ValueError: for an unknown ``family`` (the message lists the valid ones).

    Examples:
      >>> import numfmt
      >>> numfmt.presets("float")["float8_e4m3fn"] is numfmt.float8_e4m3fn
      True
      >>> sorted(numfmt.presets("posit"))[:3]
      ['posit16_1', 'posit16_2', 'posit32_2']
      >>> set(numfmt.presets()) >= set(numfmt.presets("block"))
      True
    """
    if family is None:
        return {name: f for named in _BY_FAMILY.values() for name, f in named.items()}
    if family not in _BY_FAMILY:
        raise ValueError(
            f"presets(family={family!r}): unknown family; valid families are "
            f"{', '.join(repr(k) for k in _BY_FAMILY)}, or None for every preset"
        )
    return dict(_BY_FAMILY[family])


def parse(spec):
    """Return the format named by ``spec`` (see the module grammar).

    Args:
      spec: a format string, a format object (returned unchanged), or a NumPy
        or ml_dtypes dtype / scalar type with a format of the same name
        (``ml_dtypes.float8_e4m3fn``, ``np.float16``).

    Raises:
      ValueError: for an unknown name (the message lists the closest valid
        names) or invalid parameters.
      TypeError: if ``spec`` is neither a string nor a format.

    Examples:
      >>> import numfmt
      >>> numfmt.parse("e4m3fn") is numfmt.parse("float8_e4m3fn")
      True
      >>> str(numfmt.parse("float(e=5,m=7)"))
      'float(e=5,m=7)'
    """
    if isinstance(spec, _FAMILY_TYPES):
        return spec
    if isinstance(spec, (np.dtype, type)):
        found = _parse_dtype(spec)
        if found is not None:
            return found
    if not isinstance(spec, str):
        raise TypeError(f"a format must be a format object or a string (or a NumPy/ml_dtypes dtype), got {spec!r}")
    key = re.sub(r"\s+", "", spec).lower()
    key = _ALIASES.get(key, key)
    if key in _PRESETS:
        return _PRESETS[key]
    if key in _FAMILY_PRESETS:
        return _FAMILY_PRESETS[key]
    m = _P3109_RE.fullmatch(key)
    if m:
        return _p3109(int(m[1]), int(m[2]), m[3] == "s", m[4] == "e")
    m = _EXPLICIT_RE.fullmatch(key)
    if m:
        return _parse_explicit(spec, m[1])
    for family_parser in _FAMILY_PARSERS:
        found = family_parser(key)
        if found is not None:
            return found
    names = list(_PRESETS) + list(_ALIASES) + list(_FAMILY_PRESETS)
    close = difflib.get_close_matches(key, names, n=4, cutoff=0.6)
    hint = f" Closest names: {', '.join(close)}." if close else ""
    forms = "".join(f", {f}" for f in _FAMILY_FORMS)
    raise ValueError(
        f"unknown format {spec!r}.{hint} Valid forms: a preset name (see numfmt.presets()), "
        "'binary{K}p{P}{s|u}{e|f}' for IEEE P3109, 'float(e=E,m=M[,bias=B,specials=...,"
        f"subnormals=...,signed=...,overflow=...])'{forms}."
    )


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
