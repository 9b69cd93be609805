"""The demonstration of ``python -m numfmt``: a network trained with hand-emulated formats."""

import io

import numpy as np
import pytest

import numfmt
from numfmt.cli.demo import RECIPES, Recipe, run_demo, spirals, train
from numfmt.testing import assert_bits_equal

pytestmark = pytest.mark.xdist_group("test_demo")  # its module fixture runs once (pytest -n auto --dist loadgroup)


@pytest.fixture(scope="module")
def demo_run():
    out, err = io.StringIO(), io.StringIO()
    results = run_demo(out=out, err=err)
    return results, out.getvalue(), err.getvalue()


def test_demo_table_has_a_row_per_recipe(demo_run):
    results, out, _ = demo_run
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("format (values/grads)"))
    assert lines[head].split() == ["format", "(values/grads)", "rounding", "final", "loss", "accuracy", "time"]
    rows = [line.split() for line in lines[head + 2 : head + 2 + len(RECIPES)]]
    for row, recipe, result in zip(rows, RECIPES, results, strict=True):
        assert row[:2] == [recipe.label, recipe.rounding]
        assert float(row[2]) == pytest.approx(result.losses[-1], abs=5e-5)
        assert row[3] == f"{result.accuracy:.1%}" and row[5] == "s"
    assert lines[head + 2 + len(RECIPES)] == ""


def test_demo_progress_bar_goes_to_stderr(demo_run):
    _, out, err = demo_run
    assert "[" + "#" * 30 + "] 100%" in err
    assert "#" not in out


def test_float32_learns_the_spiral(demo_run):
    result = demo_run[0][0]
    assert result.recipe == Recipe(None, None)
    assert result.accuracy >= 0.95
    assert result.losses[-1] < 0.1 * result.losses[0]


@pytest.mark.parametrize("index", [i for i, r in enumerate(RECIPES) if r.values is not None])
def test_weights_are_values_of_the_format(demo_run, index):
    result = demo_run[0][index]
    for w, b in result.params:
        for a in (w, b):
            assert a.dtype == np.float32
            assert_bits_equal(numfmt.chop(a, result.recipe.values), a)


def test_fp8_nearest_weights_differ_from_float32(demo_run):
    """The formats really are applied: fp8 weights take at most 8 bits' worth of values."""
    fp8 = next(r for r in demo_run[0] if r.recipe.values == "float8_e4m3fn")
    assert len(np.unique(np.concatenate([w.ravel() for w, _ in fp8.params]))) <= 253
    f32 = demo_run[0][0]
    assert len(np.unique(np.concatenate([w.ravel() for w, _ in f32.params]))) > 253


def test_training_is_reproducible():
    recipe = Recipe("float8_e4m3fn", "float8_e5m2", "stochastic")
    a, b = train(recipe, epochs=2), train(recipe, epochs=2)
    assert a.losses == b.losses
    for (wa, ba), (wb, bb) in zip(a.params, b.params, strict=True):
        assert_bits_equal(wa, wb)
        assert_bits_equal(ba, bb)
    assert train(recipe, epochs=2, seed=1).losses != a.losses


def test_spirals_labels_and_determinism():
    x, y = spirals(50, classes=4, seed=3)
    assert x.shape == (200, 2) and np.bincount(y).tolist() == [50] * 4
    assert_bits_equal(spirals(50, classes=4, seed=3)[0], x)
    assert np.abs(x).max() <= 1.0 + 1e-6


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_per_class": 0}, "n_per_class=0 must be a positive int"),
        ({"n_per_class": 5, "classes": 1}, "classes=1 must be an int >= 2"),
        ({"n_per_class": 5, "noise": -1.0}, "noise=-1.0 must be >= 0"),
    ],
)
def test_spirals_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        spirals(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs=0 must be a positive int"),
        ({"batch": 2.5}, "batch=2.5 must be a positive int"),
        ({"lr": -1.0}, "lr=-1.0 must be a positive number"),
    ],
)
def test_train_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train(Recipe(None, None), **kwargs)


def test_unknown_format_in_a_recipe_is_refused():
    with pytest.raises(ValueError, match="Closest names"):
        train(Recipe("float8_e4m3f", None), epochs=1)
