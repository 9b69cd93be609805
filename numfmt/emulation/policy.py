"""Emulation policies: which format and rounding each kind of operation uses.

A :class:`Policy` is a frozen, hashable dataclass (it can be a ``jax.jit``
static argument). Its string form, in the spirit of jmp, is a list of
``key=value`` items separated by ``,`` (or ``;``)::

    policy   := item (("," | ";") item)*
    item     := "compute=" format            (required: the default format)
              | "rounding=" rounding         (default nearest_even)
              | "matmul_in=" format          (inputs of dot_general / conv)
              | "accum=" format              (matmul accumulator)
              | "chunk=" N                   (terms summed exactly per accumulator rounding; needs accum)
              | "promote=" N                 (products per promotion into a float32 accumulator; needs accum)
              | "out=" format                (matmul / conv output)
              | "grad=" format               (default format of the derivative arithmetic)
              | "grad_rounding=" rounding    (its rounding; needs grad)
              | "bwd." key "=" value         (matmul_in, accum, chunk, promote, out, a group, prim.NAME of
                                              the derivative arithmetic; numfmt.emulation.backward)
              | group "=" site               (override for a group of primitives)
              | "prim." name "=" site        (override for one primitive, e.g. prim.exp)
              | "scope(" pattern ")=" site   (the scope's equations run under "compute=" site alone)
              | "scope(" pattern ")." key "=" value  (one key for the scope; not grad, grad_rounding, bwd.)
    group    := "matmul" | "elementwise" | "reductions" | "transcendental"
    site     := format ["@" rounding]
    pattern  := path ("|" path)*
    path     := ["/"] glob ("/" glob)*     (fnmatch globs of scope names, or "**": any number of names)

Scope rules (``docs/emulate.md``, "Per-layer policies") select equations by
the JAX name stack they were traced under (``jax.named_scope``, flax module
paths). An equation gets the policy's keys, then each rule whose pattern
matches it, in the order written, later rules winning: ``scope(P)=SITE``
replaces everything by ``compute=SITE`` (its rounding, or nearest_even), the
backward pass's items included, ``scope(P).KEY=VALUE`` sets that key (and
keeps ``grad``/``grad_rounding``/``bwd.``, which a rule cannot set). E.g.
``compute=bfloat16,scope(Dense_0|head)=float32,scope(attention).matmul_in=mxfp8_e4m3``.
A path matches consecutive scope names anywhere (from the outermost with a
leading ``/``), and the scope includes everything under it
(numfmt.emulation.scopes). ``Policy.parse`` also takes a dict of the items,
``{"compute": "bfloat16", "scope(head)": "float32"}``.

Formats are anything :func:`numfmt.parse` accepts (commas inside parentheses,
as in ``float(e=5,m=7)``, are part of the format). ``str(policy)`` is the
canonical form: keys in the order above (scope rules last, in their order),
separated by ``,``, defaults left out, formats and rounding modes by their
canonical names; ``Policy.parse(str(p)) == p`` and
``str(Policy.parse(s)) == s`` for every canonical ``s``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools

from numfmt.core.rounding import Rounding
from numfmt.emulation import backward as _backward
from numfmt.emulation import scopes as _scopes
from numfmt.emulation.policy_items import SITES, override_key
from numfmt.emulation.policy_items import count as _count
from numfmt.emulation.policy_items import policy_format as _format
from numfmt.emulation.policy_items import policy_rounding as _rounding
from numfmt.emulation.policy_items import site as _site
from numfmt.emulation.primitives import GROUPS

__all__ = ["GROUPS", "SITES", "Policy"]

# Primitive groups: the rounded kinds of the classification table (numfmt.emulation.primitives).
_GROUP_OF = {prim: group for group, prims in GROUPS.items() for prim in prims}
_KEYS = ("compute", "rounding", "matmul_in", "accum", "chunk", "promote", "out", "grad", "grad_rounding")
_COUNT_KEYS = ("chunk", "promote")
_WHOLE_FUNCTION = ("grad", "grad_rounding", "bwd")  # keys a scope rule cannot set (the backward pass's)


def _override_order(item) -> tuple:
    key = item[0]
    return (0, list(GROUPS).index(key), "") if key in GROUPS else (1, 0, key)


@dataclasses.dataclass(frozen=True)
class Policy:
    """Formats and rounding modes for :func:`numfmt.emulate`.

    Args:
      compute: the default format of every floating-point operation.
      rounding: the default :class:`Rounding` (``stochastic`` needs a key).
      matmul_in: format the inputs of ``dot_general`` and convolutions are
        rounded to (default: the matmul group's format).
      accum: accumulator format of ``dot_general``: partial sums are rounded to
        it after every ``chunk`` terms (default: no accumulator rounding; the
        product is XLA's dot in the work dtype, rounded once to ``out``).
      chunk: number of products summed exactly before each accumulator
        rounding (default 1 when ``accum`` is set). Needs ``accum``.
      promote: every ``promote`` products the accumulator (``accum``, with
        its ``chunk``) is added into a float32 accumulator (round to nearest
        even) and restarts from +0, as FP8 GEMMs on Hopper GPUs promote the
        tensor core's partial sums into float32 registers (default: no
        promotion). Needs ``accum``; a multiple of ``chunk``.
      out: format of matmul/conv outputs (default: the matmul group's format).
      grad: default format of the derivative arithmetic (the backward pass
        of ``jax.grad``/``vjp``, the tangents of ``jvp``; default: the
        forward policy's ``compute``). See :meth:`backward`.
      grad_rounding: rounding of the derivative arithmetic (needs ``grad``;
        without ``grad`` the derivative rounds as the forward pass).
      overrides: ``{key: site}`` with key a group name (``matmul``,
        ``elementwise``, ``reductions``, ``transcendental``) or ``prim.NAME``,
        and site a format, ``"format@rounding"`` or ``(format, rounding)``.
      scopes: per-scope rules, in order: ``(pattern, key, value)`` triples
        (key ``""``: the scope runs under ``compute=value`` alone) or a dict
        ``{pattern: site or {key: value}}``. :meth:`for_scope` resolves them.
      bwd: items of the derivative arithmetic only (``bwd.KEY=VALUE``): a dict
        ``{key: value}`` with key ``matmul_in``, ``accum``, ``chunk``, ``out``,
        a group or ``prim.NAME``.

    Raises:
      ValueError: an unknown key, format or rounding; ``chunk`` or
        ``promote`` without ``accum`` or not a positive int; ``promote`` not a
        multiple of ``chunk``; a rounding that needs random_bits.
      TypeError: arguments of the wrong type.

    Examples:
      >>> import numfmt
      >>> p = numfmt.Policy.parse("compute=bfloat16,matmul_in=float8_e4m3fn,accum=float32,out=bfloat16")
      >>> p.site("exp")[0] == numfmt.bfloat16, p.matmul_formats()[0] == numfmt.float8_e4m3fn
      (True, True)
      >>> str(numfmt.Policy("float16", overrides={"transcendental": "float32@toward_zero"}))
      'compute=float16,transcendental=float32@toward_zero'
    """

    compute: object = "float32"
    rounding: Rounding = Rounding.NEAREST_EVEN
    matmul_in: object = None
    accum: object = None
    chunk: int | None = None
    out: object = None
    grad: object = None
    grad_rounding: Rounding = Rounding.NEAREST_EVEN
    overrides: tuple = ()
    scopes: tuple = ()
    promote: int | None = None  # after scopes: the positional order of the fields above predates it
    bwd: tuple = ()

    def __post_init__(self):
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        put("compute", _format(self.compute, "compute"))
        put("rounding", _rounding(self.rounding, "rounding"))
        put("grad_rounding", _rounding(self.grad_rounding, "grad_rounding"))
        for name in ("matmul_in", "accum", "out", "grad"):
            if getattr(self, name) is not None:
                put(name, _format(getattr(self, name), name))
        for name in _COUNT_KEYS:
            if getattr(self, name) is not None:
                put(name, _count(getattr(self, name), name))
                if self.accum is None:
                    raise ValueError(f"{name}={getattr(self, name)} needs an accumulator format: add accum=FORMAT")
        if self.promote is not None and self.promote % (self.chunk or 1):
            lower = self.promote - self.promote % self.chunk
            near = f"{lower} or {lower + self.chunk}" if lower else f"{self.chunk}"
            raise ValueError(
                f"promote={self.promote} must be a multiple of chunk={self.chunk} (a promotion adds whole chunks); "
                f"use promote={near}"
            )
        items = self.overrides.items() if isinstance(self.overrides, dict) else self.overrides
        if not isinstance(items, (tuple, list, type({}.items()))):
            raise TypeError(f"overrides must be a dict {{key: format}}, got {self.overrides!r}")
        normal = {}
        for item in items:
            # (key, value), or (key, format, rounding | None) as stored by a Policy
            key, value = (item[0], item[1] if item[2] is None else item[1:]) if len(item) == 3 else item
            key = override_key(key, _KEYS)
            normal[key] = _site(value, key)
        put("overrides", tuple(sorted(((k, *v) for k, v in normal.items()), key=_override_order)))
        put("scopes", _scopes.normalise(self.scopes, _WHOLE_FUNCTION, _rule_value))
        put("bwd", _backward.normalise(self.bwd, _bwd_value, lambda k: _override_order((k,))))
        if self.grad is None and self.grad_rounding is not Rounding.NEAREST_EVEN:
            raise ValueError(
                f"grad_rounding={self.grad_rounding.value} needs grad=FORMAT (the derivative arithmetic's "
                f"format; grad={self.compute} keeps the forward pass's)"
            )
        if self.bwd:
            try:
                self.backward()
            except (ValueError, TypeError) as err:
                raise type(err)(f"policy bwd. items: {err}") from None
        patterns = dict.fromkeys(p for p, _, _ in self.scopes)
        for pattern in [*patterns, None] if patterns else []:
            try:  # the rules of each pattern, and all rules, must give a valid policy
                self._resolve([r for r in self.scopes if pattern in (None, r[0])])
            except (ValueError, TypeError) as err:
                raise type(err)(f"policy rule scope({pattern or '|'.join(patterns)}): {err}") from None

    @property
    def is_stochastic(self) -> bool:
        """True when some rounding of the policy is stochastic (a key is then needed)."""
        modes = [self.rounding, *(r for _, _, r in self.overrides if r is not None)]
        modes += [v if k == "rounding" else v[1] for _, k, v in self.scopes if k == "rounding" or isinstance(v, tuple)]
        modes = [m for m in modes if m is not None]
        if self.grad is not None:
            modes.append(self.grad_rounding)
        modes += [v[1] for k, v in self.bwd if k not in _backward.FIELDS and v[1] is not None]
        return any(r.is_stochastic for r in modes)

    def for_scope(self, names) -> Policy:
        """The policy without scope rules that equations under the scope ``names`` get.

        Args:
          names: scope names, a tuple (``("M", "Dense_0")``) or ``"/"``-joined (``"M/Dense_0"``);
            transformation wrappers such as ``jvp(...)`` are dropped.

        Examples:
          >>> import numfmt
          >>> p = numfmt.Policy.parse("compute=bfloat16,scope(Dense_0|head)=float32")
          >>> str(p.for_scope("Model/Block_1/Dense_0")), str(p.for_scope("Model/Dense_1"))
          ('compute=float32', 'compute=bfloat16')
        """
        names = _scopes.scope_names(names) if isinstance(names, str) else tuple(names)
        return _for_scope(self, names)

    def backward(self) -> Policy:
        """The policy of the derivative arithmetic (without scope rules: apply :meth:`for_scope` first).

        ``compute``/``rounding`` become ``grad``/``grad_rounding`` where
        ``grad`` is given, then the ``bwd`` items are applied; everything
        else is the forward policy's. Without ``grad`` and ``bwd`` it is this
        policy.

        Examples:
          >>> import numfmt
          >>> p = numfmt.Policy.parse("compute=bfloat16,matmul_in=float8_e4m3fn,bwd.matmul_in=float8_e5m2")
          >>> str(p.backward())
          'compute=bfloat16,matmul_in=float8_e5m2'
        """
        if self.grad is None and not self.bwd:
            return self
        fields = {k: getattr(self, k) for k in ("compute", "rounding", *_backward.FIELDS)}
        over = {k: (f, r) for k, f, r in self.overrides}
        fields, over = _backward.derivative_fields(fields, over, self.grad, self.grad_rounding, self.bwd)
        return Policy(**fields, overrides=tuple((k, *v) for k, v in over.items()))

    def _resolve(self, rules) -> Policy:
        """This policy's keys with ``rules`` ((pattern, key, value) triples) applied in order, no scopes."""
        return _scopes.resolve(self, rules, _KEYS, (), Rounding.NEAREST_EVEN)  # scope(P)=SITE: forward and backward

    def site(self, primitive: str):
        """``(format, rounding)`` of a primitive's output: its override, its group's, or the default."""
        table = {k: (f, r) for k, f, r in self.overrides}
        for key in (f"prim.{primitive}", _GROUP_OF.get(primitive)):
            if key in table:
                fmt, rounding = table[key]
                return fmt, self.rounding if rounding is None else rounding
        return self.compute, self.rounding

    def matmul_formats(self, primitive: str = "dot_general"):
        """``(input format, accumulator format | None, chunk, output format, rounding)``."""
        fmt, rounding = self.site(primitive)
        chunk = (self.chunk or 1) if self.accum is not None else None
        return (self.matmul_in or fmt, self.accum, chunk, self.out or fmt, rounding)

    def __str__(self) -> str:
        parts = [f"compute={self.compute}"]
        if self.rounding is not Rounding.NEAREST_EVEN:
            parts.append(f"rounding={self.rounding.value}")
        for name in ("matmul_in", "accum", *_COUNT_KEYS, "out", "grad"):
            if getattr(self, name) is not None:
                parts.append(f"{name}={getattr(self, name)}")
        if self.grad_rounding is not Rounding.NEAREST_EVEN:
            parts.append(f"grad_rounding={self.grad_rounding.value}")
        for key, fmt, rounding in self.overrides:
            parts.append(f"{key}={fmt}" + ("" if rounding is None else f"@{rounding.value}"))
        for key, value in self.bwd:
            if isinstance(value, tuple):
                value = f"{value[0]}" + ("" if value[1] is None else f"@{value[1].value}")
            parts.append(f"bwd.{key}={value}")
        for pattern, key, value in self.scopes:
            text = value.value if isinstance(value, Rounding) else value
            if isinstance(value, tuple):
                text = f"{value[0]}" + ("" if value[1] is None else f"@{value[1].value}")
            parts.append(f"scope({pattern})" + (f".{key}" if key else "") + f"={text}")
        return ",".join(parts)

    @classmethod
    def parse(cls, spec) -> Policy:
        """Return the policy named by ``spec`` (a Policy, returned unchanged, or a string).

        Raises:
          ValueError: a malformed item, a repeated or unknown key, or a bad value.
          TypeError: ``spec`` is neither a string nor a Policy.

        Examples:
          >>> import numfmt
          >>> s = "compute=bfloat16,rounding=stochastic,grad=float8_e5m2"
          >>> str(numfmt.Policy.parse(s)) == s
          True
        """
        if isinstance(spec, Policy):
            return spec
        if isinstance(spec, dict):
            items = list(spec.items())
        elif isinstance(spec, str):
            items = []
            for item in _split(spec):
                key, sep, value = item.partition("=")
                if not sep or not key.strip() or not value.strip():
                    raise ValueError(f"in policy {spec!r}: {item!r} is not of the form key=value")
                items.append((key, value.strip()))
        else:
            raise TypeError(
                f"a policy must be a Policy or a string like 'compute=bfloat16' (or a dict of its items, "
                f"{{'compute': 'bfloat16'}}), got {spec!r}"
            )
        fields: dict = {}
        overrides: dict = {}
        rules: dict = {}
        bwd: dict = {}
        for key, value in items:
            if not isinstance(key, str):
                raise TypeError(f"in policy {spec!r}: keys are strings, got {key!r}")
            rule = _scopes.rule_key(key)
            key = key.strip().lower()
            back = None if rule is not None else _backward.bwd_key(key)
            if key in fields or key in overrides or rule in rules or back in bwd:
                raise ValueError(f"in policy {spec!r}: key {key!r} is given twice")
            if rule is not None:
                rules[rule] = value
            elif back is not None:
                bwd[back] = value
            elif key in _COUNT_KEYS:
                fields[key] = _count(value, key)
            elif key in _KEYS:
                fields[key] = value
            else:
                overrides[override_key(key, _KEYS)] = value
        if "compute" not in fields:
            raise ValueError(f"policy {spec!r} has no compute=FORMAT item (the default format); add one")
        scopes = tuple((*rule, value) for rule, value in rules.items())
        return cls(**fields, overrides=overrides, scopes=scopes, bwd=bwd)  # type: ignore[arg-type]  # normalised in __post_init__


def _rule_value(key: str, value):
    if isinstance(value, tuple) and len(value) == 2 and value[1] is None:  # a site as stored: (format, None)
        value = value[0]
    if key == "":  # rounding None: nearest_even
        fmt, rounding = _site(value, "compute")
        return fmt, None if rounding is Rounding.NEAREST_EVEN else rounding
    if key == "rounding":
        return _rounding(value, key)
    if key in _COUNT_KEYS:
        return _count(value, key)
    if key in _KEYS:
        return _format(value, key)
    return _site(value, override_key(key, _KEYS))


def _bwd_value(key: str, value):
    """A ``bwd.KEY`` item's value checked: a matmul field's, or an override's site."""
    if key in _backward.FIELDS:
        return _rule_value(key, value)
    if key not in GROUPS and not key.startswith("prim."):
        close = difflib.get_close_matches(key, [*_backward.FIELDS, *GROUPS], n=2)
        hint = f" Did you mean {', '.join('bwd.' + c for c in close)}?" if close else ""
        raise ValueError(
            f"unknown key {key!r}; bwd. takes {', '.join(_backward.FIELDS)}, a group ({', '.join(GROUPS)}) "
            f"or prim.NAME.{hint}"
        )
    if isinstance(value, tuple) and len(value) == 2 and value[1] is None:  # a site as stored: (format, None)
        value = value[0]
    return _site(value, override_key(key, _KEYS))


@functools.lru_cache(maxsize=1024)
def _for_scope(policy: Policy, names: tuple) -> Policy:
    return policy._resolve([r for r in policy.scopes if _scopes.matches(r[0], names)])


def _split(spec: str) -> list[str]:
    """Split on commas and semicolons outside parentheses."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(spec):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            break
        if ch in ",;" and depth == 0:
            items.append(spec[start:i])
            start = i + 1
    items.append(spec[start:])
    if depth != 0:
        raise ValueError(f"policy {spec!r} has unbalanced parentheses")
    return [s for s in items if s.strip()] if spec.strip() else [""]
