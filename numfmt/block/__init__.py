"""Block formats: ``BlockFormat`` (MX, BFP), NVFP4, NF4 tables, integer elements.

``format`` (the dataclass), ``chop`` (the block driver), ``codes`` (encode,
decode, nibble packing), ``direct`` (power-of-two scales), ``scale_bits``,
``nf4``, ``nvfp4``, ``int_element``, ``reference`` (the exact block oracle).

May import: ``numfmt.core`` and the element families. Private: only ``numfmt``
and ``numfmt.testing`` are public.
"""
