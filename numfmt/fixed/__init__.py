"""The fixed-point family: ``FixedFormat`` and integers (``format``), kernel, fast path, exact reference, registration.

May import: ``numfmt.core`` and ``numfmt.float``. Private: only ``numfmt`` and
``numfmt.testing`` are public.
"""
