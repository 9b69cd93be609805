"""The float family: ``FloatFormat`` (IEEE-like, OCP, P3109), the layer under the other families.

``format`` (the dataclass), ``names`` (presets, aliases, P3109 and explicit
forms), ``kernel`` (the general rounding kernel on bit patterns),
``fast``/``fast_sr`` (short sequences for the common cases), ``codes``
(encode/decode), ``native`` (the compiled kernel ``_ckernel``, built from
``_ckernel.c``, with its NumPy fallback), ``intbits`` (integer rounding on the kernel's decisions,
for posits and fixed point), ``reference``/``reference_codes`` (the exact
scalar oracle), ``grid`` (the indexed value grid), ``register`` (plugs it
into the core).

May import: ``numfmt.core``. Private: only ``numfmt`` and ``numfmt.testing`` are public.
"""
