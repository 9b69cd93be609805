"""numfmt: bit-accurate emulation of number formats on NumPy and JAX.

``import numfmt`` does not import JAX; JAX support is loaded when a JAX array
or key is first passed in (and ``numfmt.emulate`` imports JAX on first access).
"""

from typing import TYPE_CHECKING

# The families register with the core on import, in this order (it is the
# order parse's messages list their forms in and chop tries fast paths in).
# isort: off
from numfmt.float import register as _float_register  # noqa: F401
from numfmt.fixed import register as _fixed_register  # noqa: F401
from numfmt.posit import register as _posit_register  # noqa: F401
from numfmt.block import register as _block_register  # noqa: F401
from numfmt.scaled import chop as _scaled_chop  # noqa: F401 - registers scaled integer formats with chop/encode
# isort: on
from numfmt.block.codes import pack_nibbles, unpack_nibbles  # (also registers block codecs)
from numfmt.block.format import BlockFormat, InfPolicy, ScaleRule, bfp, mx
from numfmt.block.int_element import IntElement
from numfmt.core.chop import chop
from numfmt.core.codes import decode, encode
from numfmt.core.names import parse, presets
from numfmt.core.rounding import Overflow, Rounding
from numfmt.core.threads import get_num_threads, set_num_threads
from numfmt.emulation.policy import Policy
from numfmt.fixed.format import FixedFormat, FixedOverflow
from numfmt.float.format import FloatFormat, Specials, Subnormals
from numfmt.posit.format import PositFormat
from numfmt.scaled.format import ScaledIntFormat

if TYPE_CHECKING:  # for type checkers and the docs; at run time see __getattr__
    from numfmt.emulation.emulate import emulate

__version__ = "0.1.0"

__all__ = [
    "BlockFormat",
    "FixedFormat",
    "FixedOverflow",
    "FloatFormat",
    "InfPolicy",
    "IntElement",
    "PositFormat",
    "ScaleRule",
    "ScaledIntFormat",
    "bfp",
    "mx",
    "pack_nibbles",
    "unpack_nibbles",
    "Overflow",
    "Policy",
    "Rounding",
    "Specials",
    "Subnormals",
    "chop",
    "decode",
    "emulate",
    "encode",
    "get_num_threads",
    "parse",
    "presets",
    "set_num_threads",
]

# Presets of every family as module attributes: numfmt.float8_e4m3fn,
# numfmt.posit16_1, numfmt.int8, numfmt.mxfp4_e2m1, ... (not the P3109 names).
_ATTRIBUTES = {_name: _fmt for _name, _fmt in presets().items() if not _name.startswith("binary")}
globals().update(_ATTRIBUTES)
__all__ += sorted(_ATTRIBUTES)
del _ATTRIBUTES


def __getattr__(name):
    # numfmt.emulate needs JAX; import it on first access only.
    if name == "emulate":
        from numfmt.emulation.emulate import emulate

        return emulate
    raise AttributeError(f"module 'numfmt' has no attribute {name!r}")
