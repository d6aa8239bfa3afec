"""Proprietary tables through pyvo against a real server: granted on the command
line, read with HTTP basic authentication and password-file groups.

alice (group team) reads ``secret.t`` through sync and async queries (a runner)
and finds it in the tableset; bob and anonymous clients get "unknown table"
and never see it listed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvo
import requests
from liveserver import REPO_ROOT, LiveServer, start_server
from pyvokit import run

from aiouws.http.auth import hash_password

SECRET = "CLASSIFIED-ROW"
SQL = f"""
CREATE SCHEMA pub;
CREATE TABLE pub.open (id int PRIMARY KEY, name text);
INSERT INTO pub.open VALUES (1, 'public-one');
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


@pytest.fixture
def server(fresh_dsn: str, tmp_path: Path) -> Iterator[LiveServer]:
    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(fresh_dsn)
        try:
            await conn.execute(SQL)
        finally:
            await conn.close()

    run(create())
    _tap(fresh_dsn, "publish", "pub.open")
    _tap(fresh_dsn, "publish", "secret.t")
    _tap(fresh_dsn, "grant", "secret.t", "--group", "team")
    passwd = tmp_path / "passwd"
    passwd.write_text(
        f"alice:{hash_password('a-pass', iterations=1000)}:team\n"
        f"bob:{hash_password('b-pass', iterations=1000)}\n"
    )
    live = start_server(
        fresh_dsn,
        tmp_path / "data",
        demo_rows=0,
        env={"AIOUWS_AUTH": "basic", "AIOUWS_PASSWD_FILE": str(passwd)},
    )
    yield live
    live.stop()


def _service(
    server: LiveServer, user: str | None, password: str = ""
) -> pyvo.dal.TAPService:
    session = requests.Session()
    if user is not None:
        session.auth = (user, password)
    return pyvo.dal.TAPService(server.tap_url, session=session)


def test_pyvo_reads_proprietary_tables_only_when_granted(server: LiveServer) -> None:
    alice = _service(server, "alice", "a-pass")
    query = "SELECT hush FROM secret.t"
    assert [str(v) for v in alice.run_sync(query).to_table()["hush"]] == [SECRET]
    assert [str(v) for v in alice.run_async(query, maxrec=5000).to_table()["hush"]] == [
        SECRET
    ]
    assert "secret.t" in {t.name for t in alice.tables}
    for outsider in (_service(server, "bob", "b-pass"), _service(server, None)):
        for runner in (outsider.run_sync, outsider.run_async):
            with pytest.raises(pyvo.dal.DALQueryError, match="secret.t") as refused:
                runner(query)
            assert SECRET not in str(refused.value)
        names = {t.name for t in outsider.tables}
        assert "pub.open" in names and "secret.t" not in names
        rows = outsider.run_sync("SELECT table_name FROM tap_schema.tables").to_table()
        assert "secret.t" not in {str(v) for v in rows["table_name"]}
