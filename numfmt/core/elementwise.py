"""The elementwise driver on NumPy: cache-sized blocks, registered fast paths, rare elements.

``chop`` (numfmt.core.chop) hands a plan and an array here. The array is
rounded block by block; where a family registered a short sequence for the
common case (``register_fast_path``), it runs first and leaves its rare
elements (subnormals, overflow, NaN, ...) to the general kernel, a batch at a
time, so memory beyond the output stays a few blocks' worth.
"""

from __future__ import annotations

import numpy as np

from numfmt.core import xp as _xp
from numfmt.core.random import generator_bits, hash_bits, seed_words

__all__ = ["chop_numpy", "register_fast_path", "register_native"]

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


# Compiled kernels (numfmt.float.native): ``run(flat, dest, plan, rng, seed) -> bool``
# rounds ``flat`` into ``dest`` and returns True, or returns False where it does not
# take the plan (or a result is one the dtype cannot hold: the NumPy path raises).
_NATIVE: list = []


def register_native(run) -> None:
    """Add a compiled kernel, tried before the NumPy path (see ``_NATIVE``)."""
    _NATIVE.append(run)


def chop_numpy(x: np.ndarray, plan, rng, out=None):
    """Round the NumPy array ``x`` by ``plan``; ``rng``: None, a ``Generator`` or a JAX key.

    ``out``: None, or a writable array of ``x``'s shape and dtype (checked by the
    caller; it may be ``x``), which receives the result and is returned.
    """
    flat = np.ascontiguousarray(x).reshape(-1)
    # A Generator is a stream, drawn block by block; a JAX key seeds a hash of
    # the element index (numfmt.core.random): either way the bits do not depend
    # on the block size.
    seed = np.asarray(seed_words(rng)) if _xp.is_jax_array(rng) else None
    direct = _direct(out, flat, plan)
    dest = direct if direct is not None else np.empty_like(flat)
    if not any(native(flat, dest, plan, rng, seed) for native in _NATIVE):
        # the NumPy path reads rare elements back from ``flat`` after writing blocks: not in place
        dest = _chop_flat(flat, plan, rng, seed, None if dest is flat else dest)
    result = dest
    if out is None:
        return result.reshape(x.shape)
    if result is not direct:
        np.copyto(out, result.reshape(out.shape))
    return out


def _direct(out, flat, plan):
    """``out`` as a flat array the kernels may write into directly, or None."""
    if out is None or not out.flags.c_contiguous:
        return None
    dest = out.reshape(-1)
    if not np.may_share_memory(dest, flat):
        return dest
    same = dest.__array_interface__["data"][0] == flat.__array_interface__["data"][0] and dest.size == flat.size
    # in place: element i is read before it is written; a plan that can fail
    # (a result the dtype cannot hold) must leave the input intact for the error
    return flat if same and not plan.can_be_unrepresentable else None


def _chop_flat(flat, plan, rng, seed, out):
    """The NumPy path on the 1-d contiguous ``flat``, into ``out`` (or a new array)."""
    xp = _xp.NUMPY
    out = np.empty_like(flat) if out is None else out
    for planner, rounder in _FAST_PATHS:
        fast = planner(plan)
        if fast is not None:
            with np.errstate(all="ignore"):  # float sequences compute garbage in the rare lanes
                return _chop_numpy_fast(flat, plan, fast, rounder, rng, seed, out)
    for start in range(0, flat.size, _BLOCK):
        block = flat[start : start + _BLOCK]
        out[start : start + _BLOCK], unrep = _chop_block(xp, block, plan, _draw(xp, rng, seed, start, block.size, plan))
        if unrep is not None and unrep.any():
            _raise_unrepresentable(block, unrep, plan)
    return out


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
