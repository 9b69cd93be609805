"""Policy grammar: canonical round trip, site resolution, errors."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numfmt
from numfmt import Policy, Rounding

CANONICAL = [
    "compute=float32",
    "compute=bfloat16",
    "compute=bfloat16,matmul_in=float8_e4m3fn,accum=float32,out=bfloat16",
    "compute=float16,rounding=stochastic,matmul_in=float8_e5m2,accum=float16,chunk=32,out=float16",
    "compute=bfloat16,grad=float8_e5m2,grad_rounding=stochastic",
    "compute=bfloat16,matmul_in=float8_e4m3fn,accum=float32,out=bfloat16,bwd.matmul_in=float8_e5m2",
    "compute=bfloat16,grad=float16,bwd.accum=float32,bwd.chunk=8,bwd.elementwise=float32@toward_zero,bwd.prim.exp=float16",
    "compute=float(e=6,m=5),matmul=float8_e4m3fn,elementwise=float16@toward_zero,prim.exp=float32",
    "compute=binary8p3se,reductions=float32,transcendental=bfloat16@stochastic_equal",
    "compute=bfloat16,matmul_in=mxfp8_e4m3,out=bfloat16,prim.add_any=float32,prim.dot_general=float16@toward_zero",
    "compute=float16,rounding=toward_negative,accum=float16,chunk=4,reductions=float32,prim.reduce_sum=float16",
    "compute=bfloat16,matmul_in=float8_e4m3fn,accum=float(e=8,m=13),chunk=4,promote=128,out=bfloat16",
    "compute=bfloat16,accum=float32,promote=32,scope(head).promote=64",
]


@pytest.mark.parametrize("spec", CANONICAL)
def test_str_of_parse_is_identity(spec):
    p = Policy.parse(spec)
    assert str(p) == spec
    assert Policy.parse(str(p)) == p
    assert hash(Policy.parse(spec)) == hash(p)


FORMATS = st.sampled_from(["float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "float(e=5,m=7)", "binary8p4se"])
MODES = st.sampled_from([r for r in Rounding if r.value not in ("stochastic_a", "stochastic_b", "stochastic_c")])


@given(
    compute=FORMATS, rounding=MODES, matmul_in=st.none() | FORMATS, accum=st.none() | FORMATS,
    chunk=st.integers(1, 64), out=st.none() | FORMATS, grad=st.none() | FORMATS, grad_rounding=MODES,
    overrides=st.dictionaries(
        st.sampled_from(["matmul", "elementwise", "reductions", "transcendental", "prim.exp", "prim.tanh"]),
        st.tuples(FORMATS, st.none() | MODES), max_size=4,
    ),
    bwd=st.dictionaries(
        st.sampled_from(["matmul_in", "out", "matmul", "elementwise", "prim.exp"]),
        st.tuples(FORMATS, st.none() | MODES), max_size=3,
    ),
)  # fmt: skip
def test_random_policies_round_trip(
    compute, rounding, matmul_in, accum, chunk, out, grad, grad_rounding, overrides, bwd
):  # fmt: skip
    p = Policy(
        compute, rounding, matmul_in, accum, chunk if accum else None, out, grad,
        grad_rounding if grad is not None else Rounding.NEAREST_EVEN,
        {k: f if r is None else (f, r) for k, (f, r) in overrides.items()},
        bwd={k: f if r is None or k in ("matmul_in", "out") else (f, r) for k, (f, r) in bwd.items()},
    )  # fmt: skip
    assert Policy.parse(str(p)) == p
    assert str(Policy.parse(str(p))) == str(p)
    back = p.backward()
    assert back.grad is None and not back.bwd and back.backward() == back
    assert back.compute == (p.compute if grad is None else p.grad)


def test_site_resolution_order():
    p = Policy.parse("compute=bfloat16,rounding=toward_zero,transcendental=float16,prim.exp=float32@nearest_even")
    assert p.site("exp") == (numfmt.float32, Rounding.NEAREST_EVEN)
    assert p.site("tanh") == (numfmt.float16, Rounding.TOWARD_ZERO)
    assert p.site("add") == (numfmt.bfloat16, Rounding.TOWARD_ZERO)
    q = Policy.parse("compute=bfloat16,matmul_in=float8_e4m3fn,accum=float16,chunk=4")
    assert q.matmul_formats() == (numfmt.float8_e4m3fn, numfmt.float16, 4, numfmt.bfloat16, Rounding.NEAREST_EVEN)
    assert Policy.parse("compute=bfloat16,accum=float32").matmul_formats()[2] == 1
    assert Policy.parse("compute=float16").matmul_formats()[1:3] == (None, None)


def test_is_stochastic():
    assert not Policy.parse("compute=bfloat16").is_stochastic
    assert Policy.parse("compute=bfloat16,rounding=sr").is_stochastic
    assert Policy.parse("compute=bfloat16,exp=float16@stochastic".replace("exp", "prim.exp")).is_stochastic
    assert Policy.parse("compute=bfloat16,grad=float8_e5m2,grad_rounding=stochastic").is_stochastic
    assert Policy.parse("compute=bfloat16,bwd.elementwise=float16@stochastic").is_stochastic
    # a gradient rounding without a gradient format would round nothing: refused
    with pytest.raises(ValueError, match="grad_rounding=stochastic needs grad=FORMAT"):
        Policy(numfmt.bfloat16, grad_rounding="stochastic")


def test_policy_is_a_static_jit_argument():
    p = Policy.parse("compute=float16")
    f = jax.jit(lambda x, policy: x + 1.0, static_argnums=1)
    assert float(f(jnp.float32(1.0), p)) == 2.0
    assert dataclasses.replace(p, compute="bfloat16") == Policy.parse("compute=bfloat16")


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("compute=bfloat16,matmull=float16", "unknown policy key 'matmull'.*Did you mean 'matmul'"),
        ("compute=bfloat16,tensorcore=float16", "unknown policy key 'tensorcore'.*the groups matmul"),
        ("rounding=nearest_even", "no compute=FORMAT"),
        ("compute=bfloat17", "policy compute: unknown format 'bfloat17'"),
        ("compute=bfloat16,rounding=nearest_odd", "unknown rounding 'nearest_odd'"),
        ("compute=bfloat16,rounding=stochastic_a", "needs a random_bits count"),
        ("compute=bfloat16,chunk=4", "chunk=4 needs an accumulator format"),
        ("compute=bfloat16,accum=float32,chunk=0", "chunk=0 must be a positive int"),
        ("compute=bfloat16,accum=float32,chunk=x", "chunk='x' must be a positive integer"),
        ("compute=bfloat16,promote=128", "promote=128 needs an accumulator format: add accum=FORMAT"),
        ("compute=bfloat16,accum=float32,promote=0", "promote=0 must be a positive integer"),
        ("compute=bfloat16,accum=float32,promote=-4", "promote='-4' must be a positive integer"),
        ("compute=bfloat16,accum=float32,promote=1.5", "promote='1.5' must be a positive integer"),
        ("compute=bfloat16,accum=float32,chunk=16,promote=100", "promote=100 must be a multiple of chunk=16.*96 or 1"),
        ("compute=bfloat16,accum=float32,chunk=16,promote=8", "promote=8 must be a multiple of chunk=16.*promote=16$"),
        ("compute=bfloat16,accum=float32,chunk=3,scope(a).promote=4", r"scope\(a\): promote=4 must be a multiple"),
        ("compute=bfloat16,compute=float16", "key 'compute' is given twice"),
        ("compute=bfloat16,float16", "'float16' is not of the form key=value"),
        ("compute=float(e=5,m=7", "unbalanced parentheses"),
        ("compute=bfloat16,elementwise=float16@sideways", "unknown rounding 'sideways'"),
        # a misspelt primitive would silently do nothing
        ("compute=bfloat16,prim.dotgeneral=float32", r"'prim.dotgeneral'.*not a JAX primitive.*'prim.dot_general'"),
        ("compute=bfloat16,prim.reduce_sums=float32", r"'reduce_sums' is not a JAX primitive.*'prim.reduce_sum'"),
        ("compute=bfloat16,prim.max=float32", "'max' is not a rounding site of numfmt.emulate"),
        ("compute=bfloat16,prim.while=float32", "'while' is not a rounding site"),
        ("compute=bfloat16,prim.xor=float32", "'xor' is not a rounding site"),
        # block formats: only matmul_in= takes them
        ("compute=float32,accum=mxfp4_e2m1", r"accum=mxfp4_e2m1: BlockFormat .* only matmul_in= takes"),
        ("compute=mxfp4_e2m1", "compute=mxfp4_e2m1: BlockFormat"),
        ("compute=float32,grad=nvfp4", "grad=nvfp4: BlockFormat nvfp4 is a block"),
        ("compute=float32,out=mxfp8_e4m3", "out=mxfp8_e4m3"),
        ("compute=float32,matmul=mxfp8_e4m3", "matmul=mxfp8_e4m3"),
        ("compute=float32,prim.exp=nf4", "prim.exp=nf4"),
        # no zero or no sign: every zero / negative result would be NaN
        ("compute=float8_e8m0fnu", "float8_e8m0fnu has no zero"),
        ("compute=float32,matmul_in=float8_e8m0fnu", "float8_e8m0fnu has no zero"),
        ("compute=float32,out=float(e=4,m=3,specials=fn,signed=false)", "has no sign"),
    ],
)
def test_bad_policy_strings(spec, match):
    with pytest.raises(ValueError, match=match):
        Policy.parse(spec)


def test_bad_policy_types():
    with pytest.raises(TypeError, match="a policy must be a Policy or a string"):
        Policy.parse(3)
    with pytest.raises(TypeError, match="overrides must be a dict"):
        Policy("bfloat16", overrides="elementwise=float16")
    with pytest.raises(ValueError, match="unknown policy key 'reduction'"):
        Policy("bfloat16", overrides={"reduction": "float32"})
    with pytest.raises(ValueError, match="'prim.dotgeneral'"):
        Policy("bfloat16", overrides={"prim.dotgeneral": "float32"})
    with pytest.raises(ValueError, match="grad=nvfp4"):
        Policy("float32", grad="nvfp4")
    with pytest.raises(ValueError, match="accum=mxfp4_e2m1"):
        Policy("float32", accum=numfmt.parse("mxfp4_e2m1"))


def test_promote_field():
    p = Policy("bfloat16", accum="float16", chunk=4, promote=128)
    assert p.promote == 128 and str(p) == "compute=bfloat16,accum=float16,chunk=4,promote=128"
    assert p == Policy.parse(str(p)) and Policy.parse("compute=bfloat16,accum=float16").promote is None
    assert Policy.parse("compute=bfloat16,accum=float16,scope(a).promote=8").for_scope("a").promote == 8
    assert Policy.parse("compute=bfloat16,accum=float16,promote=8,scope(a)=float32").for_scope("a").promote is None
    for bad in (0, -1, 2.0, True, "x"):
        with pytest.raises(ValueError, match="must be a positive integer"):
            Policy("bfloat16", accum="float16", promote=bad)
