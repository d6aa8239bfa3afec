"""The house's layout, checked from the source: the tree shows the architecture.

aiouws (the generic UWS library) never imports taprunner (TAP, its plug-in); no
two modules import each other, directly or around a circle; TAP's runner side
never imports its web side; no module grows past 450 lines; the queue supervisor
stays small. Imports are read with ``ast``, function-level ones included, those
only for type checkers (``if TYPE_CHECKING:``) left out.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("aiouws", "taprunner")
#: TAP's runner side: what a runner process imports (see taprunner/__init__.py).
RUNNER_SIDE = (
    "taprunner.adql",
    "taprunner.formats",
    "taprunner.schema",
    "taprunner.query",
    "taprunner.request",
    "taprunner.errors",
    "taprunner.settings",
)
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        else:
            yield from _import_nodes(node)


def imports_of(module: str) -> set[str]:
    """The modules of this repository that ``module`` imports at run time."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from package import module`` imports the module; ``from module
            # import name`` the module itself.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        for name in names:
            if name in MODULES:
                targets.add(name)
    return targets - {module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_aiouws_never_imports_taprunner() -> None:
    leaks = {
        module: sorted(t for t in targets if t.startswith("taprunner"))
        for module, targets in GRAPH.items()
        if module.startswith("aiouws")
    }
    assert {m: t for m, t in leaks.items() if t} == {}


def test_importing_every_aiouws_module_loads_no_taprunner() -> None:
    code = (
        "import importlib, pkgutil, sys, aiouws\n"
        "for m in pkgutil.walk_packages(aiouws.__path__, 'aiouws.'):\n"
        "    if m.name != 'aiouws.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] == 'taprunner'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_runner_side_never_imports_web_side() -> None:
    runner_side = [
        m for m in GRAPH if any(m == r or m.startswith(r + ".") for r in RUNNER_SIDE)
    ]
    assert runner_side
    leaks = {
        module: sorted(t for t in GRAPH[module] if t.startswith("taprunner.web"))
        for module in runner_side
    }
    assert {m: t for m, t in leaks.items() if t} == {}


def _cycle_from(start: str) -> list[str] | None:
    """A shortest import circle through ``start``, if there is one."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for module in frontier:
            for target in sorted(GRAPH[module]):
                if target == start:
                    return [*paths[module], start]
                if target not in paths:
                    paths[target] = [*paths[module], target]
                    following.append(target)
        frontier = following
    return None


def test_no_import_circle() -> None:
    circles = [c for c in map(_cycle_from, sorted(GRAPH)) if c is not None]
    assert circles == []


def test_the_checker_sees_circles_and_leaks() -> None:
    """The graph is real: known edges are found (else the tests above prove nothing)."""
    assert "aiouws.phases" in GRAPH["aiouws.models"]
    assert "taprunner.adql.parse" in GRAPH["taprunner.adql.limits"]
    assert any(t.startswith("aiouws") for t in GRAPH["taprunner.query.job"])


@pytest.mark.parametrize(
    "path",
    sorted(
        p
        for top in ("aiouws", "taprunner", "tests", "benchmarks")
        for p in (REPO / top).rglob("*.py")
    ),
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_no_module_over_450_lines(path: Path) -> None:
    lines = path.read_text().count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(REPO)} has {lines} lines"


def test_the_supervisor_only_supervises() -> None:
    tree = ast.parse(MODULES["aiouws.execution.supervisor"].read_text())
    (supervisor,) = (
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == "QueueSupervisor"
    )
    methods = [
        n.name
        for n in supervisor.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    assert len(methods) < 15, methods
