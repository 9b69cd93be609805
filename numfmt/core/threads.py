"""How many threads the compiled kernels split a large array across (``numfmt.set_num_threads``).

The compiled kernels (:mod:`numfmt.core.native`) cut a large array into
ranges and round them in up to ``n`` POSIX threads, created for the call: at
least ``2**17`` elements a thread for the vector loops (float32/float64 input of
the common formats), ``2**13`` for the one-element-at-a-time loops (16-bit
input, unusual formats), since a thread costs some 10-20 microseconds to
start and join (numfmt/core/_threads.h). Smaller arrays, and builds without
pthreads such as Windows, run in the calling thread. The results do not depend
on ``n``: each element's rounding, and its random word under stochastic rounding,
depends on its flat index only.

The default is 1 (no threads), or the environment variable
``NUMFMT_NUM_THREADS``, read when a kernel is first loaded (or at the first
:func:`get_num_threads`). A value there that is not an int in 1..256 is a
warning (:class:`ThreadsWarning`) and leaves 1: the setting changes speed only,
never results, so a bad one in a job's environment does not stop the job.
"""

from __future__ import annotations

import os
import warnings

__all__ = ["ENV", "MAX_THREADS", "ThreadsWarning", "get_num_threads", "set_num_threads", "subscribe"]

ENV = "NUMFMT_NUM_THREADS"
MAX_THREADS = 256  # NF_MAX_THREADS of numfmt/core/_threads.h

_count: int | None = None  # None: not yet read from the environment
_setters: list = []  # each loaded kernel's set_threads


class ThreadsWarning(RuntimeWarning):
    """``NUMFMT_NUM_THREADS`` is not an int in 1..256; the kernels run one thread."""


def _check(n, name: str) -> int:
    allowed = f"an int in 1..{MAX_THREADS} (1: no threads)"
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"{name}={n!r} must be {allowed}, got {type(n).__name__}")
    n = int(n.__index__())
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"{name}={n!r} is out of range; it must be {allowed}")
    return n


def _from_env() -> int:
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return 1
    try:
        return _check(int(raw), ENV)
    except (ValueError, TypeError):
        warnings.warn(
            f"{ENV}={raw!r} is not an int in 1..{MAX_THREADS}; numfmt's kernels run one thread "
            f"(set it to e.g. {ENV}=2, or call numfmt.set_num_threads)",
            ThreadsWarning,
            stacklevel=4,
        )
        return 1


def get_num_threads() -> int:
    """The number of threads numfmt's compiled kernels split a large array across.

    Returns:
      An int in 1..256: the last :func:`set_num_threads`, else the environment
      variable ``NUMFMT_NUM_THREADS`` (read on first use), else 1.

    Examples:
      >>> import numfmt
      >>> previous = numfmt.set_num_threads(2)
      >>> numfmt.get_num_threads()
      2
      >>> _ = numfmt.set_num_threads(previous)
    """
    global _count
    if _count is None:
        _count = _from_env()
    return _count


def set_num_threads(n: int) -> int:
    """Let numfmt's compiled kernels split large arrays across ``n`` threads.

    The results are the same bits for every ``n``, stochastic rounding
    included (an element's random word depends on its flat index only): only
    the speed changes. A thread gets at least ``2**17`` elements (``2**13``
    where the kernel rounds one element at a time); smaller arrays, the NumPy path and JAX arrays are not
    affected; on a build without POSIX threads (Windows) the kernels run one
    thread whatever ``n``. The setting is per process and overrides
    ``NUMFMT_NUM_THREADS``.

    Args:
      n: the number of threads, an int in 1..256; 1 (the default) runs in the
        calling thread only. More than the machine's cores gains nothing.

    Returns:
      The previous setting (so it can be restored).

    Raises:
      TypeError: ``n`` is not an int (a bool or float included).
      ValueError: ``n`` is outside 1..256.

    Examples:
      >>> import numpy as np, numfmt
      >>> x = np.linspace(-3, 3, 1 << 17)
      >>> one = numfmt.chop(x, "bfloat16")
      >>> previous = numfmt.set_num_threads(2)
      >>> bool(np.array_equal(numfmt.chop(x, "bfloat16"), one))
      True
      >>> _ = numfmt.set_num_threads(previous)
    """
    global _count
    n = _check(n, "n")
    previous = get_num_threads()
    _count = n
    for setter in _setters:
        setter(n)
    return previous


def subscribe(setter) -> None:
    """Register a loaded kernel's ``set_threads(n)``; it is called now with the current count."""
    setter(get_num_threads())
    _setters.append(setter)
