"""emulate's primitive classification: complete for JAX's registered primitives; refusals that say what to do.

The enumeration runs in a subprocess that imports a fixed set of modules, so
its answer does not depend on what other tests imported.
"""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest
from jax import lax
from jax.extend import core as jcore

import numfmt
from numfmt.emulation import emulate as _emulate
from numfmt.emulation import policy as _policy
from numfmt.emulation import primitives as P
from numfmt.emulation import windows as _windows

pytestmark = pytest.mark.xdist_group("test_emulate_primitives")  # its module fixture runs once (-n auto)

# Every Primitive object alive after importing the modules that define the
# primitives jax.lax, jax.numpy, jax.nn, jax.scipy and jax.random lower to
# (gc finds module-level primitives wherever they are defined, also those
# without a lowering such as add_any or state primitives), plus every
# primitive with an MLIR lowering rule (a primitive XLA can run must have
# one; platform-specific rules included). Primitives are created at import
# time, so this is complete for these modules; other packages (pallas,
# experimental.sparse) define more, which emulate refuses by name with the
# generic message (test_unclassified_primitive_gets_the_generic_refusal).
_ENUMERATE = """
import gc, json
import jax, jax.numpy, jax.lax, jax.lax.linalg, jax.nn, jax.random, jax.numpy.fft, jax.numpy.linalg
import jax.scipy.special, jax.scipy.linalg, jax.scipy.signal, jax.scipy.stats, jax.ad_checkpoint
import jax.custom_batching, jax.custom_derivatives, jax.experimental.checkify
from jax.extend import core as jcore
names = {o.name for o in gc.get_objects() if isinstance(o, jcore.Primitive)}
try:  # private; gc alone is enough if it moves
    from jax._src.interpreters import mlir
    names |= {p.name for p in mlir._lowerings}
    names |= {p.name for rules in mlir._platform_specific_lowerings.values() for p in rules}
except (ImportError, AttributeError):
    pass
print(json.dumps(sorted(names)))
"""


@pytest.fixture(scope="module")
def registered():
    out = subprocess.run([sys.executable, "-c", _ENUMERATE], capture_output=True, text=True, check=True)
    names = set(json.loads(out.stdout))
    assert {"exp", "cumsum", "scatter-add", "fft", "while", "random_bits"} <= names and len(names) > 200
    return names


def test_every_registered_primitive_is_classified(registered):
    missing = sorted(registered - set(P.TABLE))
    assert not missing, f"classify these in numfmt/emulation/primitives.py: {missing}"


def test_table_names_only_primitives_of_jax(registered):
    assert not P.LEGACY & set(P.TABLE) - set(P.REFUSED), "removed primitives are refused"
    assert not P.LEGACY & P.NEWER and P.LEGACY | P.NEWER <= set(P.TABLE)
    unknown = sorted(set(P.TABLE) - registered - P.LEGACY - P.NEWER)
    assert not unknown, f"not primitives of JAX {jax.__version__} (nor LEGACY, NEWER): {unknown}"
    if jax.__version__ == "0.10.2":  # the newest checked: NEWER are all here, LEGACY all gone
        assert P.NEWER <= registered and not P.LEGACY & registered
    if jax.__version__ == "0.8.0":
        assert P.LEGACY <= registered and not P.NEWER & registered


def test_kinds_and_derived_sets():
    assert {k.partition(":")[0] for k in P.TABLE.values()} == set(P.KINDS)
    assert {k.partition(":")[2] for k in P.TABLE.values() if k.startswith("rounded")} == set(P.GROUPS)
    assert _policy.SITES == P.names("rounded") and _policy.GROUPS is P.GROUPS
    assert _emulate.HIGHER == P.names("control") and _emulate.MOVEMENT == P.names("movement")
    assert _emulate.EXACT == P.names("exact", "opaque")
    assert _emulate.ROUNDED | P.GROUPS["matmul"] == P.names("rounded")
    for name in P.names("control"):  # each has an interpreter method
        assert hasattr(_emulate._Interpreter, "_" + {"closed_call": "jit"}.get(name, name)), name
    for name in _windows.HANDLERS:  # handled primitives are classified, never refused
        assert P.kind(name) in ("exact", "movement", "rounded:reductions"), name


@pytest.mark.parametrize("name", sorted(P.REFUSED))
def test_refusals_name_a_reason_and_a_workaround(name):
    reason, workaround = P.REFUSED[name]
    assert len(reason) > 20 and len(workaround) > 20
    msg = P.refusal(name)
    assert msg.startswith(f"emulate does not handle the primitive {name!r}: {reason}. Workaround: {workaround}")
    assert "Workaround: " in P.complex_refusal(name, "complex64")


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (lambda x: jnp.nextafter(x, x + 1), "'nextafter': it steps to the neighbouring value of the array's dtype"),
        (lambda x: jnp.linalg.solve(jnp.eye(3, dtype=x.dtype) + x[:, None], x), "'lu': a matrix decomposition"),
        (lambda x: jnp.fft.rfft(x).real, "primitive 'fft' has a complex64 .*Workaround: write the transform as real"),
        (lambda x: lax.reduce(x, jnp.float32(0), lambda a, b: a + 2 * b, (0,)), "'reduce': a generic or variadic"),
        (lambda x: lax.rng_uniform(x[0], x[1], (2,)), "'rng_uniform': .*jax.random.uniform"),
        (lambda x: jnp.fft.ifft(x).real, "primitive 'convert_element_type' has a complex64 .*real arrays"),
    ],
)
def test_refused_primitives_raise_at_trace_time(fn, match):
    with pytest.raises(NotImplementedError, match=match):
        numfmt.emulate(fn, "compute=float16")(jnp.asarray([0.5, 1.5, 2.5], jnp.float32))


def test_unclassified_primitive_gets_the_generic_refusal():
    prim = jcore.Primitive("numfmt_test_unclassified")
    prim.def_impl(lambda x: x)
    prim.def_abstract_eval(lambda x: x)
    with pytest.raises(NotImplementedError, match="'numfmt_test_unclassified': it is not in numfmt's classification"):
        numfmt.emulate(lambda x: prim.bind(x * 2.0), "compute=float16")(jnp.ones(2, jnp.float32))


def test_prim_override_of_a_non_site_names_its_kind():
    with pytest.raises(ValueError, match="'top_k' is not a rounding site of numfmt.emulate \\(its kind is 'exact'"):
        numfmt.Policy.parse("compute=bfloat16,prim.top_k=float32")
    assert numfmt.Policy.parse("compute=bfloat16,prim.lgamma=float32").site("lgamma")[0] == numfmt.float32
