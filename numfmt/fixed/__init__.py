"""The fixed-point family: ``FixedFormat`` and integers (``format``), kernel, fast path, registration.

``reference`` holds the exact scalar references of posits and fixed point.

May import: ``numfmt.core`` and ``numfmt.float``. Private: only ``numfmt`` and
``numfmt.testing`` are public.
"""
