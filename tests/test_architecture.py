"""The package's import graph: no cycles, and dependencies pointing one way.

The graph is read from the source (``ast``), not by importing: an edge A -> B
for every ``import``/``from ... import`` of a numfmt module anywhere in A, at
module level, inside functions and under ``if TYPE_CHECKING`` alike (a lazy
import is still a dependency). ``from numfmt.x import y`` where ``y`` is a
submodule is an edge to the submodule. The public face ``numfmt/__init__.py``
imports every layer and is not a node; ``numfmt.testing``'s face is.
"""

from __future__ import annotations

import ast
import pathlib

import numfmt

ROOT = pathlib.Path(numfmt.__file__).parent

# Package -> layer. A module may import modules of its own package and of
# packages on a lower layer only: posits, fixed point and block formats are
# siblings that never import each other. Float is the layer under them (every
# family rounds float inputs through the float kernel's bit helpers); scaled
# integers stand on block formats (integer elements, scale bits, the runner).
LAYERS = {
    "core": 0,
    "float": 1,
    "posit": 2,
    "fixed": 2,
    "block": 2,
    "scaled": 3,
    "emulation": 4,
    "testing": 4,
    "cli": 5,
}


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str, path: pathlib.Path, modules) -> set[str]:
    return _imports_of(ast.parse(path.read_text(), str(path)), name, path, modules)


def _imports_of(tree: ast.AST, name: str, path: pathlib.Path, modules) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m in modules and m != name}


def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items() if name != "numfmt"}


def _cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(sorted(scc))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_no_import_cycles():
    g = graph()
    cycles = _cycles(g)
    detail = [
        " <-> ".join(c) + ": " + "; ".join(f"{a} -> {b}" for a in c for b in sorted(g[a] & set(c))) for c in cycles
    ]
    assert not cycles, f"{len(cycles)} import cycle(s):\n" + "\n".join(detail)


def test_import_time_graph_has_no_cycles():
    # module-level imports alone (what runs at import): no cycle at all
    modules = _modules()
    g = {}
    for name, path in modules.items():
        if name == "numfmt":
            continue
        tree = ast.parse(path.read_text())
        top = ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], type_ignores=[])
        g[name] = _imports_of(top, name, path, modules)
    assert _cycles(g) == []


def test_every_module_is_in_a_layer():
    loose = [m for m in graph() if _package(m) is None and m != "numfmt.__main__"]
    assert not loose, f"modules outside the layered packages {sorted(LAYERS)}: {loose}"


def test_dependencies_point_down():
    wrong = []
    for a, targets in graph().items():
        pa = _package(a)
        for b in sorted(targets):
            pb = _package(b)
            if pa is None or pb is None or pa == pb:
                continue
            if LAYERS[pb] >= LAYERS[pa]:
                wrong.append(f"{a} ({pa}, layer {LAYERS[pa]}) imports {b} ({pb}, layer {LAYERS[pb]})")
    assert not wrong, "imports that run up or sideways:\n" + "\n".join(wrong)
