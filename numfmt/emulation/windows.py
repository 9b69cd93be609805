"""Window reductions, scatters and pooling gradients for the emulate interpreter.

Handlers for primitives that pooling layers, integer-label losses and their
gradients produce (``reduce_window_*``, ``select_and_scatter_add``,
``select_and_gather_add``, ``scatter*``), looked up by
:data:`HANDLERS` from ``numfmt.emulation.emulate``. Their semantics:

* **Rounded** (``reduce_window_sum``, ``scatter-add``, ``scatter-sub``, ``scatter-mul``,
  ``select_and_scatter_add``, a ``reduce_window`` whose body is ``add`` or
  ``mul``): the float inputs are rounded to the site's format (the
  ``reductions`` group), XLA computes each output element (a window's sum,
  a slot's operand plus all its updates, ...) in the work dtype (float64), and that result is
  rounded once, as ``reduce_sum`` is. With duplicate scatter indices the
  updates of a slot are summed (subtracted, multiplied) in the work dtype
  and rounded once, not rounded after each update.
* **Exact** (``reduce_window_max``/``min``, ``scatter-min``/``max``, a
  ``reduce_window`` whose body is ``max`` or ``min``): inputs rounded to the
  compute format, output not rounded (it is one of the inputs).
* **Data movement** (``scatter``, ``select_and_gather_add``'s tangent):
  values are copied; the comparison operand of ``select_and_gather_add``
  is rounded to the compute format first, as ``reduce_window_max``'s is.

Scatters are rebuilt with ``lax.scatter_*`` (their ``update_jaxpr`` is typed
for the traced dtype, not the work dtype).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from numfmt.core.rounding import Rounding
from numfmt.emulation import sites as _sites
from numfmt.emulation.sums import is_plus_zero, toward_negative_zero

__all__ = ["HANDLERS"]

# JAX's select_and_scatter_add primitive and the implementation its CPU/GPU lowering traces
# (private; both exist unchanged in JAX 0.8.0-0.10.2, the versions pyproject admits)
from jax._src.lax.windowed_reductions import _select_and_scatter_add_impl as _SCATTER_SELECTED_IMPL  # noqa: E402
from jax._src.lax.windowed_reductions import select_and_scatter_add_p as _SCATTER_SELECTED  # noqa: E402

_MONOIDS = {"add": lax.add, "mul": lax.mul, "max": lax.max, "min": lax.min}
_SCATTERS = {"scatter-add": lax.scatter_add, "scatter-sub": lax.scatter_sub, "scatter-mul": lax.scatter_mul,
             "scatter-min": lax.scatter_min, "scatter-max": lax.scatter_max, "scatter": lax.scatter}  # fmt: skip


def _rounded(interp, eqn, ins, sites, cache, idents, compute, sum_of=None, negated=()):
    """Round float inputs to the site's format, ``compute`` in the work dtype, round the result once.

    ``sum_of``: for sums, a sum of 0/1 counts (same argument positions;
    int32 where the floats were): under toward_negative an exactly zero sum
    is then -0 unless each of its terms is +0 (as ``reduce_sum``'s,
    numfmt.emulation.sums). ``negated``: positions whose terms enter the sum
    negated (the updates of ``scatter-sub``).
    """
    name = eqn.primitive.name
    fmt, rounding = interp.policy.site(name)
    _sites.check_fits(fmt, eqn.outvars[0].aval.dtype, f"{name} output")
    work = _sites.work_dtype(name, [fmt])
    floats = [_sites.is_float(var.aval.dtype) for var in eqn.invars]
    args = [_sites.convert(interp.rounded(v, fmt, rounding, sites, cache, i), work, fmt) if fl else v[0]
            for v, fl, i in zip(ins, floats, idents, strict=True)]  # fmt: skip
    out = compute(*args)
    if sum_of is not None and rounding is Rounding.TOWARD_NEGATIVE:
        others = [lax.convert_element_type(~is_plus_zero(-a if k in negated else a), jnp.int32) if fl else a
                  for k, (a, fl) in enumerate(zip(args, floats, strict=True))]  # fmt: skip
        out = toward_negative_zero(out, sum_of(*others) == 0)
    return [(sites.round(out, fmt, rounding), fmt)]


def _exact(interp, eqn, ins, sites, cache, idents, compute):
    """Round float inputs to the compute format; ``compute`` in a dtype that keeps their subnormals."""
    fmt, rounding = interp.policy.compute, interp.policy.rounding
    floats = [_sites.is_float(var.aval.dtype) for var in eqn.invars]
    args = [interp.rounded(v, fmt, rounding, sites, cache, i) if fl else v[0]
            for v, fl, i in zip(ins, floats, idents, strict=True)]  # fmt: skip
    args = _widest(args, floats, [fmt] * len(args), _sites.exact_dtype(fmt, eqn.primitive.name))
    return [(compute(*args), fmt)]


def _widest(args, floats, fmts, at_least=None):
    """Float ``args`` (of ``fmts``) converted exactly to the widest float dtype among them and ``at_least``."""
    dtypes = [jnp.result_type(a) for a, fl in zip(args, floats, strict=True) if fl]
    if at_least is not None:
        dtypes.append(at_least)
    wide = max(dtypes, key=lambda d: d.itemsize)
    return [_sites.convert(a, wide, f) if fl else a for a, fl, f in zip(args, floats, fmts, strict=True)]


def _bound(eqn):
    return lambda *args: eqn.primitive.bind(*args, **eqn.params)


def scatter_selected(source, operand, select_prim, window_dimensions, window_strides, padding):
    """``select_and_scatter_add``, traced now rather than when XLA lowers it.

    Its CPU and GPU lowering traces a Python implementation that pads the
    operand with a constant of the source's dtype; lowering runs after
    emulate's local x64 context is gone, so with the global flag off a
    float64 operand would meet a float32 constant. Traced here (inside the
    context) it is the same computation, with the constant in float64.
    """
    params = dict(select_prim=select_prim, window_dimensions=tuple(window_dimensions),
                  window_strides=tuple(window_strides), padding=tuple(map(tuple, padding)))  # fmt: skip
    if np.dtype(operand.dtype).itemsize == 8:
        return _SCATTER_SELECTED_IMPL(source, operand, expand_padding=True, **params)
    return _SCATTER_SELECTED.bind(source, operand, **params)


def _chooser_with_vjp(compute, select_prim, params, ndim):
    """``compute`` (a max/min window reduction of a float64 operand) whose VJP is :func:`scatter_selected`.

    JAX's own VJP of a window max is a ``select_and_scatter_add``, whose
    lowering cannot take float64 with the global x64 flag off (see
    :func:`scatter_selected`); this one is the same computation, traced
    inside emulate's context. (Used only when the user's flag is off: it is a
    custom VJP, so forward mode, already refused then, would not pass it.)
    """
    padding = params.get("padding", ((0, 0),) * ndim)

    @jax.custom_vjp
    def chooser(x):
        return compute(x)

    def bwd(x, ct):
        return (scatter_selected(ct, x, select_prim, params["window_dimensions"], params["window_strides"], padding),)

    chooser.defvjp(lambda x: (compute(x), x), bwd)
    return chooser


def _undilated(params) -> bool:
    return all(d == 1 for key in ("base_dilation", "window_dilation") for d in params.get(key, ()))


def _reduce_window_sum(interp, eqn, ins, sites, cache, idents):
    return _rounded(interp, eqn, ins, sites, cache, idents, _bound(eqn), _bound(eqn))


def _reduce_window_exact(interp, eqn, ins, sites, cache, idents):
    compute = _bound(eqn)
    if not interp.user_x64 and _undilated(eqn.params):
        select = lax.ge_p if eqn.primitive.name == "reduce_window_max" else lax.le_p
        ndim = len(eqn.params["window_dimensions"])
        compute = _float64_chooser(compute, select, eqn.params, ndim)
    return _exact(interp, eqn, ins, sites, cache, idents, compute)


def _float64_chooser(compute, select, params, ndim):
    """``compute``, with :func:`_chooser_with_vjp` where its operand is float64."""

    def run(x, *rest):
        if rest or np.dtype(x.dtype).itemsize != 8:
            return compute(x, *rest)
        return _chooser_with_vjp(compute, select, params, ndim)(x)

    return run


def _reduce_window(interp, eqn, ins, sites, cache, idents):
    """Generic ``reduce_window``: handled when its body is one add, mul, max or min of one operand."""
    p = eqn.params
    body = getattr(p["jaxpr"], "jaxpr", p["jaxpr"])
    op = body.eqns[0].primitive.name if len(body.eqns) == 1 else None
    if len(eqn.invars) != 2 or p["consts"] or op not in _MONOIDS or not _sites.is_float(eqn.invars[0].aval.dtype):
        raise NotImplementedError(
            f"emulate handles reduce_window only with one float operand and a body of one add, mul, max or min "
            f"(as lax.reduce_window(x, init, lax.add, ...) makes), got {eqn}"
        )

    def compute(x, init):
        return lax.reduce_window(x, init, _MONOIDS[op], p["window_dimensions"], p["window_strides"], p["padding"],
                                 p["base_dilation"], p["window_dilation"])  # fmt: skip

    if op == "add":
        return _rounded(interp, eqn, ins, sites, cache, idents, compute, compute)
    handler = _rounded if op == "mul" else _exact
    return handler(interp, eqn, ins, sites, cache, idents, compute)


def _select_and_scatter_add(interp, eqn, ins, sites, cache, idents):
    """Max-pool gradient: the source (cotangent) is rounded like a sum, the operand compared exactly.

    The operand is rounded to the compute format; each input position gets
    the sum of the sources of the windows that select it, in the work dtype,
    rounded once.
    """
    policy = interp.policy
    fmt, rounding = policy.site("select_and_scatter_add")
    _sites.check_fits(fmt, eqn.outvars[0].aval.dtype, "select_and_scatter_add output")
    work = _sites.work_dtype("select_and_scatter_add", [fmt, policy.compute])
    (src, operand), (isrc, iop) = ins, idents
    src = interp.rounded(src, fmt, rounding, sites, cache, isrc)
    operand = interp.rounded(operand, policy.compute, policy.rounding, sites, cache, iop)
    src, operand = _sites.convert(src, work, fmt), _sites.convert(operand, work, policy.compute)
    out = scatter_selected(src, operand, **eqn.params)
    if rounding is Rounding.TOWARD_NEGATIVE:  # an exact zero is -0 unless each term is +0, as for reduce_sum
        others = lax.convert_element_type(~is_plus_zero(src), work)
        out = toward_negative_zero(out, scatter_selected(others, operand, **eqn.params) == 0)
    return [(sites.round(out, fmt, rounding), fmt)]


def _select_and_gather_add(interp, eqn, ins, sites, cache, idents):
    """Max-pool JVP: copies the tangent at each window's selected position (the operand compared exactly)."""
    policy = interp.policy
    (tangent, tfmt), operand = ins
    operand = interp.rounded(operand, policy.compute, policy.rounding, sites, cache, idents[1])
    if tfmt is None:  # of no known format: keep it in its traced dtype
        tangent = _sites.convert(tangent, eqn.invars[0].aval.dtype)
    args = _widest([tangent, operand], [True, True], [tfmt, policy.compute],
                   _sites.exact_dtype(policy.compute, "select_and_gather_add"))  # fmt: skip
    return [(eqn.primitive.bind(*args, **eqn.params), tfmt)]


def _scatter_fn(eqn):
    p = eqn.params
    fn = _SCATTERS[eqn.primitive.name]
    return lambda operand, indices, updates: fn(
        operand, indices, updates, p["dimension_numbers"], indices_are_sorted=p["indices_are_sorted"],
        unique_indices=p["unique_indices"], mode=p["mode"],
    )  # fmt: skip


def _scatter_rounded(interp, eqn, ins, sites, cache, idents):
    name = eqn.primitive.name
    if name == "scatter-mul":
        return _rounded(interp, eqn, ins, sites, cache, idents, _scatter_fn(eqn))
    p = eqn.params  # the zero-sign counts of scatter-add and scatter-sub are summed alike
    sum_of = lambda o, i, u: lax.scatter_add(o, i, u, p["dimension_numbers"], mode=p["mode"])  # noqa: E731
    negated = (2,) if name == "scatter-sub" else ()
    return _rounded(interp, eqn, ins, sites, cache, idents, _scatter_fn(eqn), sum_of, negated)


def _scatter_exact(interp, eqn, ins, sites, cache, idents):
    return _exact(interp, eqn, ins, sites, cache, idents, _scatter_fn(eqn))


def _scatter(interp, eqn, ins, sites, cache, idents):
    """``scatter`` (``x.at[i].set(u)``): data movement; the output has a format if operand and updates share it."""
    if eqn.params["update_jaxpr"] is not None:
        raise NotImplementedError(
            f"emulate handles the primitive 'scatter' only without an update function (x.at[i].set(u)); "
            f"lax.scatter_apply's is not emulated. Compute it outside the emulated function, got {eqn}"
        )
    (operand, ofmt), indices, (updates, ufmt) = ins
    fmt = ofmt if ofmt == ufmt else None
    if fmt is None:
        operand, updates = (_sites.convert(v, var.aval.dtype, f) for v, var, f in
                            ((operand, eqn.invars[0], ofmt), (updates, eqn.invars[2], ufmt)))  # fmt: skip
    else:
        operand, updates = _widest([operand, updates], [True, True], [fmt, fmt])
    return [(_scatter_fn(eqn)(operand, indices[0], updates), fmt)]


HANDLERS = {
    "reduce_window_sum": _reduce_window_sum,
    "reduce_window_max": _reduce_window_exact,
    "reduce_window_min": _reduce_window_exact,
    "reduce_window": _reduce_window,
    "select_and_scatter_add": _select_and_scatter_add,
    "select_and_gather_add": _select_and_gather_add,
    "scatter-add": _scatter_rounded,
    "scatter-sub": _scatter_rounded,
    "scatter-mul": _scatter_rounded,
    "scatter-min": _scatter_exact,
    "scatter-max": _scatter_exact,
    "scatter": _scatter,
}
