"""The policy of the derivative arithmetic: ``grad=``, ``grad_rounding=`` and ``bwd.KEY=VALUE`` items.

The derivative of an emulated function (``jax.grad(emulate(f))``, ``vjp``,
``jvp``; or the transposed equations of ``emulate(jax.grad(f))``) is computed
under :meth:`Policy.backward <numfmt.Policy.backward>`: the forward policy
with ``compute=`` replaced by ``grad=`` (its rounding by ``grad_rounding=``)
where ``grad=`` is given, then each ``bwd.KEY=VALUE`` item applied, as
FP8 training recipes keep E4M3 forward and E5M2 backward matmul inputs:
``compute=bfloat16,matmul_in=float8_e4m3fn,accum=float32,bwd.matmul_in=float8_e5m2``.

A ``bwd.`` item takes the matmul keys (``matmul_in``, ``accum``, ``chunk``, ``promote``,
``out``), a group (``bwd.elementwise=float32``) or ``bwd.prim.NAME``; the
backward pass's default format and rounding are ``grad=`` and
``grad_rounding=``. Only the standard library here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FIELDS", "bwd_key", "derivative_fields", "normalise"]

FIELDS = ("matmul_in", "accum", "chunk", "promote", "out")  # policy fields a bwd. item sets; other keys are overrides
_ELSEWHERE = {  # keys a bwd. item cannot set, and the item that does
    "compute": "grad=FORMAT", "rounding": "grad_rounding=MODE", "grad": "grad=", "grad_rounding": "grad_rounding=",
}  # fmt: skip


def bwd_key(key: str) -> str | None:
    """The key after ``bwd.`` (``"bwd.matmul_in"`` -> ``"matmul_in"``), or None for other keys."""
    key = key.strip().lower()
    return key[4:].strip() if key.startswith("bwd.") else None


def normalise(items, value_of, order) -> tuple:
    """``bwd`` items (a dict or ``(key, value)`` pairs, keys without ``bwd.``) checked, in canonical order.

    ``value_of(key, value)`` checks and normalises one value (raising
    ValueError/TypeError for a bad key or value); ``order(key)`` sorts the
    override keys (groups, ``prim.NAME``) after :data:`FIELDS`.
    """
    pairs: Any = items.items() if isinstance(items, dict) else items
    if not isinstance(pairs, (tuple, list, type({}.items()))):
        raise TypeError(f"bwd must be a dict {{key: value}} of backward-pass items, got {items!r}")
    out: dict = {}
    pair: Any
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise TypeError(f"bwd items are (key, value) pairs with string keys, got {pair!r}")
        key = pair[0].strip().lower()
        if key in _ELSEWHERE:
            raise ValueError(
                f"policy item bwd.{key}: the backward pass's {'format' if key != 'rounding' else 'rounding'} is "
                f"given by {_ELSEWHERE[key]} (a whole-policy item), not bwd.{key}"
            )
        if key in out:
            raise ValueError(f"policy item bwd.{key} is given twice")
        try:
            out[key] = value_of(key, pair[1])
        except (ValueError, TypeError) as err:
            raise type(err)(f"policy item bwd.{key}: {err}") from None

    def rank(kv):
        return (0, FIELDS.index(kv[0]), ()) if kv[0] in FIELDS else (1, 0, order(kv[0]))

    return tuple(sorted(out.items(), key=rank))


def derivative_fields(fields: dict, overrides: dict, grad, grad_rounding, bwd) -> tuple[dict, dict]:
    """The fields and overrides of the derivative policy, from the forward policy's.

    ``fields`` (compute, rounding and :data:`FIELDS`) and ``overrides``
    (``{key: (format, rounding | None)}``) are the forward policy's.
    """
    fields = dict(fields)
    overrides = dict(overrides)
    if grad is not None:
        fields["compute"], fields["rounding"] = grad, grad_rounding
    for key, value in bwd:
        if key in FIELDS:
            fields[key] = value
        else:
            overrides[key] = value
    return fields, overrides
