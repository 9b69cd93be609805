"""Arguments and results of emulated functions: traced arrays and closed-over static leaves.

A pytree argument (an equinox module, a flax variable collection) may hold
leaves that are not arrays: functions, strings, Python numbers, other Python
objects. They are closed over as static values of the inner ``jit``, not
traced, as ``equinox.filter_jit`` treats them: a pooling layer's ``init=-inf``
or ``0`` stays a Python number, which ``lax.reduce_window`` needs to see.
Arrays (JAX, NumPy, NumPy scalars) are traced. Results are split the same
way, so a module returned whole keeps its functions. (A Python number that
changes from call to call retraces: pass ``jnp.asarray(value)`` for those.)
"""

from __future__ import annotations

import jax
import numpy as np


def _is_array(leaf) -> bool:
    """Whether a pytree leaf is traced: JAX and NumPy arrays and NumPy scalars (as ``equinox.is_array``)."""
    return isinstance(leaf, (jax.Array, np.ndarray, np.generic))


class _Static:
    """The non-array leaves of a pytree (functions, strings, None-like markers), closed over, not traced.

    A static argument of the inner ``jit``: equal when every leaf is the same
    object or equal and hashable, so repeated calls with the same module reuse
    the trace.
    """

    def __init__(self, leaves):
        self.leaves = tuple(leaves)  # None at the positions of array leaves

    def _key(self):
        out = []
        for leaf in self.leaves:
            try:
                hash(leaf)
                out.append((type(leaf), leaf))
            except TypeError:
                out.append((type(leaf), id(leaf)))
        return tuple(out)

    def __hash__(self):
        return hash(self._key())

    def __eq__(self, other):
        return (
            isinstance(other, _Static)
            and len(self.leaves) == len(other.leaves)
            and all(
                a is b or (type(a) is type(b) and ka == kb)
                for a, b, ka, kb in zip(self.leaves, other.leaves, self._key(), other._key(), strict=True)
            )
        )


def split(leaves):
    """``(static, arrays)``: the non-array leaves (None where an array is) and the array leaves."""
    arrays = [leaf for leaf in leaves if _is_array(leaf)]
    return _Static(None if _is_array(leaf) else leaf for leaf in leaves), arrays


def merge(static_leaves, arrays):
    """The leaves again: ``arrays`` in the positions the static leaves leave open."""
    it = iter(arrays)
    out = [next(it) if leaf is None else leaf for leaf in static_leaves]
    return out
