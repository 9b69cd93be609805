"""The fixed-point family: ``FixedFormat`` and integers, kernel, fast path, exact reference.

May import: ``numfmt.core`` and ``numfmt.float``. Private: only ``numfmt`` and
``numfmt.testing`` are public.
"""
