"""emulate warns where XLA:CPU's flushing of float64 subnormals would change results without a word.

float64 is emulate's widest work dtype, and XLA on the CPU flushes its
subnormals (results below 2**-1022 become 0; such inputs read as 0), as it
does float32's. Formats whose values reach below 2**-1022 (float64 itself,
floats with 11 or more exponent bits) therefore cannot be emulated exactly
there for results that small: emulate says so with a FlushWarning, once per
format. Formats that stay above it (every format up to float32's range,
accumulators of narrow inputs) do not warn.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numfmt
from numfmt.emulation import sites

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="the flush is XLA:CPU's")

TINY = np.array([2.0**-1070, 3.0 * 2.0**-1060, 2.0**-1000], np.float64)


@pytest.fixture(autouse=True)
def _fresh_warning_cache():
    sites._warn_flushed.cache_clear()  # warn once per format and process: each test starts afresh
    yield
    sites._warn_flushed.cache_clear()


@pytest.mark.parametrize("policy", ["compute=float64", "compute=float(e=11,m=10)", "compute=float(e=11,m=3)"])
def test_formats_below_float64_normals_warn(policy):
    with pytest.warns(sites.FlushWarning, match=r"2\*\*-1022"):
        jax.jit(numfmt.emulate(lambda a, b: a * b, policy))(TINY, np.full(3, 0.5))


def test_the_flush_the_warning_describes_is_real():
    # if XLA stops flushing float64 subnormals, this fails and the warning can go
    with pytest.warns(sites.FlushWarning):
        got = np.asarray(jax.jit(numfmt.emulate(lambda a, b: a * b, "compute=float64"))(TINY, np.full(3, 0.5)))
    want = TINY * 0.5  # NumPy keeps subnormals: 2**-1071 and 3 * 2**-1061 are float64 values
    assert want[0] > 0 and want[1] > 0
    assert got[0] == 0 and got[1] == 0  # flushed
    assert got[2] == want[2]  # above 2**-1022: exact


def test_the_warning_is_given_once_per_format():
    f = jax.jit(numfmt.emulate(lambda a, b: a * b + a, "compute=float64"))
    with pytest.warns(sites.FlushWarning) as caught:
        f(TINY, np.full(3, 0.5))
    assert len([w for w in caught if w.category is sites.FlushWarning]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jax.jit(numfmt.emulate(lambda a: a - 1.0, "compute=float64"))(TINY)  # the same format: no second warning


@pytest.mark.parametrize(
    "policy",
    [
        "compute=bfloat16",
        "compute=float32",
        "compute=posit16_1",
        # float64 accumulation of float8 products: every partial sum is a multiple of 2**-18, far above 2**-1022
        "compute=bfloat16,matmul_in=float8_e4m3fn,accum=float64,out=float32",
    ],
)
def test_formats_above_float64_normals_do_not_warn(policy):
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 8)), jnp.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jax.jit(numfmt.emulate(lambda a: jnp.tanh(a @ a.T) * 2.0 - a[:, :4], policy))(x)
