"""Registers the posit family with chop, encode and decode (after the float family)."""

from numfmt.core.chop import register_elementwise, register_fast_path
from numfmt.core.codes import register_codec
from numfmt.posit.fast import posit_fast_plan, posit_fast_round_bits
from numfmt.posit.format import PositFormat
from numfmt.posit.kernel import decode_posit, encode_posit, make_posit_plan

register_elementwise(PositFormat, make_posit_plan)
register_fast_path(posit_fast_plan, posit_fast_round_bits)
register_codec(PositFormat, encode_posit, decode_posit)
