"""Test configuration: JAX x64 and strict dtype promotion, hypothesis profiles.

Profiles: "ci" (derandomized, no deadline; the default under CI=true) and
"dev" (random, more examples). Select with HYPOTHESIS_PROFILE=dev.
"""

import os

import jax
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

settings.register_profile(
    "ci", deadline=None, derandomize=True, max_examples=200, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
