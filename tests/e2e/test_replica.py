"""Catalogue replicas: a real streaming replica (``pg_basebackup -R`` of a
primary made for this module, a second postmaster on another port).

User queries (sync, the fast lane, runners) go to the replica; upload queries,
which create temporary tables, to the primary; the service survives the
replica being stopped (its connections fail over to the primary).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import numpy as np
import pytest
import pyvo
from astropy.table import Table  # type: ignore[import-untyped]
from liveserver import LiveServer, start_server

from aiouws.storage.database import QUERY_ROLE
from aiouws.storage.pgcluster import EmbeddedCluster, find_bindir

DATABASE = "tap"


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[EmbeddedCluster, EmbeddedCluster]]:
    """A primary that admits replication on its socket, and its streaming
    replica, each with a postmaster of its own."""
    root = Path(tempfile.mkdtemp(prefix="aiouws-replica-"))
    root.chmod(0o755)
    port = 20000 + secrets.randbelow(20000)
    primary = EmbeddedCluster(root / "primary", port=port, database=DATABASE)
    replica = EmbeddedCluster(root / "replica", port=port + 1, database=DATABASE)
    try:
        primary.ensure_running()
        hba = primary.data_dir / "pg_hba.conf"
        line = "local replication all peer map=aiouws\n"
        primary._run(["sh", "-c", f'echo "{line.strip()}" >> "{hba}"'])
        asyncio.run(_execute(primary.dsn("postgres"), "SELECT pg_reload_conf()"))
        replica._prepare_dirs()
        primary._run(
            [
                str(find_bindir() / "pg_basebackup"),
                *("-D", str(replica.data_dir), "-R", "-X", "stream", "-c", "fast"),
                *("-h", str(primary.socket_dir), "-p", str(primary.port)),
                *("-U", primary.superuser),
            ]
        )
        replica.ensure_running()  # its own port and socket; standby.signal kept
        yield primary, replica
    finally:
        replica.stop("immediate")
        primary.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _fetch(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(fetch())


def _caught_up(primary: EmbeddedCluster, replica: EmbeddedCluster) -> None:
    """Wait until the replica has replayed all the primary has written."""
    (row,) = _fetch(primary.dsn("postgres"), "SELECT pg_current_wal_lsn()::text AS lsn")
    deadline = time.monotonic() + 30
    while True:
        (done,) = _fetch(
            replica.dsn("postgres"),
            "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn AS ok",
            str(row["lsn"]),
        )
        if done["ok"]:
            return
        assert time.monotonic() < deadline, "the replica does not catch up"
        time.sleep(0.1)


def _ran_on(cluster: EmbeddedCluster, mark: str, name: str = "%") -> int:
    """How many of the query role's sessions (named like ``name``) on
    ``cluster`` ran a query with ``mark`` last (an idle session's last query
    stays in pg_stat_activity)."""
    rows = _fetch(
        cluster.dsn("postgres"),
        "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1"
        " AND query LIKE $2 AND application_name LIKE $3",
        QUERY_ROLE,
        f"%{mark}%",
        name,
    )
    return int(rows[0]["n"])


def _activity(clusters: tuple[EmbeddedCluster, ...]) -> list[list[str]]:
    """Who runs what on each cluster (for failure messages)."""
    sql = (
        "SELECT usename, application_name, left(query, 100) AS q FROM pg_stat_activity"
    )
    return [
        [
            f"{r['usename']} {r['application_name']}: {r['q']}"
            for r in _fetch(c.dsn("postgres"), sql)
        ]
        for c in clusters
    ]


@pytest.fixture(scope="module")
def server(
    clusters: tuple[EmbeddedCluster, EmbeddedCluster],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    primary, replica = clusters
    data = tmp_path_factory.mktemp("replicated")
    # A first start on the primary alone installs the schema, the query role
    # and the demo table, which then reach the replica.
    setup = start_server(primary.dsn(), data / "setup", demo_rows=2000)
    setup.stop()
    _caught_up(primary, replica)
    env = {"AIOUWS_CATALOG_DSNS": replica.dsn()}
    live = start_server(primary.dsn(), data / "serve", demo_rows=0, env=env)
    yield live
    live.stop()


def test_queries_go_to_the_replica(
    server: LiveServer, clusters: tuple[EmbeddedCluster, EmbeddedCluster]
) -> None:
    primary, replica = clusters
    service = pyvo.dal.TAPService(server.tap_url)
    sync = "SELECT TOP 3 id FROM demo.stars WHERE ra > -1.23451"
    assert len(service.run_sync(sync)) == 3
    lane = "SELECT TOP 3 id FROM demo.stars WHERE ra > -1.23452"
    assert len(service.run_async(lane)) == 3  # the fast lane, in the server
    runner = "SELECT id, ra FROM demo.stars WHERE ra > -1.23453"
    assert len(service.run_async(runner, maxrec=100000)) == 2000
    # A runner's session (its query ends with COMMIT: binary COPY in the
    # query's transaction) is on the replica...
    runners = "aiouws runner %"
    assert _ran_on(replica, "", runners) >= 1, _activity(clusters)
    assert _ran_on(primary, "", runners) == 0, _activity(clusters)
    # ... the sync pool's and the lane's end theirs (a reset, COMMIT), but
    # the query role has sessions on the replica only, the lane's among them.
    assert _ran_on(replica, "") >= 3, _activity(clusters)
    assert _ran_on(primary, "") == 0, _activity(clusters)
    lane_sessions = "aiouws fast lane %"
    assert _ran_on(replica, "", lane_sessions) >= 1, _activity(clusters)


def test_upload_queries_go_to_the_primary(
    server: LiveServer, clusters: tuple[EmbeddedCluster, EmbeddedCluster]
) -> None:
    primary, replica = clusters
    service = pyvo.dal.TAPService(server.tap_url)
    table = Table({"a": np.array([1.5, 2.5, 3.5])})
    query = "SELECT t.a FROM TAP_UPLOAD.t1 AS t WHERE t.a > -7.77771"
    # A standby refuses the temporary table: a result means the primary.
    assert len(service.run_sync(query, uploads={"t1": table})) == 3
    query = query.replace("-7.77771", "-7.77772")
    assert len(service.run_async(query, uploads={"t1": table})) == 3
    # The runner that ran it moved to the primary (its last statement drops
    # the uploaded tables); the sync query's own connection is closed.
    assert _ran_on(primary, "DROP TABLE") == 1, _activity(clusters)
    assert _ran_on(replica, "-7.7777") == 0


def test_the_service_survives_the_replica_stopping(
    server: LiveServer, clusters: tuple[EmbeddedCluster, EmbeddedCluster]
) -> None:
    primary, replica = clusters
    service = pyvo.dal.TAPService(server.tap_url)
    replica.stop("fast")
    try:
        started = time.monotonic()
        for i in range(3):
            mark = f"-2.3456{i}"
            sync = f"SELECT TOP 2 id FROM demo.stars WHERE ra > {mark}"
            assert len(service.run_sync(sync)) == 2
        runner = "SELECT id FROM demo.stars WHERE ra > -2.34569"
        assert len(service.run_async(runner, maxrec=100000)) == 2000
        lane = "SELECT TOP 1 id FROM demo.stars WHERE ra > -2.34568"
        assert len(service.run_async(lane)) == 1
        print(f"failed over to the primary: {time.monotonic() - started:.2f} s")
        # The query role's sessions are on the primary now: a runner's (it
        # ends its query with COMMIT) and the lane's among them.
        assert _ran_on(primary, "") >= 2, _activity((primary,))
        lane_sessions = "aiouws fast lane %"
        assert _ran_on(primary, "", lane_sessions) >= 1, _activity((primary,))
    finally:
        replica.ensure_running()
