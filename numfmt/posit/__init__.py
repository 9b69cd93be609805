"""The posit family: ``PositFormat`` (``format``), its kernel, fast path, exact reference and registration.

May import: ``numfmt.core`` and ``numfmt.float``. Private: only ``numfmt`` and
``numfmt.testing`` are public.
"""
