"""Hypothesis strategies of block formats and their values: the block plug-in of ``numfmt.testing``.

Power-of-two scales (MX, block floating point) here; NVFP4- and NF4-style
formats in :mod:`numfmt.testing.block_scaled`. Representable arrays are fixed
points of :func:`numfmt.testing.block.reference_chop`.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numfmt.block.format import BlockFormat, InfPolicy, ScaleRule
from numfmt.block.int_element import IntElement
from numfmt.core.names import parse
from numfmt.testing.block import _SCALED_DTYPES, check_block_format, is_scaled, reference_chop
from numfmt.testing.block_scaled import scaled_formats, scaled_values
from numfmt.testing.float_values import float_values as values
from numfmt.testing.format_strategies import _members, register_formats

__all__ = ["block_values"]

_FLOAT_ELEMS = ["float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn", "float8_e4m3fn", "float8_e5m2"]

_KINDS = ("mx", "nvfp4", "nf4")


def _block_formats(min_bits, max_bits, exact_in, *, kind=None, block_size=None, rule=None, inf=None, axis=None):
    kinds = list(_KINDS) if kind is None else [kind] if isinstance(kind, str) else list(kind)
    if not kinds or any(k not in _KINDS for k in kinds):
        raise ValueError(f"kind={kind!r} must be one of {', '.join(_KINDS)} or a list of them")
    out = []
    if rule is None and inf is None and (exact_in is None or np.dtype(exact_in) in _SCALED_DTYPES):
        out.append(scaled_formats(min_bits, max_bits, kinds, block_size, axis))
    if "mx" in kinds and (exact_in is None or np.dtype(exact_in) == np.float64):
        # E8M0 scales span 2**-127..2**127: only float64 holds every block
        out.insert(0, _mx_formats(min_bits, max_bits, block_size, rule, inf, axis))
    return st.one_of(out) if out else st.nothing()


def _mx_formats(min_bits, max_bits, block_size, rule, inf, axis):
    rules, infs = _members(ScaleRule, rule, "rule"), _members(InfPolicy, inf, "inf")
    sizes = st.integers(1, 32) if block_size is None else st.just(block_size)
    axes = st.sampled_from([-1, 0]) if axis is None else st.just(axis)
    floats = [parse(n) for n in _FLOAT_ELEMS if min_bits <= parse(n).bits <= max_bits]
    ints = st.integers(max(2, min_bits), min(8, max_bits))
    elems = st.sampled_from(floats) if floats else st.nothing()
    if max(2, min_bits) <= min(8, max_bits):
        elems = elems | st.builds(lambda b, sm: IntElement(b, b - 2, sm), ints, st.booleans())
    return st.builds(BlockFormat, elem=elems, block_size=sizes, axis=axes, rule=st.sampled_from(rules),
                     inf=st.sampled_from(infs))  # fmt: skip


register_formats("block", _block_formats)


def block_values(fmt: BlockFormat, dtype=np.float64, *, allow_nan=True, allow_infinity=True, shape=None):
    """Arrays that are fixed points of ``chop(., fmt)`` (see ``numfmt.testing.values``).

    Each block is drawn as element values times a power-of-two scale
    ``2**e`` (``e`` within the scale format's range), with the odd NaN or
    +-inf element if allowed; the array is then rounded once by
    :func:`reference_chop`, which keeps it where ``e`` is the scale the rule
    picks and moves it onto the format otherwise.
    """
    dtype = check_block_format(fmt, dtype, "values")
    if is_scaled(fmt):
        return scaled_values(fmt, dtype, allow_nan, allow_infinity, shape)
    elem, scale = fmt.elem, fmt.scale
    if shape is None:
        shape = hnp.array_shapes(min_dims=max(1, fmt.axis + 1, -fmt.axis), max_dims=2, min_side=1, max_side=24)
    elif isinstance(shape, int | tuple):
        shape = st.just(shape)
    if isinstance(elem, IntElement):
        step = elem.quantum
        elem_values = st.integers(elem.min_int, elem.max_int).map(lambda k: float(k * step))
    else:
        elem_values = values(elem, allow_nan=False, allow_infinity=False).map(float)
    specials = [math.nan] * allow_nan + [math.inf, -math.inf] * allow_infinity
    elem_values = elem_values | st.sampled_from(specials) if specials else elem_values
    exps = st.integers(max(scale.emin, -1000), min(scale.emax, 1000))

    @st.composite
    def build(draw):
        shp = draw(shape)
        x = np.array(draw(st.lists(elem_values, min_size=math.prod(shp), max_size=math.prod(shp))), np.float64)
        x = x.reshape(shp)
        y = np.moveaxis(x, fmt.axis, -1)
        blocks = -(-y.shape[-1] // fmt.block_size)
        e = np.array(draw(st.lists(exps, min_size=blocks, max_size=blocks)), np.float64)
        factor = np.repeat(np.exp2(e), fmt.block_size)[: y.shape[-1]]
        with np.errstate(over="ignore"):
            y = y * factor
        return reference_chop(np.moveaxis(y, -1, fmt.axis), fmt)

    return build()
