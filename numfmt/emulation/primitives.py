"""What :func:`numfmt.emulate` does with each JAX primitive: the one classification table.

Every primitive name maps to one kind (:data:`TABLE`):

* ``rounded:GROUP``: float inputs are rounded to the site's format (the
  policy's ``GROUP`` or ``prim.NAME`` override), XLA computes the result in
  the work dtype (float64 with x64 on) and it is rounded once. GROUP is one
  of :data:`GROUPS` (``matmul``, ``elementwise``, ``reductions``,
  ``transcendental``), the policy groups.
* ``exact``: float inputs are rounded to the compute format; the result is
  one of them, or a comparison, index or integer of them, and is not rounded.
* ``opaque``: as ``exact``, but the float result need not be a value of the
  compute format (a bit cast, ``reduce_precision``): it is of no known
  format, so the next operation rounds it into its own.
* ``movement``: values are copied (reshape, gather, select, ...); nothing is
  rounded; the output keeps its inputs' format.
* ``control``: higher-order primitives whose bodies are interpreted.
* ``integer``: never a float operand or result (integer, boolean, bit, key,
  token and shape primitives); they run unchanged.
* ``refused``: raises ``NotImplementedError`` at trace time with the reason
  and a workaround of :data:`REFUSED`.

``numfmt.emulation.emulate`` and the policy groups derive their sets from
this table; ``numfmt.emulation.windows`` holds the handlers of the window and
scatter primitives classified here. ``tests/test_emulate_primitives.py``
fails on a registered JAX primitive the table does not name. The module
imports nothing (the policy parser uses it without importing JAX).
"""

from __future__ import annotations

__all__ = ["GROUPS", "KINDS", "LEGACY", "NEWER", "REFUSED", "TABLE", "complex_refusal", "kind", "names", "refusal"]

KINDS = ("rounded", "exact", "opaque", "movement", "control", "integer", "refused")

GROUPS: dict[str, frozenset] = {
    "matmul": frozenset({"dot_general", "conv_general_dilated"}),
    "elementwise": frozenset(
        {"add", "add_any", "sub", "mul", "div", "sqrt", "square", "integer_pow", "rem", "convert_element_type"}
    ),
    "reductions": frozenset(
        {"reduce_sum", "reduce_prod", "cumsum", "cumprod", "cumlogsumexp", "reduce_window_sum", "reduce_window",
         "scatter-add", "scatter-sub", "scatter-mul", "select_and_scatter_add"}
    ),  # fmt: skip
    "transcendental": frozenset(
        {
            "exp", "exp2", "log", "log1p", "expm1", "tanh", "logistic", "sin", "cos", "tan", "asin", "acos",
            "atan", "atan2", "sinh", "cosh", "asinh", "acosh", "atanh", "pow", "erf", "erfc", "erf_inv",
            "lgamma", "digamma", "rsqrt", "cbrt", "polygamma", "zeta", "igamma", "igammac", "igamma_grad_a",
            "regularized_incomplete_beta", "bessel_i0e", "bessel_i1e", "random_gamma",
        }
    ),
}  # fmt: skip

_EXACT = frozenset(
    {
        "neg", "abs", "max", "min", "reduce_max", "reduce_min", "argmax", "argmin", "sign", "floor", "ceil",
        "round", "clamp", "sort", "cummax", "cummin", "is_finite", "eq", "ne", "lt", "le", "gt", "ge", "eq_to",
        "le_to", "lt_to", "top_k", "approx_top_k", "reduce_window_max", "reduce_window_min", "scatter-min",
        "scatter-max", "select_and_gather_add",
    }
)  # fmt: skip
_OPAQUE = frozenset({"bitcast_convert_type", "reduce_precision"})
_MOVEMENT = frozenset(
    {
        "broadcast_in_dim", "reshape", "squeeze", "transpose", "slice", "dynamic_slice", "dynamic_update_slice",
        "gather", "concatenate", "pad", "rev", "select_n", "copy", "optimization_barrier",
        "sharding_constraint", "device_put", "split", "stop_gradient", "reshard", "empty", "empty2",
        "iota", "stack", "unstack", "tile", "zeros_like", "scatter", "name", "tie", "stage", "dce_sink",
        "layout_constraint", "with_memory_space_constraint", "inspect_sharding", "debug_callback", "debug_print",
        "unreachable",
    }
)  # fmt: skip
_CONTROL = frozenset(
    {"jit", "closed_call", "remat2", "scan", "while", "cond", "custom_jvp_call", "custom_vjp_call"}
)  # fmt: skip
_INTEGER = frozenset(
    {
        "and", "or", "not", "xor", "shift_left", "shift_right_arithmetic", "shift_right_logical", "population_count",
        "clz", "mulhi", "reduce_and", "reduce_or", "reduce_xor", "random_bits", "random_seed", "random_split",
        "random_fold_in", "random_wrap", "random_unwrap", "random_clone", "threefry2x32", "threefry4x32",
        "philox2x32", "philox4x32", "iota_2x32_shape", "rng_bit_generator", "after_all", "create_token",
        "axis_index", "platform_index", "dim_as_value", "dimension_size", "shape_assertion", "from_edtype",
        "to_edtype", "lu_pivots_to_permutation",
    }
)  # fmt: skip

_OUTSIDE = "compute it outside the emulated function (before or after it) and pass the result in"
_COMPLEX = (
    "complex numbers: the real and imaginary parts would pass through unrounded",
    "write the complex arithmetic on real arrays (the real and imaginary parts as separate float arrays, "
    "e.g. (a*c - b*d, a*d + b*c) for a product), or " + _OUTSIDE,
)
_LINALG = (
    "a matrix decomposition or solve run by a library kernel (LAPACK, cuSOLVER): its thousands of internal "
    "operations cannot be rounded one by one",
    _OUTSIDE + ", or write the algorithm with lax operations (e.g. a Cholesky factorization in lax.fori_loop), "
    "which emulate rounds",
)
_COLLECTIVE = (
    "a cross-device collective or shard_map: emulate interprets one device's computation",
    "apply emulate to the per-device function (shard_map(numfmt.emulate(local_fn, policy), ...)) and do the "
    "collectives outside it",
)
_KERNEL = (
    "a fused library or user kernel (cuDNN, Pallas, FFI, callback): its internal arithmetic is invisible to emulate",
    "write the computation with jax.numpy / lax operations (e.g. jax.nn.dot_product_attention(..., "
    "implementation='xla'), a block-scaled matmul as matmul_in=<MX format> with a plain dot), or " + _OUTSIDE,
)
_STATE = (
    "mutable references and boxes (jax.new_ref, Pallas state, hijax) are not interpreted",
    "pass the values functionally (arguments and results), or " + _OUTSIDE,
)
_HIGHER = (
    "a higher-order primitive emulate does not interpret (its body would run unrounded)",
    "call the wrapped function directly (without the wrapping transform) inside the emulated function, or " + _OUTSIDE,
)
_REFUSED_GROUPS: list[tuple[tuple[str, str], frozenset]] = [
    (_COMPLEX, frozenset({"complex", "conj", "real", "imag"})),
    (_LINALG, frozenset({"cholesky", "cholesky_update", "eig", "eigh", "geqp3", "geqrf", "hessenberg",
                         "householder_product", "lu", "ormqr", "qr", "schur", "svd", "symmetric_product",
                         "triangular_solve", "tridiagonal", "tridiagonal_solve", "custom_linear_solve",
                         "eigh_jacobi"})),
    (_COLLECTIVE, frozenset({
        "all_gather", "all_gather_done", "all_gather_invariant", "all_gather_reduced", "all_gather_reduced_start",
        "all_gather_start", "all_to_all", "all_to_all_done", "all_to_all_start", "pbroadcast", "pbroadcast_done",
        "pbroadcast_start", "pmax", "pmin", "ppermute", "ppermute_done", "ppermute_start", "precv", "preduced",
        "psend", "psum", "psum_done", "psum_invariant", "psum_invariant_start", "psum_start", "pvary",
        "ragged_all_to_all", "reduce_scatter", "reduce_scatter_done", "reduce_scatter_start", "reduced_vary_cast_p",
        "unreduced_psum", "unreduced_psum_start", "unreduced_reduce_scatter", "unreduced_reduce_scatter_start",
        "vary_unreduced_cast_p", "shard_map", "pgather", "xla_pmap", "full_to_shard", "shard_to_full"})),
    (_KERNEL, frozenset({
        "cudnn_fusion", "dot_product_attention_bwd", "dot_product_attention_bwd_wrapper",
        "dot_product_attention_fp8_bwd", "dot_product_attention_fp8_bwd_wrapper", "dot_product_attention_fp8_fwd",
        "dot_product_attention_fp8_fwd_wrapper", "dot_product_attention_fwd", "dot_product_attention_fwd_wrapper",
        "scaled_matmul", "scaled_matmul_wrapper", "scaled_dot", "core_map", "ffi_call", "pure_callback",
        "io_callback", "call_exported", "custom_partitioning", "bias_fwd", "bias_bwd"})),
    (_STATE, frozenset({
        "get", "swap", "addupdate", "new_ref", "empty_ref", "free_ref", "freeze", "accum_grad_in_ref", "run_state",
        "create_linear", "pin", "unpin", "broadcast_to", "box_get", "box_set", "new_box", "new_log", "log_extend",
        "log_read", "call_hi_primitive", "call_hi_primitive_linearized"})),
    (_HIGHER, frozenset({"call", "custom_jvp_call_jaxpr", "custom_vmap_call", "custom_lin", "linear_call",
                         "remat_opt", "eval_jaxpr", "composite", "check", "custom_transpose_call", "vmap"})),
]  # fmt: skip

REFUSED: dict[str, tuple[str, str]] = {name: why for why, group in _REFUSED_GROUPS for name in group}
REFUSED.update(
    {
        "fft": (
            "an FFT has complex operands or results, whose real and imaginary parts would pass through unrounded",
            "write the transform as real matrix products of the real and imaginary parts (a DFT: x @ cos and "
            "x @ sin matrices, which emulate rounds as matmuls), or " + _OUTSIDE,
        ),
        "custom_lin": (
            "it is the tangent of a jax.custom_vjp function, which has a pullback but no pushforward: JAX itself "
            "cannot apply forward mode (jvp, linearize, jacfwd) to it",
            "differentiate in reverse mode (jax.grad, jax.vjp, jacrev), or give the function a jax.custom_jvp rule",
        ),
        "nextafter": (
            "it steps to the neighbouring value of the array's dtype, not of the emulated format",
            "step by the format's spacing instead (e.g. x + ulp with ulp from the format's precision), or " + _OUTSIDE,
        ),
        "rng_uniform": (
            "XLA's stateful generator draws values of the traced dtype without a key",
            "draw with jax.random.uniform and a key (its bit operations pass through, its float arithmetic is "
            "rounded), or " + _OUTSIDE,
        ),
        "reduce": (
            "a generic or variadic reduction (lax.reduce with a body that is not one add, mul, max or min): its "
            "body is not interpreted",
            "use jnp.sum, jnp.prod, jnp.max, jnp.min, jnp.argmax (the dedicated primitives), or write the "
            "reduction with lax.scan",
        ),
        "select_and_scatter": (
            "a generic select_and_scatter: its select and scatter bodies are not interpreted",
            "use max pooling through lax.reduce_window_max (whose gradient is select_and_scatter_add), or " + _OUTSIDE,
        ),
        "ragged_dot_general": (
            "a grouped matmul with ragged group sizes is not emulated",
            "pad the groups to one size and use jnp.einsum / lax.dot_general, which emulate rounds",
        ),
    }
)

# Primitives of JAX 0.8.0 (the lowest supported release) that later releases
# removed; the test checks that every name of the table is a primitive of the
# installed JAX, or of LEGACY or NEWER (the names that differ between the
# lowest and the newest checked JAX, 0.8.0 and 0.10.2).
LEGACY = frozenset(
    {"bias_bwd", "bias_fwd", "custom_transpose_call", "eigh_jacobi", "full_to_shard", "pgather", "shard_to_full",
     "vmap", "xla_pmap"}
)  # fmt: skip

# Primitives of JAX 0.10.2 (the newest checked) that 0.8.0 does not have.
NEWER = frozenset(
    {
        "all_gather_done", "all_gather_reduced", "all_gather_reduced_start", "all_gather_start", "all_to_all_done",
        "all_to_all_start", "box_get", "box_set", "call_hi_primitive", "call_hi_primitive_linearized",
        "core_map", "empty_ref", "free_ref", "log_extend", "log_read", "mulhi", "new_box", "new_log", "ormqr",
        "pbroadcast_done", "pbroadcast_start", "philox2x32", "philox4x32", "ppermute_done", "ppermute_start",
        "preduced", "psum_done", "psum_invariant_start", "psum_start", "reduce_scatter_done", "reduce_scatter_start",
        "reduced_vary_cast_p", "scaled_dot", "stack", "stage", "threefry4x32", "tile", "unreduced_psum",
        "unreduced_psum_start", "unreduced_reduce_scatter", "unreduced_reduce_scatter_start", "unstack",
        "vary_unreduced_cast_p", "with_memory_space_constraint"
    }
)  # fmt: skip


def _table() -> dict[str, str]:
    parts = [*((f"rounded:{g}", prims) for g, prims in GROUPS.items()), ("exact", _EXACT), ("opaque", _OPAQUE),
             ("movement", _MOVEMENT), ("control", _CONTROL), ("integer", _INTEGER),
             ("refused", frozenset(REFUSED))]  # fmt: skip
    table: dict[str, str] = {}
    for k, prims in parts:
        for name in prims:
            if name in table:
                raise RuntimeError(f"primitive {name!r} is classified twice: {table[name]} and {k}")
            table[name] = k
    return table


TABLE: dict[str, str] = _table()


def kind(name: str) -> str | None:
    """The kind of primitive ``name`` (``"rounded:GROUP"``, ``"exact"``, ...), or None if it is not classified."""
    return TABLE.get(name)


def names(*kinds: str) -> frozenset:
    """The primitives of the given kinds (``"rounded"`` takes every group; ``"rounded:exp"`` style one group)."""
    return frozenset(n for n, k in TABLE.items() if k in kinds or k.partition(":")[0] in kinds)


def refusal(name: str, detail: str = "") -> str:
    """The ``NotImplementedError`` message for primitive ``name``: what is refused, why, and what to do instead.

    ``detail`` (e.g. the equation) is appended. A name the table does not
    know gets the generic message of an unclassified primitive.
    """
    reason, workaround = REFUSED.get(name) or (
        "it is not in numfmt's classification table (numfmt/emulation/primitives.py), probably a primitive of a "
        "newer JAX",
        _OUTSIDE + ", or open an issue naming the primitive",
    )
    tail = f" ({detail})" if detail else ""
    return f"emulate does not handle the primitive {name!r}: {reason}. Workaround: {workaround}{tail}"


def complex_refusal(name: str, dtype: str) -> str:
    """The ``NotImplementedError`` message for primitive ``name`` with a complex operand or result of ``dtype``.

    Any primitive is refused on complex values (``mul`` as much as ``fft``);
    the workaround is the primitive's own where the table has one (``fft``).
    """
    own = name in REFUSED and REFUSED[name] is not _COMPLEX
    workaround = REFUSED[name][1] if own else _COMPLEX[1]
    return (
        f"emulate does not round complex arithmetic: primitive {name!r} has a {dtype} operand or result, whose "
        f"real and imaginary parts would pass through unrounded. Workaround: {workaround}"
    )
