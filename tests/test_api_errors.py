"""Regression tests of argument errors the API fuzz (tests/test_api_fuzz.py) and issue #13 found.

Each bad argument gives a ValueError/TypeError naming the argument, the value
and what is allowed; inputs that are valid (empty arrays, numpy integers, an
int seed with JAX input) work.
"""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numfmt
from numfmt.cli.main import formats_text, info_text, main, round_text

# ----------------------------------------------------------------- CLI


@pytest.mark.parametrize("name", sorted(numfmt.presets()))
def test_cli_info_and_round_every_preset(name):
    assert info_text(name).startswith("Name:")
    text = round_text(["0.1", "-3", "1e3"], name)
    assert text.startswith(f"Rounding to {name}")


def test_cli_formats_lists_every_family():
    text = formats_text()
    for name in ("float8_e4m3fn", "posit16_1", "int8", "mxfp4_e2m1", "int8_per_tensor"):
        assert name in text


def test_cli_round_scaled_as_one_tensor(capsys):
    assert main(["round", "0.1", "-0.05", "--to", "int8_per_tensor"]) == 0
    out = capsys.readouterr().out
    assert "all values share one scale" in out
    assert "integer code:   127" in out and "integer code:   -64" in out


def test_cli_round_scaled_refuses_overflow(capsys):
    assert main(["round", "0.1", "--to", "int8_per_tensor", "--overflow", "sat_finite"]) == 2
    assert "--overflow does not apply to scaled integer formats" in capsys.readouterr().err


# --------------------------------------------------------- block elements, sizes


@pytest.mark.parametrize(
    ("spec", "hint"),
    [
        ("mx(elem=posit8_1)", "PositFormat"),
        ("mx(elem=q3.4)", "int(bits=8,frac=4)"),
        ("mx(elem=int4)", "int(bits=4,frac=0)"),
    ],
)
def test_block_refuses_posit_and_fixed_elements(spec, hint):
    with pytest.raises(ValueError, match=r"elem=.* is not a block element: elements are a FloatFormat") as info:
        numfmt.parse(spec)
    assert hint in str(info.value)


def test_block_fixed_element_hint_is_equivalent():
    fixed = numfmt.parse("mx(elem=int(bits=8,frac=4))")
    x = np.linspace(-9, 9, 64, dtype=np.float32)
    assert float(fixed.elem.max_value) == float(numfmt.parse("q3.4").max_value)
    assert float(fixed.elem.min_value) == float(numfmt.parse("q3.4").min_value)
    assert numfmt.chop(x, fixed).shape == x.shape


@pytest.mark.parametrize("size", [2**70, 2**31 + 1, 0])
def test_block_and_group_sizes_checked_at_construction(size):
    with pytest.raises(ValueError, match=f"block_size={size} is out of range"):
        numfmt.mx("e2m1", size)
    with pytest.raises(ValueError, match=f"block_size={size} is out of range"):
        numfmt.nvfp4.replace(block_size=size)
    with pytest.raises(ValueError, match=f"group_size={size}"):
        numfmt.ScaledIntFormat(4, "group", group_size=size)


# ------------------------------------------------------------------ empty arrays

EMPTY_FORMATS = ["nvfp4", "mxfp4_e2m1", "nf4", "mxint8", "mx(elem=e2m1,axis=0)", "int8_per_tensor",
                 "int8_per_channel", "uint8_asym_per_channel", "int4_g32"]  # fmt: skip


@pytest.mark.parametrize("fmt", EMPTY_FORMATS)
@pytest.mark.parametrize("shape", [(0,), (0, 32), (3, 0), (0, 0), (2, 0, 4)])
def test_empty_arrays(fmt, shape):
    _empty_round_trip(np.zeros(shape, np.float32), fmt)


@pytest.mark.parametrize("fmt", ["nvfp4", "mxfp4_e2m1", "nf4", "int8_per_channel"])
def test_empty_jax_arrays(fmt):
    _empty_round_trip(jnp.zeros((0, 32), jnp.float32), fmt)


def _empty_round_trip(x, fmt):
    shape = x.shape
    y = numfmt.chop(x, fmt)
    assert y.shape == shape and y.dtype == x.dtype
    codes = numfmt.encode(x, fmt)
    back = numfmt.decode(codes, fmt)
    assert back.size == 0 and back.ndim == len(shape)


# ------------------------------------------------------------------ keys


def test_negative_seed_named():
    with pytest.raises(ValueError, match="key=-5 is a negative seed; an int seed must be >= 0"):
        numfmt.chop(np.ones(3, np.float32), "bfloat16", "stochastic", key=-5)


@pytest.mark.parametrize("key", [True, "seed", 1.5])
def test_wrong_key_types_named(key):
    with pytest.raises(TypeError, match="key must be a NumPy Generator, an int seed or a jax.random key"):
        numfmt.chop(np.ones(3, np.float32), "bfloat16", "stochastic", key=key)


@pytest.mark.parametrize("xm", [np, jnp], ids=["numpy", "jax"])
@pytest.mark.parametrize("batch", ["typed", "legacy"])
def test_key_batch_refused(xm, batch):
    keys = jax.random.split(jax.random.key(0), 2)
    if batch == "legacy":
        keys = jax.random.key_data(keys)
    with pytest.raises(ValueError, match=r"key has shape \(2,.*not a batch of keys"):
        numfmt.chop(xm.ones(3, xm.float32), "bfloat16", "stochastic", key=keys)


def test_generator_refused_for_jax_input():
    with pytest.raises(TypeError, match=r"key must be a jax.random key or an int seed \(x is a JAX array\)"):
        numfmt.chop(jnp.ones(3, jnp.float32), "bfloat16", "stochastic", key=np.random.default_rng(0))


@pytest.mark.parametrize(
    ("fmt", "mode", "extra"),
    [("bfloat16", "stochastic", {}), ("posit8_1", "stochastic", {}), ("int4", "stochastic", {}),
     ("mxfp4_e2m1", "stochastic", {}), ("nvfp4", "stochastic", {}),
     ("int8_per_tensor", "stochastic_a", {"random_bits": 20})],
)  # fmt: skip
def test_int_seed_gives_jax_input_the_numpy_bits(fmt, mode, extra):
    x = np.linspace(-3, 3, 96, dtype=np.float32).reshape(3, 32)
    want = numfmt.chop(x, fmt, mode, key=7, **extra)
    got = numfmt.chop(jnp.asarray(x), fmt, mode, key=7, **extra)
    np.testing.assert_array_equal(np.asarray(got).view(np.uint32), want.view(np.uint32))
    jitted = jax.jit(lambda v: numfmt.chop(v, fmt, mode, key=np.uint8(7), **extra))(jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(jitted).view(np.uint32), want.view(np.uint32))


# ----------------------------------------------------------------- random_bits


def test_random_bits_accepts_numpy_integers():
    x = np.linspace(-3, 3, 50, dtype=np.float32)
    a = numfmt.chop(x, "bfloat16", "stochastic_a", key=3, random_bits=np.int64(8))
    b = numfmt.chop(x, "bfloat16", "stochastic_a", key=3, random_bits=8)
    np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("bits", [True, np.True_, 8.0])
def test_random_bits_refuses_bool_and_float(bits):
    with pytest.raises(TypeError, match=r"random_bits=.* must be an int in 1..31 for float32 input"):
        numfmt.chop(np.ones(3, np.float32), "bfloat16", "stochastic_a", key=3, random_bits=bits)


# ----------------------------------------------------------------- dtypes


@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "posit8_1", "q3.4", "mxfp4_e2m1", "nvfp4", "nf4", "int8_per_tensor"])
@pytest.mark.parametrize(("dtype", "shown"), [(np.int32, "dtype=int32"), ("float13", "dtype='float13'"),
                                              (np.dtype(">f4"), "dtype=>f4")])  # fmt: skip
def test_decode_names_dtype(fmt, dtype, shown):
    codes = numfmt.encode(np.ones(32, np.float32), fmt)
    with pytest.raises(TypeError, match=f"{shown} is not a dtype decode returns"):
        numfmt.decode(codes, fmt, dtype=dtype)


def test_complex_input_message():
    with pytest.raises(TypeError, match="real and imaginary parts") as info:
        numfmt.chop(np.ones(3, np.complex64), "bfloat16")
    assert "Convert integers" not in str(info.value)


def test_byte_swapped_input_message():
    x = np.ones(3, np.dtype(">f4"))
    with pytest.raises(TypeError, match=r"byte-swapped dtype >f4.*astype\(x.dtype.newbyteorder\('='\)\)"):
        numfmt.chop(x, "bfloat16")


# ---------------------------------------------------------------- x64 off

X64_OFF = """
import jax.numpy as jnp, numpy as np, numfmt
x = jnp.ones(3, jnp.float32)
for call in (lambda: numfmt.chop(x, "int64"), lambda: numfmt.chop(x, "uint64"),
             lambda: numfmt.encode(x, "float64"), lambda: numfmt.decode(jnp.ones(3, jnp.uint32), "posit32_2"),
             lambda: numfmt.decode(jnp.ones(3, jnp.uint32), "int32")):
    try:
        call()
        print("accepted")
    except ValueError as e:
        assert "jax_enable_x64" in str(e), e
        print("refused")
print(np.asarray(numfmt.chop(x, "int32")).tolist(), np.asarray(numfmt.chop(x, "float64")).tolist())
"""


def test_x64_off_refuses_64_bit_work_clearly():
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", X64_OFF], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["refused"] * 5 + ["[1.0,", "1.0,", "1.0]", "[1.0,", "1.0,", "1.0]"], out.stdout
