"""Hypothesis strategies for formats, their values and hard inputs.

Imported by :mod:`numfmt.testing` only: ``import numfmt`` never imports
hypothesis. Every strategy shrinks toward a small, readable example: formats
toward few bits and the default variants, values toward 0, bit patterns
toward 0, keys toward seed 0.
"""

from __future__ import annotations

import numpy as np
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numfmt import _grid
from numfmt._float import _MAX_ABS_BIAS, _MAX_EXP_BITS, _MAX_MAN_BITS, FloatFormat, Specials, Subnormals
from numfmt._names import parse
from numfmt._rounding import Overflow, _parse_enum
from numfmt._xp import FLOAT_LAYOUTS

__all__ = ["boundary_values", "float_bits", "formats", "keys", "register_formats", "values"]

# family name -> builder(min_bits, max_bits, exact_in, **options) -> strategy of formats.
# A new family adds one entry (see register_formats); "family=None" draws from all.
_FAMILIES: dict = {}
_PLANNED = ("posit", "fixed", "block")
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


def formats(family=None, *, min_bits: int = 1, max_bits: int = 16, exact_in=np.float64, **options):
    """Strategy for valid formats, shrinking to few bits and default variants.

    Args:
      family: a family name (``"float"``), a list of names, or None for every
        family this numfmt has. Posit, fixed-point and block families are
        drawn once they exist; naming one before raises ValueError.
      min_bits, max_bits: bounds on the width of a code.
      exact_in: a float dtype that must hold every value of the format exactly
        (so ``values(fmt, dtype=exact_in)`` and ``chop`` of ``exact_in``
        arrays never fail), or None for no such limit.
      **options: family options. For ``"float"``: ``exp_bits`` and
        ``man_bits`` (an int or a ``(min, max)`` pair), ``specials``,
        ``subnormals`` and ``overflow`` (a name, member or list of them: only
        those variants), ``signed`` (True, False or None for both) and
        ``vary_bias`` (False: default bias only).

    Returns:
      A hypothesis strategy of format objects.

    Raises:
      ValueError: for an unknown or not yet available family, bad bounds, or
        options the family does not have.

    Examples:
      >>> from hypothesis import find
      >>> str(find(formats(), lambda f: True))
      'float(e=2,m=1)'
      >>> str(find(formats(specials="fn", max_bits=8), lambda f: f.man_bits >= 3))
      'float(e=1,m=3,specials=fn)'
    """
    if not (isinstance(min_bits, int) and isinstance(max_bits, int) and 1 <= min_bits <= max_bits):
        raise ValueError(f"need integers 1 <= min_bits <= max_bits, got min_bits={min_bits!r}, max_bits={max_bits!r}")
    if exact_in is not None and np.dtype(exact_in) not in FLOAT_LAYOUTS:
        raise ValueError(f"exact_in={exact_in!r} must be None or float16, bfloat16, float32 or float64")
    names = list(_FAMILIES) if family is None else [family] if isinstance(family, str) else list(family)
    for name in names:
        if name not in _FAMILIES:
            later = f"; {name!r} formats are not available in this version of numfmt yet" if name in _PLANNED else ""
            raise ValueError(f"unknown format family {name!r}{later}. Available: {', '.join(_FAMILIES)}")
    if family is None and options and len(names) > 1:
        raise ValueError(f"options {sorted(options)} belong to one family: pass family=... with them")
    try:
        return st.one_of([_FAMILIES[n](min_bits, max_bits, exact_in, **options) for n in names])
    except TypeError as err:
        raise ValueError(f"formats(family={family!r}): {err}; see the formats() docstring for the options") from None


def _dtype_or_none(dtype):
    if dtype is None:
        return None
    if np.dtype(dtype) not in FLOAT_LAYOUTS:
        raise ValueError(f"dtype={dtype!r} must be float16, bfloat16, float32, float64 or None (exact)")
    return np.dtype(dtype)


def _check_fits(fmt, dtype):
    if not _grid.fits(fmt, dtype):
        raise ValueError(
            f"{fmt} has values {dtype.name} cannot hold exactly; pass dtype=np.float64 or a wider "
            "dtype, dtype=None for exact values, or draw formats with formats(exact_in=dtype)"
        )


def values(fmt, *, dtype=np.float64, allow_nan: bool = True, allow_infinity: bool = True):
    """Strategy for values rounding into ``fmt`` can produce (shrinks toward 0).

    Args:
      fmt: a format object or string.
      dtype: float dtype of the values (NumPy scalars), or None for exact
        values in the convention of ``numfmt._reference.round_value``
        (Fractions; floats for +-0, +-inf and NaN).
      allow_nan, allow_infinity: also draw NaN / +-inf where the format has them.

    Returns:
      A strategy of values: each a value of ``fmt``, -0.0 only where the
      format has -0, never a subnormal of a ``flush``/``round_to_normal``
      format.

    Raises:
      ValueError: if ``dtype`` cannot hold every value of ``fmt``.

    Examples:
      >>> from hypothesis import find
      >>> find(values("float8_e4m3fn"), lambda v: v > 400)
      np.float64(416.0)
    """
    fmt = parse(fmt)
    dtype = _dtype_or_none(dtype)
    if dtype is not None:
        _check_fits(fmt, dtype)
    signs = [1, -1] if fmt.signed else [1]
    kinds = ["finite"] + (["inf"] if allow_infinity and fmt.has_inf else [])
    kinds += ["nan"] if allow_nan and fmt.has_nan else []

    def value(args):
        kind, i, sign = args
        if kind == "nan":
            return np.nan
        if kind == "inf":
            return sign * np.inf
        v = _grid.magnitude(fmt, i)
        if v == 0:
            return -0.0 if sign < 0 and fmt.has_negative_zero else 0.0
        return sign * v

    # one tuple for every kind, so that shrinking prefers finite values (a
    # separate branch for the specials would be a shorter, "simpler" draw)
    strategy = st.tuples(st.sampled_from(kinds), st.integers(0, _grid.count(fmt) - 1), st.sampled_from(signs))
    strategy = strategy.map(value)
    if dtype is None:
        return strategy
    return strategy.map(lambda v: _grid.to_dtype([v], dtype)[0])


def boundary_values(fmt, *, dtype=np.float64):
    """Strategy for inputs where rounding into ``fmt`` is hardest.

    Draws, with either sign: the midpoint (tie) between two neighbouring
    values of the format, or the lower value itself, or one of the
    ``landmarks`` (half the smallest subnormal, the smallest subnormal, half
    the smallest normal, the smallest normal, 1, the max, the overflow
    threshold and the value after it), each exactly or one ``dtype`` ulp
    below or above; and +-0, +-inf and NaN (inputs every quantizer must
    handle, whether or not the format has them). Midpoints the dtype cannot
    hold are rounded to the nearest dtype value; points beyond its range are
    +-inf.

    Args:
      fmt: a format object or string.
      dtype: the float dtype of the drawn inputs (NumPy scalars).

    Returns:
      A strategy of ``dtype`` scalars. It shrinks toward the first gap's
      midpoint (half the smallest positive value).

    Examples:
      >>> from hypothesis import find
      >>> find(boundary_values("float8_e4m3fn"), lambda v: 450 < v < 500)
      np.float64(464.0)
    """
    fmt = parse(fmt)
    dtype = np.dtype(_dtype_or_none(dtype) or np.float64)
    n = _grid.count(fmt)
    marks = _grid.landmarks(fmt)
    with np.errstate(over="ignore"):
        mark_x = _grid.to_dtype(marks, dtype)
    inf = np.array(np.inf, dtype)

    kinds = (["midpoint", "value"] if n >= 2 else []) + ["landmark", *_SPECIAL_INPUTS]

    @st.composite
    def point(draw):
        # every kind draws the same four choices, so shrinking orders by kind first
        kind = draw(st.sampled_from(kinds))
        index = draw(st.integers(0, n - 2) if kind in ("midpoint", "value") else st.integers(0, len(marks) - 1))
        nudge, sign = draw(st.sampled_from([0, -1, 1])), draw(st.sampled_from([1, -1]))
        if kind in _SPECIAL_INPUTS:
            return dtype.type(sign * _SPECIAL_INPUTS[kind])
        if kind == "landmark":
            x = mark_x[index]
        else:
            lo, hi = _grid.magnitude(fmt, index), _grid.magnitude(fmt, index + 1)
            with np.errstate(over="ignore"):
                x = _grid.to_dtype([(lo + hi) / 2 if kind == "midpoint" else lo], dtype)[0]
        if nudge:
            x = np.nextafter(x, nudge * inf)
        return dtype.type(-x if sign < 0 else x)

    return point()


_SPECIAL_INPUTS = {"zero": 0.0, "inf": np.inf, "nan": np.nan}


def float_bits(dtype, shape=None):
    """Strategy for raw bit patterns viewed as a float dtype.

    Every pattern is equally reachable: subnormals, NaN payloads, infinities
    and -0 included. Patterns shrink toward 0 (``+0.0``).

    Args:
      dtype: float16, bfloat16, float32 or float64.
      shape: None for scalars; else an array shape (int or tuple) or a
        strategy of shapes, e.g. ``st.integers(1, 24)``.

    Returns:
      A strategy of NumPy scalars or arrays of ``dtype``.

    Raises:
      ValueError: for another dtype.

    Examples:
      >>> import numpy as np
      >>> from hypothesis import find
      >>> hex(int(find(float_bits(np.float32), np.isnan).view(np.uint32)))
      '0x7f800001'
    """
    if np.dtype(dtype) not in FLOAT_LAYOUTS:
        raise ValueError(f"dtype={dtype!r} must be float16, bfloat16, float32 or float64")
    dtype = np.dtype(dtype)
    uint = np.dtype(f"uint{dtype.itemsize * 8}")
    words = st.integers(0, 2 ** (uint.itemsize * 8) - 1)
    if shape is None:
        return words.map(lambda u: np.array(u, uint).view(dtype)[()])
    return hnp.arrays(uint, shape, elements=words).map(lambda a: a.view(dtype))


def keys(kind: str = "seed"):
    """Strategy for the ``key=`` of stochastic rounding (shrinks toward seed 0).

    Args:
      kind: ``"seed"`` (an int seed), ``"numpy"`` (a fresh
        ``numpy.random.Generator``) or ``"jax"`` (a ``jax.random.key``; JAX
        is imported when the first key is drawn).

    Returns:
      A strategy of keys that :func:`numfmt.chop` accepts.

    Raises:
      ValueError: for another ``kind``.

    Examples:
      >>> from hypothesis import find
      >>> find(keys(), lambda k: k > 3)
      4
    """
    seeds = st.integers(0, 2**32 - 1)
    if kind == "seed":
        return seeds
    if kind == "numpy":
        return seeds.map(np.random.default_rng)
    if kind == "jax":
        return seeds.map(_jax_key)
    raise ValueError(f"kind={kind!r} must be 'seed', 'numpy' or 'jax'")


def _jax_key(seed: int):
    import jax

    return jax.random.key(seed)
