"""Hypothesis strategy of formats: ``numfmt.testing.formats``.

Families plug in through :func:`register_formats` (a name and a strategy
builder); the float family is defined here. Formats shrink toward few bits,
the default variants and the default bias.
"""

from __future__ import annotations

import numpy as np
from hypothesis import reject
from hypothesis import strategies as st

from numfmt.core.rounding import Overflow, _parse_enum
from numfmt.core.xp import FLOAT_LAYOUTS
from numfmt.float import grid as _grid
from numfmt.float.format import _MAX_ABS_BIAS, _MAX_EXP_BITS, _MAX_MAN_BITS, FloatFormat, Specials, Subnormals

__all__ = ["formats", "register_formats"]

# family name -> builder(min_bits, max_bits, exact_in, **options) -> strategy of formats.
# A new family adds one entry (see register_formats); "family=None" draws from all.
_FAMILIES: dict = {}
_UNSIGNED_OK = (Specials.FN, Specials.P3109, Specials.P3109_FINITE)
_NO_ZERO_OK = (Specials.FN, Specials.IEEE)


def register_formats(family: str, builder) -> None:
    """Make ``formats(family=...)`` draw formats of a new family (internal hook).

    ``builder(min_bits, max_bits, exact_in, **options)`` returns a strategy
    and raises ValueError for options it does not know.
    """
    _FAMILIES[family] = builder


def _members(enum_cls, allowed, argname):
    if allowed is None:
        return list(enum_cls)
    names = [allowed] if isinstance(allowed, (str, enum_cls)) else list(allowed)
    out = [_parse_enum(enum_cls, a, argname, {}) for a in names]
    if not out:
        raise ValueError(f"{argname}= is empty; give at least one of {', '.join(m.value for m in enum_cls)}")
    return [m for m in enum_cls if m in out]  # the enum's order: defaults first, for shrinking


def _bounds(value, lo, hi, argname):
    if value is None:
        return lo, hi
    a, b = (value, value) if isinstance(value, int) else value
    if not lo <= a <= b <= hi:
        raise ValueError(f"{argname}={value!r} must be an int or a (min, max) pair within {lo}..{hi}")
    return a, b


def _bias_range(fmt: FloatFormat, dtype) -> tuple[int, int]:
    """Biases for which the format's values all lie in ``dtype`` (empty: lo > hi)."""
    if dtype is None:
        return fmt.bias - 2**fmt.exp_bits, fmt.bias + 2**fmt.exp_bits
    d = _grid.dtype_format(dtype)
    lowest = fmt.emin if fmt.subnormals is Subnormals.NO_ZERO else fmt.emin - fmt.man_bits
    # raising the bias by k scales every value by 2**-k
    return fmt.bias + fmt.emax - d.emax, fmt.bias + lowest - (d.emin - d.man_bits)


def _float_formats(min_bits, max_bits, exact_in, *, exp_bits=None, man_bits=None, specials=None,
                   subnormals=None, signed=None, overflow=None, vary_bias=True):  # fmt: skip
    specials = _members(Specials, specials, "specials")
    subnormals = _members(Subnormals, subnormals, "subnormals")
    overflows = _members(Overflow, overflow, "overflow")
    signs = [True, False] if signed is None else [bool(signed)]
    if signs == [False] and not set(specials) & set(_UNSIGNED_OK):
        raise ValueError("signed=False needs specials 'fn', 'p3109' or 'p3109_finite' among the allowed specials")
    e_lo, e_hi = _bounds(exp_bits, 1, _MAX_EXP_BITS, "exp_bits")
    m_lo, m_hi = _bounds(man_bits, 0, _MAX_MAN_BITS, "man_bits")
    if exact_in is not None:
        d = _grid.dtype_format(exact_in)
        e_hi, m_hi = min(e_hi, d.exp_bits), min(m_hi, d.man_bits)

    @st.composite
    def build(draw):
        sp = draw(st.sampled_from(specials))
        sg = draw(st.sampled_from([s for s in signs if s or sp in _UNSIGNED_OK] or [None]))
        sub = draw(st.sampled_from([s for s in subnormals if s is not Subnormals.NO_ZERO or sp in _NO_ZERO_OK]))
        if sg is None:
            reject()
        lo_e = max(e_lo, 2 if sp is Specials.IEEE else 1)
        lo_m = max(m_lo, 1 if sp is Specials.IEEE else 0)
        hi_e = min(e_hi, max_bits - int(sg) - lo_m)
        if lo_e > hi_e:
            reject()
        e = draw(st.integers(lo_e, hi_e))
        lo_m, hi_m = max(lo_m, min_bits - int(sg) - e), min(m_hi, max_bits - int(sg) - e)
        if lo_m > hi_m:
            reject()
        m = draw(st.integers(lo_m, hi_m))
        try:
            fmt = FloatFormat(e, m, specials=sp, subnormals=sub, signed=sg, overflow=draw(st.sampled_from(overflows)))
        except ValueError:  # special codes take every code: no positive value
            reject()
        b_lo, b_hi = _bias_range(fmt, exact_in)
        b_lo, b_hi = max(b_lo, -_MAX_ABS_BIAS), min(b_hi, _MAX_ABS_BIAS)
        if b_lo > b_hi:
            reject()
        default_ok = b_lo <= fmt.bias <= b_hi
        if not vary_bias:
            if not default_ok:
                reject()
            return fmt
        biases = st.integers(b_lo, b_hi)
        bias = draw(st.none() | biases if default_ok else biases)
        return fmt if bias is None else fmt.replace(bias=bias)

    return build()


register_formats("float", _float_formats)


def formats(family="float", *, min_bits: int = 1, max_bits: int = 16, exact_in=np.float64, **options):
    """Strategy for valid formats, shrinking to few bits and default variants.

    Args:
      family: a family name (``"float"``, the default; ``"posit"``,
        ``"fixed"``, ``"block"``, ``"scaled"``), a list of names, or None for every family
        that has all the given ``options`` (no options: every family).
      min_bits, max_bits: bounds on the width of a code (block formats: of
        an element).
      exact_in: a float dtype that must hold every value of the format exactly
        (so ``values(fmt, dtype=exact_in)`` and ``chop`` of ``exact_in``
        arrays never fail), or None for no such limit.
      **options: family options. For ``"float"``: ``exp_bits`` and
        ``man_bits`` (an int or a ``(min, max)`` pair), ``specials``,
        ``subnormals`` and ``overflow`` (a name, member or list of them: only
        those variants), ``signed`` (True, False or None for both) and
        ``vary_bias`` (False: default bias only). For ``"posit"``: ``es``
        (an int or pair within 0..4; default 0..4). For ``"fixed"``:
        ``frac_bits`` (an int or pair within -8..72), ``signed`` and
        ``overflow`` (``"saturate"``/``"wrap"`` or a list). For ``"block"``:
        ``kind`` (``"mx"``, ``"nvfp4"``, ``"nf4"`` or a list; default all),
        ``block_size`` (an int; default 1..32), ``axis`` (default -1 or 0),
        and for ``"mx"`` only ``rule`` and ``inf`` (giving either leaves the
        other kinds out). ``"mx"``: power-of-two scales, elements e2m1,
        e2m3, e3m2, e4m3, e5m2 and integers of 2..8 bits (two's complement
        or sign-magnitude); drawn for ``exact_in`` float64 or None.
        ``"nvfp4"``: float32 tensor scale, scale e4m3fn or e5m2, elements
        e2m1, e2m3, e3m2, e4m3, e5m2; ``"nf4"``: the NF4 table or a random
        dyadic table holding -1 and 1; both drawn for ``exact_in`` float32,
        float16, bfloat16 or None (they take no float64 input).
        ``"scaled"`` (:class:`numfmt.ScaledIntFormat`): ``granularity``
        (``"tensor"``, ``"channel"``, ``"group"`` or a list), ``symmetric``,
        ``signed``, ``scale`` (a float format name or a list; default
        float32, bfloat16, float16, e4m3fn, e5m2, e8m0) and ``group_size``;
        bits 2..16 (at most the precision of ``exact_in``), shrinking to
        ``int8_per_tensor``. Posits shrink to ``es=0``, fixed point to signed, saturating
        integers, blocks to ``mx(elem=e2m1,block=1)``.

    Returns:
      A hypothesis strategy of format objects.

    Raises:
      ValueError: for an unknown family, bad bounds, options no (named)
        family has, or bounds no format of the families meets.

    Examples:
      >>> from hypothesis import find
      >>> str(find(formats(), lambda f: True))
      'float(e=2,m=1)'
      >>> str(find(formats(specials="fn", max_bits=8), lambda f: f.man_bits >= 3))
      'float(e=1,m=3,specials=fn)'
      >>> str(find(formats("posit"), lambda f: f.n >= 8)), str(find(formats("fixed"), lambda f: f.bits >= 8))
      ('posit8_0', 'q7.0')
    """
    if not (isinstance(min_bits, int) and isinstance(max_bits, int) and 1 <= min_bits <= max_bits):
        raise ValueError(f"need integers 1 <= min_bits <= max_bits, got min_bits={min_bits!r}, max_bits={max_bits!r}")
    if exact_in is not None and np.dtype(exact_in) not in FLOAT_LAYOUTS:
        raise ValueError(f"exact_in={exact_in!r} must be None or float16, bfloat16, float32 or float64")
    names = list(_FAMILIES) if family is None else [family] if isinstance(family, str) else list(family)
    for name in names:
        if name not in _FAMILIES:
            raise ValueError(f"unknown format family {name!r}. Available: {', '.join(_FAMILIES)}")
    strategies, refused = [], []
    for name in names:
        try:
            strategies.append(_FAMILIES[name](min_bits, max_bits, exact_in, **options))
        except TypeError as err:  # an option this family does not have
            refused.append(f"{name}: {err}")
    if family is not None and refused:
        detail = "; ".join(refused)
        raise ValueError(f"formats(family={family!r}): {detail}; see the formats() docstring for the options")
    if not strategies:
        raise ValueError(
            f"options {sorted(options)} are not options of any one family ({'; '.join(refused)}); "
            "see the formats() docstring for each family's options"
        )
    strategy = st.one_of(strategies)
    if strategy.is_empty:
        raise ValueError(
            f"no {' or '.join(names)} format of {min_bits}..{max_bits} bits has all its values exact in "
            f"exact_in={np.dtype(exact_in).name}; widen the bounds or pass exact_in=np.float64 or None"
        )
    return strategy
