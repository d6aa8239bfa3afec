"""aiouws knows nothing of TAP: no aiouws module imports taprunner."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

AIOUWS = Path(__file__).resolve().parents[2] / "aiouws"


def test_no_aiouws_source_names_taprunner_in_an_import() -> None:
    offenders = []
    for path in sorted(AIOUWS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            if any(n == "taprunner" or n.startswith("taprunner.") for n in names):
                offenders.append(f"{path.relative_to(AIOUWS.parent)}:{node.lineno}")
    assert offenders == []


def test_importing_every_aiouws_module_loads_no_taprunner() -> None:
    code = (
        "import importlib, pkgutil, sys, aiouws\n"
        "for m in pkgutil.walk_packages(aiouws.__path__, 'aiouws.'):\n"
        "    if m.name not in ('aiouws.__main__',):\n"
        "        importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] == 'taprunner'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
