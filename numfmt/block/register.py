"""Registers block formats with the core: their string forms, the block driver and codes, then NF4 and NVFP4."""

# isort: off
from numfmt.block import names as _names  # noqa: F401 - the string forms and presets with parse
from numfmt.block import chop as _chop  # noqa: F401 - BlockFormat with numfmt.chop
from numfmt.block import codes as _codes  # noqa: F401 - BlockFormat and IntElement with encode/decode
from numfmt.block import nf4 as _nf4  # noqa: F401 - table elements (tried first: their scale is no power of two)
from numfmt.block import nvfp4_driver as _nvfp4  # noqa: F401 - non-power-of-two scales
# isort: on
