"""The command line: info, formats, round, the default demonstration, errors."""

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from numfmt.cli import main as _cli
from numfmt.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------------- info


def test_info_e4m3fn(capsys):
    rc, out, err = run(capsys, "info", "float8_e4m3fn")
    assert rc == 0 and err == ""
    assert "Spec:               float(e=4,m=3,specials=fn)" in out
    assert "Max:                448.0" in out
    assert "NaN:              0x7f and 0xff = 0bS.1111.111" in out
    assert "Inf:              none" in out
    assert "-0:               0x80 = 0b1.0000.000" in out
    assert "Smallest subnormal: 2^-9 = 0.001953125" in out
    assert "Unit roundoff:      2^-4 = 0.0625" in out
    assert "Finite values:      253" in out


def test_info_e8m0fnu_has_no_subnormals_and_no_zero(capsys):
    out = run(capsys, "info", "float8_e8m0fnu")[1]
    assert "Signed:             no: negative inputs become NaN" in out
    assert "NaN:              0xff = 0b11111111" in out and "Inf:              none" in out
    assert "Subnormals:         no_zero (none, and no zero:" in out
    assert "Smallest subnormal: none (and no zero: the smallest value is the smallest normal 2^-127 = " in out


def test_info_ieee_and_p3109_codes(capsys):
    out = run(capsys, "info", "half")[1]
    assert "canonical 0x7e00 = 0b0.11111.1000000000" in out
    assert "+inf 0x7c00, -inf 0xfc00 = 0bS.11111.0000000000" in out
    out = run(capsys, "info", "binary8p3se")[1]
    assert "NaN:              0x80 = 0b1.00000.00" in out
    assert "+inf 0x7f, -inf 0xff" in out and "-0:               none" in out


def test_info_beyond_float64(capsys):
    out = run(capsys, "info", "float(e=12,m=60)")[1]
    assert "Max:                ~3.2317006071311008e+616 = (2 - 2^-60) * 2^2047" in out


# ------------------------------------------------------------------- formats


def _section(out, title):
    """The rows of the table under the line starting with ``title``: name -> cells."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    head = lines[start + 1].split()
    rows = {}
    for line in lines[start + 3 :]:
        if not line or not line.startswith(tuple("abcdefghijklmnopqrstuvwxyz0123456789")) or line.startswith("P3109"):
            break
        rows[line.split()[0]] = line.split()
    return head, rows


def test_formats_table(capsys):
    rc, out, _ = run(capsys, "formats")
    assert rc == 0
    head, rows = _section(out, "Float formats")
    assert head == ["name", "bits", "e", "m", "bias", "specials", "max", "min", "subnormal"]
    assert rows["float8_e4m3fn"][1:7] == ["8", "4", "3", "7", "fn", "448"]
    assert "binary8p3se" in rows
    assert "any K in 2..16" in out


def test_formats_table_lists_every_family(capsys):
    out = run(capsys, "formats")[1]
    head, posits = _section(out, "Posits")
    assert head == ["name", "bits", "es", "useed", "maxpos", "minpos", "eps"]
    assert posits["posit16_1"][1:] == ["16", "1", "4", "2.68435e+08", "3.72529e-09", "0.000244141"]
    head, fixed = _section(out, "Fixed point and integers")
    assert head == ["name", "bits", "signed", "int", "frac", "min", "max", "step", "overflow"]
    assert fixed["int8"][1:] == ["8", "yes", "7", "0", "-128", "127", "1", "saturate"]
    assert fixed["uint4"][1:] == ["4", "no", "4", "0", "0", "15", "1", "saturate"]
    head, blocks = _section(out, "Block formats")
    assert head == ["name", "element", "scale", "block", "rule", "inf", "tensor", "bits/elem"]
    assert blocks["mxfp4_e2m1"][1:] == ["float4_e2m1fn", "float8_e8m0fnu", "32", "floor", "nan", "no", "4.25"]
    assert blocks["nvfp4"][1:] == ["float4_e2m1fn", "float8_e4m3fn", "16", "-", "nan", "yes", "4.5"]
    import numfmt

    head, scaled = _section(out, "Scaled integers")
    assert head == ["name", "bits", "qmin", "qmax", "per", "axis", "group", "zero", "point", "scale"]
    assert scaled["int4_g128"][1:] == ["4", "-7", "7", "group", "-1", "128", "no", "float32"]
    listed = set(posits) | set(fixed) | set(blocks) | set(scaled) | set(_section(out, "Float formats")[1])
    assert listed == set(numfmt.presets())


# ---------------------------------------------------- info: the other families


def test_info_posit(capsys):
    rc, out, err = run(capsys, "info", "posit16_1")
    assert rc == 0 and err == ""
    assert "useed:      2^(2^es) = 2^2 = 4.0" in out
    assert "Maxpos:     2^28 = 268435456.0" in out
    assert "Minpos:     2^-28 = 3.725290298461914e-09" in out
    assert "NaR:        0x8000 = 0b1000000000000000" in out
    assert "Eps near 1: 2^-12 = 0.000244140625 (12 fraction bits at 1)" in out
    assert "Values:     65535 reals (2^16 - 1) and NaR" in out
    assert "never 0 or NaR" in out
    out = run(capsys, "info", "posit(n=8,es=0)")[1]
    assert "Maxpos:     2^6 = 64.0" in out and "no exponent bits" in out


def test_info_fixed(capsys):
    out = run(capsys, "info", "int8")[1]
    assert "Bits:          8 = 1 sign + 7 integer + 0 fraction" in out
    assert "Range:         [-128.0, 127.0]" in out
    assert "Step:          2^0 = 1.0" in out
    assert "Overflow:      saturate" in out
    out = run(capsys, "info", "fixed(i=3,f=4,overflow=wrap)")[1]
    assert "Range:         [-8.0, 7.9375]" in out and "Step:          2^-4 = 0.0625" in out
    assert "Overflow:      wrap: the integer code modulo 2^8" in out
    out = run(capsys, "info", "uq0.8")[1]
    assert "Signed:        no" in out and "Range:         [0.0, 0.99609375]" in out


@pytest.mark.parametrize(
    ("name", "lines"),
    [
        ("mxfp4_e2m1", ["Element:          float4_e2m1fn (4 bits, max 6.0)", "Scale rule:       floor: ",
                        "Bits per element: 4 + 8/32 = 4.25", "Block size:       32 elements along axis -1",
                        "Inf policy:       nan", "Tensor scale:     none", "Nibbles:          low_first"]),
        ("nvfp4", ["Scale:            float8_e4m3fn (8 bits)", "Bits per element: 4 + 8/16 = 4.5",
                   "Tensor scale:     float32 g", "Input dtypes:     float16, bfloat16, float32, float64 "]),
        ("nf4", ["Scale:            float32: the block's amax itself", "Bits per element: 4 + 32/64 = 4.5"]),
        ("mxint8", ["Element:          int(bits=8,frac=6) (8 bits, max 1.984375)", "8 + 8/32 = 8.25"]),
        ("mx(elem=e2m1,block=16,axis=0,rule=ceil,inf=saturate)",
         ["Block size:       16 elements along axis 0", "Scale rule:       ceil: ", "Inf policy:       saturate"]),
    ],
)  # fmt: skip
def test_info_block(capsys, name, lines):
    rc, out, _ = run(capsys, "info", name)
    assert rc == 0
    for line in lines:
        assert line in out, line


# --------------------------------------------------------------------- round


def test_round_bfloat16(capsys):
    rc, out, _ = run(capsys, "round", "0.1", "--to", "bfloat16")
    assert rc == 0
    assert "result:         0.10009765625" in out
    assert "code:           0x3dcd = 0b0.01111011.1001101" in out
    err = Fraction(0.10009765625) - Fraction(0.1)  # exact, not float subtraction
    assert f"absolute error: {float(err)!r}" in out
    assert f"relative error: {float(err / Fraction(0.1))!r}" in out


def test_round_overflow_to_nan(capsys):
    rc, out, _ = run(capsys, "round", "465", "0.1", "--to", "e4m3fn")
    assert rc == 0
    assert "result:         nan (overflow: float8_e4m3fn has no inf)" in out
    assert "0.1015625" in out  # several values in one call


def test_round_negative_and_hex_values(capsys):
    out = run(capsys, "round", "-0x1.8p-3", "-1e-5", "-inf", "--to", "bfloat16", "--rounding", "toward_zero")[1]
    assert "input:          -0.1875\n" in out
    assert "-1.0013580322265625e-05" not in out  # toward zero, not nearest
    assert f"result:         {-167 * 2.0**-24!r}\n" in out  # 1e-5 = 167.77 * 2**-24
    assert "code:           0xff80" in out


def test_round_overflow_policy(capsys):
    out = run(capsys, "round", "1e6", "--to", "e4m3fn", "--overflow", "sat_finite")[1]
    assert "result:         448.0 (overflow, saturated to max)" in out


def test_round_stochastic_is_reproducible(capsys):
    argv = ["round", "0.1", "0.1", "0.1", "--to", "e5m2", "--rounding", "stochastic", "--seed", "7"]
    first = run(capsys, *argv)
    assert first[0] == 0
    assert run(capsys, *argv) == first


def test_round_posit(capsys):
    rc, out, _ = run(capsys, "round", "0.1", "1e9", "-1e-12", "nan", "--to", "posit16_1")
    assert rc == 0
    assert "Rounding to posit16_1 = posit16_1: nearest_even, overflow sat_finite" in out
    assert "result:         0.100006103515625\n  code:           0x14cd = 0b0001010011001101" in out
    assert "result:         268435456.0 (saturated to maxpos)\n  code:           0x7fff" in out
    assert f"result:         {-(2.0**-28)!r} (below minpos: posits never round to 0)" in out
    assert "code:           0xffff" in out
    assert "result:         nan (NaN becomes NaR)\n  code:           0x8000" in out


def test_round_fixed_saturate_and_wrap(capsys):
    out = run(capsys, "round", "200", "-3.7", "--to", "int8")[1]
    assert "result:         127.0 (overflow, saturated to max)\n  code:           0x7f = 0b01111111" in out
    assert "result:         -4.0\n  code:           0xfc" in out
    out = run(capsys, "round", "9", "--to", "q3.4", "--overflow", "wrap")[1]
    assert "overflow wrap" in out
    assert "result:         -7.0 (overflow, wrapped modulo 2^8)\n  code:           0x90" in out


def test_round_block_is_one_block(capsys):
    import numpy as np

    import numfmt

    rc, out, _ = run(capsys, "round", "0.1", "1.5", "-3", "100", "--to", "mxfp4_e2m1")
    assert rc == 0
    assert "blocks of 32 share a scale" in out
    assert "scale code(s): 0x83 = 0b10000011" in out  # 2^(131-127): amax 100 -> 2^(6-2)
    expected = numfmt.chop(np.array([0.1, 1.5, -3.0, 100.0]), "mxfp4_e2m1")
    results = [float(line.split()[1]) for line in out.splitlines() if line.strip().startswith("result:")]
    assert np.array_equal(np.array(results).view(np.uint64), expected.view(np.uint64))
    assert "element code:   0x7 = 0b0111" in out  # 96 = 6 * 16


def test_round_block_float32_input_is_shown(capsys):
    out = run(capsys, "round", "0.1", "100", "--to", "nvfp4")[1]
    assert "nvfp4 rounds float32 input" in out
    assert "input:          0.10000000149011612 (nearest float32)" in out
    assert "tensor scale g = " in out
    out = run(capsys, "round", "1", "100", "--to", "nf4")[1]
    assert "scale(s): 100.0 (float32 amax)" in out


# -------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "argv, message",
    [
        (["info", "float8_e4m3f"], "Closest names: float8_e4m3fn"),
        (["round", "1", "--to", "float8_e4m3f"], "Closest names"),
        (["round", "1", "--to", "e4m3fn", "--rounding", "nearst"], "Did you mean"),
        (["round", "1", "--to", "e4m3fn", "--rounding", "stochastic"], "--seed"),
        (["round", "1", "--to", "e4m3fn", "--seed", "1"], "only used by stochastic"),
        (["round", "1", "--to", "e4m3fn", "--rounding", "stochastic_a", "--seed", "1"], "--random-bits"),
        (["round", "abc", "--to", "e4m3fn"], "cannot read 'abc'"),
        (["round", "1", "--to", "int8", "--overflow", "sat_none"], "use overflow='saturate'"),
        (["round", "1", "--to", "posit8_0", "--overflow", "wrap"], "unknown overflow 'wrap'"),
        (["round", "1", "--to", "mxfp4_e2m1", "--overflow", "sat_finite"], "does not apply to block formats"),
        (["round", "1e39", "--to", "nvfp4"], "beyond float32's range"),
        (["info", "posit8"], "does not say es"),
    ],
)
def test_errors(capsys, argv, message):
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == ""
    assert err.startswith("numfmt: error: ") and message in err


def test_usage_error_and_help_return_status(capsys):
    assert main(["round", "1"]) == 2  # --to missing: argparse's message
    assert "required: --to" in capsys.readouterr().err
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(cmd in out for cmd in ("info", "formats", "round"))


# ---------------------------------------------------------------------- demo


def test_no_subcommand_calls_demo(capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(_cli, "demo", lambda: calls.append(1))
    assert main([]) == 0
    assert calls == [1]


def test_module_entry_point():
    run_ = subprocess.run(
        [sys.executable, "-m", "numfmt", "info", "float16"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "Max:                65504.0" in run_.stdout
