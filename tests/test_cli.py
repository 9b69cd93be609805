"""The command line: info, formats, round, the default demonstration, errors."""

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from numfmt import _cli
from numfmt._cli import main

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


def test_formats_table(capsys):
    rc, out, _ = run(capsys, "formats")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "bits", "e", "m", "bias", "specials", "max", "min", "subnormal"]
    rows = {line.split()[0]: line.split() for line in lines[2:] if line}
    assert rows["float8_e4m3fn"][1:7] == ["8", "4", "3", "7", "fn", "448"]
    assert "binary8p3se" in rows
    assert "any K in 2..16" in lines[-1]


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
