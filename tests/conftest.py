"""Test configuration: JAX x64 and strict dtype promotion, hypothesis profiles.

Profiles: "ci" (derandomized, no deadline; the default under CI=true) and
"dev" (random, more examples). Select with HYPOTHESIS_PROFILE=dev.
"""

import os
import zlib

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

settings.register_profile(
    "ci", deadline=None, derandomize=True, max_examples=200, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _module_rng_per_test(request):
    """A test module's ``RNG`` (a NumPy Generator) restarts for each test, from the test's id.

    Otherwise a test's data would depend on which tests of its module ran before it in the
    same process, which pytest-xdist (``-n auto``) varies from run to run.
    """
    module = request.module
    if isinstance(getattr(module, "RNG", None), np.random.Generator):
        module.RNG = np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
