"""The model zoo (issue #15): tiny flax and equinox models trained a few steps under emulate.

Every model of tests/zoo_models.py x every policy x both orders
(``jax.jit(jax.grad(emulate(loss)))`` and ``jax.jit(emulate(jax.grad(loss)))``)
trains :data:`zoo_models.STEPS` SGD steps: every loss is finite, the last
is below the first, and both orders give the same losses bit for bit
(deterministic policies: the backward pass is emulated either way). benchmarks/zoo_table.py prints the same runs against
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

import numfmt  # noqa: E402
from numfmt import chop  # noqa: E402


@pytest.mark.parametrize("policy", list(zoo.POLICIES))
@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_zoo_trains_in_both_orders(name, policy):
    spec = zoo.POLICIES[policy]
    runs = {order: zoo.train(name, spec, order) for order in zoo.ORDERS}
    for losses in runs.values():
        assert np.all(np.isfinite(losses)), losses
        assert losses[-1] < losses[0], losses
    if not numfmt.Policy.parse(spec).is_stochastic:  # the same arithmetic in both orders: the same bits
        a, b = (runs[order].view(np.uint64) for order in zoo.ORDERS)
        np.testing.assert_array_equal(a, b)


def _adam_in_emulate(b2, steps=zoo.STEPS):
    """Losses of Adam steps with the optimizer itself inside emulate (compute=bfloat16)."""
    import jax
    import optax

    with zoo.config():
        m = zoo.model("eqx_mlp")
        opt = optax.adam(1e-2, b2=b2)

        def step(params, opt_state):
            (value, _), grads = jax.value_and_grad(m.loss, has_aux=True)(params, None, m.batch)
            updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, value

        step = jax.jit(numfmt.emulate(step, "compute=bfloat16"), compiler_options=zoo.COMPILER_OPTIONS)
        params, opt_state, losses = m.params, opt.init(m.params), []
        for _ in range(steps):
            params, opt_state, value = step(params, opt_state)
            losses.append(float(value))
        return np.array(losses)


def test_adam_inside_emulate_in_bfloat16_is_nan_with_b2_0999_faithfully():
    # bfloat16 has 8 significant bits: 0.999 rounds to 1.0, so Adam's bias correction 1 - b2**t is 0 and
    # v / (1 - b2**t) is inf, or NaN where a gradient is 0: the NaN is what bfloat16 hardware would compute.
    assert chop(np.float64(0.999), "bfloat16") == 1.0
    losses = _adam_in_emulate(0.999)
    assert np.isfinite(losses[0]) and np.all(np.isnan(losses[1:])), losses
    assert chop(np.float64(0.99), "bfloat16") == 0.98828125  # a b2 that bfloat16 holds below 1 trains
    losses = _adam_in_emulate(0.99)
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
