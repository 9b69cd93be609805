"""The fixed-point family: ``FixedFormat`` and integers (``format``), kernel, fast path, exact reference, registration.

``native`` is the compiled kernel ``_ckernel`` (built from ``_ckernel.c``, which
shares ``numfmt/core/_rounding.h`` with the float family's), with its NumPy fallback.

May import: ``numfmt.core`` and ``numfmt.float``. Private: only ``numfmt`` and
``numfmt.testing`` are public.
"""
