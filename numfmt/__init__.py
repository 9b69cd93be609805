"""numfmt: bit-accurate emulation of number formats on NumPy and JAX.

``import numfmt`` does not import JAX; JAX support is loaded when a JAX array
or key is first passed in (and ``numfmt.emulate`` imports JAX on first access).
"""

from numfmt._chop import chop
from numfmt._codes import decode, encode
from numfmt._float import FloatFormat, Specials, Subnormals
from numfmt._names import parse, presets
from numfmt._policy import Policy
from numfmt._rounding import Overflow, Rounding

__version__ = "0.1.0"

__all__ = [
    "FloatFormat",
    "Overflow",
    "Policy",
    "Rounding",
    "Specials",
    "Subnormals",
    "chop",
    "decode",
    "emulate",
    "encode",
    "parse",
    "presets",
]

# Presets as module attributes: numfmt.float8_e4m3fn, numfmt.bfloat16, ...
globals().update({_name: _fmt for _name, _fmt in presets().items() if not _name.startswith("binary")})
__all__ += sorted(_n for _n in presets() if not _n.startswith("binary"))


def __getattr__(name):
    # numfmt.emulate needs JAX; import it on first access only.
    if name == "emulate":
        from numfmt._emulate import emulate

        return emulate
    raise AttributeError(f"module 'numfmt' has no attribute {name!r}")
