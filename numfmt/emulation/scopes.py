"""Per-scope policy rules: which equations a ``scope(PATTERN)`` item of a :class:`~numfmt.Policy` selects.

JAX records a name stack on every equation: the ``jax.named_scope`` names
around it (flax linen adds one per module call: ``Transformer/Block_0/
attention/query``; equinox adds the class name, ``eqx.nn.Linear``; flax nnx
adds none) wrapped in the transformations that produced it (``jvp(...)``,
``transpose(...)``, ``vmap(...)``). A rule sees the *scope names* only: the
transformation wrappers are dropped, so ``Dense_0`` also selects the
backward-pass equations ``jax.grad`` derived from Dense_0's, and an
equation inside a nested body (jit, scan, while, cond, checkpoint,
custom_jvp/vjp) has the names of the equation that holds the body in front
of its own (JAX records them relative to the body).

A pattern is one or more alternatives separated by ``|``. An alternative is
a ``/``-separated path of glob components (``fnmatch``, case-sensitive:
``*`` any characters of one name, ``?`` one character, ``[..]`` a set;
``**`` any number of names, none included). It selects an equation when its
components match consecutive names of the equation's name stack, starting
anywhere, or at the root if the alternative starts with ``/``; what follows
is inside the scope (a module and everything it calls). So ``Dense_0``
selects ``M/Dense_0`` and ``M/Block_1/Dense_0/...``; ``Block_1/Dense_0`` only
the latter; ``/M/Dense_0`` only the former; ``*/attention/*`` everything one
name below any ``attention`` that is itself below something.

Only the standard library here (policy.py imports this without JAX);
:func:`check_matched` imports JAX when it runs.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import functools
import re
from fnmatch import fnmatchcase
from typing import NamedTuple

__all__ = [
    "RECORD",
    "Applied",
    "canonical_pattern",
    "check_matched",
    "explain",
    "is_transposed",
    "matches",
    "normalise",
    "resolve",
    "rule_key",
    "scope_names",
]


class Applied(NamedTuple):
    """One equation as ``emulate(fn, policy).explain(*args)`` lists it."""

    scope: str  # its scope names joined by "/" (enclosing bodies' first, transformations dropped)
    primitive: str  # the primitive's name (dot_general, exp, ...)
    policy: object  # the Policy (without scope rules) it was evaluated under


# A list while explain() traces: the interpreter appends an Applied per equation (bodies' included).
RECORD: contextvars.ContextVar[list | None] = contextvars.ContextVar("numfmt_emulate_record", default=None)

_FORBIDDEN = re.compile(r"[(),;=\s]")


def canonical_pattern(text) -> str:
    """``text`` checked as a scope pattern, in canonical form (alternatives stripped of spaces)."""
    if not isinstance(text, str):
        raise TypeError(f"a scope pattern is a string like 'Dense_0|head', got {text!r}")
    alts = [a.strip() for a in text.split("|")]
    for alt in alts:
        if not alt:
            raise ValueError(
                f"scope pattern {text!r} has an empty alternative; write names separated by '|', "
                "e.g. scope(Dense_0|head)"
            )
        bad = _FORBIDDEN.search(alt)
        if bad:
            raise ValueError(
                f"scope pattern {text!r}: {bad.group()!r} cannot appear in a pattern (names, '/', '|' and the "
                "globs * ? [..] ** can)"
            )
        if "" in alt.removeprefix("/").split("/"):
            raise ValueError(
                f"scope pattern {text!r}: {alt!r} has an empty name between '/' (only a leading '/', which "
                "anchors the pattern at the outermost scope, may stand alone)"
            )
    return "|".join(alts)


def rule_key(key: str):
    """``"scope(P)"`` -> ``(P, "")``, ``"scope(P).KEY"`` -> ``(P, "key")``, any other key -> None."""
    text = key.strip()
    if not text.lower().startswith("scope("):
        return None
    close = text.find(")")
    if close < 0:
        raise ValueError(f"policy key {key!r}: scope( has no closing ')'; write scope(PATTERN)=FORMAT")
    pattern, tail = canonical_pattern(text[6:close]), text[close + 1 :].strip()
    if not tail:
        return pattern, ""
    sub = tail[1:].strip().lower()
    if not tail.startswith(".") or not sub:
        raise ValueError(
            f"policy key {key!r}: after scope({pattern}) comes '=FORMAT' (the scope's policy) or '.KEY=VALUE' "
            f"(e.g. scope({pattern}).matmul_in=float8_e4m3fn), not {tail!r}"
        )
    return pattern, sub


def normalise(scopes, whole_function, value_of) -> tuple:
    """Scope rules as given (triples, or a dict ``{pattern: site or {key: value}}``) -> checked triples.

    ``value_of(key, value)`` checks and normalises one value (the policy's own
    checks); keys in ``whole_function`` are refused.
    """
    if isinstance(scopes, dict):
        scopes = [(p, *kv) for p, v in scopes.items() for kv in (v.items() if isinstance(v, dict) else [("", v)])]
    if not isinstance(scopes, (tuple, list)) or not all(isinstance(r, (tuple, list)) and len(r) == 3 for r in scopes):
        raise TypeError(
            f"scopes must be (pattern, key, value) triples or a dict {{pattern: format or {{key: value}}}}, "
            f"got {scopes!r}"
        )
    out: dict = {}
    for pattern, key, value in scopes:
        pattern = canonical_pattern(pattern)
        if not isinstance(key, str):
            raise TypeError(f"scope({pattern}): keys are strings, got {key!r}")
        key = key.strip().lower()
        where = f"scope({pattern})" + (f".{key}" if key else "")
        if (pattern, key) in out:
            raise ValueError(f"policy rule {where} is given twice")
        if key in whole_function:
            raise ValueError(
                f"policy rule {where}: {key} applies to the whole function (it sets the backward pass's "
                f"policy); give it as a plain {key}= item"
            )
        try:
            out[pattern, key] = value_of(key, value)
        except (ValueError, TypeError) as err:
            raise type(err)(f"policy rule {where}: {err}") from None
    return tuple((p, k, v) for (p, k), v in out.items())


def resolve(policy, rules, keys, whole_function, default_rounding):
    """``policy``'s keys with ``rules`` applied in order, as a policy of the same class without scope rules.

    A rule with key ``""`` (``scope(P)=SITE``) replaces every field but those in
    ``whole_function`` by ``compute=SITE`` (rounding: SITE's or ``default_rounding``);
    a key in ``keys`` sets that field; any other key (a group, ``prim.NAME``) sets an override.
    """
    fields = {f.name: getattr(policy, f.name) for f in dataclasses.fields(policy)}
    fields.pop("scopes")
    over = {k: (f, r) for k, f, r in fields.pop("overrides")}
    for _, key, value in rules:
        if key == "":
            fields = {"compute": value[0], "rounding": value[1] or default_rounding,
                      **{k: fields[k] for k in whole_function}}  # fmt: skip
            over = {}
        elif key in keys:
            fields[key] = value
        else:
            over[key] = value
    return type(policy)(**fields, overrides=tuple((k, *v) for k, v in over.items()))


@contextlib.contextmanager
def recording(rows):
    """Within this block, emulate appends its :class:`Applied` rows to ``rows`` (None: records nothing).

    A trace that only inspects a body (the loop-carry fixed point of
    numfmt.emulation.control) records nothing, so that ``explain`` lists
    each equation once.
    """
    token = RECORD.set(rows)
    try:
        yield rows
    finally:
        RECORD.reset(token)


def explain(emulate, fn, policy, *args, **kwargs) -> list[Applied]:
    """Which policy each equation of ``fn(*args, **kwargs)`` is emulated under (``emulate(fn, policy).explain``).

    One :class:`Applied` ``(scope, primitive, policy)`` per equation, in
    evaluation order, nested bodies' equations included (the higher-order
    equations holding them are not listed). It only traces
    (``jax.make_jaxpr``): nothing is computed.
    """
    import jax  # noqa: PLC0415  # jax only when explain runs

    with recording([]) as rows:
        key = {"key": jax.random.key(0)} if policy.is_stochastic else {}
        fresh = emulate(fn, policy)  # a new function: never a cached trace
        jax.make_jaxpr(lambda *a: fresh(*a, **kwargs, **key))(*args)
    return rows


def scope_names(name_stack) -> tuple[str, ...]:
    """The scope names of an equation's ``source_info.name_stack``, transformations dropped.

    ``transpose(jvp(outer))/M/Dense_0`` -> ``("outer", "M", "Dense_0")``.
    """
    elems = getattr(name_stack, "stack", None)
    if elems is not None:  # JAX's NameStack: Scope(name) and Transform(name) elements
        names = [e.name for e in elems if type(e).__name__ == "Scope"]
    else:  # a string: unwrap name(...) around a component
        names = []
        for part in str(name_stack).split("/"):
            while (m := re.fullmatch(r"\w+\((.*)\)", part)) is not None:
                part = m.group(1)
            names.append(part)
    return tuple(n for name in names for n in name.split("/") if n)


def is_transposed(name_stack) -> bool:
    """Is an equation part of a transposed (backward-pass) computation (a ``transpose(...)`` in its name stack)?"""
    elems = getattr(name_stack, "stack", None)
    if elems is not None:
        return any(type(e).__name__ == "Transform" and e.name == "transpose" for e in elems)
    return "transpose(" in str(name_stack)


def _prefix_match(comps: tuple, names: tuple) -> bool:
    """Do ``comps`` match the first names of ``names`` (the rest lies inside)?"""
    if not comps:
        return True
    if comps[0] == "**":
        return any(_prefix_match(comps[1:], names[k:]) for k in range(len(names) + 1))
    return bool(names) and fnmatchcase(names[0], comps[0]) and _prefix_match(comps[1:], names[1:])


@functools.lru_cache(maxsize=4096)
def _alternative_matches(alt: str, names: tuple) -> bool:
    comps = tuple(alt.removeprefix("/").split("/"))
    starts = [0] if alt.startswith("/") else range(len(names) + 1)
    return any(_prefix_match(comps, names[s:]) for s in starts)


def matches(pattern: str, names: tuple) -> bool:
    """Does the canonical ``pattern`` select an equation whose scope names are ``names``?"""
    return any(_alternative_matches(alt, names) for alt in pattern.split("|"))


def _all_names(jaxpr, prefix=()):
    """Every equation's scope names (enclosing bodies' in front), recursively."""
    from jax.extend import core as jcore  # noqa: PLC0415  # jax only when a policy has scope rules

    for eqn in jaxpr.eqns:
        names = prefix + scope_names(eqn.source_info.name_stack)
        yield names
        for sub in jcore.jaxprs_in_params(eqn.params):
            yield from _all_names(sub, names)


def check_matched(policy, jaxpr) -> None:
    """Raise ValueError if an alternative of a scope rule of ``policy`` selects no equation of ``jaxpr``."""
    if not policy.scopes:
        return
    stacks = set(_all_names(jaxpr))
    for pattern in dict.fromkeys(p for p, _, _ in policy.scopes):
        for alt in pattern.split("|"):
            if any(_alternative_matches(alt, s) for s in stacks):
                continue
            paths = sorted({"/".join(s[: k + 1]) for s in stacks for k in range(len(s))})
            near = difflib.get_close_matches(alt.removeprefix("/"), paths + sorted({n for s in stacks for n in s}),
                                             n=5, cutoff=0.5)  # fmt: skip
            shown = list(dict.fromkeys(near + paths))[:12]
            where = (f"the scopes it has are: {', '.join(shown)}" + (", ..." if len(paths) > len(shown) else "")
                     if paths else "it records no scope names (wrap parts of it in jax.named_scope)")  # fmt: skip
            raise ValueError(
                f"policy rule scope({pattern}): {alt!r} matches no equation of the traced function, so the rule "
                f"would do nothing; {where}. A pattern matches consecutive names anywhere in the name stack "
                "(anchor with a leading '/'); '*' stays within one name, '**' spans several"
            )
