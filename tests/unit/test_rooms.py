"""The runner side of taprunner never imports its web side."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "taprunner"
RUNNER_SIDE = ["adql", "formats", "schema", "query", "request.py", "errors.py"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_runner_side_does_not_import_the_web_side() -> None:
    files = [
        path
        for part in RUNNER_SIDE
        for path in (
            (ROOT / part).rglob("*.py") if (ROOT / part).is_dir() else [ROOT / part]
        )
    ]
    assert len(files) > 20
    for path in files:
        web = {n for n in _imports(path) if n.startswith("taprunner.web")}
        assert not web, f"{path.relative_to(ROOT)} imports {sorted(web)}"
