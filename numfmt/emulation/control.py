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

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend import core as jcore

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

        def body(key, *args):
            return [v for v, _ in self.run(closed, args, sites.child(key), [f for _, f in ins])]

        ckpt = jax.checkpoint(body, prevent_cse=eqn.params["prevent_cse"], policy=eqn.params["policy"])
        return [(v, None) for v in ckpt(key, *[v for v, _ in ins])]

    def _scan(self, eqn, ins, sites):
        p = eqn.params
        closed, nc, ncarry = p["jaxpr"], p["num_consts"], p["num_carry"]
        consts, init, xs = ins[:nc], ins[nc : nc + ncarry], ins[nc + ncarry :]
        carry_avals = closed.in_avals[nc : nc + ncarry]
        key = sites.next_words()

        def body(carry, x):
            i, c = carry
            child = sites.child(_sites.fold(key, i))
            args = [v for v, _ in consts] + list(c) + list(x)
            outs = self.run(closed, args, child, [f for _, f in consts] + [None] * (len(c) + len(x)))
            new = _typed(outs[:ncarry], carry_avals)
            return (i + 1, new), [v for v, _ in outs[ncarry:]]

        init_vals = _typed(init, carry_avals)
        (_, final), ys = lax.scan(
            body, (jnp.int32(0), init_vals), [v for v, _ in xs], length=p["length"], reverse=p["reverse"],
            unroll=p["unroll"],
        )  # fmt: skip
        return [(v, None) for v in [*final, *ys]]

    def _while(self, eqn, ins, sites):
        p = eqn.params
        cn, bn = p["cond_nconsts"], p["body_nconsts"]
        cconsts, bconsts, init = ins[:cn], ins[cn : cn + bn], ins[cn + bn :]
        avals = p["body_jaxpr"].out_avals
        ckey, bkey = sites.next_words(), sites.next_words()

        def cond_fun(carry):
            i, c = carry
            args = [v for v, _ in cconsts] + list(c)
            known = [f for _, f in cconsts] + [None] * len(c)
            return self.run(p["cond_jaxpr"], args, sites.child(_sites.fold(ckey, i)), known)[0][0]

        def body_fun(carry):
            i, c = carry
            args = [v for v, _ in bconsts] + list(c)
            known = [f for _, f in bconsts] + [None] * len(c)
            outs = self.run(p["body_jaxpr"], args, sites.child(_sites.fold(bkey, i)), known)
            return i + 1, _typed(outs, avals)

        _, final = lax.while_loop(cond_fun, body_fun, (jnp.int32(0), _typed(init, avals)))
        return [(v, None) for v in final]

    def _cond(self, eqn, ins, sites):
        branches = eqn.params["branches"]
        (index, _), ops = ins[0], ins[1:]
        key = sites.next_words()
        known = [f for _, f in ops]

        def branch(closed):
            def run(key, *args):
                outs = self.run(closed, args, sites.child(key), known)
                return _typed(outs, closed.out_avals)

            return run

        outs = lax.switch(index, [branch(b) for b in branches], key, *[v for v, _ in ops])
        return [(v, None) for v in outs]

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
