"""The format grammar registry: ``parse`` and ``presets`` over the registered families.

Each family registers its format class, a parser for its string forms, its
named presets and aliases (``register_family``); each family's grammar is
documented beside its parser (floats: :mod:`numfmt.float.names`). Strings
match case-insensitively with spaces ignored; ``parse(str(fmt)) == fmt``.
"""

from __future__ import annotations

import difflib
import re

import numpy as np

__all__ = ["dtype_for", "named_dtype", "parse", "presets", "register_family", "register_hint"]

# Format families (floats, posits, fixed point, block formats) register here:
# their format class, a parser ``f(key) -> format | None`` for normalised
# (lower-case, space-free) strings, and their named presets. Floats register
# first (numfmt/__init__.py imports them first): their forms lead the messages.
_FAMILY_TYPES: tuple[type, ...] = ()
_FAMILY_PARSERS: list = []  # (parser, wants_spec): parser(key, spec) where wants_spec
_FAMILY_PRESETS: dict = {}
_FAMILY_FORMS: list[str] = []
_ALIASES: dict[str, str] = {}  # alias -> preset name
_DTYPE_PRESETS: list[str] = []  # presets that are NumPy or ml_dtypes dtypes (for error messages)
# family name -> its presets, in the order presets() lists them; others append as they register.
_BY_FAMILY: dict[str, dict] = {"float": {}, "posit": {}, "fixed": {}, "block": {}}
_HINTS: list = []  # hint(key) -> str: a family's advice on an unknown normalised name ("" for none)


def register_family(
    cls: type,
    parser,
    named: dict,
    forms: str,
    family: str | None = None,
    *,
    aliases: dict | None = None,
    dtypes: tuple = (),
    wants_spec: bool = False,
) -> None:
    """Make ``parse`` and ``presets`` know a format family (internal hook).

    ``forms`` describes the family's string forms for error messages, e.g.
    ``"'posit(n=N,es=E)'"``. ``family`` is the name ``presets(family)``
    selects the ``named`` presets by; a family without presets (an element
    type such as ``IntElement``) may leave it out. ``aliases`` maps more
    names to preset names, ``dtypes`` names the presets that are dtypes, and
    ``wants_spec`` passes the user's string to the parser too (for messages).
    """
    global _FAMILY_TYPES
    if named and family is None:
        raise ValueError(f"register_family({cls.__name__}): presets need a family name for numfmt.presets(family)")
    if cls not in _FAMILY_TYPES:
        _FAMILY_TYPES = (*_FAMILY_TYPES, cls)
        _FAMILY_PARSERS.append((parser, wants_spec))
        _FAMILY_FORMS.append(forms)
    _FAMILY_PRESETS.update(named)
    _ALIASES.update(aliases or {})
    _DTYPE_PRESETS.extend(d for d in dtypes if d not in _DTYPE_PRESETS)
    if family is not None:
        _BY_FAMILY.setdefault(family, {}).update(named)


def register_hint(hint) -> None:
    """Add ``hint(key) -> str`` to the advice ``parse`` gives for an unknown name (internal hook)."""
    _HINTS.append(hint)


def named_dtype(name: str):
    """The NumPy or ml_dtypes dtype called ``name``, or None where the installed versions lack it."""
    import ml_dtypes  # here, not at import: it costs most of ``import numfmt``

    found = getattr(ml_dtypes, name, None) or getattr(np, name, None)
    return None if found is None else np.dtype(found)


def dtype_for(fmt):
    """The dtype whose values and codes are those of ``fmt`` (overflow policy aside), or None."""
    for name in _DTYPE_PRESETS:
        preset = _FAMILY_PRESETS[name]
        if fmt.replace(overflow=preset.overflow) == preset:
            return named_dtype(name)
    return None


def _parse_dtype(spec):
    try:
        dtype = np.dtype(spec)
    except TypeError:
        return None
    name = dtype.name
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
    """Return the format named by ``spec`` (see each family's grammar, e.g. :mod:`numfmt.float.names`).

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
    if key in _FAMILY_PRESETS:
        return _FAMILY_PRESETS[key]
    for family_parser, wants_spec in _FAMILY_PARSERS:
        found = family_parser(key, spec) if wants_spec else family_parser(key)
        if found is not None:
            return found
    names = list(_ALIASES) + list(_FAMILY_PRESETS)
    close = difflib.get_close_matches(key, names, n=4, cutoff=0.6)
    hint = "".join(h(key) for h in _HINTS) + (f" Closest names: {', '.join(close)}." if close else "")
    forms = "".join(f", {f}" for f in _FAMILY_FORMS)
    raise ValueError(f"unknown format {spec!r}.{hint} Valid forms: a preset name (see numfmt.presets()){forms}.")
