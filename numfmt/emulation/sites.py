"""Rounding sites of :func:`numfmt.emulate`: work dtypes and key streams.

Every rounding the emulator performs goes through :func:`numfmt.chop` (one
correct rounding of its input). This module decides the dtype an operation
is computed in, checks that rounded values fit the dtype the traced function
stores them in, and hands each site its own random stream.
"""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core as _jcore

from numfmt.core import xp as _xp
from numfmt.core.chop import chop, chop_seeded, is_elementwise
from numfmt.core.names import parse
from numfmt.core.random import derive_words, derive_words_range, seed_words
from numfmt.fixed.format import FixedFormat
from numfmt.float.format import FloatFormat
from numfmt.posit.format import PositFormat

__all__ = [
    "FlushWarning",
    "Sites",
    "check_fits",
    "check_not_flushed",
    "convert",
    "fits",
    "fold",
    "is_float",
    "keep_infinities",
    "lacks_inf",
    "work_dtype",
]

# Operations whose exact result, rounded to float32 and then to a format of
# precision p <= 11 inside float32's normal range, is the correctly rounded
# result (float32 has p_work = 24 >= 2p + 2, so the double rounding is
# innocuous; Figueroa, "When is double rounding innocuous?", 1995).
EXACT_IN_FLOAT32 = frozenset({"add", "add_any", "sub", "mul", "div", "sqrt", "square", "convert_element_type", "rem"})

_FLOAT32_NORMAL_EXP = -126
_FLOAT32_MAX = float(np.finfo(np.float32).max)

# One rounding of a float64 result to precision p is the correct rounding of
# the exact result of +, -, *, /, sqrt only for p <= 25 (53 >= 2p + 2).
_FLOAT64_EXACT_PRECISION = 25


def value_box(fmt):
    """``(precision, largest magnitude, smallest positive magnitude)`` of ``fmt``'s values.

    Posits: precision ``n - 2 - es`` (the most fraction bits, at scale 0);
    fixed point: the bits of the largest code magnitude. None for formats
    that are not elementwise (block formats: their elements go through a
    matmul's input rounding only).
    """
    if isinstance(fmt, FloatFormat):
        return fmt.precision, fmt.max_value, fmt.smallest_subnormal
    if isinstance(fmt, PositFormat):
        return max(1, fmt.n - 2 - fmt.es), fmt.maxpos, fmt.minpos
    if isinstance(fmt, FixedFormat):
        return max(1, fmt.magnitude_bits), max(fmt.max_value, -fmt.min_value), fmt.resolution
    return None


def is_float(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.floating)


_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def convert(x, dtype, fmt=None):
    """Convert float ``x`` to float ``dtype``, exactly for values ``dtype`` holds.

    XLA:CPU flushes float32 subnormals in conversions between float32 (or
    bfloat16, which it widens through float32) and float64; this rebuilds them
    from their bits, unless ``x`` is known to hold values of ``fmt`` that are
    all zero or float32 normals. The derivative is that of an ordinary
    conversion.
    """
    dtype = np.dtype(dtype)
    x = jnp.asarray(x)
    src = np.dtype(x.dtype)
    if src == dtype or not is_float(src) or (src.itemsize < 8) == (dtype.itemsize < 8) or _normal32(fmt):
        return lax.convert_element_type(x, dtype)
    return _exact_convert(src, dtype)(x)


def _normal32(fmt) -> bool:
    """Is every nonzero value of ``fmt`` (None: unknown) a float32 normal?"""
    box = None if fmt is None else value_box(fmt)
    return box is not None and box[2] >= 2.0**_FLOAT32_NORMAL_EXP and box[1] <= _FLOAT32_MAX


@functools.cache
def _exact_convert(src, dtype):
    @jax.custom_jvp
    def conv(x):
        if dtype == _F64:
            x = lax.convert_element_type(x, _F32)
            mag = lax.bitcast_convert_type(x, jnp.uint32) & jnp.uint32(0x7FFFFFFF)
            tiny = lax.convert_element_type(mag, _F64) * 2.0**-149
            tiny = jnp.where(jnp.signbit(x), -tiny, tiny)
            return jnp.where(mag < 0x00800000, tiny, lax.convert_element_type(x, _F64))
        a = jnp.abs(x)
        small = a < 2.0**-126
        frac = lax.convert_element_type(jnp.where(small, a, 0.0) * 2.0**149, jnp.uint32)
        bits = frac | (lax.convert_element_type(jnp.signbit(x), jnp.uint32) << 31)
        y = jnp.where(small, lax.bitcast_convert_type(bits, jnp.float32), lax.convert_element_type(x, _F32))
        return lax.convert_element_type(y, dtype)

    conv.defjvp(lambda primals, tangents: (conv(primals[0]), lax.convert_element_type(tangents[0], dtype)))
    return conv


class FlushWarning(RuntimeWarning):
    """emulate computes values of a format that reach below float64's normal range on a backend that flushes them."""


_FLOAT64_NORMAL = 2.0**-1022


def check_not_flushed(fmt) -> None:
    """Warn (once per format) if ``fmt`` has values below 2**-1022 and JAX runs on the CPU.

    XLA:CPU flushes float64 subnormals as well as float32 ones (results
    become 0, inputs read as 0), and float64 is the widest work dtype, so an
    emulated result that small is 0 instead of rounded. That concerns only
    formats reaching below float64's normal range (float64 itself, a float
    with 11 or more exponent bits); GPUs keep float64 subnormals.
    """
    if _below_float64_normals(fmt) and jax.default_backend() == "cpu":
        _warn_flushed(fmt)


@functools.cache
def _below_float64_normals(fmt) -> bool:
    box = value_box(fmt)
    return box is not None and box[2] < _FLOAT64_NORMAL


@functools.cache
def _warn_flushed(fmt) -> None:
    warnings.warn(
        f"{fmt} has values below 2**-1022 (float64's subnormals), which XLA on the CPU flushes to zero: "
        "emulated results of that size come out as 0 instead of rounded, and such inputs read as 0. "
        "Results at or above 2**-1022 are not affected",
        FlushWarning,
        stacklevel=2,
    )


def exact_dtype(fmt, primitive: str):
    """The float dtype an exact primitive (comparison, max, neg, ...) on values of ``fmt`` runs in.

    float64 where ``fmt`` has nonzero values below float32's normal range:
    XLA on CPU flushes float32 subnormals to zero in comparisons and
    arithmetic, so ``x > 0`` or ``-x`` would be wrong for them there (and
    bfloat16 arrays are computed in float32). None (any dtype) otherwise.
    (emulate traces under ``jax.enable_x64(True)``: float64 is there whatever
    the global flag says.)
    """
    box = value_box(fmt)
    if box is None or box[2] >= 2.0**_FLOAT32_NORMAL_EXP:
        return None
    return _F64


def _float32_safe(fmt) -> bool:
    """p <= 11 and all products/quotients of the format's values are float32 normals.

    XLA on CPU flushes float32 subnormals, so the range condition is needed
    for bit accuracy, not only for speed.
    """
    if not isinstance(fmt, FloatFormat) or fmt.precision > 11:
        return False
    lo = fmt.emin - fmt.man_bits  # exponent of the smallest subnormal
    hi = fmt.emax + 1  # every finite value is below 2**hi
    return min(2 * lo, lo - hi) >= _FLOAT32_NORMAL_EXP and max(2 * hi, hi - lo) <= 127


def work_dtype(primitive: str, fmts) -> np.dtype:
    """The dtype ``primitive`` is computed in, for inputs/outputs in ``fmts``.

    float32 where that is provably exact (see ``EXACT_IN_FLOAT32``), else
    float64 (emulate traces under ``jax.enable_x64(True)``, so float64 is
    there whatever the global flag says). Transcendental functions and
    reductions are not correctly rounded by XLA: they are computed in float64
    and that result is rounded once.
    """
    if primitive in EXACT_IN_FLOAT32 and all(_float32_safe(f) for f in fmts):
        return np.dtype(np.float32)
    if primitive in EXACT_IN_FLOAT32:
        for f in fmts:
            box = value_box(f)
            if box is not None and _FLOAT64_EXACT_PRECISION < box[0] < 53:
                raise ValueError(
                    f"emulating {primitive} in {f} (precision {box[0]}) cannot be bit-accurate: numfmt "
                    f"computes it in float64 and rounds once, which is one correct rounding only for "
                    f"precision <= {_FLOAT64_EXACT_PRECISION}; use a narrower format for this operation"
                )
    return np.dtype(np.float64)


_DTYPE_FORMATS = {np.dtype(d): parse(n) for d, n in [(jnp.float16, "float16"), (jnp.bfloat16, "bfloat16"),
                                                     (jnp.float32, "float32"), (jnp.float64, "float64")]}  # fmt: skip


def fits(fmt, dtype) -> bool:
    """Does ``dtype`` hold every value of ``fmt`` (an elementwise format) exactly?"""
    values, box = value_box(fmt), _DTYPE_FORMATS.get(np.dtype(dtype))
    if values is None or box is None:
        return False
    precision, largest, smallest = values
    return precision <= box.precision and largest <= box.max_value and smallest >= box.smallest_subnormal


def check_fits(fmt, dtype, where: str) -> None:
    """Raise unless every value of ``fmt`` is exactly representable in ``dtype``."""
    dtype = np.dtype(dtype)
    values = value_box(fmt)
    if values is None:
        raise TypeError(
            f"{where}: {type(fmt).__name__} {fmt} can only be a matmul input format (matmul_in=) in a "
            "policy; use an elementwise float, posit or fixed-point format here"
        )
    box = _DTYPE_FORMATS.get(dtype)
    if box is None:
        raise TypeError(f"{where}: values of dtype {dtype} cannot hold {fmt}; use float32 or float64")
    if not fits(fmt, dtype):
        raise ValueError(
            f"{where}: the traced function stores this value as {dtype.name}, which cannot hold every "
            f"value of {fmt}; run the function in a wider dtype (e.g. pass float32 or float64 arrays)"
        )


@functools.cache
def lacks_inf(fmt) -> bool:
    """Is ``fmt`` an elementwise format that rounds an infinity to something else (NaN, NaR, +-max)?"""
    if not is_elementwise(fmt):
        return False
    return not bool(np.isinf(np.asarray(chop(np.float64(np.inf), fmt))))  # NumPy: never traced


def keep_infinities(x, out, fmt):
    """``out`` (``x`` rounded into ``fmt``) with ``x``'s infinities kept where ``fmt`` has none.

    A format without infinities (posits, fixed point, ``fn``/``fnuz`` and
    finite floats) would turn the ``-inf`` of a mask or of ``max``'s identity
    into NaN/NaR or its largest value. emulate carries such a value as an
    infinity of the float dtype instead: an element of ``x`` that is +-inf, or
    finite with float32's largest magnitude or more (``jnp.finfo(float32).min``
    and ``finfo(float64).min`` masks, which round to -inf in every IEEE format
    narrower than their dtype), becomes +-inf. (For a format whose own range
    reaches float32's largest value, only the dtype's largest magnitude does.)
    NaN stays NaN; every other element is ``out``. The derivative at those
    elements is zero.
    """
    if not lacks_inf(fmt):
        return out
    x = jnp.asarray(x)
    big = jnp.abs(x) >= (_FLOAT32_MAX if value_box(fmt)[1] < _FLOAT32_MAX else jnp.finfo(x.dtype).max)
    inf = jnp.asarray(np.inf, out.dtype)
    return jnp.where(big, jnp.where(x > 0, inf, -inf), out)


def _opaque_identity(u):
    """``u`` (an unsigned integer array), through an integer division XLA cannot see is by 1.

    XLA fuses cheap elementwise producers into every consumer, duplicating
    them; a division by a non-constant is "expensive" to its fusion pass, so
    the value is computed once and stored. The divisor, ``(u >> (bits - 1)) | 1``,
    is 1 for every element, which LLVM proves from the known bits and drops:
    the division costs nothing at run time (measured: a copy's time).
    """
    bits = u.dtype.itemsize * 8
    return u // ((u >> np.array(bits - 1, u.dtype)) | np.array(1, u.dtype))


_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


@jax.custom_jvp
def materialize(x):
    """``x``, bit for bit, computed once where XLA would otherwise recompute it in every consumer."""
    x = jnp.asarray(x)
    if x.size == 0:
        return x
    u = lax.bitcast_convert_type(x, _UINT[x.dtype.itemsize])
    return lax.bitcast_convert_type(_opaque_identity(u), x.dtype)


materialize.defjvp(lambda primals, tangents: (materialize(primals[0]), tangents[0]))


def _trace_state():
    """An object equal to itself only within one JAX trace (None where this JAX lacks it)."""
    get = getattr(_jcore, "get_opaque_trace_state", None)
    return None if get is None else get(convention="nnx")


def fold(words, index):
    """The seed words of iteration ``index`` (traced) of a loop whose draw was ``words`` (None: None)."""
    return None if words is None else derive_words(_xp.jax_namespace(), words, index)


class Sites:
    """Counts the draws of randomness of one traced body and gives each its own seed.

    The top-level body gets ``key`` (raw ``uint32`` key data, or None for a
    deterministic policy); the key's generator runs once, for the body's four
    seed words (:func:`~numfmt.core.random.seed_words`). Draw ``i`` of a body (a
    rounding site, a nested body, a loop, an accumulator) gets the words
    ``derive_words(words, i)``: counter-hash outputs, distinct per draw, so
    nothing runs the key's generator again (``fold_in`` plus the generator per
    site and per nested body made stochastic policies slow to compile). Nested
    bodies are children with their own words; a loop's iteration ``t`` gets
    ``derive_words(loop_words, t)``. Block-format sites, whose ``chop`` takes a
    key, get a threefry key made of the first two words of their draw. The
    words are derived ``BLOCK`` draws at a time (one hash instead of one per
    draw: the same words, a smaller program), within one JAX trace.
    """

    BLOCK = 32  # seed words are derived for this many draws at a time

    def __init__(self, key=None, words=None):
        self.key = key
        self.count = 0
        self._words = words
        self._blocks = {}  # block number -> (trace state, its (BLOCK, 4) words)

    def next_words(self):
        """Four fresh seed words, or None under a deterministic policy."""
        if self._words is None:
            if self.key is None:
                return None
            self._words = seed_words(self.key)
        self.count += 1
        state = _trace_state()
        if state is None or self.BLOCK == 1:
            return _opaque_identity(derive_words(_xp.jax_namespace(), self._words, self.count))
        block, slot = divmod(self.count, self.BLOCK)
        got = self._blocks.get(block)
        if got is None or got[0] != state:  # not yet, or derived in another trace (a nested body's)
            words = derive_words_range(_xp.jax_namespace(), self._words, block * self.BLOCK, self.BLOCK)
            got = self._blocks[block] = (state, _opaque_identity(words))
        return got[1][slot]

    def next_seed(self, fmt):
        """Randomness for the next site rounding to ``fmt``: seed words, or a key for block formats."""
        words = self.next_words()
        if words is None or is_elementwise(fmt):
            return words
        return jax.random.wrap_key_data(words[:2], impl="threefry2x32")  # whatever the default generator

    def child(self, words) -> Sites:
        """The sites of a nested body (or loop iteration) seeded by ``words`` (None: deterministic)."""
        return Sites(words=words)

    def round(self, x, fmt, rounding):
        """Round ``x`` (any float dtype) into ``fmt``.

        In a format without infinities, infinities are kept (see :func:`keep_infinities`).
        """
        seed = self.next_seed(fmt) if rounding.is_stochastic else None
        return keep_infinities(x, _jitted_chop(fmt, rounding)(x, seed), fmt)


def _chop(x, fmt, rounding, seed):
    """``chop`` with the randomness :meth:`Sites.next_seed` gave (seed words, or a key for block formats)."""
    if seed is not None and is_elementwise(fmt):
        return chop_seeded(x, fmt, rounding, seed)
    return chop(x, fmt, rounding, key=seed)


@functools.cache
def _jitted_chop(fmt, rounding):
    # One jitted function per (format, rounding): JAX lowers it once per input
    # signature and reuses it at every site, which keeps compile time down.
    return jax.jit(lambda x, seed: _chop(x, fmt, rounding, seed))
