"""End-to-end fixtures: real ``aiouws serve`` subprocesses.

``live_server`` starts a server per test module on a fresh database (``e2e_dsn``,
which a test module may override to prepare tables first) with a 5,000-star demo
catalogue and stops it after the module; ``fresh_dsn`` is a database for one test
that starts its own servers. ``pyvo_server`` is one server for the
whole session, shared by the pyvo test modules (its database holds
``e2e.oddities``, see ``pyvokit.py``). See ``liveserver.py`` for more servers.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import asyncpg
import pytest
import pyvo
from liveserver import (
    REPO_ROOT,
    LiveServer,
    create_database,
    drop_database,
    start_server,
)
from pyvokit import MAXREC_DEFAULT, ODDITIES_SQL, ODDITY_QUERY, fetch, run


@pytest.fixture(scope="module")
def e2e_dsn(pg_admin_dsn: str, template_dsn: str) -> Iterator[str]:
    """A fresh database for one test module, dropped afterwards."""
    dsn = create_database(pg_admin_dsn)
    yield dsn
    drop_database(pg_admin_dsn, dsn)


@pytest.fixture
def fresh_dsn(pg_admin_dsn: str, template_dsn: str) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards."""
    dsn = create_database(pg_admin_dsn)
    yield dsn
    drop_database(pg_admin_dsn, dsn)


@pytest.fixture(scope="module")
def live_server_env() -> dict[str, str]:
    """Extra ``AIOUWS_*`` variables for the module's server (override per module)."""
    return {}


@pytest.fixture(scope="module")
def live_server(
    e2e_dsn: str,
    live_server_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    """One real server for the whole test module, with a 5,000-star demo table."""
    server = start_server(
        e2e_dsn, tmp_path_factory.mktemp("live-server"), env=live_server_env
    )
    yield server
    server.stop()
    if server.process.returncode not in (0, -signal.SIGTERM):
        print(f"server exited with {server.process.returncode}:\n{server.log()}")


@pytest.fixture(scope="session")
def pyvo_dsn(pg_admin_dsn: str, template_dsn: str) -> Iterator[str]:
    """The pyvo tests' database, with ``e2e.oddities`` created and published."""
    dsn = create_database(pg_admin_dsn)

    async def create() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(ODDITIES_SQL)
        finally:
            await conn.close()

    run(create())
    published = subprocess.run(
        [
            sys.executable,
            "-m",
            "taprunner",
            "--dsn",
            dsn,
            "tap",
            "publish",
            "e2e.oddities",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert published.returncode == 0, published.stdout + published.stderr
    yield dsn
    drop_database(pg_admin_dsn, dsn)


@pytest.fixture(scope="session")
def pyvo_server(
    pyvo_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One real server shared by the pyvo test modules (test_pyvo_*.py)."""
    server = start_server(
        pyvo_dsn,
        tmp_path_factory.mktemp("pyvo-server"),
        # Header auth: pyvo's default sessions stay anonymous; a session that
        # names a user (X-Remote-User) lists that user's jobs.
        env={"AIOUWS_TAP_MAXREC_DEFAULT": str(MAXREC_DEFAULT), "AIOUWS_AUTH": "header"},
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tap(pyvo_server: LiveServer) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(pyvo_server.tap_url)


@pytest.fixture(scope="session")
def pg_oddities(pyvo_server: LiveServer) -> list[asyncpg.Record]:
    return run(fetch(pyvo_server.dsn, ODDITY_QUERY))
