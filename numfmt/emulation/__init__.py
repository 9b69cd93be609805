"""``numfmt.emulate``: the jaxpr interpreter, its policies, rounding sites, control flow, accumulators.

May import: ``numfmt.core`` and the families. Importing this package or
``policy`` imports no JAX; ``emulate`` does. Private: only ``numfmt`` and
``numfmt.testing`` are public.
"""
