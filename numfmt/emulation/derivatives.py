"""Derivatives of emulated functions: their arithmetic is emulated too.

An emulated function carries its own derivative rule, so that
``jax.grad(emulate(f))``, ``jax.value_and_grad``, ``jax.vjp``, ``jax.jvp`` and
``jax.linearize`` (``jacfwd``, ``jacrev``; under ``jit`` or not) compute the
derivative as the emulated hardware would, under the policy's derivative
arithmetic (``grad=``, ``bwd.`` items; :meth:`Policy.backward
<numfmt.Policy.backward>`).

The rule is a ``jax.custom_jvp``: it evaluates the known part of
``jax.linearize(f)`` (outputs and residuals, forward policy) and binds the
linear rest as one primitive (:mod:`numfmt.emulation.linear`) whose two
directions are both emulated: JAX evaluates it forward for ``jvp`` and
``linearize``, and transposes it, into the emulated pullback, for ``grad``
and ``vjp``. So the derivative is emulated whichever transformation reaches
the call, also one applied outside a ``jit`` that the call was traced in.

Only the arguments JAX perturbs are differentiated (symbolic zeros), as
``jax.grad(f, argnums)`` would. A derivative of a derivative
(``jax.hessian``, ``grad`` of ``grad``, ``jacfwd(jacrev)``) is refused: its
inner rule would not be emulated; emulate the whole derivative instead,
``emulate(jax.hessian(f), policy)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from numfmt.emulation.linear import NESTED, LinearMap, apply
from numfmt.emulation.program import aval_key

__all__ = ["call"]

_DIFFERENTIATING = ("JVPTracer", "LinearizeTracer")


def _differentiations(leaves) -> list[str]:
    """The differentiating tracer kinds around ``leaves``, outermost first (looking through vmap and jit tracers)."""
    found: list[str] = []
    for leaf in leaves:
        kinds = []
        while isinstance(leaf, jax.core.Tracer):
            name = type(leaf).__name__
            if name in _DIFFERENTIATING:
                kinds.append(name)
            leaf = getattr(leaf, "primal", getattr(leaf, "val", None))
        if len(kinds) > len(found):
            found = kinds
    return found


def call(program, sig, key, flat):
    """The emulated function's array outputs for the flat array arguments ``flat``, differentiable."""
    if len(_differentiations([key, *flat])) > 1:
        raise ValueError(NESTED)

    @jax.custom_jvp
    def emulated(key, flat):
        return _x64(program.primal, sig, key, *flat)

    def rule(primals, tangents):
        key, values = primals
        wrt = tuple(not isinstance(t, SymbolicZero) and _is_float(v) for v, t in zip(values, tangents[1], strict=True))
        outs, residuals = _x64(program.forward, sig, wrt, key, *values)
        seeds = [t for t, w in zip(tangents[1], wrt, strict=True) if w]
        if not seeds:
            return outs, [_zero_tangent(o) for o in outs]
        fixed = list(residuals) if key is None else [key, *residuals]
        lin = LinearMap(program, sig, wrt, aval_key(values), key is not None, len(fixed))
        pushed = iter(apply(lin, fixed, seeds))
        return outs, [next(pushed) if _is_float(o) else _zero_tangent(o) for o in outs]

    emulated.defjvp(rule, symbolic_zeros=True)
    return emulated(key, list(flat))


def _x64(fn, *args):
    with jax.enable_x64(True):
        return fn(*args)


def _is_float(x) -> bool:
    return jnp.issubdtype(x.dtype, jnp.floating)


def _zero_tangent(out):
    """The zero tangent of an output: zeros, or float0 zeros for an integer output."""
    if _is_float(out):
        return jnp.zeros_like(out)
    return np.zeros(np.shape(out), jax.dtypes.float0)
