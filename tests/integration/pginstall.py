"""PostgreSQL installations for the pg_sphere tests: one without pg_sphere, one
that refuses pg_sphere 1.2.0's script.

A PostgreSQL server finds its share and lib directories relative to the real
path of its own binary (``<root>/usr/lib/postgresql/15/bin`` →
``<root>/usr/share/postgresql/15``), so :func:`without_pg_sphere` builds a root
with the installed server's binaries (hard links: symbolic ones would be
resolved back to the original installation), its lib directory and a share
directory whose ``extension/`` holds everything but pg_sphere's files: a real
server on which ``CREATE EXTENSION pg_sphere`` finds no control file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from aiouws.storage.pgcluster import find_bindir

__all__ = ["REFUSING_BINDIRS", "refusing_bindir", "without_pg_sphere"]

#: Where a PostgreSQL that refuses pg_sphere 1.2.0's script may be (e.g. Debian's
#: 15.20 extracted with ``dpkg -x`` into /opt/pg1520; see the README's Tests).
REFUSING_BINDIRS = (
    os.environ.get("AIOUWS_TEST_PG_BINDIR", ""),
    "/opt/pg1520/usr/lib/postgresql/15/bin",
)


def refusing_bindir() -> Path | None:
    """The first of :data:`REFUSING_BINDIRS` holding a server with pg_sphere."""
    for candidate in filter(None, REFUSING_BINDIRS):
        bindir = Path(candidate)
        if (bindir / "initdb").exists() and (
            bindir.parent / "lib/pg_sphere.so"
        ).exists():
            return bindir
    return None


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def without_pg_sphere(root: Path) -> Path:
    """Build below ``root`` an installation like the newest installed server but
    without pg_sphere; return its bin directory."""
    given = os.environ.get("AIOUWS_TEST_PG_BINDIR")
    bindir = find_bindir(Path(given) if given else None)
    major = bindir.parent.name
    sharedir = subprocess.run(
        [bindir / "pg_config", "--sharedir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    share = Path(sharedir)
    new_bin = root / "usr/lib/postgresql" / major / "bin"
    new_share = root / "usr/share/postgresql" / major
    new_bin.mkdir(parents=True)
    for name in ("postgres", "initdb", "pg_ctl", "psql"):
        _link_or_copy(bindir / name, new_bin / name)
    (new_bin.parent / "lib").symlink_to(bindir.parent / "lib")
    (new_share / "extension").mkdir(parents=True)
    for entry in share.iterdir():
        if entry.name != "extension":
            (new_share / entry.name).symlink_to(entry)
    for entry in (share / "extension").iterdir():
        if not entry.name.startswith("pg_sphere"):
            (new_share / "extension" / entry.name).symlink_to(entry)
    for directory in (root, *root.rglob("*")):
        if directory.is_dir() and not directory.is_symlink():
            directory.chmod(0o755)
    return new_bin
