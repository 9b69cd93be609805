"""The NumPy driver of block and scaled chops: a few thousand elements at a time.

The block kernels (numfmt.block.chop, _nvfp4, _nf4, _scaled_kernel) compute
in 64-bit work integers, a dozen temporaries per element. Run on a whole
array they would need many times its size; run here, chunk by chunk, they
need a fixed few megabytes beyond the output (and the temporaries stay in
cache). Each chunk is cut from the input in place and zero-padded on its
own, so no blocked copy of the whole input is made, and random words are
drawn per chunk, in the order of the flat index of the blocked array (a
Generator's stream and a JAX key's hash give the same words as one draw).
"""

from __future__ import annotations

import numpy as np

from numfmt.core.random import generator_bits, hash_bits, seed_words
from numfmt.core.xp import NUMPY

__all__ = ["chunks", "drawer", "in_chunks", "rows", "unrows"]

_CHUNK = 1 << 16  # elements per NumPy pass: the temporaries (~200 bytes per element) stay in cache


def rows(x, axis, front: bool = False):
    """``(m, shape)``: ``x`` as a 2-D array and the shape to give results back.

    ``front=False``: the rows of ``m`` run along ``axis`` (blocks, groups).
    ``front=True``: row ``i`` holds every element of index ``i`` along
    ``axis`` (channels). ``axis=None``: one row (the tensor). ``m`` is a view
    of ``x`` wherever NumPy can make one, else a copy.
    """
    if axis is None:
        y = x
        shape = (1, x.size)
    else:
        y = np.moveaxis(x, axis, 0 if front else -1)
        rest = int(np.prod(y.shape[1:] if front else y.shape[:-1], dtype=np.int64))
        shape = (y.shape[0], rest) if front else (rest, y.shape[-1])
    return y.reshape(shape), y.shape  # a view where one exists, else one copy


def unrows(m, shape, axis, front: bool = False):
    """Inverse of :func:`rows` for results ``m`` (``shape`` from :func:`rows`)."""
    y = m.reshape(shape)
    return y if axis is None else np.moveaxis(y, 0 if front else -1, axis)


def drawer(key):
    """None, or ``draw(start, n)``: 64-bit random words of flat indices ``start .. start + n - 1``
    (NumPy ``Generator``: the next ``n`` words of its stream; JAX key: hashed)."""
    if key is None:
        return None
    if isinstance(key, np.random.Generator):
        return lambda start, n: generator_bits(key, n, 64)
    seed = np.asarray(seed_words(key))
    return lambda start, n: hash_bits(NUMPY, seed, start, n, 64)


def _max(p, q):
    return tuple(np.maximum(a, b) for a, b in zip(p, q, strict=True))


def in_chunks(fn, m, b: int, draw=None, stats=None):
    """Apply a block kernel to 2-D ``m``, whose rows are split into groups of
    ``b`` consecutive elements (a trailing partial group zero-padded).

    Args:
      fn: ``fn(blocks, rbits) -> (out, unrep)`` for blocks of shape
        ``(k, nb, b)``, random words like them (or None); with ``stats``,
        ``fn(blocks, rbits, group_stats)`` for pieces of one group.
      m: the 2-D input (see :func:`rows`).
      b: the group size.
      draw: from :func:`drawer` (None: deterministic).
      stats: for groups longer than a chunk: ``stats(piece) -> tuple`` of
        per-group reductions (shape ``(1, 1, 1)``) of a piece of shape
        ``(1, 1, w)`` that combine by ``np.maximum``. The group is then read
        twice: once for its stats, once for the elements. Without it such a
        group is one chunk.

    Returns:
      ``(out, count)``: results shaped like ``m``, and the number of nonzero
      entries of the ``unrep`` masks.
    """
    g, n = m.shape
    nb = -(-n // b)
    lp = nb * b  # padded row length
    out = np.empty((g, n), m.dtype)
    count = 0
    if g == 0 or n == 0:
        return out, count
    if b > _CHUNK and stats is not None:
        for i in range(g):
            for j in range(0, lp, b):
                end = min(j + b, n)
                st = None
                for c in range(j, end, _CHUNK):
                    part = stats(m[i, c : min(c + _CHUNK, end)].reshape(1, 1, -1))
                    st = part if st is None else _max(st, part)
                for c in range(j, j + b, _CHUNK):
                    e = min(c + _CHUNK, j + b)
                    r = None if draw is None else draw(i * lp + c, e - c)
                    w = min(e, n) - c
                    if w > 0:
                        piece = m[i, c : c + w].reshape(1, 1, w)
                        o, unrep = fn(piece, None if r is None else r[:w].reshape(1, 1, w), st)
                        out[i, c : c + w] = o.reshape(-1)
                        count += int(np.count_nonzero(unrep))
        return out, count
    per = max(1, _CHUNK // b) * b  # elements of a chunk along a row: whole groups
    step = max(1, per // lp)  # rows per chunk
    for i in range(0, g, step):
        for c in range(0, lp, per):
            wp = min(per, lp - c)  # padded width
            blk = m[i : i + step, c : c + wp]
            k, w = blk.shape
            if w < wp:
                blk = np.pad(blk, [(0, 0), (0, wp - w)])
            r = None if draw is None else draw(i * lp + c, k * wp).reshape(k, wp // b, b)
            o, unrep = fn(blk.reshape(k, wp // b, b), r)
            out[i : i + k, c : c + w] = o.reshape(k, wp)[:, :w]
            count += int(np.count_nonzero(unrep))
    return out, count


def chunks(m):
    """Pieces of 2-D ``m`` of about ``_CHUNK`` elements (for reductions)."""
    g, n = m.shape
    step = max(1, _CHUNK // max(n, 1))
    for i in range(0, g, step):
        for c in range(0, n, _CHUNK):
            yield m[i : i + step, c : c + _CHUNK]
