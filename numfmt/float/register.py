"""Registers the float family with the core: planner, fast paths, codes and grammar."""

from numfmt.core.chop import register_elementwise, register_fast_path, register_lane
from numfmt.core.codes import register_codec
from numfmt.core.elementwise import register_native
from numfmt.float import names as _names  # noqa: F401 - registers the float presets and string forms
from numfmt.float.codes import decode_float, encode_float
from numfmt.float.fast import complete_round_bits, fast_plan, fast_round_bits
from numfmt.float.format import FloatFormat
from numfmt.float.kernel import make_plan
from numfmt.float.native import lane, run

register_elementwise(FloatFormat, make_plan)
register_fast_path(fast_plan, fast_round_bits, complete_round_bits)
register_codec(FloatFormat, encode_float, decode_float)
register_native(run)
register_lane(lane)
