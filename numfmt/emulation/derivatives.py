"""Derivatives of emulated functions: their arithmetic is emulated too.

An emulated function carries its own derivative rules, so that
``jax.grad(emulate(f))``, ``jax.value_and_grad``, ``jax.vjp`` and ``jax.jvp``
(``jacfwd``, ``jacrev``) compute the derivative as the emulated hardware
would, under the policy's derivative arithmetic (``grad=``, ``bwd.`` items;
:meth:`Policy.backward <numfmt.Policy.backward>`):

- reverse mode, a ``jax.custom_vjp``: the forward rule evaluates the
  known part of ``jax.vjp(f)`` (outputs and residuals, forward policy); the
  backward rule evaluates the pullback of the cotangents (derivative policy).
  This is also the rule of a call that no differentiation is seen at (under
  ``jit``), since JAX may differentiate the traced result later.
- forward mode, when the call's arguments are ``jax.jvp`` tracers: a
  ``jax.custom_jvp`` whose rule evaluates the known part of
  ``jax.linearize(f)`` and then pushes the tangents forward (derivative policy).

Both rules differentiate only with respect to the arguments JAX perturbs
(symbolic zeros), as ``jax.grad(f, argnums)`` would. A derivative of a
derivative (``jax.hessian``, ``grad`` of ``grad``, ``jacfwd(jacrev)``) is
refused: its inner rule would not be emulated; emulate the whole derivative
instead, ``emulate(jax.hessian(f), policy)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from numfmt.emulation.program import aval_key

__all__ = ["call"]

_FORWARD = ("JVPTracer",)
_REVERSE = ("LinearizeTracer",)


def _differentiations(leaves) -> list[str]:
    """The differentiating tracer kinds around ``leaves``, outermost first (looking through vmap and jit tracers)."""
    found: list[str] = []
    for leaf in leaves:
        kinds = []
        while isinstance(leaf, jax.core.Tracer):
            name = type(leaf).__name__
            if name in _FORWARD or name in _REVERSE:
                kinds.append(name)
            leaf = getattr(leaf, "primal", getattr(leaf, "val", None))
        if len(kinds) > len(found):
            found = kinds
    return found


def call(program, sig, key, flat):
    """The emulated function's array outputs for the flat array arguments ``flat``, differentiable."""
    kinds = _differentiations([key, *flat])
    if len(kinds) > 1:
        raise ValueError(
            "a derivative of a derivative of an emulated function (jax.hessian, grad of grad, jacfwd of jacrev) "
            "is not emulated: the inner derivative's rule would be differentiated by JAX as plain arithmetic. "
            "Emulate the whole derivative instead: numfmt.emulate(jax.hessian(f), policy)"
        )
    if kinds and kinds[0] in _FORWARD:
        return _jvp_call(program, sig, key, flat)
    return _vjp_call(program, sig, key, flat)


def _x64(fn, *args):
    with jax.enable_x64(True):
        return fn(*args)


def _vjp_call(program, sig, key, flat):
    cell: dict = {}

    @jax.custom_vjp
    def emulated(key, flat):
        return _x64(program.primal, sig, key, *flat)

    def fwd(key, flat):
        key = None if key is None else key.value
        wrt = tuple(bool(p.perturbed) for p in flat)
        values = [p.value for p in flat]
        cell.update(wrt=wrt, avals=aval_key(values))
        outs, residuals = _x64(program.forward, sig, "vjp", wrt, key, *values)
        cell["out_avals"] = [jax.typeof(o) for o in outs]
        return outs, (key, residuals)

    def bwd(res, cts):
        key, residuals = res
        wrt, out_avals = cell["wrt"], cell["out_avals"]
        seeds = [_instantiate(ct, a) for ct, a in zip(cts, out_avals, strict=True) if _is_float(a)]
        grads = iter(_x64(program.derivative, sig, "vjp", wrt, cell["avals"], key, residuals, seeds))
        return None, [next(grads) if w else None for w in wrt]

    emulated.defvjp(fwd, bwd, symbolic_zeros=True)
    return emulated(key, list(flat))


def _jvp_call(program, sig, key, flat):
    @jax.custom_jvp
    def emulated(key, flat):
        return _x64(program.primal, sig, key, *flat)

    def rule(primals, tangents):
        key, values = primals
        wrt = tuple(not isinstance(t, SymbolicZero) and _is_float(v) for v, t in zip(values, tangents[1], strict=True))
        outs, residuals = _x64(program.forward, sig, "jvp", wrt, key, *values)
        seeds = [t for t, w in zip(tangents[1], wrt, strict=True) if w]
        if not seeds:
            return outs, [_zero_tangent(o) for o in outs]
        pushed = iter(_x64(program.derivative, sig, "jvp", wrt, aval_key(values), key, residuals, seeds))
        return outs, [next(pushed) if _is_float(o) else _zero_tangent(o) for o in outs]

    emulated.defjvp(rule, symbolic_zeros=True)
    return emulated(key, list(flat))


def _is_float(x) -> bool:
    return jnp.issubdtype(x.dtype, jnp.floating)


def _instantiate(ct, aval):
    """A cotangent as an array (a symbolic zero: zeros of the output's shape and dtype)."""
    if isinstance(ct, SymbolicZero):
        return jnp.zeros(aval.shape, aval.dtype)
    return ct


def _zero_tangent(out):
    """The zero tangent of an output: zeros, or float0 zeros for an integer output."""
    if _is_float(out):
        return jnp.zeros_like(out)
    return np.zeros(np.shape(out), jax.dtypes.float0)
