"""Registers the posit and fixed-point families with chop, encode and decode."""

from numfmt.core.chop import register_elementwise
from numfmt.core.codes import register_codec
from numfmt.fixed.format import FixedFormat, FixedOverflow
from numfmt.fixed.kernel import decode_fixed, encode_fixed, make_fixed_plan
from numfmt.posit.format import PositFormat
from numfmt.posit.kernel import decode_posit, encode_posit, make_posit_plan

__all__ = ["FixedFormat", "FixedOverflow", "PositFormat"]

register_elementwise(PositFormat, make_posit_plan)
register_codec(PositFormat, encode_posit, decode_posit)
register_elementwise(FixedFormat, make_fixed_plan)
register_codec(FixedFormat, encode_fixed, decode_fixed)
