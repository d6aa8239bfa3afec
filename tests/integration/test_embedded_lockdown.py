"""The embedded cluster as ``aiouws serve`` sets it up admits only its own users.

Each test starts the cluster with the real command (``python -m aiouws db start``,
which builds it as ``serve`` does) in a fresh data directory, then tries it as
another local user (``nobody``, through ``runuser``) with ``psql``: the socket is
out of reach, and with the directory opened by hand peer authentication still
refuses; ``COPY ... TO PROGRAM`` never runs. A cluster made the way the old code
made it (trust, open socket directory, server in the root group) is locked down
in place by the next start. Root only: the cluster then runs as ``postgres``.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from aiouws.storage.pgcluster import EmbeddedCluster, find_bindir

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runuser") is None,
    reason="needs root (to act as another local user with runuser)",
)


@dataclass
class Served:
    """An embedded cluster started by the CLI: its data dir, port and DSN."""

    data_dir: Path
    port: int
    dsn: str

    @property
    def cluster(self) -> EmbeddedCluster:
        return EmbeddedCluster(self.data_dir / "pgdata", port=self.port)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "AIOUWS_EMBEDDED_PORT": str(self.port),
        }
        env.pop("AIOUWS_DSN", None)
        return subprocess.run(
            [sys.executable, "-m", "aiouws", "--data-dir", str(self.data_dir), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )


@pytest.fixture
def served() -> Iterator[Served]:
    """A cluster started by ``aiouws db start`` in a fresh data directory."""
    data_dir = Path(tempfile.mkdtemp(prefix="aiouws-lockdown-"))
    os.chmod(data_dir, 0o755)  # postgres must reach pgdata/ below it
    with socket.socket() as sock:  # a port number for the socket file's name
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = Served(data_dir, port, "")
    started = server.cli("db", "start")
    assert started.returncode == 0, started.stderr
    server.dsn = started.stdout.strip()
    try:
        yield server
    finally:
        server.cli("db", "stop")
        shutil.rmtree(data_dir, ignore_errors=True)


def as_nobody_psql(server: Served, sql: str) -> subprocess.CompletedProcess[str]:
    """``psql`` run by ``nobody`` as the superuser of ``server``."""
    psql = find_bindir() / "psql"
    socket_dir = server.cluster.socket_dir
    argv = ["runuser", "-u", "nobody", "--", str(psql), "-w", "-X"]
    argv += ["-h", str(socket_dir), "-p", str(server.port), "-U", "postgres"]
    argv += ["-d", "postgres", "-c", sql]
    return subprocess.run(argv, capture_output=True, text=True, cwd="/", timeout=60)


def open_dir(server: Served) -> Path:
    """A directory anybody may write to (where a program run by the server could)."""
    directory = server.data_dir / "open"
    directory.mkdir()
    os.chmod(directory, 0o777)
    return directory


def copy_to_program(marker: Path) -> str:
    return f"COPY (SELECT 1) TO PROGRAM 'id > {marker}'"


def server_groups(cluster: EmbeddedCluster) -> set[str]:
    """The group ids (real, effective, supplementary) of the running postmaster."""
    pid = (cluster.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
    groups: set[str] = set()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("Gid:", "Groups:")):
            groups.update(line.split(":", 1)[1].split())
    return groups


def test_the_service_user_connects_and_nobody_cannot(served: Served) -> None:
    assert urlsplit(served.dsn).password is None and "password" not in served.dsn

    async def whoami() -> str:
        conn = await asyncpg.connect(served.dsn)
        try:
            return str(await conn.fetchval("SELECT current_user"))
        finally:
            await conn.close()

    assert asyncio.run(whoami()) == "postgres"

    cluster = served.cluster
    postgres = pwd.getpwnam("postgres")
    info = cluster.socket_dir.stat()
    assert stat.S_IMODE(info.st_mode) == 0o700
    assert info.st_uid == postgres.pw_uid
    sockets = list(cluster.socket_dir.glob(".s.PGSQL.*[0-9]"))
    assert [stat.S_IMODE(s.stat().st_mode) for s in sockets] == [0o700]
    hba = (cluster.data_dir / "pg_hba.conf").read_text()
    assert "trust" not in hba and "local all all peer map=aiouws" in hba
    groups = server_groups(cluster)
    assert "0" not in groups and groups == {str(postgres.pw_gid)}

    marker = open_dir(served) / "ran"
    refused = as_nobody_psql(served, copy_to_program(marker))
    assert refused.returncode != 0
    assert "Permission denied" in refused.stderr
    assert not marker.exists()

    # Even with the socket opened to everybody, peer authentication refuses.
    os.chmod(cluster.root, 0o755)
    os.chmod(cluster.socket_dir, 0o755)
    for sock in sockets:
        os.chmod(sock, 0o777)
    refused = as_nobody_psql(served, copy_to_program(marker))
    assert refused.returncode != 0
    assert "Peer authentication failed" in refused.stderr
    assert not marker.exists()

    # The next start closes the directory again.
    again = served.cli("db", "dsn")
    assert again.returncode == 0 and again.stdout.strip() == served.dsn
    assert stat.S_IMODE(cluster.socket_dir.stat().st_mode) == 0o700


def test_a_cluster_of_the_old_code_is_locked_down_in_place(served: Served) -> None:
    cluster = served.cluster
    assert served.cli("db", "stop").returncode == 0
    # What the old code left: trust, a 0755 socket directory, a 0777 socket and
    # a server started with root's group.
    (cluster.data_dir / "pg_hba.conf").write_text("local all all trust\n")
    conf = cluster.data_dir / "postgresql.auto.conf"
    conf.write_text(
        "".join(
            line + "\n"
            for line in conf.read_text().splitlines()
            if not line.startswith("unix_socket_permissions")
        )
    )
    os.chmod(cluster.root, 0o755)
    os.chmod(cluster.socket_dir, 0o755)
    pg_ctl = find_bindir() / "pg_ctl"
    subprocess.run(
        [str(pg_ctl), "start", "-w", "-D", str(cluster.data_dir)]
        + ["-l", str(cluster.log_file)],
        user="postgres",
        cwd="/",
        check=True,
        capture_output=True,
    )
    assert "0" in server_groups(cluster)
    marker = open_dir(served) / "ran"
    opened = as_nobody_psql(served, copy_to_program(marker))
    assert opened.returncode == 0, opened.stderr  # the hole this test closes
    assert marker.exists()
    marker.unlink()

    upgraded = served.cli("db", "start")
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip() == served.dsn
    assert "trust" not in (cluster.data_dir / "pg_hba.conf").read_text()
    assert stat.S_IMODE(cluster.socket_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(cluster.root.stat().st_mode) == 0o700
    assert "0" not in server_groups(cluster)
    refused = as_nobody_psql(served, copy_to_program(marker))
    assert refused.returncode != 0
    assert not marker.exists()
    # The authentication itself is fixed too.
    os.chmod(cluster.root, 0o755)
    os.chmod(cluster.socket_dir, 0o755)
    for sock in cluster.socket_dir.glob(".s.PGSQL.*[0-9]"):
        assert stat.S_IMODE(sock.stat().st_mode) == 0o700
        os.chmod(sock, 0o777)
    refused = as_nobody_psql(served, copy_to_program(marker))
    assert "Peer authentication failed" in refused.stderr
    assert not marker.exists()
