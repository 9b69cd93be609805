"""MkDocs hooks of the numfmt documentation, and the notebook runner.

As hooks (``hooks:`` in ``mkdocs.yml``), they

* generate ``presets.md``: one spec block per preset of every family, from
  ``numfmt.cli.main.info_text`` (the text of ``python -m numfmt info NAME``);
* add the notebooks of ``notebooks/`` as executed ``.ipynb`` pages, which
  mkdocs-jupyter renders: ``$NUMFMT_EXECUTED_NOTEBOOKS/notebooks/NAME.ipynb``
  where that file exists (the tests execute the notebooks first), else
  executed here;
* fail the build when a public name (``numfmt.__all__`` and
  ``numfmt.testing.__all__``) is neither documented in ``api.md`` by a
  ``::: numfmt.NAME`` block nor a preset of ``presets.md``, or when ``api.md``
  documents a name that is not public.

As a script, ``python docs/_build.py NOTEBOOK.py OUT.ipynb`` executes one
jupytext notebook and writes it with its outputs.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
_TEMP = None  # the directory of notebooks executed by this build, if any
_API_RE = re.compile(r"^:::\s+(numfmt(?:\.testing)?)\.(\w+)\s*$", re.MULTILINE)


def execute_notebook(source: Path, target: Path, timeout: int = 600) -> float:
    """Execute the jupytext notebook ``source`` with the repository's numfmt; write ``target``.

    Returns the seconds the execution took. Raises nbclient's
    ``CellExecutionError`` when a cell raises.
    """
    import jupytext
    import nbclient
    import nbformat

    nb = jupytext.read(source)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures as PNG outputs
    os.environ.update(env)  # the kernel inherits this process's environment
    start = time.perf_counter()
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    seconds = time.perf_counter() - start
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return seconds


_FAMILY_TITLES = {
    "float": "Float formats",
    "posit": "Posits",
    "fixed": "Fixed point and integers",
    "block": "Block formats",
    "scaled": "Scaled integers",
}


def _presets_page() -> str:
    import numfmt
    from numfmt.cli.main import info_text

    parts = [
        "# Presets\n",
        "One spec block per named preset of every family, generated from the",
        "format facts when the documentation is built: the same text as",
        "`python -m numfmt info NAME`. `numfmt.presets(family)` lists them by",
        "family. Presets other than the P3109 family are also module attributes",
        "(`numfmt.float8_e4m3fn`, `numfmt.posit16_1`, `numfmt.int8`, `numfmt.nvfp4`).\n",
    ]
    for family, title in _FAMILY_TITLES.items():
        parts.append(f"## {title}\n")
        for name in numfmt.presets(family):
            parts.append(f"### `{name}`\n\n```text\n{info_text(name)}\n```\n")
    return "\n".join(parts)


def _check_api(api_md: str) -> None:
    import numfmt
    import numfmt.testing

    documented = {f"{mod}.{name}" for mod, name in _API_RE.findall(api_md)}
    presets = set(numfmt.presets())
    public = {f"numfmt.{n}" for n in numfmt.__all__ if n not in presets}
    public |= {f"numfmt.testing.{n}" for n in numfmt.testing.__all__}
    missing, stale = sorted(public - documented), sorted(documented - public)
    not_presets = sorted(n for n in numfmt.__all__ if n not in presets and not hasattr(numfmt, n))
    if missing or stale or not_presets:
        from mkdocs.exceptions import PluginError

        raise PluginError(
            "docs/api.md does not match the public names: "
            + (f"undocumented {missing} (add a '::: NAME' block for each); " if missing else "")
            + (f"documented but not public {stale} (remove them or add them to __all__); " if stale else "")
            + (f"in numfmt.__all__ but missing from the module {not_presets}" if not_presets else "")
        )


def on_startup(command, dirty):
    """Document this checkout's numfmt, installed or not (mkdocs restores sys.path after loading hooks)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def _first(event):
    """Run ``event`` before the plugins' handlers (mkdocs-jupyter must see the notebooks)."""
    from mkdocs.plugins import event_priority

    return event_priority(100)(event)


@_first
def on_files(files, config):
    """Add the generated presets page and the executed notebooks; check the API page."""
    from mkdocs.structure.files import File

    api = Path(config["docs_dir"]) / "api.md"
    _check_api(api.read_text(encoding="utf-8"))
    files.append(File.generated(config, "presets.md", content=_presets_page()))
    global _TEMP
    executed = os.environ.get("NUMFMT_EXECUTED_NOTEBOOKS")
    if executed:
        out = Path(executed)
    else:
        _TEMP = tempfile.TemporaryDirectory(prefix="numfmt-notebooks-")
        out = Path(_TEMP.name)
    for source in sorted(NOTEBOOKS.glob("[0-9]*.py")):
        uri = f"notebooks/{source.stem}.ipynb"
        if not (out / uri).exists():
            execute_notebook(source, out / uri)
        # a File with a real src_dir: mkdocs-jupyter reads notebooks from abs_src_path
        files.append(File(uri, str(out), config["site_dir"], config["use_directory_urls"]))
    return files


def on_post_build(config):
    """Remove the notebooks executed for this build (none when they were given)."""
    global _TEMP
    if _TEMP is not None:
        _TEMP.cleanup()
        _TEMP = None


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python docs/_build.py NOTEBOOK.py OUT.ipynb")
    print(f"{execute_notebook(Path(sys.argv[1]), Path(sys.argv[2])):.1f}")
