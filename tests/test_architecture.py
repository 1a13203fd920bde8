"""The package's floors: every import points down, no cycles, nothing hidden in functions.

Read from the source with :mod:`ast` (no import runs): each module's imports of ``iel``
modules, at the top of the file or inside functions, give the import graph.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "iel"

# The floors from the bottom up (docs/architecture.md): a module may import its own floor's
# modules (without a cycle) and any floor below, never one above.
FLOORS = [
    ("_config", "_types", "diagnostics", "parallel"),
    ("data",),
    ("energies",),
    ("dynamics",),
    (
        "linear",
        "transport",
        "mdl",
        "training",
        "model",
        "systems",
        "basins",
        "compilation_cache",
        "datasets",
    ),
    ("estimators",),
    ("selection",),
    ("auto", "distributed"),
    ("plotting", "demo", "single_cell"),
    ("cli", "__main__", "__init__"),
]
# only the command line imports inside functions: `iel --help` should not wait for JAX
LAZY_IMPORTS_ALLOWED = {"iel.cli"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> list[tuple[str, bool]]:
    """``(imported iel module, at top level?)`` for every import in the file."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                module = sub if sub in known else target
                if module in known and module != name:
                    out.append((module, id(node) in top))
        elif isinstance(node, ast.Import):
            out.extend((a.name, id(node) in top) for a in node.names if a.name in known)
    return out


def _graph() -> dict[str, list[tuple[str, bool]]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _floor(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for level, names in enumerate(FLOORS):
        if top in names:
            return level
    raise AssertionError(f"{module}: its top-level name {top!r} is on no floor of FLOORS")


def test_every_module_is_on_a_floor():
    for module in _modules():
        _floor(module)


def _edges():
    """``(importer, imported, at top level?)`` for every import of an iel module."""
    return [(a, b, top) for a, targets in _graph().items() for b, top in targets]


def test_imports_point_down_or_sideways():
    upward = [
        f"{a} (floor {_floor(a)}) imports {b} (floor {_floor(b)})"
        for a, b, _ in _edges()
        if _floor(b) > _floor(a) and a != "iel"
    ]
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_cycle():
    graph: dict[str, set[str]] = {a: set() for a in _modules()}
    for a, b, _ in _edges():
        graph[a].add(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " → ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_no_imports_inside_functions_outside_the_command_line():
    hidden = [
        f"{a} imports {b} inside a function"
        for a, b, top in _edges()
        if not top and a not in LAZY_IMPORTS_ALLOWED
    ]
    assert not hidden, "\n".join(hidden)


def test_the_checks_see_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    """The walk itself: a planted upward import and cycle are found."""
    fake = tmp_path / "iel"
    (fake / "data").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "data" / "__init__.py").write_text("from ..selection import x\n")
    (fake / "selection.py").write_text("from .data import y\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    with pytest.raises(AssertionError, match="iel.data .floor 1. imports iel.selection"):
        test_imports_point_down_or_sideways()
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_the_import_graph_has_no_cycle()
