"""``numfmt.chop``: round an array into a format, returned in its own dtype."""

from __future__ import annotations

import functools

import numpy as np

from numfmt.core import xp as _xp
from numfmt.core.names import parse
from numfmt.core.random import generator_bits, hash_bits, resolve_key, seed_words
from numfmt.core.rounding import Overflow, Rounding
from numfmt.core.xp import require_jax_x64

__all__ = [
    "chop",
    "check_out_dtype",
    "plan_for",
    "register_chop",
    "register_elementwise",
    "register_fast_path",
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


def register_elementwise(cls: type, planner) -> None:
    """Route ``chop`` of formats of type ``cls`` through the shared driver."""
    _PLANNERS[cls] = planner


def register_chop(cls: type, chopper) -> None:
    """Route ``chop(x, fmt, ...)`` of formats of type ``cls`` to ``chopper``.

    ``chopper(x, fmt, rounding, overflow=, key=, random_bits=)`` receives the
    parsed format and the arguments as the user gave them.
    """
    _CHOPPERS[cls] = chopper


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

# NumPy inputs are processed in blocks small enough for the temporaries of the
# elementwise passes to stay in cache: each pass then costs a cache read, and
# main memory sees one read of the input and one write of the output.
_BLOCK = 1 << 14
# The short sequences (numfmt.float.fast) write into a few work arrays instead of
# allocating: their blocks, in bytes, can be longer (fewer Python calls per
# element) and still stay in the L2 cache.
_FAST_BLOCK = 1 << 18
# The fast path's rare elements wait until this many have gathered, then go
# through the general kernel together (its temporaries: ~100 bytes each).
_RARE = 1 << 16
# Where more than 1/16 of a block lies outside the fast path's range, the block
# goes through the general kernel instead, and so do the next _SKIP blocks.
_SKIP = 8


def chop(x, fmt, rounding="nearest_even", *, overflow=None, key=None, random_bits=None):
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

    Returns:
      The rounded values, same shape and dtype as ``x`` (a NumPy scalar for a
      scalar input).

    Special values: NaN stays NaN (also for formats without NaN, where it is
    not a value of the format; :func:`numfmt.encode` refuses it). +-inf and
    overflow follow the overflow policy (see :class:`Overflow`); -0 is kept
    where the format has -0 and becomes +0 otherwise; an underflow to zero
    keeps the sign likewise. Unsigned formats turn negative inputs into NaN.

    Raises:
      TypeError: ``x`` is not a float array of a supported dtype, is an
        ndarray subclass such as a masked array or ``np.matrix`` (whose mask
        or type the result would drop), or ``key`` is of the wrong kind.
      ValueError: an unknown format, rounding or overflow name; a missing or
        unexpected ``key``/``random_bits``, a negative seed, a batch of JAX
        keys; a format of more than 32 bits on JAX with ``jax_enable_x64``
        off; or a result the dtype of ``x``
        cannot hold (e.g. 65504 in float16 rounded to 3 fraction bits is 65536:
        pass float32 input). Under ``jax.jit`` that last check is static: the
        call is refused at trace time when such a result is possible.

    Examples:
      >>> import numpy as np, numfmt
      >>> numfmt.chop(np.array([1.0, 0.1, 1e6], np.float32), "float8_e4m3fn")
      array([1.       , 0.1015625,       nan], dtype=float32)
      >>> float(numfmt.chop(1 + 2.0**-8 + 2.0**-40, "bfloat16"))
      1.0078125
    """
    _xp.refuse_subclass(x, "x", "chop")
    fmt = parse(fmt)
    if type(fmt) in _CHOPPERS:
        return _CHOPPERS[type(fmt)](x, fmt, rounding, overflow=overflow, key=key, random_bits=random_bits)
    rounding = Rounding.parse(rounding)
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
    out = _chop_numpy(arr, plan, rng)
    return out[()] if np.ndim(x) == 0 and not isinstance(x, np.ndarray) else out


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


def _widen(xp, bits, plan):
    return xp.astype(bits, xp.uint(plan.container)) if plan.width < plan.container else bits


def _chop_block(xp, x, plan, rbits):
    u = _widen(xp, xp.bitcast(x, xp.uint(plan.width)), plan)
    out, unrep = plan.round_bits(xp, u, rbits)
    if plan.width < plan.container:
        out = xp.astype(out, xp.uint(plan.width))
    return xp.bitcast(out, x.dtype), unrep


def _raise_unrepresentable(x, unrep, plan):
    first = np.asarray(x).reshape(-1)[np.asarray(unrep).reshape(-1)][0]
    raise ValueError(
        f"chop to {plan.fmt} gives results that {np.dtype(x.dtype).name} cannot hold "
        f"({int(np.count_nonzero(unrep))} elements, first input {float(first)!r}); "
        + (
            "pass a wider float dtype (e.g. float64), or an overflow policy that saturates"
            if np.dtype(x.dtype).itemsize < 8
            else "float64 is the widest input: clip x to a range whose results float64 holds, or use a narrower format"
        )
    )


def _draw(xp, rng, seed, start, n, plan):
    """Random words for elements ``start .. start + n - 1`` (None for deterministic modes)."""
    if seed is not None:
        return hash_bits(xp, seed, start, n, plan.container)
    return generator_bits(rng, n, plan.container) if rng is not None else None


def _chop_numpy(x: np.ndarray, plan, rng):
    xp = _xp.NUMPY
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    # A Generator is a stream, drawn block by block; a JAX key seeds a hash of
    # the element index (numfmt.core.random): either way the bits do not depend
    # on the block size.
    seed = np.asarray(seed_words(rng)) if _xp.is_jax_array(rng) else None
    for planner, rounder in _FAST_PATHS:
        fast = planner(plan)
        if fast is not None:
            with np.errstate(all="ignore"):  # float sequences compute garbage in the rare lanes
                return _chop_numpy_fast(flat, plan, fast, rounder, rng, seed, out).reshape(x.shape)
    for start in range(0, flat.size, _BLOCK):
        block = flat[start : start + _BLOCK]
        out[start : start + _BLOCK], unrep = _chop_block(xp, block, plan, _draw(xp, rng, seed, start, block.size, plan))
        if unrep is not None and unrep.any():
            _raise_unrepresentable(block, unrep, plan)
    return out.reshape(x.shape)


# Short sequences for the common case (numfmt.float.fast, _fixed_fast, _posit_fast):
# ``planner(plan)`` gives constants or None, ``rounder`` has the signature of
# ``fast_round_bits``.
# Families register them with register_fast_path (float first: the order tried).
_FAST_PATHS: list = []
# ``(planner, complete_rounder)``: a short sequence that rounds every element
# itself (``fast.complete``), used under JAX instead of the general kernel.
_COMPLETE_PATHS: list = []


def register_fast_path(planner, rounder, complete=None) -> None:
    """Add a short sequence for the common case of elementwise formats.

    ``planner(plan)`` gives the sequence's constants, or None where it does not
    apply; ``rounder(xp, u, fast, rbits, work)`` returns ``(patterns, rare
    mask)`` and leaves the rare elements to the general kernel. ``complete``,
    where given, is ``complete(xp, u, fast, rbits) -> patterns`` for the fast
    plans with ``fast.complete`` set (no rare elements at all).
    """
    _FAST_PATHS.append((planner, rounder))
    if complete is not None:
        _COMPLETE_PATHS.append((planner, complete))


def _chop_numpy_fast(flat, plan, fast, rounder, rng, seed, out):
    """The short sequence (numfmt.float.fast) block by block; the rare elements go
    through the general kernel a few thousand at a time.

    The passes write into work arrays and the output (NumPy allocations of a
    block's size cost more than the passes). A block with many rare elements
    goes through the general kernel instead, and so do the next few. The rare
    elements are kept as indices (zeros left out: the sequence gets them
    right), so the memory beyond the output stays a few blocks' worth.
    """
    xp, U = _xp.NUMPY, np.dtype(f"uint{plan.width}")
    size = _FAST_BLOCK // U.itemsize
    bits, out_bits = flat.view(U), out.view(U)
    m = min(size, flat.size)
    work = np.empty((2, m), U)
    flags = np.zeros(m, bool)
    rare = _Rare(flat, out, plan)
    skip = 0
    for start in range(0, flat.size, size):
        stop = min(start + size, flat.size)
        n, u = stop - start, bits[start:stop]
        rbits = _draw(xp, rng, seed, start, n, plan)
        if skip == 0:
            buffers = (out_bits[start:stop], work[0, :n], work[1, :n], flags[:n])
            _, mask = rounder(xp, u, fast, rbits, buffers)
            count = np.count_nonzero(mask)
            if count <= n >> 4 or count - np.count_nonzero((u << 1) == 0) <= n >> 4:
                if count:
                    flags[n:] = False
                    rare.add(start, u, flags, rbits)
                continue
            skip = _SKIP
        skip -= 1
        out[start:stop], _ = _chop_block(xp, flat[start:stop], plan, rbits)  # never unrepresentable
    rare.flush()
    return out


class _Rare:
    """Rare elements of the fast path, rounded by the general kernel once ``_RARE`` of them wait."""

    def __init__(self, flat, out, plan):
        self.flat, self.out, self.plan = flat, out, plan
        self.idx, self.rbits, self.count = [], [], 0

    def add(self, start, u, flags, rbits):
        """Keep the nonzero elements of block ``u`` (from ``start``) that ``flags`` marks."""
        idx = np.flatnonzero(flags)
        idx = idx[(u[idx] << 1) != 0]  # zeros are right already
        if idx.size:
            self.idx.append(idx + start)
            if rbits is not None:
                self.rbits.append(rbits[idx])
            self.count += idx.size
            if self.count >= _RARE:
                self.flush()

    def flush(self):
        if self.count:
            idx = np.concatenate(self.idx)
            rbits = np.concatenate(self.rbits) if self.rbits else None
            self.out[idx], _ = _chop_block(_xp.NUMPY, self.flat[idx], self.plan, rbits)
        self.idx, self.rbits, self.count = [], [], 0


def _chop_jax(x, plan, key):
    key = resolve_key(key, plan, jax_input=True)
    if isinstance(key, np.random.Generator):  # an int seed: the bits NumPy input gets
        rbits = _xp.jax_namespace().asarray(generator_bits(key, x.size, plan.container).reshape(x.shape), None)
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
