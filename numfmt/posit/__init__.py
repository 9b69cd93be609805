"""The posit family: ``PositFormat`` (``format``), its kernel, fast path, exact reference and registration.

``native`` is the compiled kernel ``_ckernel`` (built from ``_ckernel.c``, which
shares ``numfmt/core/_rounding.h`` and ``numfmt/core/_call.h``), with its NumPy fallback.

May import: ``numfmt.core`` and ``numfmt.float``. Private: only ``numfmt`` and
``numfmt.testing`` are public.
"""
