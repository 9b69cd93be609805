"""Registers the posit family with chop, encode and decode (after the float family)."""

from numfmt.core.chop import register_elementwise, register_fast_path, register_lane
from numfmt.core.codes import register_codec
from numfmt.core.elementwise import register_native
from numfmt.posit.fast import posit_fast_plan, posit_fast_round_bits
from numfmt.posit.format import PositFormat
from numfmt.posit.kernel import decode_posit, encode_posit, make_posit_plan
from numfmt.posit.native import lane, run

register_elementwise(PositFormat, make_posit_plan)
register_fast_path(posit_fast_plan, posit_fast_round_bits)
register_codec(PositFormat, encode_posit, decode_posit)
register_native(run)
register_lane(lane)
