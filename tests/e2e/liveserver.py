"""Running the real ``python -m taprunner serve`` (the ``aiouws`` command with
TAP) as a subprocess, for e2e tests.

``start_server(dsn, data_dir, port=None)`` starts a server on any database and
data directory and waits until it is available, so that a test can stop (or
kill) one server and start a second on the same database (crash recovery).
``create_database``/``drop_database`` give fresh databases cloned from the test
template. Import as ``from liveserver import start_server`` (``tests/e2e`` is on
``sys.path`` for its test modules).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import testdb

__all__ = [
    "NO_REDIRECT",
    "LiveServer",
    "create_database",
    "drop_database",
    "free_port",
    "run_job",
    "start_server",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Seconds a server may take to answer /tap/availability after it was started
#: (loading the demo catalogue and warming runners included).
STARTUP_TIMEOUT = 60.0
DEMO_ROWS = 5000
#: Environment for test servers: short WAIT cap and grace keep teardown quick.
DEFAULT_ENV: Mapping[str, str] = {
    "AIOUWS_WAIT_CAP": "10",
    "AIOUWS_GRACE": "1",
    "AIOUWS_LOG_LEVEL": "INFO",
}


@dataclass
class LiveServer:
    """A running ``aiouws serve`` subprocess."""

    url: str
    dsn: str
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def tap_url(self) -> str:
        return self.url + "/tap"

    def log(self) -> str:
        """The server's combined stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, *, timeout: float = 15.0) -> int | None:
        """SIGTERM the server, then SIGKILL its process group if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL the server and everything in its process group (runners too)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


#: A urllib opener that does not follow redirects: a 303 raises HTTPError.
NO_REDIRECT = urllib.request.build_opener(_NoRedirect)


def http_get(url: str) -> tuple[int, bytes]:
    """Status and body of a GET (0 and nothing when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def run_job(
    base: str, params: Mapping[str, str], server: subprocess.Popen[bytes], log: Path
) -> tuple[str, bytes]:
    """Wait (60 s at most) until the job list ``base`` of ``server`` answers,
    create a job of ``params`` with PHASE=RUN there and wait for its end: its
    URL and final phase. A failed wait fails with the server's ``log``."""
    deadline = time.monotonic() + 60
    while http_get(base)[0] != 200:
        assert server.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    form = urllib.parse.urlencode({**params, "PHASE": "RUN"}).encode()
    with urllib.request.urlopen(base, data=form, timeout=5) as response:
        job_url: str = response.url
    phase = b""
    while phase not in (b"COMPLETED", b"ERROR"):
        assert time.monotonic() < deadline, log.read_text()
        phase = http_get(job_url + "/phase")[1].strip()
        time.sleep(0.1)
    return job_url, phase


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _available(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/tap/availability", timeout=2) as response:
            return response.status == 200 and b"true" in response.read()
    except (OSError, urllib.error.URLError):
        return False


def start_server(
    dsn: str,
    data_dir: Path,
    port: int | None = None,
    *,
    demo_rows: int = DEMO_ROWS,
    env: Mapping[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    timeout: float = STARTUP_TIMEOUT,
) -> LiveServer:
    """Start ``python -m taprunner serve`` and wait until it reports itself available.

    The process gets its own session (process group), so that :meth:`LiveServer.kill`
    also reaches its runner processes. Its output goes to ``data_dir/server-N.log``.
    Fails the test with the log when the server exits or does not come up in time.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    index = len(list(data_dir.glob("server-*.log")))
    log_path = data_dir / f"server-{index}.log"
    command = [
        sys.executable,
        "-m",
        "taprunner",
        "--dsn",
        dsn,
        "--data-dir",
        str(data_dir),
        "serve",
        "--port",
        str(port),
        *extra_args,
    ]
    command += ["--demo-rows", str(demo_rows)] if demo_rows > 0 else ["--no-demo"]
    full_env = {**os.environ, **DEFAULT_ENV, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
    server = LiveServer(
        url=f"http://127.0.0.1:{port}",
        dsn=dsn,
        data_dir=data_dir,
        port=port,
        process=process,
        log_path=log_path,
    )
    deadline = time.monotonic() + timeout
    while not _available(server.url):
        if not server.alive():
            pytest.fail(f"server exited with {process.returncode}:\n{server.log()}")
        if time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"server not available after {timeout:g} s:\n{server.log()}")
        time.sleep(0.1)
    return server


def create_database(admin_dsn: str) -> str:
    """Create a fresh database from the test template; return its DSN."""
    return asyncio.run(testdb.create_database(admin_dsn, prefix="e2e_"))


def drop_database(admin_dsn: str, dsn: str) -> None:
    """Drop the database ``dsn`` names, disconnecting whoever still uses it."""
    asyncio.run(testdb.drop_database(admin_dsn, dsn))
