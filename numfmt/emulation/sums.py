"""Sums computed in a work dtype, then rounded into a format: round to odd and signed zeros.

Round to odd. The emulator adds two values of a format in a wider work dtype
(float32 or float64) in round to nearest and rounds that into the format.
For round to nearest this double rounding is innocuous (p_work >= 2p + 2),
but not for the other modes: ``1.5 + 2**-24`` is ``1.5`` in float32, which
rounds toward zero to 1.5 in float16 where the exact sum rounds to
1.4990234. For those modes the work sum is made the round-to-odd sum
(its error, exact by TwoSum, sets the last bit), and rounding a round-to-odd
result of p_work >= p + 2 bits into p bits is one correct rounding in every
mode (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums:
proved algorithms using rounding to odd", 2008). Stochastic rounding keeps
the round-to-nearest sum (within half a work ulp: probabilities exact to
2**-(p_work - p + 1); round to odd would double that bound).

Signed zeros. IEEE 754-2019, 6.3: when the sum of two operands of opposite signs (or the difference
of two of like signs) is exactly zero, it is +0 in every rounding direction
except roundTowardNegative, where it is -0; ``x + x`` keeps the sign of
``x`` (-0 + -0 = -0, +0 + +0 = +0). XLA adds in round to nearest, which gives
the signs of every mode but toward_negative; the emulator computes a sum in
a work dtype and rounds it into the site's format afterwards, so under
toward_negative it sets the sign of an exact zero result here.

A sum of many terms (``reduce_sum``, ``cumsum``, an accumulator) starts from
+0, as JAX's ``reduce_sum`` does: in round to nearest (and every mode but
toward_negative, stochastic rounding included: an exact zero is not
rounded) an exact zero sum is +0 even if every term is -0, as ``jnp.sum``
gives; under toward_negative it is -0 unless every term is +0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from numfmt.core.rounding import Rounding

__all__ = [
    "SUMS", "add_to_odd", "all_terms_plus_zero", "is_plus_zero", "needs_odd", "sum_with_zero_sign",
    "toward_negative_zero",
]  # fmt: skip

SUMS = frozenset({"add", "add_any", "sub", "reduce_sum", "cumsum"})


def needs_odd(rounding: Rounding) -> bool:
    """Does a sum rounded with ``rounding`` need its work value rounded to odd (a directed mode or to_odd)?"""
    return rounding not in (Rounding.NEAREST_EVEN, Rounding.NEAREST_AWAY) and not rounding.is_stochastic


@jax.custom_jvp
def add_to_odd(a, b):
    """``a + b`` rounded to odd in their (common float) dtype; -0/+0 signs as the round-to-nearest sum's.

    The derivative is that of ``a + b``.
    """
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)  # TwoSum: a + b == s + err exactly (s finite)
    uint = {2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint64}[s.dtype.itemsize]
    even = (lax.bitcast_convert_type(s, uint) & 1) == 0
    inf = jnp.asarray(jnp.inf, s.dtype)
    step = lax.nextafter(s, jnp.where(err > 0, inf, -inf))
    return jnp.where(jnp.isfinite(s) & (err != 0) & even, step, s)


add_to_odd.defjvp(lambda primals, tangents: (add_to_odd(*primals), tangents[0] + tangents[1]))


def is_plus_zero(x):
    """``x == +0`` (False for -0)."""
    return (x == 0) & ~jnp.signbit(x)


def all_terms_plus_zero(contract, a, b):
    """Is every product term ``a_k * b_k`` of the bilinear ``contract(a, b)`` (a dot or conv) +0?

    A product is anything but +0 when its factors' signs differ, or both
    are nonzero with like signs: with ``p``/``n`` the indicators of a clear/set
    sign bit and ``z`` of a nonzero, that is
    ``pa nb + na pb + (pa za)(pb zb) + (na za)(nb zb)``, so four contractions
    of 0/1 float32 arrays count the other terms (exactly, below 2**24).
    """

    def parts(x):
        neg = jnp.signbit(x)
        nonzero = x != 0
        return [lax.convert_element_type(v, jnp.float32) for v in (~neg, neg, ~neg & nonzero, neg & nonzero)]

    (pa, na, pza, nza), (pb, nb, pzb, nzb) = parts(a), parts(b)
    others = contract(pa, nb) + contract(na, pb) + contract(pza, pzb) + contract(nza, nzb)
    return others == 0


def toward_negative_zero(out, plus):
    """``out`` with each zero replaced by +0 where ``plus`` holds and by -0 elsewhere."""
    zero = jnp.zeros((), out.dtype)
    return jnp.where(out == 0, jnp.where(plus, zero, -zero), out)


def sum_with_zero_sign(name: str, params, args, out, rounding: Rounding):
    """``out``, primitive ``name`` of ``args`` in round to nearest, with ``rounding``'s sign of an exact zero.

    Only toward_negative changes anything: there an exactly zero sum is +0
    only if every term is +0 (``a - b``: the terms are ``a`` and ``-b``).
    """
    if rounding is not Rounding.TOWARD_NEGATIVE or name not in SUMS:
        return out
    if name == "sub":
        a, b = args
        plus = is_plus_zero(a) & (b == 0) & jnp.signbit(b)
    elif name in ("add", "add_any"):
        a, b = args
        plus = is_plus_zero(a) & is_plus_zero(b)
    elif name == "reduce_sum":
        plus = jnp.all(is_plus_zero(args[0]), axis=tuple(params["axes"]))
    else:  # cumsum: no term so far other than +0
        other = lax.convert_element_type(~is_plus_zero(args[0]), jnp.int32)
        plus = lax.cummax(other, axis=params["axis"], reverse=params["reverse"]) == 0
    return toward_negative_zero(out, plus)
