"""Loading the families' compiled kernels, with one NumPy fallback warning and one switch.

A family's compiled kernel (``numfmt.float._ckernel``, ``numfmt.fixed._ckernel``,
``numfmt.posit._ckernel``) is an optional extension: where it was not built (or fails to import), numfmt
uses the NumPy path and warns once per process (:class:`ExtensionWarning`);
the environment variable ``NUMFMT_DISABLE_EXTENSION=1`` selects the NumPy path
silently. :func:`set_enabled` switches every compiled kernel off or on in-process
(tests compare both paths).
"""

from __future__ import annotations

import importlib
import os
import struct
import warnings
from typing import Any

import numpy as np

from numfmt.core import threads
from numfmt.core.random import generator_bits

__all__ = ["ExtensionWarning", "Loader", "STATE", "pack_plan", "set_enabled"]

_NO_SEED = (0, 0, 0, 0)
# A NumPy Generator's words are drawn this many at a time (even: the NumPy path
# draws 32-bit words in pairs, so the stream does not depend on the chunking);
# with several threads, 4 * _DRAW a thread (the vector loops split 2**18 or more).
_DRAW = 1 << 16


class ExtensionWarning(RuntimeWarning):
    """numfmt's compiled kernel could not be imported; the NumPy path is used instead."""


# Shared by every family's kernel: the in-process switch and the one warning.
STATE: dict = {"enabled": True, "warned": False}


def set_enabled(flag: bool) -> bool:
    """Use (True) or bypass (False) the compiled kernels in this process; returns the previous setting."""
    previous = STATE["enabled"]
    STATE["enabled"] = bool(flag)
    return previous


def pack_plan(fields, count: int) -> bytes:
    """``fields`` (ints, negative ones as two's complement) as the ``count`` uint64 words a C kernel's plan reads."""
    if len(fields) != count:
        raise AssertionError(f"the C kernel reads {count} plan fields, got {len(fields)}")
    return struct.pack(f"={count}Q", *(int(v) & 0xFFFFFFFFFFFFFFFF for v in fields))


class Loader:
    """Imports one compiled kernel on first use and checks that it matches its Python side.

    The extension has one function, ``round_into(packed, src, dst, rmode, start,
    seed, rbits)`` (see ``numfmt/float/_ckernel.c``); :meth:`run` and :meth:`lane`
    are what the family registers with the core (``register_native``,
    ``register_lane``).

    Args:
      module: the extension's module name, e.g. ``"numfmt.fixed._ckernel"``.
      fields: the number of plan fields the Python side packs; the extension's
        ``FIELDS`` must be the same (else it was built from another version).
      packed: ``packed(plan) -> bytes or None``: the plan's constants as the
        extension reads them (None: a plan this kernel does not take).
    """

    def __init__(self, module: str, fields: int, packed):
        self.module, self.fields, self.packed = module, fields, packed
        self.ext: Any = None
        self.loaded = False
        self.error: str | None = None

    def _load(self) -> None:
        self.loaded = True
        if os.environ.get("NUMFMT_DISABLE_EXTENSION", "") not in ("", "0"):
            return
        try:
            ext = importlib.import_module(self.module)
        except ImportError as err:
            self.error = str(err)
            return
        if getattr(ext, "FIELDS", None) == self.fields:
            self.ext = ext
            if hasattr(ext, "set_threads"):  # numfmt.set_num_threads
                threads.subscribe(ext.set_threads)
        else:
            self.error = f"it was built from another version of numfmt ({getattr(ext, 'FIELDS', None)} plan fields)"

    def available(self) -> bool:
        """True when chop uses this kernel (built, importable, and not switched off); warns once if missing."""
        if not self.loaded:
            self._load()
        if self.ext is None and self.error is not None and not STATE["warned"]:
            STATE["warned"] = True
            warnings.warn(
                f"numfmt's compiled kernel is not available ({self.error}); chop uses the slower NumPy path. "
                "Build it with `pip install -e .` (or `python setup.py build_ext --inplace`), or set "
                "NUMFMT_DISABLE_EXTENSION=1 to use the NumPy path without this warning.",
                ExtensionWarning,
                stacklevel=5,
            )
        return self.ext is not None and STATE["enabled"]

    def run(self, flat: np.ndarray, dest: np.ndarray, plan, rng, seed) -> bool:
        """Round the 1-d contiguous ``flat`` into ``dest`` (same shape and dtype; may be ``flat``).

        ``rng``: None or a NumPy ``Generator``; ``seed``: the four words of a JAX key,
        or None. Returns False, having written nothing, where the compiled kernel
        does not take the plan; and False where a result is one the input dtype
        cannot hold (the caller's NumPy path raises; ``dest`` may then be partly
        written, so it must not be the input).
        """
        if not self.available():
            return False
        packed = self.packed(plan)
        if packed is None:
            return False
        round_into = self.ext.round_into
        src, dst = _raw(flat, plan.width), _raw(dest, plan.width)
        if seed is not None:
            key_words = tuple(int(w) for w in np.asarray(seed).reshape(-1))
            return round_into(packed, src, dst, 1, 0, key_words, None) == -1
        if rng is None:
            return round_into(packed, src, dst, 0, 0, _NO_SEED, None) == -1
        if plan.can_be_unrepresentable:  # a failure would leave the stream advanced: the NumPy path draws instead
            return False
        t = threads.get_num_threads()
        step = _DRAW if t == 1 else _DRAW * 4 * t
        for start in range(0, flat.size, step):
            stop = min(start + step, flat.size)
            words = generator_bits(rng, stop - start, plan.container)
            if round_into(packed, src[start:stop], dst[start:stop], 2, 0, _NO_SEED, words) != -1:
                raise RuntimeError("numfmt's compiled kernel refused contiguous arrays (a bug: please report it)")
        return True

    def lane(self, plan):
        """A function ``f(x, out) -> result or None`` for deterministic plans the kernel takes.

        It handles a C-contiguous ``x`` with ``out`` None (a fresh result) or a
        writable C-contiguous array of ``x``'s shape and dtype that is ``x``'s memory
        or does not overlap it (the kernel checks both); anything else (and a result
        the dtype cannot hold) gives None: the caller takes the general path, which
        checks and raises.
        """
        packed = self.packed(plan) if self.available() and not plan.is_stochastic else None
        if packed is None:
            return None
        round_into = self.ext.round_into
        # float16/32/64 arrays export their buffers; bfloat16 (ml_dtypes) is viewed as uint16
        raw = plan.width == 16 and plan.in_exp == 8
        U = np.dtype(f"uint{plan.width}")
        empty = np.empty
        # a kernel without CHECKS_OVERLAP (core/_call.h) gets out= only where it is x or apart from it
        checked = bool(getattr(self.ext, "CHECKS_OVERLAP", 0))
        alias_ok = not plan.can_be_unrepresentable

        def run_lane(x, out):
            if not STATE["enabled"]:
                return None
            if out is None:
                dest = empty(x.shape, x.dtype)  # C order (empty_like keeps x's order, and costs more)
            elif (
                type(out) is np.ndarray
                and out.dtype == x.dtype
                and out.shape == x.shape
                and (checked or (out is x and alias_ok) or not np.may_share_memory(out, x))
            ):
                dest = out
            else:
                return None
            # -1: done; -2: x or dest is not C-contiguous, dest is read-only, or they overlap (but as the
            # same memory, for a plan that cannot fail: in place); >= 0: a result x's dtype cannot hold:
            # the general path checks and raises
            if raw:
                done = round_into(packed, x.view(U), dest.view(U), 0, 0, _NO_SEED, None)
            else:
                done = round_into(packed, x, dest, 0, 0, _NO_SEED, None)
            return dest if done == -1 else None

        return run_lane


def _raw(a: np.ndarray, width: int) -> np.ndarray:
    return a.view(np.dtype(f"uint{width}"))
