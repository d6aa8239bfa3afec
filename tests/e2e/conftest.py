"""End-to-end fixtures: one real ``aiouws serve`` subprocess per test module.

``live_server`` starts the server on a fresh database (``e2e_dsn``, which a test
module may override to prepare tables first) with a 5,000-star demo catalogue
and stops it after the module. See ``liveserver.py`` for starting more servers.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from liveserver import LiveServer, create_database, drop_database, start_server


@pytest.fixture(scope="module")
def e2e_dsn(pg_admin_dsn: str, template_dsn: str) -> Iterator[str]:
    """A fresh database for one test module, dropped afterwards."""
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
