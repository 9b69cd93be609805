"""The documentation: notebooks execute, the site builds with --strict, every public name is documented."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
pytest.importorskip("mkdocs", reason="the docs tools come with the 'docs' extra (included in 'test')")


def _load_build():
    spec = importlib.util.spec_from_file_location("numfmt_docs_build", ROOT / "docs" / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Execute every notebook once (each in its own process); name -> (seconds, stderr)."""
    out = tmp_path_factory.mktemp("executed")
    times = {}
    for nb in NOTEBOOKS:
        target = out / "notebooks" / f"{nb.stem}.ipynb"
        run = subprocess.run(
            [sys.executable, str(ROOT / "docs" / "_build.py"), str(nb), str(target)],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )
        times[nb.stem] = (float(run.stdout.split()[-1]) if run.returncode == 0 else None, run.stderr[-3000:])
    return out, times


def test_there_are_notebooks():
    assert [nb.stem for nb in NOTEBOOKS] == [
        "01_formats_tour", "02_rounding_error", "03_lorenz", "04_training", "05_block_formats"
    ]


@pytest.mark.parametrize("name", [nb.stem for nb in NOTEBOOKS])
def test_notebook_executes_in_under_two_minutes(executed, name):
    seconds, stderr = executed[1][name]
    assert seconds is not None, f"notebook {name} failed:\n{stderr}"
    assert seconds < 120, f"notebook {name} took {seconds:.0f} s (limit 120 s on 2 cores)"
    import nbformat

    nb = nbformat.read(executed[0] / "notebooks" / f"{name}.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure was drawn"


def test_site_builds_strictly(executed, tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NUMFMT_EXECUTED_NOTEBOOKS": str(executed[0])}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-5000:]
    import numfmt
    import numfmt.testing

    presets = (site / "presets" / "index.html").read_text(encoding="utf-8")
    for name in numfmt.presets():
        assert f'id="{name}"' in presets, name
    assert presets.count("Spec:") == len(numfmt.presets())  # one spec block per preset of every family
    for family in ("float", "posit", "fixed", "block"):
        assert numfmt.presets(family)
    assert presets.count("Unit roundoff:") == len(numfmt.presets("float"))
    assert presets.count("Maxpos:") == len(numfmt.presets("posit"))
    assert presets.count("Bits per element:") == len(numfmt.presets("block"))
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    public = [n for n in numfmt.__all__ if n not in numfmt.presets()]
    for name in public:
        assert f'id="numfmt.{name}"' in api, name
    for name in numfmt.testing.__all__:
        assert f'id="numfmt.testing.{name}"' in api, name
    for nb in NOTEBOOKS:
        page = (site / "notebooks" / nb.stem / "index.html").read_text(encoding="utf-8")
        assert "data:image/png" in page, nb.stem


def test_api_check_refuses_a_missing_or_stale_name():
    build = _load_build()
    build.on_startup(command="build", dirty=False)
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    build._check_api(api)  # the real page passes
    from mkdocs.exceptions import PluginError

    with pytest.raises(PluginError, match=r"undocumented \['numfmt.encode'\]"):
        build._check_api(api.replace("::: numfmt.encode\n", ""))
    with pytest.raises(PluginError, match=r"not public \['numfmt.nonexistent'\]"):
        build._check_api(api + "\n::: numfmt.nonexistent\n")


def test_every_notebook_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}.ipynb" in nav


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs").rglob("*.md")):
        assert f": {page.relative_to(ROOT / 'docs').as_posix()}" in nav, page


@pytest.mark.parametrize("page", sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")))
def test_python_examples_in_the_docs_run(page):
    """The ```python blocks of each page run, in order, in one namespace."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    namespace = {}
    for block in blocks:
        exec(compile(block, f"docs/{page}", "exec"), namespace)
