"""Registers the posit and fixed-point families with chop, encode and decode."""

from numfmt._chop import register_elementwise
from numfmt._codes import register_codec
from numfmt._posit import PositFormat
from numfmt._posit_kernel import decode_posit, encode_posit, make_posit_plan

__all__ = ["PositFormat"]

register_elementwise(PositFormat, make_posit_plan)
register_codec(PositFormat, encode_posit, decode_posit)
