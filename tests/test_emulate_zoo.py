"""The model zoo (issue #15): tiny flax and equinox models trained a few steps under emulate.

Every model of tests/zoo_models.py x every policy x both orders
(``jax.jit(jax.grad(emulate(loss)))`` and ``jax.jit(emulate(jax.grad(loss)))``)
trains :data:`zoo_models.STEPS` SGD steps: every loss is finite and the last
is below the first. benchmarks/zoo_table.py prints the same runs against
native float32.
"""

import pathlib
import sys

import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("equinox")
pytest.importorskip("optax")

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # pytest runs with --import-mode=importlib
import zoo_models as zoo  # noqa: E402


@pytest.mark.parametrize("order", zoo.ORDERS)
@pytest.mark.parametrize("policy", list(zoo.POLICIES))
@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_zoo_trains(name, policy, order):
    spec = zoo.POLICIES[policy]
    if order == "emulate(grad)" and "grad=" in spec:
        # grad= names the format of the gradients that jax.grad computes from the emulated forward pass;
        # under emulate(grad(f)) the backward pass is itself emulated, so it is refused, not ignored.
        with pytest.raises(ValueError, match=r"grad=float8_e5m2 cannot apply .* jax\.grad\(emulate\(f, policy\)\)"):
            zoo.train(name, spec, order)
        return
    losses = zoo.train(name, spec, order)
    assert np.all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], losses
