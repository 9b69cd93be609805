"""The linear part of an emulated function's derivative: a JAX primitive with its own transpose.

``jax.linearize`` of a function splits it into a known part (outputs and
residuals) and a linear map of the input tangents. For an emulated function
that linear map is itself emulated arithmetic (rounding is not linear), so JAX
cannot transpose it from its equations: the primitive here carries both
directions, each evaluated by the emulated program:

- forward (``transposed=False``): input tangents -> output tangents, the
  pushforward (``jax.jvp``, ``jax.linearize``);
- transposed: output cotangents -> input cotangents, the pullback
  (``jax.grad``, ``jax.vjp``: JAX transposes the primitive into it).

Its operands are the key (where the policy has one), the residuals (not
linear) and the linear operands; a :class:`LinearMap` parameter names the
program, the direction, and the ``vmap`` levels applied to it (each maps the
non-linear operands at their batch axes and the linear ones at axis 0). A
derivative of this primitive with respect to its residuals (a second
derivative) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

__all__ = ["LinearMap", "NESTED", "apply"]

NESTED = (
    "a derivative of a derivative of an emulated function (jax.hessian, grad of grad, jacfwd of jacrev) "
    "is not emulated: the inner derivative's rule would be differentiated by JAX as plain arithmetic. "
    "Emulate the whole derivative instead: numfmt.emulate(jax.hessian(f), policy)"
)


@dataclass(frozen=True)
class LinearMap:
    """The linear part of one derivative (hashable: a primitive parameter).

    Attributes:
        program: the :class:`~numfmt.emulation.program.Program`.
        call: the call signature (:class:`~numfmt.emulation.program.Call`).
        wrt: which flat arguments are differentiated.
        avals: the flat arguments' shapes and dtypes (``aval_key``).
        keyed: whether the first operand is the policy's key (else there is none).
        n_fixed: the number of operands that are not linear (key and residuals).
        transposed: False for the pushforward, True for the pullback.
        batch: the ``vmap`` levels, innermost first: each is the batch axis of
            every non-linear operand (None: not batched); linear operands are
            batched at axis 0 at every level, as are the results.
    """

    program: Any  # a numfmt.emulation.program.Program
    call: Any
    wrt: tuple
    avals: tuple
    keyed: bool
    n_fixed: int
    transposed: bool = False
    batch: tuple = ()

    def evaluate(self, *operands):
        """The results for ``operands`` (fixed, then linear), under the emulated derivative policy."""

        def base(*ops):
            fixed, linear = ops[: self.n_fixed], ops[self.n_fixed :]
            key, residuals = (fixed[0], fixed[1:]) if self.keyed else (None, fixed)
            direction = "vjp" if self.transposed else "jvp"
            with jax.enable_x64(True):
                return self.program.derivative(
                    self.call, direction, self.wrt, self.avals, key, list(residuals), list(linear)
                )

        fn = base
        for dims in self.batch:
            axes = (*dims, *[0] * (len(operands) - self.n_fixed))
            fn = jax.vmap(fn, in_axes=axes, out_axes=0)
        return list(fn(*operands))

    def result_shapes(self, linear_shapes) -> list:
        """The results' shapes and dtypes, from the linear operands' shapes (``vmap`` levels in front).

        Known without tracing: the unused direction may not be evaluable (a
        ``jax.custom_vjp`` function inside has a pullback but no pushforward).
        """
        program = self.program
        if self.transposed:  # cotangents of the differentiated inputs
            plain = [(shape, dtype) for (shape, dtype, _), w in zip(self.avals, self.wrt, strict=True) if w]
        else:  # tangents of the float outputs
            _, out_avals = program.lin_trees[self.call, self.wrt, self.avals]
            plain = [(tuple(a.shape), a.dtype) for a in out_avals if jnp.issubdtype(a.dtype, jnp.floating)]
        lead = tuple(linear_shapes[0][: len(self.batch)])
        return [jax.ShapeDtypeStruct((*lead, *shape), dtype) for shape, dtype in plain]

    def transpose(self) -> LinearMap:
        """The map in the other direction (same residuals and ``vmap`` levels)."""
        return replace(self, transposed=not self.transposed)

    def batched(self, dims: tuple) -> LinearMap:
        """This map under one more ``vmap`` level (``dims``: the non-linear operands' batch axes)."""
        return replace(self, batch=(*self.batch, dims))


linear_p = Primitive("numfmt_emulated_linear")
linear_p.multiple_results = True


def apply(lin: LinearMap, fixed, linear) -> list:
    """Bind the primitive: ``lin``'s results for the non-linear ``fixed`` and the ``linear`` operands."""
    return linear_p.bind(*fixed, *linear, lin=lin)


def _impl(*operands, lin):
    return lin.evaluate(*operands)


def _abstract(*avals, lin):
    shapes = lin.result_shapes([a.shape for a in avals[lin.n_fixed :]])
    return [jax.core.ShapedArray(s.shape, s.dtype) for s in shapes]


def _transpose(cts, *operands, lin):
    fixed = operands[: lin.n_fixed]
    if any(ad.is_undefined_primal(x) for x in fixed):
        raise ValueError(NESTED)
    outs = lin.result_shapes([_shape(x) for x in operands[lin.n_fixed :]])
    cts = [jnp.zeros(o.shape, o.dtype) if isinstance(ct, ad.Zero) else ct for ct, o in zip(cts, outs, strict=True)]
    back = apply(lin.transpose(), fixed, cts)
    return [None] * lin.n_fixed + list(back)


def _shape(x):
    return tuple((x.aval if ad.is_undefined_primal(x) else jax.typeof(x)).shape)


def _jvp(primals, tangents, *, lin):
    fixed_tangents = tangents[: lin.n_fixed]
    if any(not isinstance(t, ad.Zero) for t in fixed_tangents):
        raise ValueError(NESTED)
    outs = apply(lin, primals[: lin.n_fixed], primals[lin.n_fixed :])
    linear = [ad.instantiate_zeros(t) for t in tangents[lin.n_fixed :]]
    return outs, apply(lin, primals[: lin.n_fixed], linear)


def _batch(operands, dims, *, lin):
    size = next(x.shape[d] for x, d in zip(operands, dims, strict=True) if d is not None)
    fixed_dims = tuple(dims[: lin.n_fixed])
    linear = [
        jnp.moveaxis(x, d, 0) if d is not None else jnp.broadcast_to(x, (size, *jnp.shape(x)))
        for x, d in zip(operands[lin.n_fixed :], dims[lin.n_fixed :], strict=True)
    ]
    outs = apply(lin.batched(fixed_dims), operands[: lin.n_fixed], linear)
    return outs, [0] * len(outs)


linear_p.def_impl(_impl)
linear_p.def_abstract_eval(_abstract)
ad.primitive_jvps[linear_p] = _jvp
ad.primitive_transposes[linear_p] = _transpose
batching.primitive_batchers[linear_p] = _batch
mlir.register_lowering(linear_p, mlir.lower_fun(_impl, multiple_results=True))
