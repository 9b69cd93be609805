"""``numfmt.chop``: round an array into a format, returned in its own dtype."""

from __future__ import annotations

import functools

import numpy as np

from numfmt.core import xp as _xp
from numfmt.core.elementwise import (
    _COMPLETE_PATHS,
    _chop_block,
    _raise_unrepresentable,
    chop_numpy,
    register_fast_path,
)
from numfmt.core.names import parse
from numfmt.core.random import hash_bits, random_words, resolve_key, seed_words
from numfmt.core.rounding import Overflow, Rounding
from numfmt.core.xp import require_jax_x64

__all__ = [
    "chop",
    "check_out_dtype",
    "plan_for",
    "register_chop",
    "register_elementwise",
    "register_fast_path",
    "register_lane",
    "require_jax_x64",
    "resolve_key",
]

# Elementwise families register a planner ``f(fmt, dtype, rounding, overflow,
# random_bits) -> plan``. A plan is hashable and has the attributes ``fmt``,
# ``rounding``, ``width`` and ``container`` (bits of the input dtype and of the
# unsigned integers the kernel computes in), ``is_stochastic``,
# ``can_be_unrepresentable``, and a method ``round_bits(xp, u, rbits) ->
# (patterns, unrepresentable mask | None)`` (see ``numfmt.float.kernel``).
# Non-elementwise families (block formats) register a whole ``chop``.
_PLANNERS: dict = {}
_CHOPPERS: dict = {}
_TAKES_OUT: set = set()  # chopper classes that take out= (register_chop)


def register_elementwise(cls: type, planner) -> None:
    """Route ``chop`` of formats of type ``cls`` through the shared driver."""
    _PLANNERS[cls] = planner


def register_chop(cls: type, chopper, takes_out: bool = False) -> None:
    """Route ``chop(x, fmt, ...)`` of formats of type ``cls`` to ``chopper``.

    ``chopper(x, fmt, rounding, overflow=, key=, random_bits=)`` receives the
    parsed format and the arguments as the user gave them. With ``takes_out``,
    a NumPy ``x`` and a checked ``out=`` of its shape and dtype, it also gets
    ``out=``: it may write the result there (and return ``out``) or return a
    new array, which is then copied into ``out``.
    """
    _CHOPPERS[cls] = chopper
    if takes_out:
        _TAKES_OUT.add(cls)


def plan_for(fmt, dtype, rounding: Rounding, overflow, random_bits: int):
    """The plan of an elementwise format (``overflow`` None: the format's default)."""
    try:
        planner = _PLANNERS[type(fmt)]
    except KeyError:
        raise TypeError(f"{fmt} is not an elementwise format; chop it with numfmt.chop") from None
    # A family with its own overflow policies (fixed point) parses them itself.
    parse_overflow = getattr(type(fmt), "parse_overflow", Overflow.parse)
    overflow = fmt.overflow if overflow is None else parse_overflow(overflow)
    return planner(fmt, np.dtype(dtype), rounding, overflow, random_bits)


# ``chop``'s per-call shortcut for NumPy arrays: the compiled kernel's ``lane(plan)``
# (``f(x, out) -> result, or None to take the general path``) per argument tuple, the
# format by identity (a format object's hash costs about a microsecond).
_LANE_MAKERS: list = []
_LANES: dict = {}
_LANES_MAX = 256


def register_lane(maker) -> None:
    """Register ``maker(plan) -> f(x, out) or None``: a shortcut for deterministic NumPy calls."""
    _LANE_MAKERS.append(maker)


def chop(x, fmt, rounding="nearest_even", *, overflow=None, key=None, random_bits=None, out=None):
    """Round ``x`` into ``fmt`` and return it in ``x``'s own float dtype.

    Each element gets one correct rounding of its exact value (a float64 input
    is never rounded through float32 first).

    Args:
      x: a NumPy array or scalar, Python float, or JAX array, of dtype
        float16, bfloat16, float32 or float64. Works under ``jax.jit`` and
        ``jax.vmap``; under ``jax.grad`` the gradient is straight-through
        (identity).
      fmt: a format object or a format string (see :func:`numfmt.parse`).
      rounding: a :class:`Rounding` member or name. Default ``nearest_even``.
      overflow: an :class:`Overflow` member or name; ``None`` uses the format's
        default (``fmt.overflow``).
      key: source of randomness, required for stochastic modes and refused
        otherwise: a ``jax.random`` key (NumPy or JAX input), or a NumPy
        ``Generator`` or integer seed (NumPy input). The same key gives the
        same bits. A JAX key gives 128 seed bits, and each element's random
        word is a keyed hash of its flat index (see ``numfmt.core.random``):
        NumPy and JAX inputs get the same bits, and under ``jax.jit`` the
        hash fuses into the rounding. A ``Generator`` (or seed) supplies its
        own stream, drawn as 64-bit words, and advances.
      random_bits: N, the number of random bits of ``stochastic_a``, ``_b``
        and ``_c`` (1..31 for float16/bfloat16/float32 input, 1..63 for
        float64); other modes take none.
      out: None, or a NumPy array of ``x``'s shape and dtype to hold the
        result, as with NumPy ufuncs; it may be ``x`` itself (rounding in
        place). Not for JAX arrays (they are immutable).

    Returns:
      The rounded values, same shape and dtype as ``x`` (a NumPy scalar for a
      scalar input); ``out`` itself where given.

    Special values: NaN stays NaN (also for formats without NaN, where it is
    not a value of the format; :func:`numfmt.encode` refuses it). +-inf and
    overflow follow the overflow policy (see :class:`Overflow`); -0 is kept
    where the format has -0 and becomes +0 otherwise; an underflow to zero
    keeps the sign likewise. Unsigned formats turn negative inputs into NaN.

    Raises:
      TypeError: ``x`` is not a float array of a supported dtype, is an
        ndarray subclass such as a masked array or ``np.matrix`` (whose mask
        or type the result would drop), or ``key`` is of the wrong kind;
        ``out`` is not a NumPy array of ``x``'s dtype, or ``x`` is a JAX array.
      ValueError: an unknown format, rounding or overflow name; a missing or
        unexpected ``key``/``random_bits``, a negative seed, a batch of JAX
        keys; a format of more than 32 bits on JAX with ``jax_enable_x64``
        off; or a result the dtype of ``x``
        cannot hold (e.g. 65504 in float16 rounded to 3 fraction bits is 65536:
        pass float32 input). Under ``jax.jit`` that last check is static: the
        call is refused at trace time when such a result is possible. ``out``
        of another shape than ``x``, or read-only.

    Examples:
      >>> import numpy as np, numfmt
      >>> numfmt.chop(np.array([1.0, 0.1, 1e6], np.float32), "float8_e4m3fn")
      array([1.       , 0.1015625,       nan], dtype=float32)
      >>> float(numfmt.chop(1 + 2.0**-8 + 2.0**-40, "bfloat16"))
      1.0078125
      >>> y = np.array([1.0, 0.1])
      >>> _ = numfmt.chop(y, "bfloat16", out=y)  # in place
      >>> y
      array([1.        , 0.10009766])
    """
    if type(x) is np.ndarray and key is None:  # the shortcut for repeated calls (see _LANES)
        try:
            hit = _LANES.get((fmt if type(fmt) is str else id(fmt), rounding, overflow, random_bits, x.dtype))
        except TypeError:  # an unhashable argument: the general path explains
            hit = None
        if hit is not None and (hit[0] is fmt or type(fmt) is str):
            result = hit[1](x, out)
            if result is not None:
                return result
    _xp.refuse_subclass(x, "x", "chop")
    if out is not None and _xp.is_jax_array(x):
        raise TypeError(
            f"out= is not supported for JAX arrays (they are immutable), got out of type {type(out).__name__}; "
            "use the returned array (or pass NumPy arrays)"
        )
    fmt_arg, fmt = fmt, parse(fmt)
    if type(fmt) in _CHOPPERS:
        more = {}
        if out is not None and type(fmt) in _TAKES_OUT and type(x) is np.ndarray and x.dtype.kind == "f":
            _check_out(out, x.shape, x.dtype)
            more["out"] = out
        result = _CHOPPERS[type(fmt)](x, fmt, rounding, overflow=overflow, key=key, random_bits=random_bits, **more)
        if out is None or result is out:
            return result
        _check_out(out, np.shape(result), np.asarray(result).dtype)
        np.copyto(out, result)
        return out
    rounding_arg, rounding = rounding, Rounding.parse(rounding)
    if _xp.is_jax_array(x):
        dtype = _check_dtype(x.dtype)
        plan = plan_for(fmt, dtype, rounding, overflow, _check_random_bits(rounding, random_bits, dtype))
        if plan.container > 32 and getattr(fmt, "bits", 0) > 32:  # constants beyond uint32
            require_jax_x64(f"chop of {dtype.name} to {fmt}")
        return _chop_jax(x, plan, key)
    arr = np.asarray(x)
    dtype = _check_dtype(arr.dtype)
    plan = plan_for(fmt, dtype, rounding, overflow, _check_random_bits(rounding, random_bits, dtype))
    rng = resolve_key(key, plan)
    if out is not None:
        _check_out(out, arr.shape, dtype)
    result = chop_numpy(arr, plan, rng, out)
    if type(x) is np.ndarray and key is None:
        _remember_lane(fmt_arg, rounding_arg, overflow, random_bits, dtype, plan)
    if out is not None:
        return out
    return result[()] if np.ndim(x) == 0 and not isinstance(x, np.ndarray) else result


def _remember_lane(fmt, rounding, overflow, random_bits, dtype, plan) -> None:
    try:
        key = (fmt if type(fmt) is str else id(fmt), rounding, overflow, random_bits, dtype)
        if key in _LANES:
            return
    except TypeError:
        return
    for maker in _LANE_MAKERS:
        f = maker(plan)
        if f is not None:
            if len(_LANES) >= _LANES_MAX:
                _LANES.clear()
            _LANES[key] = (fmt, f)  # holds fmt, so its id is not reused while cached
            return


def _check_out(out, shape, dtype) -> None:
    """Refuse an ``out=`` array that cannot hold chop's result."""
    want = f"a writable NumPy array of shape {tuple(shape)} and dtype {np.dtype(dtype).name}"
    if not isinstance(out, np.ndarray) or (type(out) is not np.ndarray and not isinstance(out, np.memmap)):
        raise TypeError(f"out must be {want} (or None), got {type(out).__module__}.{type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype}; it must be {want} (chop returns x's dtype)")
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape}; it must be {want} (x's shape)")
    if not out.flags.writeable:
        raise ValueError(f"out is read-only; it must be {want}")


def _check_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype in _xp.FLOAT_LAYOUTS:
        return dtype
    allowed = "float16, bfloat16, float32, float64"
    if dtype.kind == "f" and dtype.newbyteorder("=") in _xp.FLOAT_LAYOUTS:
        raise TypeError(
            f"x has the byte-swapped dtype {dtype.str}; chop rounds native-order floats ({allowed}): "
            "convert with x.astype(x.dtype.newbyteorder('='))"
        )
    if dtype.kind in "biu":
        raise TypeError(
            f"x has dtype {dtype}; chop rounds float arrays ({allowed}). "
            "Convert integers explicitly, e.g. x.astype(np.float64)."
        )
    if dtype.kind == "c":
        raise TypeError(
            f"x has dtype {dtype}; chop rounds real float arrays ({allowed}): "
            "round the real and imaginary parts separately (x.real, x.imag)"
        )
    if dtype.kind == "O":
        raise TypeError(
            f"x has dtype object; chop rounds float arrays ({allowed}): convert with np.asarray(x, np.float64)"
        )
    raise TypeError(f"x has dtype {dtype}; chop accepts {allowed} (convert exactly with x.astype(np.float32))")


def check_out_dtype(dtype) -> np.dtype:
    """The ``dtype=`` argument of ``decode``: a float dtype numfmt computes in."""
    try:
        d = np.dtype(dtype)
    except TypeError:
        d = None
    if d is None or d not in _xp.FLOAT_LAYOUTS:
        shown = repr(dtype) if d is None else d.str if d.kind == "f" else d.name
        raise TypeError(
            f"dtype={shown} is not a dtype decode returns: pass float16, bfloat16, float32, float64 (native byte "
            "order) or None"
        )
    return d


def _check_random_bits(rounding: Rounding, random_bits, dtype) -> int:
    limit = 63 if np.dtype(dtype).itemsize == 8 else 31
    if rounding in (Rounding.STOCHASTIC_A, Rounding.STOCHASTIC_B, Rounding.STOCHASTIC_C):
        if random_bits is None:
            raise ValueError(f"rounding={rounding.value!r} needs random_bits=N (1..{limit} for {dtype} input)")
        if not isinstance(random_bits, (int, np.integer)) or isinstance(random_bits, (bool, np.bool_)):
            raise TypeError(f"random_bits={random_bits!r} must be an int in 1..{limit} for {dtype} input")
        if not 1 <= random_bits <= limit:
            raise ValueError(
                f"random_bits={random_bits!r} is out of range; it must be an int in 1..{limit} for {dtype} input"
            )
        return int(random_bits)
    if random_bits is not None:
        raise ValueError(
            f"random_bits={random_bits!r} is only used by stochastic_a/_b/_c, not rounding={rounding.value!r}"
        )
    return limit if rounding.is_stochastic else 0


def _chop_jax(x, plan, key):
    key = resolve_key(key, plan, jax_input=True)
    if isinstance(key, np.random.Generator):  # an int seed: the bits NumPy input gets
        rbits = random_words(_xp.jax_namespace(), key, x.shape, plan.container)
        return _chop_jax_bits(x, plan, rbits)
    return _chop_jax_seeded(x, plan, None if key is None else seed_words(key))


def is_elementwise(fmt) -> bool:
    """Does ``chop`` round ``fmt`` element by element (through a plan)?"""
    return type(parse(fmt)) not in _CHOPPERS


def chop_seeded(x, fmt, rounding, seed):
    """``chop`` of a JAX array ``x`` into an elementwise format, random words from ``seed``.

    As ``chop`` with a key whose :func:`~numfmt.core.random.seed_words` are
    ``seed`` (four ``uint32`` words, None for deterministic modes):
    numfmt.emulate derives one ``seed`` per rounding site from one key.
    """
    fmt, rounding = parse(fmt), Rounding.parse(rounding)
    if not is_elementwise(fmt):
        raise TypeError(f"chop_seeded rounds elementwise formats; {fmt} is a block format: use chop with a key")
    dtype = _check_dtype(x.dtype)
    plan = plan_for(fmt, dtype, rounding, None, _check_random_bits(rounding, None, dtype))
    if plan.is_stochastic != (seed is not None):
        raise ValueError(f"rounding={rounding.value!r} needs seed words exactly when it is stochastic")
    return _chop_jax_seeded(x, plan, seed)


def _chop_jax_seeded(x, plan, seed):
    xp = _xp.jax_namespace()
    rbits = None if seed is None else hash_bits(xp, seed, 0, x.size, plan.container).reshape(x.shape)
    return _chop_jax_bits(x, plan, rbits)


def _chop_jax_bits(x, plan, rbits):
    import jax

    if plan.can_be_unrepresentable and isinstance(x, jax.core.Tracer):
        raise ValueError(
            f"chop of {x.dtype} to {plan.fmt} with rounding={plan.rounding.value!r} can give values "
            f"{x.dtype} cannot hold (the format reaches beyond it), which cannot be checked under "
            "tracing; pass a wider float dtype, e.g. float64"
        )
    if plan.can_be_unrepresentable:
        _, unrep = _chop_block(_xp.jax_namespace(), x, plan, rbits)
        if bool(unrep.any()):
            _raise_unrepresentable(x, unrep, plan)
    return _straight_through(plan)(x, rbits)


def straight_through(fn):
    """``fn(x, rbits)`` as a JAX function whose derivative in ``x`` is the identity."""
    import jax

    f = jax.custom_jvp(fn)

    @f.defjvp
    def f_jvp(primals, tangents):
        x, rbits = primals
        return f(x, rbits), tangents[0]

    return f


@functools.cache
def _straight_through(plan):
    xp = _xp.jax_namespace()
    for planner, complete_round_bits in _COMPLETE_PATHS:
        fast = planner(plan)
        if fast is not None and fast.complete:  # a few ops instead of the general kernel's ~40
            return straight_through(_short(xp, plan, fast, complete_round_bits))
    return straight_through(lambda x, rbits: _chop_block(xp, x, plan, rbits)[0])


def _short(xp, plan, fast, complete_round_bits):
    def short(x, rbits):
        u = xp.bitcast(x, xp.uint(plan.width))
        return xp.bitcast(complete_round_bits(xp, u, fast, rbits), x.dtype)

    return short
