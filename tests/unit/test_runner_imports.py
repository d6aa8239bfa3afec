"""Runner processes stay small: they never import the web stack."""

from __future__ import annotations

import subprocess
import sys


def imported_after(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_generic_runner_imports_neither_aiohttp_nor_asyncpg() -> None:
    modules = imported_after("aiouws.runner")
    assert "aiohttp" not in modules
    assert "asyncpg" not in modules


def test_tap_job_code_does_not_import_aiohttp_or_astropy_up_front() -> None:
    modules = imported_after("taprunner.query.job")
    assert "aiohttp" not in modules
    assert "astropy" not in modules
