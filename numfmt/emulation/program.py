"""The programs of one emulated function: its primal, the forward part of its derivatives, and their rest.

For a call signature (:class:`Call`: the argument tree, its non-array
leaves, the user's x64 flag) a :class:`Program` traces the user's function
to a jaxpr and evaluates it with the interpreter, jitted:

- ``primal(call, key, *flat)``: the function itself.
- ``forward(call, wrt, key, *flat)``: the known part of ``jax.linearize``
  of the function with respect to the arguments flagged in ``wrt``: its
  outputs and the residuals its derivative needs, computed under the forward
  policy.
- ``derivative(call, direction, wrt, avals, key, residuals, seeds)``: the
  linear rest, the pushforward of input tangents (``direction="jvp"``) or its
  transpose, the pullback of output cotangents (``"vjp"``), computed under
  the policy's derivative arithmetic (:meth:`Policy.backward
  <numfmt.Policy.backward>`), with a random stream of its own.

JAX derives both parts from the same jaxpr as ``jax.grad(f)`` would, so the
equations evaluated are those of ``emulate(jax.grad(f))`` (there, the
transposed equations get the derivative policy). The interpreter runs with
x64 on (float64 work where a format needs it); every result is converted
back to the dtype the function gave it, so the user's x64 flag may stay off.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from numfmt.core import xp as _xp
from numfmt.core.random import derive_words, seed_words
from numfmt.emulation import scopes as _scopes
from numfmt.emulation import sites as _sites
from numfmt.emulation.arguments import merge, split
from numfmt.emulation.control import _as_aval

__all__ = ["BACKWARD_STREAM", "Call", "Program", "aval_key"]

# The derivative program's seed words are derive_words(seed_words(key), BACKWARD_STREAM): a stream
# apart from the forward program's draws (numbered 1, 2, ...).
BACKWARD_STREAM = 0xFFFFFFFF


class Call(NamedTuple):
    """A call signature of an emulated function (hashable: a static argument of the jitted programs)."""

    in_tree: object  # the treedef of (args, kwargs)
    static: object  # its non-array leaves (numfmt.emulation.arguments.split)
    user_x64: bool  # the user's jax_enable_x64 (the function is traced under it)


def aval_key(values) -> tuple:
    """Hashable shapes and dtypes of ``values`` (weak types included: they change the trace)."""
    return tuple(
        (tuple(v.shape), jnp.dtype(v.dtype).name, bool(getattr(jax.typeof(v), "weak_type", False))) for v in values
    )


def _is_float(value) -> bool:
    return _sites.is_float(jnp.result_type(value))


class Program:
    """The jitted programs of ``emulate(fn, policy)`` (see the module docstring)."""

    def __init__(self, fn, policy, interpreter):
        self.fn = fn
        self.policy = policy
        self.interpreter = interpreter  # interpreter(policy, user_x64, backward=...) has .run(closed, args, sites)
        self.out_trees: dict = {}  # Call -> (output treedef, its non-array leaves)
        self.lin_trees: dict = {}  # (Call, wrt, avals) -> (residual treedef, output avals)
        self.primal = jax.jit(self._primal, static_argnums=(0,))
        self.forward = jax.jit(self._forward, static_argnums=(0, 1))
        self.derivative = jax.jit(self._derivative, static_argnums=(0, 1, 2, 3))

    def outputs(self, call: Call, arrays):
        """The function's result from its array outputs."""
        out_tree, out_static = self.out_trees[call]
        return jax.tree.unflatten(out_tree, merge(out_static.leaves, arrays))

    def _flat_fn(self, call: Call):
        def flat_fn(*leaves):
            args, kwargs = jax.tree.unflatten(call.in_tree, merge(call.static.leaves, leaves))
            out_leaves, out_tree = jax.tree.flatten(self.fn(*args, **kwargs))
            out_static, out_arrays = split(out_leaves)
            self.out_trees[call] = out_tree, out_static
            return [jnp.asarray(v) for v in out_arrays]

        return flat_fn

    def _trace(self, call: Call, fn, *args):
        with jax.enable_x64(call.user_x64):  # fn sees the user's setting (default dtypes), not ours
            return jax.make_jaxpr(fn)(*args)

    def _interpret(self, call: Call, closed, args, sites, backward=False):
        with jax.enable_x64(True):
            interp = self.interpreter(self.policy, call.user_x64, backward=backward)
            outs = interp.run(closed, list(args), sites)
            return [_as_aval(v, a, f) for (v, f), a in zip(outs, closed.out_avals, strict=True)]

    def _primal(self, call: Call, key, *flat):
        closed = self._trace(call, self._flat_fn(call), *flat)
        _scopes.check_matched(self.policy, closed.jaxpr)
        return self._interpret(call, closed, flat, _sites.Sites(key))

    def _forward(self, call: Call, wrt: tuple, key, *flat):
        fn = self._flat_fn(call)
        lin_key = (call, wrt, aval_key(flat))

        def known_part(*leaves):
            def of_wrt(*diff):
                it = iter(diff)
                return fn(*[next(it) if w else leaf for leaf, w in zip(leaves, wrt, strict=True)])

            diff = [leaf for leaf, w in zip(leaves, wrt, strict=True) if w]
            out, rest = jax.linearize(of_wrt, *diff)
            residuals, tree = jax.tree.flatten(rest)
            self.lin_trees[lin_key] = tree, [jax.typeof(v) for v in out]
            return [*out, *residuals]

        closed = self._trace(call, known_part, *flat)
        _scopes.check_matched(self.policy, closed.jaxpr)
        outs = self._interpret(call, closed, flat, _sites.Sites(key))
        n_out = len(self.lin_trees[lin_key][1])
        return outs[:n_out], outs[n_out:]

    def _derivative(self, call: Call, direction: str, wrt: tuple, avals: tuple, key, residuals, seeds):
        """Push forward tangents (jvp: ``seeds`` per wrt input) or pull back cotangents (vjp: per float output).

        Returns the tangents of the float outputs (jvp) or the cotangents of the ``wrt`` inputs (vjp).
        """
        tree, out_avals = self.lin_trees[call, wrt, avals]
        floats = [_sites.is_float(a.dtype) for a in out_avals]
        diff = [
            jax.ShapeDtypeStruct(shape, dtype, weak_type=weak)
            for (shape, dtype, weak), w in zip(avals, wrt, strict=True)
            if w
        ]

        def rest(residuals, seeds):
            lin = jax.tree.unflatten(tree, residuals)

            def float_tangents(*tangents):  # of the float outputs (the others' are float0 zeros)
                return [t for t, fl in zip(lin(*tangents), floats, strict=True) if fl]

            if direction == "jvp":
                return float_tangents(*seeds)
            return list(jax.linear_transpose(float_tangents, *diff)(list(seeds)))

        closed = self._trace(call, rest, list(residuals), list(seeds))
        words = None if key is None else derive_words(_xp.jax_namespace(), seed_words(key), BACKWARD_STREAM)
        return self._interpret(call, closed, [*residuals, *seeds], _sites.Sites(words=words), backward=True)
