"""Block formats: ``BlockFormat`` (MX, BFP), NVFP4, NF4 tables, integer elements.

``format`` (the dataclass, ``mx``, ``bfp``, presets), ``names`` (string forms),
``table``/``int_element`` (element types),
``chop`` (the power-of-two block driver and its variant registry), ``chunks``
(the NumPy driver: input read chunk by chunk, bounded memory), ``runner``
(jitted JAX functions), ``codes`` (encode, decode, nibble
packing), ``direct`` (power-of-two scales in one step), ``scale_bits``,
``nf4`` (table kernels), ``nvfp4``/``nvfp4_driver`` (non-power-of-two
scales), ``reference`` (the exact block oracle), ``register``.

May import: ``numfmt.core`` and ``numfmt.float``. Private: only ``numfmt``
and ``numfmt.testing`` are public.
"""
