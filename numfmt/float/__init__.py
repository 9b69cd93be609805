"""The float family: ``FloatFormat`` (IEEE-like, OCP, P3109), its kernel and fast paths.

``format`` (the dataclass), ``kernel`` (the general rounding kernel on bit
patterns), ``fast``/``fast_sr`` (short sequences for the common cases),
``reference`` (the exact scalar oracle), ``grid`` (the indexed value grid).

May import: ``numfmt.core``. Private: only ``numfmt`` and ``numfmt.testing`` are public.
"""
