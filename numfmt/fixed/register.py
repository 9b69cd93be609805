"""Registers the fixed-point family with chop, encode and decode (after the float family)."""

from numfmt.core.chop import register_elementwise, register_fast_path, register_lane
from numfmt.core.codes import register_codec
from numfmt.core.elementwise import register_native
from numfmt.fixed.fast import fixed_fast_plan, fixed_fast_round_bits
from numfmt.fixed.format import FixedFormat
from numfmt.fixed.kernel import decode_fixed, encode_fixed, make_fixed_plan
from numfmt.fixed.native import lane, run

register_elementwise(FixedFormat, make_fixed_plan)
register_fast_path(fixed_fast_plan, fixed_fast_round_bits)
register_codec(FixedFormat, encode_fixed, decode_fixed)
register_native(run)
register_lane(lane)
