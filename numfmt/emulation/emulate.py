"""``numfmt.emulate``: run a JAX function as if on low-precision hardware.

A jaxpr interpreter: ``fn`` is traced to a jaxpr and each equation is
evaluated again with its floating-point inputs and outputs rounded per the
:class:`~numfmt.Policy`. It runs at trace time, so the result is an ordinary
JAX function that ``jit``, ``grad`` and ``vmap`` compose with in either order.
Control flow (nested jit, scan, while_loop, cond/switch, checkpoint,
custom_jvp/custom_vjp functions) is re-built with the public ``lax``/``jax``
APIs around interpreted bodies.

Each value carries the format it is known to be in (or None); an operation
rounds an input only if it is not already in the operation's format, so a
chain of ops in one format rounds each intermediate once. A value whose
format is known may be stored in another float dtype than the traced one
(the dtype it was computed in, e.g. float64 for bfloat16 arithmetic): it
holds the same number exactly, since every value of the format fits the
traced dtype (checked at each rounding). It is converted to the traced dtype
only where a primitive needs that (:data:`WIDE_OK` lists those that do not),
so a chain of float64 operations does not convert back and forth per op.
"""

from __future__ import annotations

import collections
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core as jcore

from numfmt.core.chop import chop
from numfmt.core.names import parse
from numfmt.core.rounding import Rounding
from numfmt.emulation import derivatives as _derivatives
from numfmt.emulation import primitives as _prims
from numfmt.emulation import scopes as _scopes
from numfmt.emulation import sites as _sites
from numfmt.emulation import windows as _windows
from numfmt.emulation.accumulate import chunked_dot
from numfmt.emulation.arguments import split
from numfmt.emulation.contraction import operand_layout, round_blocked
from numfmt.emulation.control import ControlFlow, _as_aval, _bind, _common, _listify
from numfmt.emulation.conv_accum import chunked_conv
from numfmt.emulation.policy import GROUPS, Policy
from numfmt.emulation.program import Call, Program
from numfmt.emulation.sums import add_to_odd, all_terms_plus_zero, needs_odd, sum_with_zero_sign, toward_negative_zero

__all__ = ["emulate"]
_FLOAT32 = parse("float32")  # the outer accumulator of promote=

# The primitive sets, from the one classification table (numfmt.emulation.primitives).
# Data movement: the output holds input values unchanged. Rounding commutes
# with these, so they neither round nor need rounded inputs.
MOVEMENT = _prims.names("movement")
# Exact on values of a format (or with non-float outputs): inputs are rounded
# to the compute format first, outputs are not rounded. OPAQUE ones (a bit
# cast, reduce_precision) give a float of no known format.
EXACT = _prims.names("exact", "opaque")
OPAQUE = _prims.names("opaque")
ROUNDED = _prims.names(*(f"rounded:{g}" for g in ("elementwise", "reductions", "transcendental")))
# Elementwise/reduction primitives that compute the same on any float dtype
# holding their operands' values exactly (operands are brought to one dtype).
WIDE_OK = MOVEMENT.union(EXACT - OPAQUE, GROUPS["matmul"], ROUNDED - {"convert_element_type"})
# Higher-order primitives whose bodies take values in the dtype they are stored in.
_TAKE_STORED = frozenset({"jit", "pjit", "closed_call", "custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr"})
HIGHER = _prims.names("control")


def emulate(fn, policy):
    """Return ``fn`` computing as if on hardware described by ``policy``.

    Every floating-point primitive of ``fn`` has its inputs and outputs
    rounded per the policy (via :func:`numfmt.chop`); integer, boolean,
    comparison, shape and bit-level primitives pass through, and constants
    captured by ``fn`` are rounded like inputs.

    Args:
      fn: a function of JAX arrays (pytrees allowed: equinox modules, flax
        variable collections and nnx modules). Array leaves (JAX, NumPy) are
        traced; other leaves (functions, strings, Python numbers, as
        ``equinox.filter_jit`` has it) are closed over, and a
        result's non-array leaves are returned as they are.
      policy: a :class:`Policy` or its string form, e.g.
        ``"compute=bfloat16,matmul_in=float8_e4m3fn,accum=float32,out=bfloat16"``.

    Returns:
      A function with ``fn``'s signature plus a keyword ``key=``: a
      ``jax.random`` key, required when the policy has a stochastic rounding
      (each rounding site draws from its own stream: the key folded with a
      site id, and with the iteration inside loops) and refused otherwise.
      Its attribute ``explain(*args, **kwargs)`` lists the policy each
      equation is evaluated under (``(scope, primitive, policy)`` rows; for
      checking ``scope(...)`` rules, docs/emulate.md "Per-layer policies").

    Raises:
      ValueError: a bad policy; a missing or unexpected key; a format wider than the
        dtype ``fn`` stores a value in; a ``scope(...)`` rule that selects no
        equation of ``fn``; a derivative of a derivative of the emulated
        function (``jax.hessian``: write ``emulate(jax.hessian(f))``).
      NotImplementedError: ``fn`` uses a primitive emulate does not handle,
        or complex numbers (the message names the primitive).

    Examples:
      >>> import jax.numpy as jnp, numfmt
      >>> f = numfmt.emulate(lambda x, y: x * y + 1.0, "compute=float8_e4m3fn")
      >>> f(jnp.float32(1.7), jnp.float32(3.1))
      Array(6., dtype=float32)
    """
    policy = Policy.parse(policy)
    program = Program(fn, policy, _Interpreter)

    @functools.wraps(fn)
    def emulated(*args, key=None, **kwargs):
        key = _check_key(policy, key)
        leaves, in_tree = jax.tree.flatten((args, kwargs))
        static, flat = split(leaves)
        user_x64 = bool(jax.config.read("jax_enable_x64"))
        if not user_x64:
            flat = [jnp.asarray(v) for v in flat]  # NumPy arrays take the user's default dtypes (as jit would)
        sig = Call(in_tree, static, user_x64)
        return program.outputs(sig, _derivatives.call(program, sig, key, flat))

    emulated.explain = functools.partial(_scopes.explain, emulate, fn, policy)
    return emulated


def _check_key(policy: Policy, key):
    if policy.is_stochastic and key is None:
        raise ValueError(
            f"policy {str(policy)!r} has stochastic rounding and needs a key: call the emulated "
            "function with key=jax.random.key(seed) (a new key per step for fresh noise)"
        )
    if not policy.is_stochastic and key is not None:
        raise ValueError(f"key= was given but policy {str(policy)!r} is deterministic; drop the key")
    if key is None:
        return None
    if not isinstance(key, jax.Array):
        raise TypeError(f"key must be a jax.random key, got {type(key).__name__}")
    return jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key


def _as_traced(eqn, ins):
    """``ins`` with every float value stored in its variable's traced dtype."""
    return [(_as_aval(v, var.aval, f), f) for (v, f), var in zip(ins, eqn.invars, strict=True)]


def _one_dtype(values, floats, fmt, at_least=None):
    """Float ``values`` (of ``fmt``) converted exactly to the widest float dtype among them (and ``at_least``)."""
    dtypes = {jnp.result_type(v) for v, fl in zip(values, floats, strict=True) if fl}
    if at_least is not None:
        dtypes.add(at_least)
    if len(dtypes) <= 1:
        return values
    wide = max(dtypes, key=lambda d: d.itemsize)
    return [_sites.convert(v, wide, fmt) if fl else v for v, fl in zip(values, floats, strict=True)]


def _exact_literal(fmt, val, dtype):
    """``fmt`` if the float scalar ``val`` (of ``dtype``) is a finite value of it that its dtype holds, else None."""
    if not isinstance(val, (float, np.generic, np.ndarray)) or dtype is None or np.ndim(val) != 0:
        return None
    if not _sites.is_float(dtype) or not _sites.fits(fmt, dtype):
        return None
    return fmt if _exact_scalar(fmt, np.dtype(dtype), float(val)) else None


@functools.cache
def _exact_scalar(fmt, dtype, value) -> bool:
    if not np.isfinite(value):
        return False
    x = np.asarray(value, dtype)
    return bool(np.asarray(chop(x, fmt)).tobytes() == x.tobytes())  # NumPy: never traced; -0.0 is not 0.0


def _refuse_complex(eqn):
    """Raise if ``eqn`` has a complex operand or result: its parts would pass through unrounded."""
    for var in (*eqn.invars, *eqn.outvars):
        dtype = getattr(var.aval, "dtype", None)
        if dtype is not None and jnp.issubdtype(dtype, jnp.complexfloating):
            raise NotImplementedError(_prims.complex_refusal(eqn.primitive.name, jnp.dtype(dtype).name))


class _Interpreter(ControlFlow):
    """Evaluates jaxprs; one instance per scope (``names``), with the policy resolved for it."""

    def __init__(self, policy: Policy, user_x64=True, names=(), family=None, backward=False):
        self.root = policy  # with its scope rules
        self.names = names  # the scope names of the equations evaluated here (bodies: their holder's in front)
        self.backward = backward  # derivative arithmetic: the policy's backward() (grad=, bwd. items)
        scoped = policy.for_scope(names) if policy.scopes else policy
        self.policy = scoped.backward() if backward else scoped
        self.user_x64 = user_x64  # the user's global flag (the interpreter itself runs with x64 on)
        self._family = {} if family is None else family  # (names, backward) -> interpreter, shared by all scopes
        self._split = policy.grad is not None or bool(policy.bwd)  # do backward equations get another policy?
        # loop body id -> (body, {signature: its carries' known formats and dtypes}): ControlFlow._carries
        self.loop_carries: dict[int, tuple] = {}

    def at(self, eqn):
        """The interpreter for ``eqn``: the policy of its scope names (enclosing bodies' first), forward or backward.

        An equation is backward in a derivative program, or where JAX's name
        stack says it is part of a transposed computation (the backward pass
        of ``emulate(jax.grad(f))``).
        """
        backward = self.backward or (self._split and _scopes.is_transposed(eqn.source_info.name_stack))
        if not self.root.scopes and _scopes.RECORD.get() is None and backward == self.backward:
            return self
        names = self.names + _scopes.scope_names(eqn.source_info.name_stack)
        if names == self.names and backward == self.backward:
            return self
        if (names, backward) not in self._family:
            self._family[names, backward] = _Interpreter(self.root, self.user_x64, names, self._family, backward)
        return self._family[names, backward]

    # -- values -----------------------------------------------------------
    def run(self, closed, args, sites, known=None):
        """Evaluate a ClosedJaxpr; returns [(value, known format | None)] for its outputs."""
        jaxpr = closed.jaxpr
        env = {}
        for var, val in zip(jaxpr.constvars, closed.consts, strict=True):
            env[var] = (val, None)
        known = known or [None] * len(args)
        for var, val, fmt in zip(jaxpr.invars, args, known, strict=True):
            env[var] = (val, fmt)
        cache = {}
        record = _scopes.RECORD.get()
        # A rounded value that several equations read is stored once (see sites.materialize):
        # XLA would otherwise recompute its rounding chain inside every consumer's fusion.
        uses = collections.Counter(v for e in jaxpr.eqns for v in e.invars if not isinstance(v, jcore.Literal))
        uses.update(v for v in jaxpr.outvars if not isinstance(v, jcore.Literal))
        for eqn in jaxpr.eqns:
            interp = self.at(eqn)
            ins = [interp.literal(v) if isinstance(v, jcore.Literal) else env[v] for v in eqn.invars]
            if record is not None and eqn.primitive.name not in HIGHER:
                record.append(_scopes.Applied("/".join(interp.names), eqn.primitive.name, interp.policy))
            outs = interp.eqn(eqn, ins, sites, cache, [id(v) for v in eqn.invars])
            for var, out in zip(eqn.outvars, outs, strict=True):
                if (
                    uses[var] > 1
                    and out[1] is not None
                    and eqn.primitive.name not in MOVEMENT
                    and _sites.is_float(var.aval.dtype)
                ):
                    out = (_sites.materialize(out[0]), out[1])
                env[var] = out
        return [(v.val, None) if isinstance(v, jcore.Literal) else env[v] for v in jaxpr.outvars]

    def literal(self, lit):
        """A literal operand ``(value, known format)``: the compute format where the value is one of its values.

        A constant such as the ``0.0`` of ``jnp.zeros`` (a loop's initial
        carry, a gradient accumulator) is then read as it is, and a loop
        carrying it keeps a known format (``ControlFlow._carries``).
        Rounding an exact value changes nothing, so this only saves work.
        """
        return lit.val, _exact_literal(self.policy.compute, lit.val, getattr(lit.aval, "dtype", None))

    def rounded(self, value, fmt, rounding, sites, cache, ident):
        """``value`` (with its known format) rounded into ``fmt``, in its own dtype."""
        val, have = value
        if have == fmt or not _sites.is_float(jnp.result_type(val)):
            return val
        cache_key = (ident, fmt, rounding, jnp.result_type(val))
        if ident is None or cache_key not in cache:
            cache[cache_key] = sites.round(jnp.asarray(val), fmt, rounding)
        return cache[cache_key]

    # -- equations --------------------------------------------------------
    def eqn(self, eqn, ins, sites, cache, idents):
        name = eqn.primitive.name
        if name not in HIGHER:  # a body's own equations are checked: the message names the primitive (fft)
            _refuse_complex(eqn)
        floats = [_sites.is_float(v.aval.dtype) for v in eqn.invars]
        out_floats = [_sites.is_float(v.aval.dtype) for v in eqn.outvars]
        if name in HIGHER:
            if name not in _TAKE_STORED:
                ins = _as_traced(eqn, ins)
            return getattr(self, "_" + {"pjit": "jit", "closed_call": "jit", "checkpoint": "remat2",
                                        "custom_vjp_call_jaxpr": "custom_vjp_call"}.get(name, name))(
                eqn, ins, sites)  # fmt: skip
        if not any(floats) and not any(out_floats):
            return [(v, None) for v in _listify(_bind(eqn.primitive, eqn.params, *[v for v, _ in ins]), eqn.primitive)]
        if name in _windows.HANDLERS:  # window reductions, scatters, pooling gradients
            return _windows.HANDLERS[name](self, eqn, ins, sites, cache, idents)
        if name not in WIDE_OK:
            ins = _as_traced(eqn, ins)
        if name in MOVEMENT:
            fmt = _common(f for (_, f), fl in zip(ins, floats, strict=True) if fl)
            if fmt is None:
                ins = _as_traced(eqn, ins)
            vals = _one_dtype([v for v, _ in ins], floats, fmt)
            if name == "broadcast_in_dim" and floats[0] and isinstance(vals[0], jax.core.Tracer):
                vals[0] = _sites.materialize(vals[0])  # else recomputed per element of the broadcast (not constants)
            out = _bind(eqn.primitive, eqn.params, *vals)
            return [(v, fmt) for v in _listify(out, eqn.primitive)]
        if name in GROUPS["matmul"]:
            return self._matmul(eqn, ins, sites, cache, idents)
        if name == "convert_element_type":
            return self._convert(eqn, ins, sites, cache, idents, floats, out_floats)
        if name in EXACT:
            fmt, rounding = self.policy.compute, self.policy.rounding
            _sites.check_not_flushed(fmt)
            args = [
                self.rounded(v, fmt, rounding, sites, cache, i) if fl else v[0]
                for v, fl, i in zip(ins, floats, idents, strict=True)
            ]
            if name in WIDE_OK:  # XLA:CPU flushes float32 subnormals in these too: compare them in float64
                args = _one_dtype(args, floats, fmt, _sites.exact_dtype(fmt, name))
            out = _listify(_bind(eqn.primitive, eqn.params, *args), eqn.primitive)
            return [(v, fmt if of and name not in OPAQUE else None) for v, of in zip(out, out_floats, strict=True)]
        if name in ROUNDED:
            return self._rounded_op(eqn, ins, sites, cache, idents, floats)
        raise NotImplementedError(_prims.refusal(name, f"in {eqn}"))

    def _convert(self, eqn, ins, sites, cache, idents, floats, out_floats):
        """``convert_element_type``: one rounding into the site's format where the new dtype holds it.

        Into an integer dtype, or a float dtype narrower than the format
        (e.g. ``astype(float16)`` of bfloat16 values), the input is rounded to
        the compute format and XLA converts it (a float result is of no known
        format then, and the next operation rounds it again).
        """
        fmt, rounding = self.policy.site("convert_element_type")
        if out_floats[0] and _sites.fits(fmt, eqn.outvars[0].aval.dtype):
            return self._rounded_op(eqn, ins, sites, cache, idents, floats)
        fmt, rounding = self.policy.compute, self.policy.rounding
        ((value, have),) = _as_traced(eqn, ins)
        if floats[0]:
            value = self.rounded((value, have), fmt, rounding, sites, cache, idents[0])  # in the traced dtype
            if not out_floats[0]:  # to bool or int: XLA:CPU would see float32 subnormals as 0
                (value,) = _one_dtype([value], [True], fmt, _sites.exact_dtype(fmt, "convert_element_type"))
        return [(_bind(eqn.primitive, eqn.params, value), None)]

    def _rounded_op(self, eqn, ins, sites, cache, idents, floats):
        name = eqn.primitive.name
        fmt, rounding = self.policy.site(name)
        out_dtype = eqn.outvars[0].aval.dtype
        _sites.check_fits(fmt, out_dtype, f"{name} output")
        _sites.check_not_flushed(fmt)
        work = _sites.work_dtype(name, [fmt])
        if name == "convert_element_type":
            (value,) = ins
            if floats[0]:  # one rounding, in the input's own dtype if it holds the format (else the work dtype)
                if not _sites.fits(fmt, jnp.result_type(value[0])):
                    value = (_sites.convert(value[0], work, value[1]), value[1])
                out = self.rounded(value, fmt, rounding, sites, cache, idents[0])
            else:  # an integer: converted exactly where float64 holds it
                out = sites.round(lax.convert_element_type(value[0], jnp.float64), fmt, rounding)
            return [(out, fmt)]
        args = [
            _sites.convert(self.rounded(v, fmt, rounding, sites, cache, i), work, fmt) if fl else v[0]
            for v, fl, i in zip(ins, floats, idents, strict=True)
        ]
        if name in ("add", "add_any", "sub") and needs_odd(rounding):  # see numfmt.emulation.sums
            a, b = args
            outs = [add_to_odd(a, -b if name == "sub" else b)]
        else:
            outs = _listify(_bind(eqn.primitive, eqn.params, *args), eqn.primitive)
        outs = [sum_with_zero_sign(name, eqn.params, args, o, rounding) for o in outs]
        return [(sites.round(o, fmt, rounding), fmt) for o in outs]

    def _matmul(self, eqn, ins, sites, cache, idents):
        name = eqn.primitive.name
        fin, accum, chunk, fout, rounding = self.policy.matmul_formats(name)
        out_dtype = eqn.outvars[0].aval.dtype
        _sites.check_fits(fout, out_dtype, f"{name} output")
        _sites.check_not_flushed(fout)
        blocked = hasattr(fin, "axis")
        if accum is not None or blocked:
            work = _sites.work_dtype(name + " with accumulator", [fin] if blocked else [fin, fin, accum])
        else:
            # XLA's dot is not correctly rounded: float32 when the products are exact in it.
            exact32 = isinstance(fin, _sites.FloatFormat) and fin.precision <= 12
            work = jnp.dtype(jnp.float32) if exact32 else _sites.work_dtype(name, [fin, fout])
        args = []
        for pos, (v, ident) in enumerate(zip(ins, idents, strict=True)):
            if blocked:
                args.append(self._blocked_input(eqn, pos, v, ident, fin, work, rounding, sites, cache))
                continue
            args.append(  # the dot reads its operand from memory anyway; other readers share it
                _sites.materialize(_sites.convert(self.rounded(v, fin, rounding, sites, cache, ident), work, fin))
            )
        if accum is None:
            out = _bind(eqn.primitive, dict(eqn.params, preferred_element_type=work), *args)
            if rounding is Rounding.TOWARD_NEGATIVE:  # XLA's exact zero is +0: -0 unless every product is +0
                counts = functools.partial(_bind, eqn.primitive, dict(eqn.params, preferred_element_type=jnp.float32))
                out = toward_negative_zero(out, all_terms_plus_zero(counts, *args))
        else:
            step_key = sites.next_words()  # None for a deterministic policy
            round_acc = lambda acc, k: sites.child(k).round(acc, accum, rounding)  # noqa: E731
            outer = lambda x: sites.round(x, _FLOAT32, Rounding.NEAREST_EVEN)  # noqa: E731  # promote=: float32
            more = {"formats": (fin, accum), "promote": self.policy.promote, "round_outer": outer}
            if name == "dot_general":
                out = chunked_dot(*args, eqn.params["dimension_numbers"], chunk, round_acc, step_key, rounding, **more)
            else:
                out = chunked_conv(*args, eqn.params, chunk, round_acc, step_key, rounding, **more)
        return [(sites.round(out, fout, rounding), fout)]

    def _blocked_input(self, eqn, pos, value, ident, fin, work, rounding, sites, cache):
        """Matmul operand ``pos`` rounded to the block/scaled format ``fin`` along the contraction."""
        val, have = value
        if getattr(fin, "pow2_scale", True):  # exact in float64
            val = _sites.convert(val, work, have)
        else:  # NVFP4/NF4: the result depends on the input dtype; round the traced one
            val = _as_aval(val, eqn.invars[pos].aval, have)

        def round_fn(x, fmt, layout):  # a transposed/reshaped operand is cached under its layout
            return self.rounded((x, have), fmt, rounding, sites, cache, ident if layout is None else (ident, layout))

        dims, groups = operand_layout(eqn, pos, fin)
        return _sites.convert(round_blocked(val, dims, groups, fin, round_fn), work)
