"""Assertion that a stochastic rounding function is unbiased: ``assert_unbiased``.

Given the format, each element's two neighbours come from the exact scalar
reference (``numfmt.float.reference``, ``numfmt.testing.family_grid``). Without it, they
are read off the results themselves; see :func:`assert_unbiased` for the rule
and its false-failure bound.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from numfmt.core.names import parse
from numfmt.fixed.format import FixedFormat
from numfmt.float import grid as _grid
from numfmt.float.reference import round_value
from numfmt.testing import family_grid as _family_grid
from numfmt.testing.asserts import _call, bits, describe, exact, float_array, float_format

__all__ = ["assert_unbiased", "bernstein_bound", "single_value_floor"]

_SHOW = 8


def bernstein_bound(n: int, p: np.ndarray, alpha: float) -> np.ndarray:
    """``t`` with ``P(|K - n p| > t) <= alpha`` for ``K ~ Binomial(n, p)``.

    Bernstein's inequality ``P(|K - np| >= t) <= 2 exp(-t**2 / (2 (n p (1-p) + t/3)))``
    solved for ``t``; it is tight for small ``p``, unlike Hoeffding's.
    """
    L = math.log(2 / alpha)
    return L / 3 + np.sqrt((L / 3) ** 2 + 2 * L * n * p * (1 - p))


def single_value_floor(n: int, m: int, alpha: float) -> float:
    """``q = log(4 m / alpha) / n``: without ``fmt``, every inexact element must
    round up with a probability in ``[q, 1 - q]`` for the false-failure bound.

    An element with round-up probability ``p`` gives one value in all ``n``
    draws with probability ``p**n + (1 - p)**n <= 2 exp(-n q)`` when
    ``q <= p <= 1 - q``; over ``m`` elements that is at most ``alpha / 2``.
    """
    return math.log(4 * max(1, m) / alpha) / n


def _neighbours(v: float, fmt):
    """The two results of stochastic rounding of ``v`` and the probability of the upper one."""
    rnd = _family_grid.round_exact if _family_grid.is_family(fmt) else round_value
    down = rnd(exact(v), fmt, "toward_zero")
    up = rnd(exact(v), fmt, "toward_positive" if v > 0 else "toward_negative")
    if (isinstance(down, float) and math.isnan(down)) or Fraction(down) == Fraction(up):  # NaN: unsigned fmt
        return down, up, 0.0
    return down, up, float((Fraction(v) - Fraction(down)) / (Fraction(up) - Fraction(down)))


def assert_unbiased(sr_fn, x, n: int, *, fmt=None, alpha: float = 1e-6, err_msg: str = "") -> None:
    """Assert a stochastic rounding function is unbiased on the values ``x``.

    ``sr_fn`` is called once on ``n`` stacked copies of ``x`` (shape
    ``(n, *x.shape)``); it must draw independent randomness for every element
    (pass your key or Generator in through a closure). Each element's results
    must take at most two values ``lo < x < hi`` (an element ``sr_fn`` returns
    unchanged must always be returned unchanged), and the number ``K`` of
    ``hi`` results must satisfy ``|K - n p| <= t``,
    ``p = (x - lo) / (hi - lo)`` (so that the mean result is ``x``), where
    ``t`` is the Bernstein bound for ``alpha / m`` (``m`` inexact elements;
    ``alpha / (2 m)`` without ``fmt``).

    With ``fmt``: ``lo`` and ``hi`` are the neighbours of ``x`` in ``fmt``
    (the exact reference; with the sign of ``x``), every result must be one
    of them, and an element of ``x`` that is a value of ``fmt`` must always
    stay itself.

    Without ``fmt`` the neighbours are read off the results: two distinct
    results must bracket ``x`` strictly, and their frequencies are tested as
    above. Results that are the true neighbours cannot be told from results
    of a wider grid (only the mean is checked), and an element whose ``n``
    results are all one value ``v != x`` fails: a correct ``sr_fn`` does that
    only when ``x`` lies very close to ``v``. Precondition: every element of
    ``x`` that is not a value of the format must round up with a probability
    between ``q`` and ``1 - q``, ``q = log(4 m / alpha) / n`` with ``m =
    x.size`` (``n = 10_000``, ``m = 100``, ``alpha = 1e-6``: ``q = 0.0026``,
    i.e. ``x`` at least 0.26 % of its gap away from both neighbours); midpoints
    or uniformly drawn points well inside gaps meet it. Pass ``fmt`` when you
    cannot guarantee it.

    False failures: for a correct, unbiased ``sr_fn`` with independent draws
    the probability that this assertion fails is at most ``alpha`` (default
    1e-6) for the whole call (Bernstein's inequality and a union bound over
    elements; without ``fmt``, ``alpha / 2`` for the counts and ``alpha / 2``
    for single-valued elements, given the precondition). Power: the allowed
    deviation is about ``sqrt(2 n p (1-p) L) + L / 3`` round-ups with
    ``L = log(2 m / alpha)``, so a bias ``d`` in the probability is caught once
    ``n d`` clearly exceeds it, e.g. ``d`` above about 0.03 for ``p = 0.5``,
    ``n = 10_000``, ``m = 1``.

    Args:
      sr_fn: the stochastic quantizer, a function of one array returning an
        array of the same dtype and shape.
      x: float array (or scalar) of finite values (with ``fmt``: within its
        range, ``|x| <= fmt.max_value``; fixed point: within
        ``[min_value, max_value]``).
      n: number of draws per element, >= 1.
      fmt: optional keyword: the float, posit or fixed-point format ``sr_fn``
        rounds into. Posits: ``p`` is the distance in value; where the
        exponent field is cut short (the outermost codes next to minpos and
        maxpos) numfmt's posit SR follows the bit string instead and this
        check does not apply.
      alpha: bound on the probability of a false failure, in (0, 1).
      err_msg: prepended to the failure message.

    Raises:
      AssertionError: for results that are neither neighbour (without
        ``fmt``: more than two values, values not bracketing ``x``, NaN, or
        one value other than ``x`` in all ``n`` draws), or counts outside the
        bound (the message lists the worst elements: value, neighbours,
        expected and observed frequency).
      ValueError: for NaN, infinite or out-of-range ``x``, a bad ``n`` or
        ``alpha``, neighbours the dtype of ``x`` cannot hold, or a format
        family not supported yet.

    Examples:
      >>> import numpy as np, numfmt
      >>> rng = np.random.default_rng(0)
      >>> sr = lambda v: numfmt.chop(v, "bfloat16", "stochastic", key=rng)
      >>> assert_unbiased(sr, np.float32([1.001, -3.3, 0.0]), 10_000, fmt="bfloat16")
      >>> assert_unbiased(sr, np.float32([1.001, -3.3, 0.0]), 10_000)
      >>> nearest = lambda v: numfmt.chop(v, "bfloat16")
      >>> assert_unbiased(nearest, np.float32([1.001, 0.0]), 1000)  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      AssertionError: 1 elements gave one result other than x in all 1000 draws...
    """
    a = float_array(x, "x")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be an int >= 1 (draws per element)")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} must lie in (0, 1); it bounds the false-failure probability")
    with np.errstate(invalid="ignore"):
        values = a.astype(np.float64).reshape(-1)
    if fmt is None:
        if not np.isfinite(values).all():
            bad = values[~np.isfinite(values)][0]
            raise ValueError(f"x must be finite, where the mean of stochastic rounding is defined; got {bad!r}")
        y = _draw(sr_fn, a, n)
        lo, hi, p, alpha_counts = _observed_neighbours(a, values, y, n, alpha, err_msg)
    else:
        lo, hi, p = _format_neighbours(a, values, fmt)
        y = _draw(sr_fn, a, n)
        _check_results(a, values, y, lo, hi, parse(fmt), err_msg)
        alpha_counts = alpha
    _check_counts(a, values, y, lo, hi, p, n, alpha_counts, err_msg)


def _draw(sr_fn, a: np.ndarray, n: int) -> np.ndarray:
    tiled = np.broadcast_to(a, (n, *a.shape)).copy()
    return _call(sr_fn, tiled, "sr_fn").reshape(n, -1)


def _format_neighbours(a: np.ndarray, values: np.ndarray, fmt):
    fmt = parse(fmt)
    fmt = fmt if _family_grid.is_family(fmt) else float_format(fmt, "assert_unbiased")
    lowest = float(fmt.min_value) if isinstance(fmt, FixedFormat) else -float(fmt.max_value)
    outside = ~np.isfinite(values) | (values > float(fmt.max_value)) | (values < lowest)
    if outside.any():
        raise ValueError(
            f"x must be finite in [{lowest!r}, {float(fmt.max_value)!r}] (the range of {fmt}), where the mean of "
            f"stochastic rounding is defined; got {values[outside][0]!r}"
        )
    lo_v, hi_v, p_v = zip(*(_neighbours(v, fmt) for v in values), strict=True) if values.size else ((), (), ())
    lo, hi = _grid.to_dtype(lo_v, a.dtype), _grid.to_dtype(hi_v, a.dtype)
    if np.isinf(lo).any() or np.isinf(hi).any():
        raise ValueError(f"x has dtype {a.dtype}, which cannot hold the values of {fmt}; pass wider x")
    return lo, hi, np.array(p_v, np.float64)


def _check_results(a, values, y, lo, hi, fmt, err_msg):
    """Every result must be ``lo`` or ``hi`` of its element."""
    with np.errstate(invalid="ignore"):
        nan = np.isnan(y.astype(np.float64))
    is_lo = (bits(y) == bits(lo)[None]) | (nan & np.isnan(lo)[None])
    is_hi = (bits(y) == bits(hi)[None]) | (nan & np.isnan(hi)[None])
    stray = ~(is_lo | is_hi)
    if stray.any():
        j = int(np.flatnonzero(stray.any(axis=0))[0])
        r = int(np.flatnonzero(stray[:, j])[0])
        w = a.dtype.itemsize * 2
        raise AssertionError(
            f"{err_msg}{int(stray.sum())} results are not a neighbour of their input in {fmt}; first: "
            f"x={values[j]!r} gave {describe(y[r, j], bits(y)[r, j], w, fmt)}, allowed "
            f"{float(lo[j])!r} or {float(hi[j])!r}"
        )


def _observed_neighbours(a, values, y, n, alpha, err_msg):
    """``(lo, hi, p, alpha for the counts)`` read off the results (no format given)."""
    yb = np.sort(bits(y), axis=0)
    distinct = 1 + (yb[1:] != yb[:-1]).sum(axis=0)
    with np.errstate(invalid="ignore"):
        yv = y.astype(np.float64)
    lo, hi = yv.min(axis=0), yv.max(axis=0)
    same = (distinct == 1) & (yb[0] == bits(a.reshape(-1)))
    problems = [
        (np.isnan(yv).any(axis=0), "gave NaN for a finite x"),
        (distinct > 2, "gave more than two distinct results (stochastic rounding gives the two neighbours of x)"),
        ((distinct == 2) & ~((lo < values) & (values < hi)),
         "gave two results that do not bracket x strictly (a value of the format must always give itself)"),
    ]  # fmt: skip
    q = single_value_floor(n, values.size, alpha)
    problems.append((
        (distinct == 1) & ~same,
        f"gave one result other than x in all {n} draws: not stochastic (round to nearest?), or x lies closer to "
        f"a format value than the precondition allows (P(round up) in [{q:.3g}, {1 - q:.3g}]; see the "
        "docstring); pass fmt= to test against the format's neighbours",
    ))  # fmt: skip
    for bad, why in problems:
        if bad.any():
            lines = [f"{err_msg}{int(bad.sum())} elements {why}:"]
            for j in np.flatnonzero(bad)[:_SHOW]:
                seen = sorted({float(v) for v in yv[:, j]})[:4]
                lines.append(f"  x={float(values[j])!r}: results {seen}")
            raise AssertionError("\n".join(lines))
    p = np.zeros(values.size)
    for j in np.flatnonzero(distinct == 2):
        p[j] = float((Fraction(values[j]) - Fraction(lo[j])) / (Fraction(hi[j]) - Fraction(lo[j])))
    lo_a, hi_a = lo.astype(a.dtype), hi.astype(a.dtype)
    lo_a[same], hi_a[same] = a.reshape(-1)[same], a.reshape(-1)[same]
    return lo_a, hi_a, p, alpha / 2


def _check_counts(a, values, y, lo, hi, p, n, alpha, err_msg):
    inexact = bits(lo) != bits(hi)
    with np.errstate(invalid="ignore"):
        nan = np.isnan(y.astype(np.float64)) & np.isnan(hi)[None]
    k = ((bits(y) == bits(hi)[None]) | nan).sum(axis=0)
    bound = bernstein_bound(n, p, alpha / max(1, int(inexact.sum())))
    excess = np.where(inexact, np.abs(k - n * p) - bound, -np.inf)
    bad = excess > 0
    if bad.any():
        lines = [
            f"{err_msg}{int(bad.sum())} of {int(inexact.sum())} inexact elements round up with a frequency "
            f"outside the binomial bound (alpha={alpha:g}, n={n}):"
        ]
        for j in np.argsort(-excess)[: min(_SHOW, int(bad.sum()))]:
            lines.append(
                f"  x={values[j]!r}: neighbours {float(lo[j])!r} and {float(hi[j])!r}, P(up) = {p[j]:.6g}, "
                f"observed {k[j] / n:.6g} ({int(k[j])} of {n}; allowed {n * p[j]:.1f} +- {bound[j]:.1f})"
            )
        raise AssertionError("\n".join(lines))
