"""The command line: info, formats, round, the default demonstration, errors."""

import subprocess
import sys
from pathlib import Path

from numfmt._cli import main


def test_info(capsys):
    assert main(["info", "float8_e4m3fn"]) == 0
    out = capsys.readouterr().out
    assert "max 448.0" in out and "NaN 0x7f" in out


def test_formats_table(capsys):
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    assert "float8_e4m3fn" in out and "binary8p3se" in out


def test_round(capsys):
    assert main(["round", "0.1", "465", "--to", "bfloat16"]) == 0
    out = capsys.readouterr().out
    assert "0.10009765625" in out and "code 0x3dcd" in out
    assert main(["round", "465", "--to", "e4m3fn"]) == 0
    assert "-> nan" in capsys.readouterr().out


def test_errors(capsys):
    assert main(["info", "float8_e4m3f"]) == 2
    assert "Closest names" in capsys.readouterr().err
    assert main(["round", "0.1", "--to", "e4m3fn", "--rounding", "stochastic"]) == 2
    assert main(["round", "0.1", "--to", "e4m3fn", "--rounding", "stochastic", "--seed", "1"]) == 0


def test_demo_and_module_entry_point():
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-m", "numfmt"], cwd=root, capture_output=True, text=True, check=True)
    assert "float8_e4m3fn" in run.stdout and "Subcommands" in run.stdout
