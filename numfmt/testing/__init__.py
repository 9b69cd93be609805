"""Tools for testing code against number formats: strategies and assertions.

``numfmt``'s own test suite uses these; they are public so that users can test
their kernels and quantizers the same way (see ``docs/testing.md``).

Hypothesis strategies:

* :func:`formats`: valid formats, filterable by family and size.
* :func:`values`: values a format can produce.
* :func:`boundary_values`: ties, +-1 ulp around them, regime landmarks, specials.
* :func:`float_bits`: raw bit patterns viewed as a float dtype.
* :func:`keys`: keys for stochastic rounding.

Exhaustive inputs (no hypothesis): :func:`grid_points`, every value,
midpoint and neighbouring input of a format of up to ``2**16`` values.

Assertions (exact, bit for bit, against ``numfmt``'s Fraction reference):

* :func:`assert_bits_equal`, :func:`assert_representable`,
  :func:`assert_rounds_like`, :func:`assert_unbiased`.

This module needs hypothesis (``pip install hypothesis``, or
``pip install numfmt[test]``); ``import numfmt`` itself never imports it.

This package is the public face; its modules are private: shared helpers
(``asserts``, ``format_strategies``, ``float_values``), the family plug-ins
(``family_grid``/``family_strategies`` for posits and fixed point, ``block``,
``block_scaled``, ``block_strategies``, ``scaled``), and the public
strategies and assertions built on them (``strategies``, ``exhaustive``,
``representable``, ``asserts_families``, ``asserts_rounding``, ``unbiased``).
May import: ``numfmt.core`` and the families; nothing of numfmt imports it.
"""

from __future__ import annotations

try:
    import hypothesis  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "numfmt.testing needs the hypothesis package, which is not installed. "
        "Install it with `pip install hypothesis` (or `pip install numfmt[test]`)."
    ) from err

from numfmt.testing.asserts import assert_bits_equal
from numfmt.testing.asserts_rounding import assert_rounds_like
from numfmt.testing.exhaustive import grid_points
from numfmt.testing.format_strategies import formats
from numfmt.testing.representable import assert_representable
from numfmt.testing.strategies import boundary_values, float_bits, keys, values
from numfmt.testing.unbiased import assert_unbiased

__all__ = [
    "assert_bits_equal",
    "assert_representable",
    "assert_rounds_like",
    "assert_unbiased",
    "boundary_values",
    "float_bits",
    "formats",
    "grid_points",
    "keys",
    "values",
]

# The family plug-ins register their formats with ``formats`` on import: block
# formats, posits and fixed point come in through ``strategies``; scaled integer
# formats register last (``formats`` used to import them on its first call).
from numfmt.testing import scaled as _scaled  # noqa: E402, F401
