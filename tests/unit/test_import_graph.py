"""The import graph of aiouws and taprunner, read from the source with ``ast``:
no circles (function-level and TYPE_CHECKING imports count), and the runner side
of taprunner never reaches its web side."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("aiouws", "taprunner")
RUNNER_SIDE = (
    "taprunner.adql",
    "taprunner.formats",
    "taprunner.schema",
    "taprunner.query",
    "taprunner.request",
    "taprunner.errors",
)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The project modules that ``name`` imports anywhere in its source
    (``from package import name`` counts as the submodule when there is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            # A module's own packages are initialised before it runs anyway.
            if target and not (name + ".").startswith(target + "."):
                yield target


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imported(name, path, known)) for name, path in known.items()}


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in edges[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_graph_is_read() -> None:
    edges = graph()
    assert "taprunner.web.state" in edges["taprunner.web.endpoints"]
    assert "aiouws.errors" in edges["aiouws.http.middleware"]


def test_no_import_circle() -> None:
    edges = graph()
    circles = sorted(name for name in edges if name in reachable(edges, name))
    assert circles == []


def test_runner_side_never_imports_the_web_side() -> None:
    edges = graph()
    for name in edges:
        if name.startswith(RUNNER_SIDE):
            web = {m for m in reachable(edges, name) if m.startswith("taprunner.web")}
            assert not web, (name, web)
