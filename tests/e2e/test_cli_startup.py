"""The ``aiouws`` command's start-up and messages, as subprocesses: "serving on"
only once the server listens; start-up problems give a cause and a remedy and
exit non-zero without a traceback; passwd, help texts."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from liveserver import REPO_ROOT, free_port

ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "AIOUWS_GRACE": "1"}


def command(
    dsn: str, data_dir: Path, *args: str, module: str = "taprunner"
) -> list[str]:
    return [
        sys.executable,
        "-m",
        module,
        "--dsn",
        dsn,
        "--data-dir",
        str(data_dir),
        *args,
    ]


def run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=ENV,
        cwd=REPO_ROOT,
        timeout=120,
    )


def assert_failed_cleanly(
    result: subprocess.CompletedProcess[str], code: int, *phrases: str
) -> None:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr, result.stderr
    assert "serving on" not in result.stdout, result.stdout
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def with_user(dsn: str, netloc: str) -> str:
    parts = urllib.parse.urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{netloc}@{host}").geturl()


def with_path(dsn: str, database: str) -> str:
    return urllib.parse.urlsplit(dsn)._replace(path="/" + database).geturl()


def test_serving_on_comes_once_the_server_listens(
    fresh_dsn: str, tmp_path: Path
) -> None:
    port = free_port()
    argv = command(fresh_dsn, tmp_path, "serve", "--port", str(port), "--no-demo")
    server = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=ENV,
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line == f"aiouws: serving on http://127.0.0.1:{port}/\n"
        # Printed only now, so the port accepts at once.
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
    finally:
        server.terminate()
        server.wait(30)
    assert server.returncode == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_port_in_use(
    fresh_dsn: str, tmp_path: Path, taken_port: int, workers: str
) -> None:
    started = time.monotonic()
    result = run(
        command(
            fresh_dsn,
            tmp_path,
            *("serve", "--port", str(taken_port), "--no-demo", "--workers", workers),
        )
    )
    assert_failed_cleanly(
        result,
        1,
        f"cannot listen on 127.0.0.1:{taken_port}",
        "already in use",
        "remedy:",
        "--port",
    )
    assert time.monotonic() - started < 60


def test_database_unreachable(tmp_path: Path) -> None:
    gone = f"postgresql://postgres@/postgres?host={tmp_path}/nowhere&port=5"
    result = run(command(gone, tmp_path, "serve", "--no-demo"))
    assert_failed_cleanly(
        result,
        1,
        "cannot reach the database",
        "is PostgreSQL running",
        "remedy:",
        "--dsn",
    )
    refused = "postgresql://someone:sekrit@127.0.0.1:1/db"
    for argv in (["serve", "--no-demo"], ["jobs", "list"], ["db", "init"]):
        result = run(command(refused, tmp_path, *argv))
        assert_failed_cleanly(result, 1, "connection refused", "remedy:")
        assert "someone:***@127.0.0.1:1" in result.stderr
        assert "sekrit" not in result.stderr


def test_database_refuses_login_or_is_missing(fresh_dsn: str, tmp_path: Path) -> None:
    result = run(command(with_user(fresh_dsn, "nobody_here"), tmp_path, "serve"))
    assert_failed_cleanly(result, 1, "refused the login", "nobody_here", "remedy:")
    result = run(command(with_path(fresh_dsn, "no_such_db"), tmp_path, "jobs", "list"))
    assert_failed_cleanly(result, 1, "no_such_db", "does not exist", "createdb")


def test_bad_configuration_exits_2(fresh_dsn: str, tmp_path: Path) -> None:
    config = tmp_path / "aiouws.toml"
    config.write_text('port = "eighty"\n')
    result = run(command(fresh_dsn, tmp_path, "--config", str(config), "serve"))
    assert_failed_cleanly(result, 2, "configuration error", "port")


def test_passwd_without_a_password(tmp_path: Path) -> None:
    argv = command("postgresql://unused@/x", tmp_path, "passwd", "alice")
    assert_failed_cleanly(run(argv), 1, "no password given", "echo SECRET |")
    assert_failed_cleanly(run(argv, stdin=""), 1, "no password given")
    result = run(argv, stdin="s3cret\n")
    assert result.returncode == 0, result.stderr
    user, _, stored = result.stdout.strip().partition(":")
    scheme, iterations, salt, digest = stored.split("$")
    assert (user, scheme) == ("alice", "pbkdf2_sha256")
    expected = hashlib.pbkdf2_hmac("sha256", b"s3cret", salt.encode(), int(iterations))
    assert digest == expected.hex()
    bad_user = command("postgresql://unused@/x", tmp_path, "passwd", "a:b")
    assert_failed_cleanly(run(bad_user, stdin="x\n"), 2, "without ':'")


def test_help_of_options(tmp_path: Path) -> None:
    result = run(command("postgresql://unused@/x", tmp_path, "tap", "demo", "--help"))
    assert result.returncode == 0
    assert "--rows ROWS  stars in the catalogue" in " ".join(result.stdout.split("\n"))
    result = run(
        command("postgresql://unused@/x", tmp_path, "tap", "publish", "--help")
    )
    assert result.returncode == 0
    assert '"Publishing your own tables"' in result.stdout
    assert "[columns.ra]" in result.stdout and "ucd =" in result.stdout
    readme = (REPO_ROOT / "README.md").read_text()
    assert "## Publishing your own tables" in readme
