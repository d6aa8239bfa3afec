"""A grant made a moment ago, read on a catalogue replica that has not replayed
it yet (its replay paused here): the owner's session role is recorded on the
primary and missing on the replica. The answer is a clear, retryable 503
(Retry-After), never a 500 nor a confusing 403; once the replica catches up,
the same request reads the table."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests
from liveserver import REPO_ROOT, LiveServer, start_server
from test_replica import _caught_up, _execute, _fetch, clusters  # noqa: F401

from aiouws.http.auth import hash_password
from aiouws.storage.pgcluster import EmbeddedCluster

SECRET = "GRANTED-JUST-NOW"
SQL = f"""
CREATE SCHEMA secret;
CREATE TABLE secret.t (id int PRIMARY KEY, hush text);
INSERT INTO secret.t VALUES (1, '{SECRET}');
"""


def _tap(dsn: str, *argv: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "taprunner", "--dsn", dsn, "tap", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def server(
    clusters: tuple[EmbeddedCluster, EmbeddedCluster],  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    import asyncio

    primary, replica = clusters
    data = tmp_path_factory.mktemp("grants")
    setup = start_server(primary.dsn(), data / "setup", demo_rows=0)
    setup.stop()
    asyncio.run(_execute(primary.dsn(), SQL))
    _tap(primary.dsn(), "publish", "secret.t")
    _tap(primary.dsn(), "grant", "secret.t", "--group", "others")  # restricted
    _caught_up(primary, replica)
    passwd = data / "passwd"
    passwd.write_text(f"alice:{hash_password('a-pass', iterations=1000)}:team\n")
    env = {
        "AIOUWS_CATALOG_DSNS": replica.dsn(),
        "AIOUWS_AUTH": "basic",
        "AIOUWS_PASSWD_FILE": str(passwd),
    }
    live = start_server(primary.dsn(), data / "serve", demo_rows=0, env=env)
    yield live
    live.stop()


def test_a_grant_the_replica_has_not_replayed_is_a_retryable_503(
    server: LiveServer,
    clusters: tuple[EmbeddedCluster, EmbeddedCluster],  # noqa: F811
) -> None:
    import asyncio

    primary, replica = clusters
    query = {"LANG": "ADQL", "QUERY": "SELECT hush FROM secret.t"}
    auth = ("alice", "a-pass")
    asyncio.run(_execute(replica.dsn(), "SELECT pg_wal_replay_pause()"))
    try:
        _tap(primary.dsn(), "grant", "secret.t", "--group", "team")
        resp = requests.post(
            f"{server.tap_url}/sync", data=query, auth=auth, timeout=60
        )
        assert resp.status_code == 503, (resp.status_code, resp.text)
        assert resp.headers.get("Retry-After"), resp.headers
        assert "replica" in resp.text and "retry" in resp.text.lower(), resp.text
        assert "does not exist" not in resp.text, resp.text
    finally:
        asyncio.run(_execute(replica.dsn(), "SELECT pg_wal_replay_resume()"))
    _caught_up(primary, replica)
    query["RESPONSEFORMAT"] = "csv"
    resp = requests.post(f"{server.tap_url}/sync", data=query, auth=auth, timeout=60)
    assert resp.status_code == 200, resp.text
    assert SECRET in resp.text
    (row,) = _fetch(primary.dsn(), "SELECT count(*) AS n FROM tap_acl.identities")
    assert row["n"] == 1


@pytest.fixture(scope="module")
def mixed(
    clusters: tuple[EmbeddedCluster, EmbeddedCluster],  # noqa: F811
    server: LiveServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    """A server whose catalogue servers are a replica and one that has replayed
    everything (the primary stands for a second replica, caught up): the
    catalogue a request reads and the connection its query runs on may be on
    different servers."""
    primary, replica = clusters
    data = tmp_path_factory.mktemp("mixed")
    passwd = data / "passwd"
    passwd.write_text(f"bob:{hash_password('b-pass', iterations=1000)}:crew\n")
    env = {
        "AIOUWS_CATALOG_DSNS": f"{primary.dsn()} {replica.dsn()}",
        "AIOUWS_AUTH": "basic",
        "AIOUWS_PASSWD_FILE": str(passwd),
    }
    live = start_server(primary.dsn(), data / "serve", demo_rows=0, env=env)
    yield live
    live.stop()


def test_a_query_on_a_replica_behind_its_catalogue_is_a_retryable_503(
    mixed: LiveServer,
    clusters: tuple[EmbeddedCluster, EmbeddedCluster],  # noqa: F811
) -> None:
    """The catalogue came from a server that has the session role, the query's
    connection went to one that has not replayed it yet: 503 with Retry-After
    (not a 400 "role does not exist"), and the connection serves on."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    primary, replica = clusters
    query = {"LANG": "ADQL", "QUERY": "SELECT hush FROM secret.t"}
    query["RESPONSEFORMAT"] = "csv"
    auth = ("bob", "b-pass")

    def post(_: int) -> requests.Response:
        return requests.post(f"{mixed.tap_url}/sync", data=query, auth=auth, timeout=60)

    asyncio.run(_execute(replica.dsn(), "SELECT pg_wal_replay_pause()"))
    statuses: list[int] = []
    try:
        _tap(primary.dsn(), "grant", "secret.t", "--group", "crew")
        with ThreadPoolExecutor(8) as pool:
            for _round in range(10):
                for resp in pool.map(post, range(8)):
                    statuses.append(resp.status_code)
                    if resp.status_code == 503:
                        assert resp.headers.get("Retry-After"), resp.headers
                        assert "replica" in resp.text, resp.text
                    else:
                        assert resp.status_code == 200, (resp.status_code, resp.text)
                        assert SECRET in resp.text
                if 200 in statuses and statuses.count(503) > 1:
                    break
    finally:
        asyncio.run(_execute(replica.dsn(), "SELECT pg_wal_replay_resume()"))
    assert 200 in statuses and 503 in statuses, statuses
    _caught_up(primary, replica)
    with ThreadPoolExecutor(8) as pool:
        for resp in pool.map(post, range(16)):
            assert resp.status_code == 200, (resp.status_code, resp.text)
