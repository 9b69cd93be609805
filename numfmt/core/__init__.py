"""The core: what every format family stands on; it knows no family.

Rounding modes and overflow policies (``rounding``), the array namespace over
NumPy and JAX (``xp``), random bits for stochastic rounding (``random``), the
elementwise driver and its registries of planners, choppers and fast paths
(``chop``), the encode/decode driver (``codes``), the format grammar
registry (``names``: ``parse``, ``presets``) and each mode's exact decision
on integers (``decide``, for the scalar references).

May import: nothing of numfmt outside ``numfmt.core``; families register with
it. Private: only ``numfmt`` and ``numfmt.testing`` are public.
"""
