"""``numfmt.emulate``: the jaxpr interpreter, its policies, rounding sites, control flow, accumulators.

``emulate`` (the interpreter), ``arguments`` (pytree leaves, backward-pass
checks), ``policy``, ``scopes`` (per-scope rules of a policy, ``explain``),
``sites`` (rounding sites, seeds), ``control`` (nested
jaxprs), ``sums`` (sums rounded once in every mode, signed zeros),
``accumulate``/``conv_accum`` (``accum=``), ``contraction`` (block and scaled
``matmul_in``), ``windows`` (pooling, scatters and their gradients).

May import: ``numfmt.core`` and the families. Importing this package or
``policy`` imports no JAX; ``emulate`` does. Private: only ``numfmt`` and
``numfmt.testing`` are public.
"""
