"""The documentation: notebooks execute, the site builds with --strict, every public name is documented."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("test_docs")  # its session fixture runs once (pytest -n auto --dist loadgroup)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
pytest.importorskip("mkdocs", reason="the docs tools come with the 'docs' extra (included in 'test')")


def _load_build():
    spec = importlib.util.spec_from_file_location("numfmt_docs_build", ROOT / "docs" / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")  # once per worker, even where other files run between its tests
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
        "01_formats_tour", "02_rounding_error", "03_lorenz", "04_training", "05_block_formats", "06_real_models",
        "07_fp8_training",
    ]


@pytest.mark.parametrize("name", [nb.stem for nb in NOTEBOOKS])
def test_notebook_executes_and_draws(executed, name):
    # no time limit here: the suite runs on shared, noisy machines (two pytest-xdist workers on 2 cores);
    # docs/_build.py prints each notebook's seconds
    seconds, stderr = executed[1][name]
    assert seconds is not None, f"notebook {name} failed:\n{stderr}"
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
    check_rendered_site(site)


def _nav_titles():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    return dict((m[2], m[1].strip('"')) for m in re.finditer(r"^\s*- (.+): notebooks/(\w+)\.ipynb$", nav, re.MULTILINE))


def check_rendered_site(site):
    """What a reader sees: no raw Sphinx roles, headings that nest, whole nav titles, unwrapped output."""
    import numfmt
    import numfmt.testing

    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    roles = re.findall(r":(?:func|class|meth|mod|attr|data|obj|exc):(?:`|<code>)", api)
    assert not roles, f"raw Sphinx roles on the API page: {roles[:5]}"
    assert 'href="#numfmt.chop"' in api  # a role naming a public function became a link
    names = [f"numfmt.{n}" for n in numfmt.__all__ if n not in numfmt.presets()]
    names += [f"numfmt.testing.{n}" for n in numfmt.testing.__all__]
    for name in names:  # every documented name is one level below a section heading
        assert re.search(rf'<h3 id="{re.escape(name)}"', api), name
    sections = [re.sub(r"<[^>]+>|¶", "", t).strip() for t in re.findall(r"<h2 id=[^>]*>(.*?)</h2>", api, re.DOTALL)]
    assert len(sections) == len(set(sections)), sections
    short = {n.rsplit(".", 1)[1] for n in names}
    assert not short & set(sections), f"a section heading repeats a documented name: {short & set(sections)}"
    for stem, title in _nav_titles().items():
        page = (site / "notebooks" / stem / "index.html").read_text(encoding="utf-8")
        assert re.search(rf"<title>{re.escape(title)} - numfmt</title>", page), (stem, title)
    css = (site / "css" / "numfmt.css").read_text(encoding="utf-8")
    assert re.search(r"\.jp-OutputArea-output\.jp-RenderedText pre \{[^}]*white-space: pre;", css)
    notebook = (site / "notebooks" / "04_training" / "index.html").read_text(encoding="utf-8")
    assert 'href="../../css/numfmt.css"' in notebook


def test_home_page_links_every_notebook_and_page():
    home = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    for nb in NOTEBOOKS:
        assert f"](notebooks/{nb.stem}.ipynb)" in home, nb.stem
    for page in sorted((ROOT / "docs").rglob("*.md")):
        rel = page.relative_to(ROOT / "docs").as_posix()
        if rel not in ("index.md", "api.md"):
            assert f"]({rel})" in home, rel
    assert "](api.md)" in home and "](presets.md)" in home


def test_notebook_nav_titles_are_whole():
    titles = _nav_titles()
    assert sorted(titles) == [nb.stem for nb in NOTEBOOKS]
    assert titles["04_training"] == "Training under emulate"
    # mkdocs-jupyter would replace them with each notebook's h1, whose code spans it drops
    assert re.search(r"^\s+ignore_h1_titles: true\b", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.MULTILINE)


def test_sphinx_roles_become_links_or_code():
    spec = importlib.util.spec_from_file_location("numfmt_griffe_roles", ROOT / "docs" / "_griffe_roles.py")
    roles = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(roles)
    public = roles._public()
    text = (
        "See :func:`numfmt.chop`, :class:`Rounding`, :func:`~numfmt.testing.values`, "
        ":mod:`numfmt._kernel`, :class:`fractions.Fraction` and :meth:`Sites.next_seed`."
    )
    assert roles.convert_roles(text, public) == (
        "See [`numfmt.chop`][numfmt.chop], [`Rounding`][numfmt.Rounding], "
        "[`values`][numfmt.testing.values], `numfmt._kernel`, `fractions.Fraction` and `Sites.next_seed`."
    )


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
