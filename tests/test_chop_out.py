"""``chop(x, fmt, out=...)``: the result written into a given array, as NumPy ufuncs do.

Every family, on the compiled kernel and on the NumPy path: ``out`` receives
the bits ``chop`` returns without it and is returned; ``out`` may be ``x``
(in place), non-contiguous, or overlap ``x``; a wrong type, dtype, shape or a
read-only array is refused with the argument named; JAX arrays refuse ``out``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numfmt
from numfmt.float import native

FORMATS = ["bfloat16", "float8_e4m3fn", "float(e=9,m=3)", "posit16_1", "q3.12", "mxfp4_e2m1", "nvfp4",
           "int8_per_channel"]  # fmt: skip
KEYS = {"nearest_even": None, "stochastic": 5}


def _x(dtype=np.float32, shape=(8, 64)):
    return (np.random.default_rng(0).standard_normal(shape) * 3).astype(dtype)


@pytest.fixture(params=[True, False], ids=["kernel", "numpy"])
def path(request):
    previous = native.set_enabled(request.param)
    yield request.param
    native.set_enabled(previous)


def _bits(a):
    return a.view(np.dtype(f"uint{a.dtype.itemsize * 8}"))


@pytest.mark.parametrize("mode", list(KEYS))
@pytest.mark.parametrize("fmt", FORMATS)
def test_out_gets_the_result_and_is_returned(fmt, mode, path):
    x = _x()
    want = numfmt.chop(x, fmt, mode, key=KEYS[mode])
    out = np.full_like(x, np.nan)
    assert numfmt.chop(x, fmt, mode, key=KEYS[mode], out=out) is out
    np.testing.assert_array_equal(_bits(out), _bits(want))
    y = x.copy()
    assert numfmt.chop(y, fmt, mode, key=KEYS[mode], out=y) is y  # in place
    np.testing.assert_array_equal(_bits(y), _bits(want))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_non_contiguous_and_overlapping_out(dtype, path):
    x = _x(dtype, (16, 32))
    want = numfmt.chop(x, "float8_e5m2")
    big = np.zeros((16, 64), dtype)
    out = big[:, ::2]  # strided
    numfmt.chop(x, "float8_e5m2", out=out)
    np.testing.assert_array_equal(_bits(np.ascontiguousarray(out)), _bits(want))
    assert not big[:, 1::2].any()  # nothing written between
    flat = x.reshape(-1).copy()
    y = flat[1:]  # out overlaps the input shifted by one element
    want = numfmt.chop(flat[:-1], "float8_e5m2")
    numfmt.chop(flat[:-1], "float8_e5m2", out=y)
    np.testing.assert_array_equal(_bits(y), _bits(want))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shift", [1, 700])
def test_out_overlapping_a_long_input(dtype, shift, path):
    """Overlaps longer than a chunk of the kernel's vector loops (512 elements), either way round."""
    flat = (np.random.default_rng(1).standard_normal(5000) * 3).astype(dtype)
    numfmt.chop(flat, "bfloat16")  # the shortcut of repeated calls is cached: the overlapping calls take it
    for a, b in ((slice(None, -shift), slice(shift, None)), (slice(shift, None), slice(None, -shift))):
        buf = flat.copy()
        want = numfmt.chop(buf[a].copy(), "bfloat16")
        numfmt.chop(buf[a], "bfloat16", out=buf[b])
        np.testing.assert_array_equal(_bits(buf[b]), _bits(want))


def test_a_kernel_without_its_own_overlap_check_gets_no_overlapping_out(monkeypatch):
    """The shortcut checks the overlap itself for a kernel that does not declare CHECKS_OVERLAP."""
    import types

    from numfmt.core import chop as chop_module

    real = native._KERNEL.ext if native.available() else None
    assert real is not None and real.CHECKS_OVERLAP == 1
    seen = []

    def round_into(plan, src, dst, *rest):
        seen.append(np.may_share_memory(src, dst) and src.ctypes.data != dst.ctypes.data)
        return real.round_into(plan, src, dst, *rest)

    fake = types.SimpleNamespace(round_into=round_into, FIELDS=real.FIELDS)
    monkeypatch.setattr(native._KERNEL, "ext", fake)
    monkeypatch.setattr(chop_module, "_LANES", {})
    flat = (np.random.default_rng(2).standard_normal(3000) * 3).astype(np.float32)
    want = numfmt.chop(flat[:-5].copy(), "bfloat16")
    numfmt.chop(flat[:-5], "bfloat16", out=flat[5:])  # the shortcut is cached by the call before
    np.testing.assert_array_equal(_bits(flat[5:]), _bits(want))
    assert seen and not any(seen)


def test_scalar_input_with_a_zero_dimensional_out(path):
    out = np.empty((), np.float64)
    assert numfmt.chop(0.1, "bfloat16", out=out) is out
    assert float(out) == float(numfmt.chop(0.1, "bfloat16"))


def test_a_failing_in_place_chop_leaves_the_input_intact(path):
    x = np.array([1.1, 65504.0], np.float16)  # float16 cannot hold 65536, the rounding of 65504 to e6m3
    with pytest.raises(ValueError, match="cannot hold"):
        numfmt.chop(x, "float(e=6,m=3)", out=x)
    np.testing.assert_array_equal(x, np.array([1.1, 65504.0], np.float16))
    ok = np.array([1.1, 2.0], np.float16)
    numfmt.chop(ok, "float(e=6,m=3)", out=ok)  # cached: the next call takes the shortcut, and the kernel refuses
    with pytest.raises(ValueError, match="cannot hold"):
        numfmt.chop(x, "float(e=6,m=3)", out=x)
    np.testing.assert_array_equal(x, np.array([1.1, 65504.0], np.float16))


@pytest.mark.parametrize(
    ("out", "error", "match"),
    [
        ([0.0] * 4, TypeError, "out must be a writable NumPy array of shape \\(4,\\) and dtype float32.*got .*list"),
        (np.zeros(4, np.float64), TypeError, "out has dtype float64; it must be .* dtype float32"),
        (np.zeros(5, np.float32), ValueError, "out has shape \\(5,\\); it must be .* shape \\(4,\\)"),
        (np.ma.zeros(4, np.float32), TypeError, "got numpy.ma.*MaskedArray"),
    ],
)
@pytest.mark.parametrize("fmt", ["bfloat16", "posit8_1", "mxfp8_e4m3"])
def test_a_wrong_out_is_refused(out, error, match, fmt):
    with pytest.raises(error, match=match):
        numfmt.chop(np.zeros(4, np.float32), fmt, out=out)


def test_a_read_only_out_is_refused():
    x = np.zeros(4, np.float32)
    x.setflags(write=False)
    with pytest.raises(ValueError, match="out is read-only"):
        numfmt.chop(x, "bfloat16", out=x)


def test_jax_arrays_refuse_out():
    with pytest.raises(TypeError, match="out= is not supported for JAX arrays"):
        numfmt.chop(jnp.zeros(4), "bfloat16", out=np.zeros(4))
    with pytest.raises(TypeError, match="out= is not supported for JAX arrays"):
        numfmt.chop(jnp.zeros(4), "mxfp4_e2m1", out=np.zeros(4), key=jax.random.key(0))


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_formats_write_out_directly_or_copy_alike(dtype, axis, path):
    """The block kernel writes out='s rows itself where they are a contiguous view apart from x."""
    x = _x(dtype, (48, 96))
    for fmt in [numfmt.mxfp4_e2m1.replace(axis=axis), numfmt.mxfp8_e4m3.replace(axis=axis), numfmt.parse("mxint8")]:
        for mode, key in [("nearest_even", None), ("stochastic", jax.random.key(3)), ("stochastic", 11)]:
            want = numfmt.chop(x, fmt, mode, key=key)
            big = np.full((48, 192), np.nan, dtype)
            outs = [np.full_like(x, np.nan), np.asfortranarray(np.full_like(x, np.nan)), big[:, ::2], x.copy()]
            for i, out in enumerate(outs):
                src = out if i == 3 else x  # the last: in place
                assert numfmt.chop(src, fmt, mode, key=key, out=out) is out
                np.testing.assert_array_equal(_bits(np.ascontiguousarray(out)), _bits(want), err_msg=f"{fmt} {i}")
            assert np.isnan(big[:, 1::2]).all()  # nothing written between


def test_a_failing_block_chop_leaves_out_as_it_was(path):
    x = np.full((4, 32), -np.finfo(np.float32).max, np.float32)  # mxint8: -2 * 2**127 overflows float32
    out = np.full_like(x, 1.5)
    with pytest.raises(ValueError, match="cannot hold"):
        numfmt.chop(x, "mxint8", out=out)
    assert (out == 1.5).all()
