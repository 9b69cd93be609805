"""The emulated training step sharded over 8 CPU devices equals the one-device result.

Bitwise equality needs every cross-device sum to be exact or rounded by the
policy: with ``accum=`` the matmuls (and their transposes) run in float64,
where the sums of these products are exact. (With XLA's float32 dot and no
gradient format, unrounded weight gradients differ in the last float32 bit
between 1 and 8 devices: the batch sum is reduced in a different order.)

Runs in a subprocess: ``--xla_force_host_platform_device_count=8`` must be set
before JAX is imported.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
from jax.sharding import NamedSharding, PartitionSpec as P
import numfmt
assert jax.device_count() == 8, jax.devices()

def loss(params, x, y):
    h = x
    for w, b in params[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = params[-1]
    return jnp.mean((h @ w + b - y) ** 2)

FP8 = "compute=bfloat16,matmul_in=float8_e4m3fn,accum=float32,chunk=16,out=bfloat16,grad=float8_e5m2"
for policy, kw in [(FP8, {}),
                   ("compute=bfloat16,rounding=stochastic,accum=float32,chunk=8,grad=bfloat16",
                    {"key": jax.random.key(7)})]:
    step = jax.jit(jax.value_and_grad(numfmt.emulate(loss, policy)))
    keys = jax.random.split(jax.random.key(0), 4)
    sizes = [16, 32, 32, 1]
    params = [(jax.random.normal(k, (m, n), jnp.float32) * np.float32(0.3), jnp.zeros(n, jnp.float32))
              for k, m, n in zip(keys, sizes[:-1], sizes[1:])]
    x = jax.random.normal(keys[3], (64, 16), jnp.float32)
    y = jnp.sin(x[:, :1])
    one = step(params, x, y, **kw)
    mesh = jax.make_mesh((8,), ("batch",), axis_types=(jax.sharding.AxisType.Auto,))
    xs = jax.device_put(x, NamedSharding(mesh, P("batch")))
    ys = jax.device_put(y, NamedSharding(mesh, P("batch")))
    assert len(xs.sharding.device_set) == 8
    eight = step(params, xs, ys, **kw)
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(eight)):
        a, b = np.asarray(a), np.asarray(b)
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), (policy, a, b)
print("ok")
"""


def test_sharded_step_equals_single_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", PYTHONPATH=str(ROOT),
               JAX_PLATFORMS="cpu")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip().endswith("ok")
