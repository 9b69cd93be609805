"""Control flow for the emulate interpreter: jit, checkpoint, scan, while, cond, custom rules.

Each higher-order primitive is rebuilt with the public ``jax``/``lax`` API
around interpreted bodies (``self.run``). Loop bodies get per-iteration seed words
(the loop's draw hashed with the iteration number, ``_sites.fold``). The
rebuilt program is never differentiated by JAX itself (an emulated
function's derivative is emulated: numfmt.emulation.derivatives), so the
custom_jvp/custom_vjp rules kept here only serve functions that trace
through them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core as jcore

from numfmt.emulation import scopes as _scopes
from numfmt.emulation import sites as _sites

__all__ = ["ControlFlow"]


def _bind(prim, params, *args):
    bind_params = prim.get_bind_params(params)
    # JAX < 0.7 returns (subfuns, params); newer releases return the params.
    subfuns, bind_params = bind_params if isinstance(bind_params, tuple) else ((), bind_params)
    return prim.bind(*subfuns, *args, **bind_params)


def _listify(out, prim):
    return list(out) if prim.multiple_results else [out]


def _common(fmts):
    fmts = set(fmts)
    return fmts.pop() if len(fmts) == 1 else None


def _typed(values, avals):
    """The values of ``[(value, known)]`` cast to ``avals`` (loop carries and branches need exact types)."""
    return [_as_aval(v, a, f) for (v, f), a in zip(values, avals, strict=True)]


def _signature(items):
    """A hashable summary of what a body's trace depends on: shapes and dtypes of arrays, formats, flags."""
    out = []
    for item in items:
        if isinstance(item, (list, tuple)):
            out.append(_signature(item))
        elif isinstance(item, np.dtype) or isinstance(item, type):
            out.append(str(np.dtype(item)))
        elif hasattr(item, "dtype") and hasattr(item, "shape"):  # an array, tracer or ShapeDtypeStruct
            out.append((tuple(item.shape), str(jnp.result_type(item))))
        else:  # a format, None, a flag, a Python scalar
            out.append(item)
    return tuple(out)


def _carried(values, kinds, dtypes):
    """Loop carries ``[(value, known)]`` as the loop holds them (see ``ControlFlow._carries``)."""
    return [
        _sites.convert(v, d, k) if k is not None else _as_aval(v, jax.ShapeDtypeStruct(jnp.shape(v), d), f)
        for (v, f), k, d in zip(values, kinds, dtypes, strict=True)
    ]


def _as_aval(x, aval, fmt=None):
    """Cast ``x`` (of ``fmt``; None: unknown) to ``aval``'s dtype as a strongly typed array."""
    if not hasattr(aval, "dtype"):
        return x
    x = jnp.asarray(x)
    return _sites.convert(x, aval.dtype, fmt) if _sites.is_float(x.dtype) else lax.convert_element_type(x, aval.dtype)


class ControlFlow:
    """Mixin of the interpreter: one method per higher-order primitive."""

    def _jit(self, eqn, ins, sites):
        return self.run(eqn.params["jaxpr"], [v for v, _ in ins], sites, [f for _, f in ins])

    def _remat2(self, eqn, ins, sites):
        closed = jcore.ClosedJaxpr(eqn.params["jaxpr"], ())
        key = sites.next_words()

        formats = []

        def body(key, *args):
            outs = self.run(closed, args, sites.child(key), [f for _, f in ins])
            formats[:] = [f for _, f in outs]
            return [v for v, _ in outs]

        ckpt = jax.checkpoint(body, prevent_cse=eqn.params["prevent_cse"], policy=eqn.params["policy"])
        outs = ckpt(key, *[v for v, _ in ins])
        return list(zip(outs, formats if len(formats) == len(outs) else [None] * len(outs), strict=True))

    def _scan(self, eqn, ins, sites):
        p = eqn.params
        closed, nc, ncarry = p["jaxpr"], p["num_consts"], p["num_carry"]
        consts, init, xs = ins[:nc], ins[nc : nc + ncarry], ins[nc + ncarry :]
        carry_avals = closed.in_avals[nc : nc + ncarry]
        key = sites.next_words()
        fixed = [f for _, f in consts]
        x_known = [f for _, f in xs]
        x_slices = [jax.ShapeDtypeStruct(jnp.shape(v)[1:], jnp.result_type(v)) for v, _ in xs]

        def run(words, c, x, kinds):
            args = [v for v, _ in consts] + list(c) + list(x)
            return self.run(closed, args, sites.child(words), fixed + kinds + x_known)

        where = (closed, consts, x_slices, x_known, key is None)
        kinds, dtypes = self._carries(where, lambda c, x, k: run(key, c, x, k)[:ncarry], init, carry_avals, x_slices)
        y_formats = []

        def body(carry, x):
            i, c = carry
            outs = run(_sites.fold(key, i), c, x, kinds)
            y_formats[:] = [f for _, f in outs[ncarry:]]
            return (i + 1, _carried(outs[:ncarry], kinds, dtypes)), [v for v, _ in outs[ncarry:]]

        (_, final), ys = lax.scan(
            body, (jnp.int32(0), _carried(init, kinds, dtypes)), [v for v, _ in xs], length=p["length"],
            reverse=p["reverse"], unroll=p["unroll"],
        )  # fmt: skip
        return [*zip(final, kinds, strict=True), *zip(ys, y_formats, strict=True)]

    def _while(self, eqn, ins, sites):
        p = eqn.params
        cn, bn = p["cond_nconsts"], p["body_nconsts"]
        cconsts, bconsts, init = ins[:cn], ins[cn : cn + bn], ins[cn + bn :]
        ckey, bkey = sites.next_words(), sites.next_words()

        def run_body(words, c, kinds):
            known = [f for _, f in bconsts] + kinds
            return self.run(p["body_jaxpr"], [v for v, _ in bconsts] + list(c), sites.child(words), known)

        where = (p["body_jaxpr"], bconsts, bkey is None)
        kinds, dtypes = self._carries(where, lambda c, _, k: run_body(bkey, c, k), init, p["body_jaxpr"].out_avals)

        def cond_fun(carry):
            i, c = carry
            args = [v for v, _ in cconsts] + list(c)
            known = [f for _, f in cconsts] + kinds
            return self.run(p["cond_jaxpr"], args, sites.child(_sites.fold(ckey, i)), known)[0][0]

        def body_fun(carry):
            i, c = carry
            return i + 1, _carried(run_body(_sites.fold(bkey, i), c, kinds), kinds, dtypes)

        _, final = lax.while_loop(cond_fun, body_fun, (jnp.int32(0), _carried(init, kinds, dtypes)))
        return list(zip(final, kinds, strict=True))

    def _carries(self, where, step, init, avals, xs=()):
        """The known formats and the dtypes of a loop's carried values: a fixed point of the body.

        A carry keeps the format it enters with (``init``'s) if the body
        returns it in that format, and is then carried in the dtype the body
        stores it in (float64 for a float32 variable holding bfloat16 values,
        say): the body then reads it as it is instead of rounding and
        converting it again in every iteration. Other carries are unknown and
        carried in their traced dtype, as JAX has them. ``step(carries, xs, kinds)``
        traces the body (abstractly: ``jax.eval_shape``, nothing is emitted)
        for carries of the known formats ``kinds`` and a scan's slices ``xs``,
        given as ``jax.ShapeDtypeStruct``; each pass can only make
        a carry unknown or its dtype wider, so this ends after a few passes.
        The result is kept per body and the formats and dtypes it is traced
        with (``where``: the body, its constants, and whatever else its trace
        depends on), so that nested loops trace their bodies a few times, not
        a few times per pass of every enclosing loop.
        """
        kinds = [f if _sites.is_float(a.dtype) else None for (_, f), a in zip(init, avals, strict=True)]
        dtypes = [a.dtype if f is None else jnp.result_type(v) for (v, _), f, a in zip(init, kinds, avals, strict=True)]
        found = self.loop_carries.setdefault(id(where[0]), (where[0], {}))[1]  # the body object is kept alive there
        cache_key = (_signature(where[1:]), tuple(kinds), _signature(dtypes))
        if cache_key not in found:
            found[cache_key] = self._carry_fixed_point(step, kinds, dtypes, avals, xs)
        return found[cache_key]

    def _carry_fixed_point(self, step, kinds, dtypes, avals, xs):
        formats = []

        def trace(c, x, kinds):
            outs = step(list(c), list(x), kinds)
            formats[:] = [f for _, f in outs]
            return [jnp.asarray(v) for v, _ in outs]

        while any(f is not None for f in kinds):
            carries = [jax.ShapeDtypeStruct(a.shape, d) for a, d in zip(avals, dtypes, strict=True)]
            with _scopes.recording(None):
                shapes = jax.eval_shape(functools.partial(trace, kinds=kinds), carries, list(xs))
            new_kinds = [k if k == f else None for k, f in zip(kinds, formats, strict=True)]
            new_dtypes = [
                max(d, s.dtype, key=lambda t: jnp.dtype(t).itemsize) if k is not None else a.dtype
                for k, d, s, a in zip(new_kinds, dtypes, shapes, avals, strict=True)
            ]
            if new_kinds == kinds and [jnp.dtype(d) for d in new_dtypes] == [jnp.dtype(d) for d in dtypes]:
                break
            kinds, dtypes = new_kinds, new_dtypes
        return kinds, dtypes

    def _cond(self, eqn, ins, sites):
        branches = eqn.params["branches"]
        (index, _), ops = ins[0], ins[1:]
        key = sites.next_words()
        known = [f for _, f in ops]

        formats = [None] * len(branches)

        def branch(i, closed):
            def run(key, *args):
                outs = self.run(closed, args, sites.child(key), known)
                formats[i] = [f for _, f in outs]
                return _typed(outs, closed.out_avals)  # converted exactly: a known format stays known

            return run

        outs = lax.switch(index, [branch(i, b) for i, b in enumerate(branches)], key, *[v for v, _ in ops])
        formats = [[None] * len(outs) if fs is None else fs for fs in formats]  # a branch JAX did not trace
        return [(v, _common(fs)) for v, *fs in zip(outs, *formats, strict=True)]

    def _custom_jvp_call(self, eqn, ins, sites):
        """The primal is emulated; tangents follow the function's own JVP rule (not emulated).

        Rounded values go in and come out in the dtype they are stored in
        (see numfmt.emulation.emulate); the rule sees them in the traced dtypes.
        """
        closed, known, key = eqn.params["call_jaxpr"], [f for _, f in ins], sites.next_words()
        formats = []

        @jax.custom_jvp
        def call(key, *args):
            outs = self.run(closed, args, sites.child(key), known)
            formats[:] = [f for _, f in outs]
            return _kept(outs, closed.out_avals)

        @call.defjvp
        def call_jvp(primals, tangents):
            key, *args = primals
            traced = (_recast(args, closed.in_avals), _recast(tangents[1:], closed.in_avals, linear=True))
            _, out_tangents = jax.jvp(lambda *a: _bind(eqn.primitive, eqn.params, *a), *map(tuple, traced))
            out = call(key, *args)
            return out, _recast(out_tangents, out, linear=True)

        return list(zip(call(key, *[v for v, _ in ins]), formats, strict=True))

    def _custom_vjp_call(self, eqn, ins, sites):
        """The primal is emulated; cotangents follow the function's own VJP rule (not emulated)."""
        closed, known, key = eqn.params["call_jaxpr"], [f for _, f in ins], sites.next_words()
        formats = []

        @jax.custom_vjp
        def call(key, *args):
            outs = self.run(closed, args, sites.child(key), known)
            formats[:] = [f for _, f in outs]
            return _kept(outs, closed.out_avals)

        def fwd(key, *args):
            return call(key, *args), args

        def bwd(args, cts):
            traced = _recast(args, closed.in_avals)
            _, vjp = jax.vjp(lambda *a: _listify(_bind(eqn.primitive, eqn.params, *a), eqn.primitive), *traced)
            cts = vjp(_recast(cts, closed.out_avals, linear=True))
            return (None, *_recast(cts, args, linear=True))

        call.defvjp(fwd, bwd)
        return list(zip(call(key, *[v for v, _ in ins]), formats, strict=True))


def _kept(outs, avals):
    """Outputs of an interpreted body: known-format values as stored, the others in their traced dtype."""
    return [jnp.asarray(v) if f is not None else _as_aval(v, a) for (v, f), a in zip(outs, avals, strict=True)]


def _recast(values, likes, linear=False):
    """``values`` cast to the dtypes of ``likes`` (arrays or avals).

    Primal values exactly (``_sites.convert``); tangents and cotangents
    (``linear``) by a plain conversion, which JAX can transpose.
    """

    def cast(v, like):
        dtype = getattr(like, "dtype", None)
        if dtype is None or v.dtype == dtype or not (_sites.is_float(v.dtype) and _sites.is_float(dtype)):
            return v  # float0 tangents of integer inputs stay as they are
        return lax.convert_element_type(v, dtype) if linear else _sites.convert(v, dtype)

    return [cast(v, like) for v, like in zip(values, likes, strict=True)]
