"""What pyproject.toml promises, checked against the tree.

Every third-party module aiouws and taprunner import is declared, and every
declared dependency is imported (import names are mapped to distributions with
``importlib.metadata.packages_distributions``); ranges, never exact pins, for the
runtime; the linters pinned; package data that exists; LICENSE and ``py.typed``.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("aiouws", "taprunner")
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
RUNTIME = [Requirement(text) for text in PROJECT["project"]["dependencies"]]
TEST = [
    Requirement(text) for text in PROJECT["project"]["optional-dependencies"]["test"]
]
#: The benchmark suite's own tools (benchmarks/, installed by scripts/bench).
BENCH = [
    Requirement(text)
    for text in PROJECT["project"]["optional-dependencies"].get("bench", [])
]
#: The optional features' extras (all but ``test`` and ``bench``): imported only
#: by the module of their feature, which the service leaves out when they are not
#: installed.
FEATURES = [
    Requirement(text)
    for extra, texts in PROJECT["project"]["optional-dependencies"].items()
    if extra not in ("test", "bench")
    for text in texts
]


def _runtime_imports(node: ast.AST) -> Iterator[str]:
    """Top-level names of the modules imported, leaving out ``if TYPE_CHECKING:``
    blocks (``_typeshed`` exists only for type checkers) and relative imports."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            continue
        if isinstance(child, ast.Import):
            yield from (alias.name.split(".")[0] for alias in child.names)
        elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
            yield child.module.split(".")[0]
        else:
            yield from _runtime_imports(child)


def third_party_imports(
    folders: tuple[str, ...] = PACKAGES, local: frozenset[str] = frozenset()
) -> dict[str, set[str]]:
    """Import name -> the files importing it, for modules outside the stdlib
    (and outside our packages and ``local``)."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            for name in _runtime_imports(ast.parse(path.read_text(), str(path))):
                if name in sys.stdlib_module_names or name in PACKAGES or name in local:
                    continue
                found.setdefault(name, set()).add(str(path.relative_to(REPO)))
    return found


def test_every_import_is_declared_and_every_dependency_imported() -> None:
    distributions = packages_distributions()
    imports = third_party_imports()
    missing = sorted(name for name in imports if name not in distributions)
    assert missing == [], f"imported but not installed: {missing}"
    imported = {
        canonicalize_name(dist): name
        for name in imports
        for dist in distributions[name]
    }
    declared = {canonicalize_name(req.name) for req in [*RUNTIME, *FEATURES]}
    undeclared = {
        dist: sorted(imports[name])
        for dist, name in imported.items()
        if dist not in declared
    }
    assert undeclared == {}, "imported, not in [project] dependencies or an extra"
    assert sorted(declared - set(imported)) == [], "declared, never imported"


def test_benchmark_imports_are_declared_and_the_bench_extra_used() -> None:
    """benchmarks/ may use the runtime, the extras, the test extra and its own
    ``bench`` extra (matplotlib for the charts), which only it imports."""
    local = frozenset(
        {"benchmarks", *(p.stem for p in (REPO / "benchmarks").glob("*.py"))}
    )
    imports = third_party_imports(("benchmarks",), local)
    distributions = packages_distributions()
    missing = sorted(name for name in imports if name not in distributions)
    assert missing == [], f"imported but not installed: {missing}"
    imported = {
        canonicalize_name(dist) for name in imports for dist in distributions[name]
    }
    allowed = {
        canonicalize_name(req.name) for req in [*RUNTIME, *FEATURES, *TEST, *BENCH]
    }
    assert sorted(imported - allowed) == [], "benchmarks/ imports undeclared"
    bench = {canonicalize_name(req.name) for req in BENCH}
    assert "matplotlib" in bench
    assert sorted(bench - imported) == [], "bench extra declared, never imported"
    service = {
        canonicalize_name(d)
        for n in third_party_imports()
        for d in distributions.get(n, [])
    }
    assert sorted(bench & service) == [], "the service imports a benchmark tool"


def test_runtime_dependencies_are_ranges_the_installed_versions_meet() -> None:
    for req in RUNTIME:
        assert not any(spec.operator in ("==", "===") for spec in req.specifier), (
            f"{req}: an exact pin cannot be resolved beside other packages"
        )
        if req.marker is not None and not req.marker.evaluate():
            continue
        installed = version(req.name)
        assert req.specifier.contains(installed, prereleases=True), (
            f"{req.name} {installed} installed, pyproject asks {req.specifier}"
        )


def test_optional_features_are_tested() -> None:
    """CI installs the test extra: it must bring every optional feature's
    dependencies, or their tests would be skipped unseen."""
    tested = {canonicalize_name(req.name) for req in TEST}
    assert {canonicalize_name(req.name) for req in FEATURES} <= tested
    assert "pyarrow" in {canonicalize_name(req.name) for req in FEATURES}


def test_linters_are_pinned() -> None:
    """A new mypy or ruff release with a new check must not fail a clean clone."""
    by_name = {canonicalize_name(req.name): req for req in TEST}
    for name in ("mypy", "ruff"):
        operators = {spec.operator for spec in by_name[name].specifier}
        assert operators & {"==", "~="}, f"{name} is not pinned: {by_name[name]}"
    assert "lxml-stubs" not in by_name  # stale; types-lxml replaces it
    # asyncio_default_fixture_loop_scope (tool.pytest.ini_options) needs 0.24.
    assert by_name["pytest-asyncio"].specifier.contains("0.24.0")
    assert not by_name["pytest-asyncio"].specifier.contains("0.23.8")


@pytest.mark.parametrize("name", ["mypy", "ruff"])
def test_installed_linters_are_the_pinned_ones(name: str) -> None:
    req = next(r for r in TEST if canonicalize_name(r.name) == name)
    try:
        installed = version(name)
    except PackageNotFoundError:
        pytest.skip(f"{name} is not installed")
    assert req.specifier.contains(installed), f"{name} {installed}, pinned {req}"


def test_package_data_exists_and_covers_every_data_file() -> None:
    patterns: dict[str, list[str]] = PROJECT["tool"]["setuptools"]["package-data"]
    assert sorted(patterns) == sorted(PACKAGES)
    for package, globs in patterns.items():
        root = REPO / package
        for glob in globs:
            assert list(root.glob(glob)), f"{package}/{glob} matches no file"
        data = [
            path.relative_to(root).as_posix()
            for path in root.rglob("*")
            if path.is_file()
            and path.suffix not in (".py", ".pyc")
            and "__pycache__" not in path.parts
        ]
        unshipped = [f for f in data if not any(fnmatch(f, g) for g in globs)]
        assert unshipped == [], f"{package}: data files missing from package-data"


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_are_typed(package: str) -> None:
    assert (REPO / package / "py.typed").is_file()
    assert "py.typed" in PROJECT["tool"]["setuptools"]["package-data"][package]


def test_license_file_matches_the_declared_license() -> None:
    assert PROJECT["project"]["license"] == "MIT"
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Copyright (c)" in text and "the aiouws authors" in text


def test_tests_read_their_schemas_from_the_repository() -> None:
    """A fork or an sdist runs the tests: no schema from outside the tree."""
    readers = [
        path.relative_to(REPO).as_posix()
        for folder in ("tests", "benchmarks")
        for path in (REPO / folder).rglob("*.py")
        if re.search(r"shared[\"'/ ]+xsd|\.\.[\"'/ ]+xsd", path.read_text())
    ]
    assert readers == []
    imported = re.findall(
        r'schemaLocation="([^"]+)"', (REPO / "tests/xsd/all-ivoa.xsd").read_text()
    )
    assert imported and all((REPO / "tests/xsd" / name).is_file() for name in imported)
