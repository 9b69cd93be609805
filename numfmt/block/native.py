"""The compiled kernel of block formats (``numfmt.block._ckernel``).

``chop`` of a block format on float32 or float64 NumPy input runs the C kernel
where it is built: per block, amax, the scale and the elements in one visit
(the block stays in cache), with the GIL released. Power-of-two scales (MXFP8,
MXFP6, MXFP4, MXINT8, block floating point) follow
:func:`numfmt.block.chop.quantize`; nearest even and ``"stochastic"`` on float
elements with subnormals and on integer elements take a vectorized loop on the
input's own bits (:mod:`numfmt.block.direct`'s argument). NVFP4-style scales
(:mod:`numfmt.block.nvfp4`) are served for float32 input (the tensor amax is
one more pass). The results are the NumPy path's bit for bit, stochastic modes
included: the random word of each element is the one the NumPy path gives the
same flat index of the zero-padded blocked array (a JAX key's counter hash
computed in C, or a NumPy ``Generator``'s words drawn here in the same order).
Table elements (NF4), float16/bfloat16 input, NVFP4 on float64 input and JAX
arrays take the NumPy path. The extension is optional and switched off with the
other kernels (:mod:`numfmt.core.native`).
"""

from __future__ import annotations

import dataclasses
import functools
from fractions import Fraction

import numpy as np

from numfmt.block.direct import direct_ok
from numfmt.block.format import InfPolicy
from numfmt.block.int_element import _IntPlan
from numfmt.block.nvfp4 import _odd_split, _rint_ok, tensor_scale
from numfmt.core.chop import plan_for
from numfmt.core.native import Loader, pack_plan
from numfmt.core.random import generator_bits, seed_words
from numfmt.core.rounding import Overflow, Rounding
from numfmt.core.xp import NUMPY
from numfmt.float import native as float_native
from numfmt.float.format import FloatFormat
from numfmt.float.kernel import Plan, make_plan

__all__ = ["available", "chop_rows", "nvfp4_rows"]

_FIELDS = 27
_DRAW = 1 << 16  # random words drawn from a Generator at a time (whole blocks)
_NO_SEED = (0, 0, 0, 0)


@functools.lru_cache(maxsize=256)
def _packed(plan) -> tuple[bytes, bytes] | None:
    """``(block plan, element plan)`` as the C kernel reads them (None: a plan it does not take)."""
    if plan.dtype not in (np.dtype(np.float32), np.dtype(np.float64)) or not plan.fmt.pow2_scale:
        return None
    ep = plan.elem_plan
    is_int = isinstance(ep, _IntPlan)
    inner = ep.inner if is_int else ep
    if not isinstance(inner, Plan) or inner.width != plan.work[2]:
        return None
    eplan = float_native._packed(inner)
    if eplan is None:
        return None
    fmt, elem = plan.fmt, plan.fmt.elem
    width = plan.dtype.itemsize * 8
    in_man = 23 if width == 32 else 52
    we, wm, ww = plan.work
    direct = plan.direct or (is_int and plan.rounding is Rounding.NEAREST_EVEN and _int_direct(plan, in_man))
    if plan.rounding in _DIRECT_MODES and ww == width:  # the direct loops of the other modes
        direct = _float_direct(plan) or (is_int and _int_direct(plan, in_man))
    m = q_off = 0
    caps = [(0, 1, 0), (0, 1, 0)]  # (k, sig, top) of the positive and negative caps: sig * 2**(e + k - top)
    if direct and not is_int:
        m, q_off = elem.man_bits, elem.emin - elem.man_bits
        sig = Fraction(elem.max_value) / Fraction(2) ** fmt.elem_emax * 2**m
        caps = [(fmt.elem_emax, int(sig), m)] * 2
    elif direct:
        q_off = -elem.frac_bits
        caps = [(k.bit_length() - 1 - elem.frac_bits, k, k.bit_length() - 1) for k in (elem.max_int, -elem.min_int)]
    f = [
        width,
        in_man,
        2 ** (10 if width == 64 else 7) - 1,
        we,
        wm,
        ww,
        fmt.block_size,
        plan.e_lo,
        plan.e_hi,
        fmt.elem_emax,
        plan.threshold is not None,
        0 if plan.threshold is None else min(plan.threshold, 2**ww - 1),
        plan.strict,
        fmt.inf is InfPolicy.SATURATE,
        direct,
        m,
        q_off,
        *caps[0],
        *caps[1],
        is_int,
        ep.pos_bits if is_int else 0,
        ep.neg_bits if is_int else 0,
        is_int and elem.sign_magnitude,
    ]
    return pack_plan(f, _FIELDS), eplan


def _int_direct(plan, in_man: int) -> bool:
    """Whether integer elements take the kernel's direct rounding: the deterministic modes and
    "stochastic", results the dtype holds (``numfmt.block.direct``'s argument, with a fixed quantum per block)."""
    return plan.rounding in _DIRECT_MODES and not plan.maybe_lost and plan.fmt.elem.bits - 1 <= in_man


def _float_direct(plan) -> bool:
    """:func:`numfmt.block.direct.direct_ok` for float elements, whatever the rounding."""
    elem = plan.fmt.elem
    return isinstance(elem, FloatFormat) and direct_ok(dataclasses.replace(plan, rounding=Rounding.NEAREST_EVEN))


# The modes the direct loops serve (nearest even also where the work layout is not the input's).
_DIRECT_MODES = (
    Rounding.NEAREST_EVEN,
    Rounding.NEAREST_AWAY,
    Rounding.TOWARD_ZERO,
    Rounding.TOWARD_POSITIVE,
    Rounding.TOWARD_NEGATIVE,
    Rounding.TO_ODD,
    Rounding.STOCHASTIC,
)
_KERNEL = Loader("numfmt.block._ckernel", _FIELDS, _packed)
_NV_FIELDS = 8


@functools.lru_cache(maxsize=64)
def _nv_packed(fmt, rounding: Rounding, n: int) -> tuple[bytes, bytes, tuple] | None:
    """NVFP4's element and scale plans as the C kernel reads them, and the constants of its
    plan after the block size and ``g``: ``max_elem = en * 2**ee``, and the facts of the
    element rounding's vector loop (0: none, 1: nearest even, 2: stochastic; ``m``, ``emin``,
    ``max_elem``'s float64 pattern)."""
    elem = plan_for(fmt.elem, np.float64, rounding, Overflow.SAT_FINITE, n)
    scale = make_plan(fmt.scale, np.dtype(np.float64), Rounding.NEAREST_EVEN, Overflow.SAT_FINITE, 0)
    eplan, splan = float_native._packed(elem), float_native._packed(scale)
    if eplan is None or splan is None or getattr(_KERNEL.ext, "NV_FIELDS", None) != _NV_FIELDS:
        return None
    en, ee = _odd_split(Fraction(fmt.elem.max_value))
    top = int(np.float64(float(fmt.elem.max_value)).view(np.uint64))
    fast = 1 if _rint_ok(fmt, rounding) else 0
    if rounding is Rounding.STOCHASTIC and _rint_ok(fmt, Rounding.NEAREST_EVEN) and fmt.elem.has_negative_zero:
        fast = 2  # the stochastic variant of the loop
    rint = (fast, fmt.elem.man_bits, fmt.elem.emin & 0xFFFFFFFFFFFFFFFF, top)
    return eplan, splan, (en, ee & 0xFFFFFFFFFFFFFFFF, *rint)


def nvfp4_rows(fmt, dtype, rounding: Rounding, n: int, m: np.ndarray, key):
    """``(results, count)`` of NVFP4-style chop of float32 rows ``m`` as
    :func:`numfmt.block.nvfp4_driver.nvfp4_chop` computes them (tensor amax, tensor
    scale, then each block in one visit), or None where the kernel does not take them."""
    if dtype != np.dtype(np.float32) or not _KERNEL.available():
        return None
    packed = _nv_packed(fmt, rounding, n)
    if packed is None:
        return None
    eplan, splan, consts = packed
    m = np.ascontiguousarray(m)
    amax = _KERNEL.ext.finite_amax(m)
    g = int(tensor_scale(NUMPY, fmt, np.uint64(amax), dtype))
    nplan = pack_plan([fmt.block_size, g, *consts], _NV_FIELDS)
    return _rows(m, fmt.block_size, key, lambda *a: _KERNEL.ext.nvfp4_into(nplan, eplan, splan, *a))


def available() -> bool:
    """True when block chops use the compiled kernel (built, importable, and not switched off)."""
    return _KERNEL.available()


def chop_rows(plan, m: np.ndarray, key, dst=None):
    """``(results, count)`` of the rows ``m`` (see :func:`numfmt.block.chunks.rows`) as
    :func:`numfmt.block.chunks.in_chunks` gives them, or None where the kernel does not take ``plan``.

    ``key``: None, a NumPy ``Generator`` or a JAX key (see :func:`numfmt.core.chop.resolve_key`).
    ``dst``: None, or a C-contiguous array of ``m``'s shape and dtype, apart from ``m``, that
    receives the results (and is returned as them).
    """
    if not _KERNEL.available():
        return None
    packed = _packed(plan)
    if packed is None:
        return None
    bplan, eplan = packed
    run = lambda *a: _KERNEL.ext.block_into(bplan, eplan, *a)  # noqa: E731
    return _rows(np.ascontiguousarray(m), plan.fmt.block_size, key, run, dst)


def _rows(m, b: int, key, run, dst=None):
    """Run ``run(src, dst, n, k0, k1, rmode, seed, rbits)`` over the blocks of rows ``m``:
    ``(results, count)``; a Generator's words are drawn here, a piece at a time."""
    g, n = m.shape
    out = np.empty_like(m) if dst is None else dst
    if g == 0 or n == 0:
        return out, 0
    blocks = g * -(-n // b)
    if key is None:
        count = run(m, out, n, 0, blocks, 0, _NO_SEED, None)
    elif isinstance(key, np.random.Generator):
        count, step = 0, max(1, _DRAW // b)
        for k in range(0, blocks, step):
            k1 = min(k + step, blocks)
            count += run(m, out, n, k, k1, 2, _NO_SEED, generator_bits(key, (k1 - k) * b, 64))
    else:
        seed = tuple(int(w) for w in np.asarray(seed_words(key)).reshape(-1))
        count = run(m, out, n, 0, blocks, 1, seed, None)
    if count < 0:
        raise RuntimeError("numfmt's block kernel refused contiguous arrays (a bug: please report it)")
    return out, count
