"""``numfmt.emulate``: the jaxpr interpreter, its policies, rounding sites and control flow.

May import: ``numfmt.core`` and the families. Importing this package imports
no JAX (``policy`` is JAX-free); ``emulate`` does. Private: only ``numfmt``
and ``numfmt.testing`` are public.
"""
