"""Per-scope policies: the scope(...) grammar, which equations a rule selects, and what they compute.

Counts come from ``emulate(fn, policy).explain(*args)`` (the policy each equation
was evaluated under) and are checked against an independent walk of the plain
jaxpr (its name stacks as strings); values are compared bit for bit with the
same computation under one global policy, or composed from separately emulated
parts.
"""

import os
import pathlib
import re
import subprocess
import sys
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend import core as jcore

import numfmt
from numfmt import Policy

nn = pytest.importorskip("flax.linen")
eqx = pytest.importorskip("equinox")
optax = pytest.importorskip("optax")

# -- grammar -----------------------------------------------------------------------------

CANONICAL = [
    "compute=bfloat16,scope(Dense_0|head)=float32",
    "compute=bfloat16,scope(*/attention/*).matmul_in=mxfp8_e4m3",
    "compute=float32,scope(/Model/Block_?/**/out)=float16@toward_zero,scope(Block_[01]).prim.exp=bfloat16",
    "compute=bfloat16,accum=float32,scope(x).chunk=4,scope(x).rounding=stochastic,scope(y).reductions=float32",
    "compute=float(e=6,m=5),scope(a)=float(e=5,m=7),scope(a).accum=float(e=8,m=10),scope(b).elementwise=float16",
    "compute=bfloat16,grad=float8_e5m2,scope(eqx.nn.Linear).matmul=float8_e4m3fn@stochastic",
]


@pytest.mark.parametrize("spec", CANONICAL)
def test_str_of_parse_is_identity(spec):
    p = Policy.parse(spec)
    assert str(p) == spec
    assert Policy.parse(str(p)) == p
    assert hash(Policy.parse(spec)) == hash(p)


def test_separators_spaces_dicts_and_fields_give_one_policy():
    canonical = "compute=bfloat16,scope(Dense_0|head)=float32,scope(attention).matmul_in=float8_e4m3fn"
    forms = [
        "compute=bfloat16; scope( Dense_0 | head )=float32; scope(attention).MATMUL_IN=float8_e4m3fn",
        {"compute": "bfloat16", "scope(Dense_0|head)": "float32", "scope(attention).matmul_in": "float8_e4m3fn"},
        Policy("bfloat16", scopes={"Dense_0|head": "float32", "attention": {"matmul_in": "float8_e4m3fn"}}),
        Policy("bfloat16", scopes=[("Dense_0|head", "", "float32"), ("attention", "matmul_in", "float8_e4m3fn")]),
        "compute=bfloat16,scope(Dense_0|head)=float32@nearest_even,scope(attention).matmul_in=float8_e4m3fn",
    ]
    for form in forms:
        p = Policy.parse(form)
        assert str(p) == canonical and p == Policy.parse(canonical)


NAMES = ("Model", "Block_1", "attention", "query")


@pytest.mark.parametrize(
    ("pattern", "selected"),
    [
        ("Block_1", True),  # a name anywhere, and everything inside it
        ("query", True),
        ("Block_1/attention", True),  # consecutive names
        ("Model/attention", False),
        ("/Model", True),  # anchored at the outermost scope
        ("/Block_1", False),
        ("Block_*", True),
        ("*/attention/*", True),
        ("attention/*/*", False),  # '*' is one name
        ("Model/**/query", True),  # '**' any number of names
        ("Model/**/Block_1", True),  # ... none included
        ("block_1", False),  # case-sensitive
        ("nothing|Block_?", True),
    ],
)
def test_pattern_semantics(pattern, selected):
    p = Policy.parse(f"compute=bfloat16,scope({pattern})=float32")
    assert str(p.for_scope(NAMES)) == ("compute=float32" if selected else "compute=bfloat16")


def test_transformation_wrappers_are_dropped():
    p = Policy.parse("compute=bfloat16,scope(/outer/M/Dense_0)=float32")
    assert p.for_scope("transpose(jvp(outer))/M/Dense_0") == p.for_scope(("outer", "M", "Dense_0"))
    assert str(p.for_scope("transpose(jvp(outer))/M/Dense_0")) == "compute=float32"


def test_rules_apply_in_order_and_a_site_rule_replaces_the_scope_policy():
    p = Policy.parse(
        "compute=bfloat16,matmul_in=float8_e4m3fn,accum=float32,transcendental=float32,"
        "scope(Block_1).compute=float16,scope(attention)=float32,scope(query).matmul_in=float8_e5m2"
    )
    block = "compute=float16,matmul_in=float8_e4m3fn,accum=float32,transcendental=float32"
    assert str(p.for_scope("Model/Block_1/Dense_0")) == block  # .compute= keeps the other keys
    assert str(p.for_scope("Model/Block_1/attention")) == "compute=float32"  # scope(P)=SITE: compute= alone
    assert str(p.for_scope(NAMES)) == "compute=float32,matmul_in=float8_e5m2"  # later rules win
    assert str(p.for_scope("Model")) == str(p).split(",scope")[0]
    # scope(P)=SITE is the whole policy of the scope, its backward pass included; scope(P).KEY keeps grad=
    g = Policy.parse("compute=bfloat16,grad=float8_e5m2,bwd.out=float16,scope(a)=float32,scope(b).compute=float16")
    assert str(g.for_scope("a")) == "compute=float32"
    assert str(g.for_scope("b")) == "compute=float16,grad=float8_e5m2,bwd.out=float16"


def test_a_stochastic_rule_makes_the_policy_stochastic():
    assert Policy.parse("compute=bfloat16,scope(a)=float16@stochastic").is_stochastic
    assert Policy.parse("compute=bfloat16,scope(a).rounding=stochastic").is_stochastic
    assert not Policy.parse("compute=bfloat16,scope(a)=float16@toward_zero").is_stochastic
    f = numfmt.emulate(_two_scopes, "compute=bfloat16,scope(a)=float16@stochastic")
    with pytest.raises(ValueError, match="needs a key"):
        f(jnp.ones(3, jnp.float32))


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("compute=bfloat16,scope(a=float32", "unbalanced parentheses"),
        ("compute=bfloat16,scope(a))=float32", "unbalanced parentheses"),
        ("compute=bfloat16,scope()=float32", "empty alternative"),
        ("compute=bfloat16,scope(a||b)=float32", "empty alternative"),
        ("compute=bfloat16,scope(a//b)=float32", "empty name between '/'"),
        ("compute=bfloat16,scope(a b)=float32", "' ' cannot appear in a pattern"),
        ("compute=bfloat16,scope(a(b))=float32", "unbalanced|cannot appear"),
        ("compute=bfloat16,scope(a).=float32", r"after scope\(a\) comes"),
        ("compute=bfloat16,scope(a)x=float32", r"after scope\(a\) comes '=FORMAT'"),
        ("compute=bfloat16,scope(a).matmul_inn=float32", r"scope\(a\).matmul_inn: unknown policy key.*'matmul_in'"),
        ("compute=bfloat16,scope(a).prim.dotgeneral=float32", "'prim.dot_general'"),
        ("compute=bfloat16,scope(a).grad=float32", r"scope\(a\).grad: grad applies to the whole function"),
        ("compute=bfloat16,scope(a).chunk=4", r"scope\(a\): chunk=4 needs an accumulator format"),
        ("compute=bfloat16,scope(a).chunk=x", r"scope\(a\).chunk: chunk='x' must be a positive integer"),
        ("compute=bfloat16,scope(a)=mxfp4_e2m1", r"scope\(a\): policy compute=mxfp4_e2m1: BlockFormat"),
        ("compute=bfloat16,scope(a)=float32,scope(a)=float16", "given twice"),
        ("compute=bfloat16,scope(a).out=bfloat17", r"scope\(a\).out"),
        ("compute=bfloat16,scope(a)=float16@sideways", "unknown rounding 'sideways'"),
    ],
)
def test_bad_scope_items(spec, match):
    with pytest.raises(ValueError, match=match):
        Policy.parse(spec)


def test_bad_scope_types():
    with pytest.raises(TypeError, match=r"scopes must be \(pattern, key, value\) triples"):
        Policy("bfloat16", scopes="a=float32")
    with pytest.raises(TypeError, match="a scope pattern is a string"):
        Policy("bfloat16", scopes=[(3, "", "float32")])


# -- which equations a rule selects ------------------------------------------------------


def _two_scopes(x):
    with jax.named_scope("a"):
        y = jnp.tanh(x * 1.37) + x
    with jax.named_scope("b"):
        return jnp.exp(y / 3.1) * y


def _plain_scopes(fn, *args):
    """The "/"-joined scope names of every equation of ``fn``'s plain jaxpr (bodies' included).

    Independent of numfmt: works on the name stacks' strings, unwrapping ``jvp(...)``-style wrappers.
    """

    def strip(text):
        parts = []
        for part in text.split("/"):
            while m := re.fullmatch(r"[a-z_]+\((.*)\)", part):
                part = m.group(1)
            parts += [part] if part else []
        return parts

    def walk(jaxpr, prefix):
        for eqn in jaxpr.eqns:
            names = prefix + strip(str(eqn.source_info.name_stack))
            subs = list(jcore.jaxprs_in_params(eqn.params))
            if not subs:
                yield "/".join(names), eqn.primitive.name
            for sub in subs:
                yield from walk(sub, names)

    return list(walk(jax.make_jaxpr(fn)(*args).jaxpr, []))


def _check_selection(fn, spec, args, expected_policy):
    """Every equation ``explain`` lists has the policy ``expected_policy(scope)`` names; returns the counts."""
    rows = numfmt.emulate(fn, spec).explain(*args)
    plain = _plain_scopes(fn, *args)
    assert [(r.scope, r.primitive) for r in rows] == plain  # every equation, once, with its full scope
    counts = Counter()
    for r in rows:
        want = expected_policy(r.scope)
        assert str(r.policy) == want, (r, want)
        counts[want] += 1
    return counts


def test_unmatched_rules_are_reported_with_the_scopes_there_are():
    x = jnp.linspace(-1, 1, 5, dtype=jnp.float32)
    with pytest.raises(ValueError, match=r"scope\(b\|c\): 'c' matches no equation.*the scopes it has are: a, b"):
        numfmt.emulate(_two_scopes, "compute=bfloat16,scope(b|c)=float32")(x)
    with pytest.raises(ValueError, match=r"'A' matches no equation.*scopes it has are: a, b"):
        numfmt.emulate(_two_scopes, "compute=bfloat16,scope(A)=float32")(x)
    with pytest.raises(ValueError, match="records no scope names.*jax.named_scope"):
        numfmt.emulate(jnp.sin, "compute=bfloat16,scope(a)=float32")(x)


def _bits(tree):
    return [np.asarray(a).view(np.uint32 if np.asarray(a).dtype.itemsize == 4 else np.uint64)
            for a in jax.tree.leaves(tree)]  # fmt: skip


def _assert_same_bits(a, b):
    for x, y in zip(_bits(a), _bits(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_scope_computes_as_its_policy_and_values_cross_scopes_unchanged():
    x = jnp.linspace(-2, 2, 64, dtype=jnp.float32)
    spec = "compute=bfloat16,scope(a)=float16"
    counts = _check_selection(_two_scopes, spec, (x,), lambda s: "compute=float16" if s == "a" else "compute=bfloat16")
    assert counts == {"compute=float16": 3, "compute=bfloat16": 3}  # mul tanh add; div exp mul

    def a(x):
        return jnp.tanh(x * 1.37) + x

    def b(y):
        return jnp.exp(y / 3.1) * y

    ea, eb, mixed = numfmt.emulate(a, "compute=float16"), numfmt.emulate(b, "compute=bfloat16"), numfmt.emulate(
        _two_scopes, spec)  # fmt: skip
    composed = eb(ea(x))
    _assert_same_bits(mixed(x), composed)
    _assert_same_bits(jax.jit(mixed)(x), composed)
    _assert_same_bits(jax.grad(lambda x: jnp.sum(mixed(x)))(x), jax.grad(lambda x: jnp.sum(eb(ea(x))))(x))
    assert not np.array_equal(_bits(composed), _bits(numfmt.emulate(_two_scopes, "compute=bfloat16")(x)))


def _body_scopes(x):
    """Named scopes inside nested bodies: jit, scan, cond, checkpoint, custom_jvp (relu)."""

    @jax.jit
    def inner(v):
        with jax.named_scope("in_jit"):
            return jnp.sin(v) * 1.1

    with jax.named_scope("outer"):
        y = inner(x)

        def step(c, _):
            with jax.named_scope("in_scan"):
                return c * 0.9 + jnp.cos(c), None

        y, _ = jax.lax.scan(step, y, None, length=2)
        y = jax.lax.cond(y[0] > 0, lambda v: jnp.exp(v / 4), lambda v: v * 2, y)
        y = jax.checkpoint(lambda v: jax.nn.relu(v) + jnp.tanh(v))(y)
    return jnp.sum(y * 0.7)


def test_bodies_carry_the_names_of_the_equation_holding_them():
    x = jnp.linspace(-1, 1, 16, dtype=jnp.float32)
    spec = "compute=bfloat16,scope(outer/in_scan|in_jit)=float16,scope(/outer).prim.exp=float32"

    def expected(scope):
        if scope.startswith(("outer/in_scan", "outer/in_jit")):
            return "compute=float16,prim.exp=float32"  # the later rule adds to it
        return "compute=bfloat16,prim.exp=float32" if scope.startswith("outer") else "compute=bfloat16"

    counts = _check_selection(_body_scopes, spec, (x,), expected)
    assert counts["compute=float16,prim.exp=float32"] == 5  # sin mul (jit); mul cos add (scan)
    assert counts["compute=bfloat16"] == 2  # mul reduce_sum
    # one scope covering the whole function computes as the global policy, bit for bit, in both grad orders
    whole = lambda x: _named("all", _body_scopes, x)  # noqa: E731
    for pol in ("compute=float16", "compute=bfloat16,matmul_in=float8_e4m3fn"):
        scoped = "compute=float32,scope(all)=" + pol.replace(",", ",scope(all).").removeprefix("compute=")
        _assert_same_bits(numfmt.emulate(whole, scoped)(x), numfmt.emulate(whole, pol)(x))
        _assert_same_bits(jax.grad(numfmt.emulate(whole, scoped))(x), jax.grad(numfmt.emulate(whole, pol))(x))
        _assert_same_bits(numfmt.emulate(jax.grad(whole), scoped)(x), numfmt.emulate(jax.grad(whole), pol)(x))


def _named(name, fn, *args):
    with jax.named_scope(name):
        return fn(*args)


def test_stochastic_scopes_draw_their_own_streams():
    x = jnp.asarray(np.random.default_rng(0).standard_normal(256), jnp.float32)

    def f(x):
        with jax.named_scope("a"):
            u = x * 1.3
        with jax.named_scope("b"):
            v = x * 1.3
        return u, v

    key = jax.random.key(7)
    spec = "compute=float32,scope(a|b)=bfloat16@stochastic"
    rows = numfmt.emulate(f, spec).explain(x)  # explain supplies a key
    assert [(r.scope, str(r.policy)) for r in rows] == [(s, "compute=bfloat16,rounding=stochastic") for s in "ab"]
    u, v = numfmt.emulate(f, spec)(x, key=key)
    assert not np.array_equal(_bits(u), _bits(v))  # each site its own stream
    # the same sites, numbered the same, as under the global policy
    _assert_same_bits((u, v), numfmt.emulate(f, "compute=bfloat16,rounding=stochastic")(x, key=key))


# -- models ------------------------------------------------------------------------------


class _Block(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = x + nn.MultiHeadDotProductAttention(num_heads=2, name="attention")(nn.LayerNorm()(x))
        return x + nn.Dense(8)(jax.nn.gelu(nn.Dense(16)(nn.LayerNorm()(x))))


class Transformer(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(8)(x)
        for _ in range(2):
            x = _Block()(x)
        return nn.Dense(3, name="head")(nn.LayerNorm()(x))


@pytest.fixture(scope="module")
def transformer():
    x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 5, 4)), jnp.float32)
    model = Transformer()
    return model, model.init(jax.random.key(0), x), x


FLAX_SPEC = ("compute=bfloat16,scope(Dense_0|head)=float32,scope(*/attention/*).matmul_in=float8_e4m3fn,"
             "scope(LayerNorm_*).reductions=float32")  # fmt: skip


def _flax_expected(scope):
    names = scope.split("/")
    if any(re.fullmatch(r"Dense_0|head", n) for n in names):
        return "compute=float32"
    if re.search(r"[^/]+/attention/[^/]+", scope):
        return "compute=bfloat16,matmul_in=float8_e4m3fn"
    if any(n.startswith("LayerNorm_") for n in names):
        return "compute=bfloat16,reductions=float32"
    return "compute=bfloat16"


def test_flax_transformer_rules_select_exactly_their_modules(transformer):
    model, params, x = transformer
    counts = _check_selection(model.apply, FLAX_SPEC, (params, x), _flax_expected)
    # Dense_0 (top and each block's) and head: dot_general, reshape, add each
    assert counts["compute=float32"] == 3 * 4
    assert counts["compute=bfloat16,reductions=float32"] == 18 * 5  # five LayerNorms
    assert counts["compute=bfloat16,matmul_in=float8_e4m3fn"] > 0 and counts["compute=bfloat16"] > 0

    # emulate(jax.grad(f)): the backward equations of Dense_0 and head are theirs too
    def loss(p, x):
        return jnp.sum(model.apply(p, x) ** 2)

    grad_counts = _check_selection(jax.grad(loss), FLAX_SPEC, (params, x), _flax_expected)
    assert grad_counts["compute=float32"] > 2 * counts["compute=float32"]


def test_flax_transformer_in_one_scope_computes_as_the_global_policy(transformer):
    model, params, x = transformer
    pol = "compute=bfloat16,matmul_in=float8_e4m3fn"
    scoped = "compute=float32,scope(/Transformer)=bfloat16,scope(/Transformer).matmul_in=float8_e4m3fn"
    _assert_same_bits(numfmt.emulate(model.apply, scoped)(params, x), numfmt.emulate(model.apply, pol)(params, x))


class _MLP(eqx.Module):
    layers: list

    def __init__(self, key):
        keys = jax.random.split(key, 3)
        self.layers = [eqx.nn.Linear(4, 8, key=keys[0]), eqx.nn.Linear(8, 8, key=keys[1]),
                       eqx.nn.Linear(8, 2, key=keys[2])]  # fmt: skip

    def __call__(self, x):
        for i, layer in enumerate(self.layers):
            with jax.named_scope(f"layer{i}"):  # equinox records class names only: name the layers
                x = layer(x)
                x = jax.nn.relu(x) if i < 2 else x
        return x


def test_equinox_mlp_layers_named_with_jax_named_scope():
    mlp = jax.tree.map(lambda a: a.astype(jnp.float32) if eqx.is_array(a) else a, _MLP(jax.random.key(2)))
    x = jnp.asarray(np.random.default_rng(3).standard_normal((6, 4)), jnp.float32)
    fn = lambda m, x: jax.vmap(m)(x)  # noqa: E731
    spec = "compute=bfloat16,scope(layer0|layer2)=float32,scope(layer1/eqx.nn.Linear).matmul_in=float8_e4m3fn"

    def expected(scope):
        if scope.startswith(("layer0", "layer2")):
            return "compute=float32"
        return (
            "compute=bfloat16,matmul_in=float8_e4m3fn"
            if scope.startswith("layer1/eqx.nn.Linear")
            else "compute=bfloat16"
        )

    counts = _check_selection(fn, spec, (mlp, x), expected)
    linear = Counter(p for s, p in _plain_scopes(fn, mlp, x) if s.startswith("layer1/eqx.nn.Linear"))
    assert counts["compute=bfloat16,matmul_in=float8_e4m3fn"] == sum(linear.values()) > 0
    assert counts["compute=bfloat16"] > 0  # layer1's relu
    # layers 0 and 2 in float32 and layer 1 in bfloat16 compose as three emulated calls
    layers = [
        numfmt.emulate(jax.vmap(lambda x, i=i: _act(mlp, i, x)), p)
        for i, p in enumerate(["compute=float32", "compute=bfloat16,matmul_in=float8_e4m3fn", "compute=float32"])
    ]
    _assert_same_bits(numfmt.emulate(fn, spec)(mlp, x), layers[2](layers[1](layers[0](x))))


def _act(mlp, i, x):
    x = mlp.layers[i](x)
    return jax.nn.relu(x) if i < 2 else x


def test_flax_nnx_modules_named_with_jax_named_scope():
    nnx = pytest.importorskip("flax.nnx")

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.hidden, self.out = nnx.Linear(4, 8, rngs=rngs), nnx.Linear(8, 2, rngs=rngs)

        def __call__(self, x):
            with jax.named_scope("hidden"):  # nnx records no module names
                x = jnp.tanh(self.hidden(x))
            return self.out(x)

    net = Net(nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(6).standard_normal((3, 4)), jnp.float32)
    fn = lambda x: net(x)  # noqa: E731
    counts = _check_selection(fn, "compute=bfloat16,scope(hidden)=float32", (x,),
                              lambda s: "compute=float32" if s == "hidden" else "compute=bfloat16")  # fmt: skip
    assert counts == {"compute=float32": 4, "compute=bfloat16": 3}  # dot_general reshape add (tanh); the same
    with pytest.raises(ValueError, match=r"'out' matches no equation.*scopes it has are: hidden"):
        numfmt.emulate(fn, "compute=bfloat16,scope(out)=float32")(x)


# -- the optimizer in its own policy -------------------------------------------------------


class _Small(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(jnp.tanh(nn.Dense(8)(x)))


def _train_parts():
    model = _Small()
    x = jnp.asarray(np.random.default_rng(4).standard_normal((2, 5, 4)), jnp.float32)
    y = jnp.asarray(np.random.default_rng(5).standard_normal((2, 5, 3)), jnp.float32)
    params = model.init(jax.random.key(1), x)
    opt = optax.adam(1e-2)

    def loss(p, x, y):
        return jnp.mean((model.apply(p, x) - y) ** 2)

    def update(g, state, p):
        updates, state = opt.update(g, state, p)
        return optax.apply_updates(p, updates), state

    def step(p, state, x, y):
        value, g = jax.value_and_grad(loss)(p, x, y)
        with jax.named_scope("optimizer"):
            p, state = update(g, state, p)
        return p, state, value

    return step, loss, update, params, opt.init(params), x, y


def test_optimizer_runs_in_float32_inside_a_bfloat16_step():
    step, loss, update, params, state, x, y = _train_parts()
    spec = "compute=bfloat16,scope(optimizer)=float32"
    with jax.numpy_dtype_promotion("standard"):  # Adam mixes floats and its int32 count
        rows = numfmt.emulate(step, spec).explain(params, state, x, y)
        assert {str(r.policy) for r in rows if r.scope.startswith("optimizer")} == {"compute=float32"}
        assert {str(r.policy) for r in rows if not r.scope.startswith("optimizer")} == {"compute=bfloat16"}
        assert sum(r.scope.startswith("optimizer") for r in rows) >= 8 * 4  # Adam's ops on 4 parameters

        new_p, new_state, value = jax.jit(numfmt.emulate(step, spec))(params, state, x, y)
        # the model's forward and backward pass in bfloat16, then Adam under compute=float32
        ref_value, g = numfmt.emulate(jax.value_and_grad(loss), "compute=bfloat16")(params, x, y)
        ref_p, ref_state = numfmt.emulate(update, "compute=float32")(g, state, params)
        _assert_same_bits((new_p, new_state, value), (ref_p, ref_state, ref_value))


# -- x64 off -------------------------------------------------------------------------------

SCRIPT = r"""
import jax, jax.numpy as jnp, numpy as np
import numfmt
assert jax.config.read("jax_enable_x64") == X64
def f(x):
    with jax.named_scope("a"):
        y = jnp.tanh(x @ x.T * 1.37) + 1.0
    with jax.named_scope("b"):
        return jnp.sum(jnp.exp(y / 3.1) * y)
x = jnp.linspace(-2.0, 2.0, 24, dtype=jnp.float32).reshape(4, 6)
spec = "compute=bfloat16,scope(a)=float16,scope(a).matmul_in=float8_e4m3fn"
e = numfmt.emulate(f, spec)
for out in (e(x), jax.jit(jax.grad(e))(x), numfmt.emulate(jax.grad(f), spec)(x)):
    print(out.dtype, np.asarray(out).view(np.uint32).tolist())
import optax
adam = optax.adam(1e-2)
def update(g, s, p):
    u, s = adam.update(g, s, p)
    return optax.apply_updates(p, u), s
loss = lambda p: jnp.sum(jnp.tanh(x @ p["w"]) ** 2)
def step(p, s):
    g = jax.grad(loss)(p)
    with jax.named_scope("optimizer"):
        return update(g, s, p)
p = {"w": jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float32).reshape(6, 2)}
new, _ = jax.jit(numfmt.emulate(step, "compute=bfloat16,scope(optimizer)=float32"))(p, adam.init(p))
print(new["w"].dtype, np.asarray(new["w"]).view(np.uint32).tolist())
if not X64:  # Adam in plain float32 (with x64 on, optax's bias correction would run in float64)
    g = numfmt.emulate(jax.grad(loss), "compute=bfloat16")(p)
    plain = jax.jit(update)(g, adam.init(p), p)[0]["w"]
    same = np.array_equal(np.asarray(plain).view(np.uint32), np.asarray(new["w"]).view(np.uint32))
    print("plain float32 Adam:", same)
"""


def test_x64_off_gives_the_x64_on_bits():
    root = pathlib.Path(__file__).resolve().parents[1]
    runs = {}
    for flag in ("0", "1"):
        env = dict(os.environ, JAX_ENABLE_X64=flag, JAX_PLATFORMS="cpu", PYTHONPATH=str(root))
        code = SCRIPT.replace("X64", "True" if flag == "1" else "False")
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        runs[flag] = proc.stdout.splitlines()
    assert runs["0"][:-1] == runs["1"] and len(runs["1"]) == 4
    assert all(line.startswith("float32 ") for line in runs["1"])
    # x64 off: the optimizer scope of a bfloat16 step computes Adam exactly as plain float32 JAX does
    assert runs["0"][-1] == "plain float32 Adam: True"
