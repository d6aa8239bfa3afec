"""The server under test: ``python -m taprunner serve`` (``aiouws serve`` with
TAP) in a subprocess, plus /proc probes.

Without a DSN the server starts its own embedded PostgreSQL cluster in a fresh
temporary data directory (made 0755: the cluster runs as ``postgres`` when we are
root), which is stopped and removed afterwards; or, ``persistent``, in a data
directory kept between runs (its big tables generated once). Only 127.0.0.1 is
ever used.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from aiouws.storage.pgcluster import EmbeddedCluster

__all__ = [
    "ForeignLoad",
    "LiveServer",
    "MemorySampler",
    "cpu_seconds",
    "descendants",
    "free_port",
    "persistent_cluster",
    "proc_status",
    "runner_pids",
    "server_pids",
    "server_rss",
]

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def persistent_cluster(data_dir: Path) -> EmbeddedCluster:
    """The embedded cluster kept in ``data_dir/pgdata`` between runs
    (``run.py --data-dir``), on the port it had (a new one picked the first
    time: another port would restart it)."""
    port = None
    conf = data_dir / "pgdata" / "data" / "postgresql.auto.conf"
    with contextlib.suppress(OSError):
        for line in conf.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "port":
                port = int(value.strip().strip("'"))
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o755)
    return EmbeddedCluster(
        data_dir / "pgdata",
        port=port or free_port(),
        run_as=os.environ.get("AIOUWS_EMBEDDED_USER", "postgres"),
    )


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in bytes (empty when the process is gone)."""
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU seconds used so far by ``pids`` (gone ones count 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            found += [int(c) for c in text.split()]
    return found


def _argv(pid: int) -> list[bytes]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return []


def server_pids(server_pid: int) -> list[int]:
    """The server process and, with ``serve --workers``, its worker processes."""
    return [server_pid] + [
        pid for pid in _children(server_pid) if b"--worker" in _argv(pid)
    ]


def server_rss(server_pid: int) -> int:
    """VmRSS of the server's processes together (workers included), bytes."""
    return sum(proc_status(pid).get("VmRSS", 0) for pid in server_pids(server_pid))


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on TCP ``port`` (IPv4)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in inodes:
                    return True
    return False


def runner_pids(server_pid: int) -> list[int]:
    """The warm TAP runner processes (``python -m aiouws.runner taprunner...``)."""
    result = []
    for pid in descendants(_children(server_pid)):
        argv = _argv(pid)
        if b"aiouws.runner" in argv and any(a.startswith(b"taprunner") for a in argv):
            result.append(pid)
    return result


def descendants(roots: list[int]) -> set[int]:
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += _children(pid)
    return found


def _runnable(pid: str) -> int:
    count = 0
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{pid}/task/{task}/stat").read_text()
                count += stat.rsplit(")", 1)[1].split()[0] == "R"
    return count


@dataclass
class ForeignLoad:
    """Average number of runnable threads outside the benchmark, sampled in a thread.

    The load average counts our own server and database too; this counts only
    the other processes (other engineers' test suites), which is what makes a
    figure unreliable. Ours: this process's descendants and the postmaster's.
    """

    postmaster_pid: int | None
    interval: float = 0.2
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def mark(self) -> int:
        return len(self.samples)

    def mean_since(self, mark: int) -> float:
        window = self.samples[mark:] or self.samples[-1:]
        return sum(window) / len(window) if window else 0.0

    def _loop(self) -> None:
        self._sample()
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        roots = [os.getpid()] + ([self.postmaster_pid] if self.postmaster_pid else [])
        ours = {str(pid) for pid in descendants(roots)}
        self.samples.append(
            sum(
                _runnable(pid)
                for pid in os.listdir("/proc")
                if pid.isdigit() and pid not in ours
            )
        )


@dataclass
class MemorySampler:
    """Samples VmRSS of the server and its runners every ``interval`` s in a thread."""

    server_pid: int
    interval: float = 0.01
    server_peak: int = 0
    runner_peak: dict[int, int] = field(default_factory=dict)
    runner_hwm: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self._sample()

    def _loop(self) -> None:
        runners_seen = 0.0
        while not self._stop.wait(self.interval):
            if time.monotonic() - runners_seen > 0.5:  # new runners are rare
                runners_seen = time.monotonic()
                for pid in runner_pids(self.server_pid):
                    self.runner_peak.setdefault(pid, 0)
            self._sample()

    def _sample(self) -> None:
        rss = server_rss(self.server_pid)
        self.server_peak = max(self.server_peak, rss)
        for pid in list(self.runner_peak):
            status = proc_status(pid)
            if status:
                self.runner_peak[pid] = max(self.runner_peak[pid], status["VmRSS"])
                self.runner_hwm[pid] = status["VmHWM"]


@dataclass
class LiveServer:
    """Start, probe and stop one server process."""

    rows: int
    dsn: str | None = None
    log_level: str | None = None
    workers: int = 1
    port: int = field(default_factory=free_port)
    data_dir: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="aiouws-bench-"))
    )
    #: The data directory is kept (its database too: ``run.py --data-dir``).
    persistent: bool = False
    process: subprocess.Popen[bytes] | None = None
    cluster: EmbeddedCluster | None = None
    #: Extra environment of the server (e.g. another results store).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def tap(self) -> str:
        return f"{self.url}/tap"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def start(self) -> None:
        os.chmod(self.data_dir, 0o755)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        # Requests name their user in a header (the job list's; the others are
        # anonymous): an anonymous job list is empty.
        env.setdefault("AIOUWS_AUTH", "header")
        env.update(self.env)
        argv = [sys.executable, "-m", "taprunner", "--data-dir", str(self.data_dir)]
        if self.dsn is None:
            if self.persistent:  # on the port it had: another would restart it
                self.cluster = persistent_cluster(self.data_dir)
            else:
                self.cluster = EmbeddedCluster(
                    self.data_dir / "pgdata",
                    port=free_port(),
                    run_as=env.get("AIOUWS_EMBEDDED_USER", "postgres"),
                )
            env["AIOUWS_EMBEDDED_PORT"] = str(self.cluster.port)
            self.dsn = self.cluster.dsn()
        else:
            argv += ["--dsn", self.dsn]
        if self.log_level:
            env["AIOUWS_LOG_LEVEL"] = self.log_level
        argv += [
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--demo-rows",
            str(self.rows),
            "--workers",
            str(self.workers),
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_ready(self, timeout: float) -> None:
        """Poll /tap/availability until it says available (demo load: a while)."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(
                        f"server exited ({self.process.returncode}); "
                        f"log:\n{self._log_tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(f"{self.tap}/availability") as resp:
                        if (
                            resp.status == 200
                            and b">true<" in await resp.read()
                            and self._all_workers_listen()
                        ):
                            return
                await asyncio.sleep(0.25)
        raise RuntimeError(
            f"server not available after {timeout:.0f} s; log:\n{self._log_tail()}"
        )

    def _all_workers_listen(self) -> bool:
        """With ``--workers N``, whether all N workers listen (the first answers
        long before the others are up; figures taken meanwhile would be off)."""
        count = self.workers or os.cpu_count() or 1  # 0: one per core
        if count <= 1:
            return True
        workers = server_pids(self.pid)[1:]
        return len(workers) == count and all(
            _listens(pid, self.port) for pid in workers
        )

    def postmaster_pid(self) -> int | None:
        """The embedded cluster's postmaster (None with an external DSN)."""
        if self.cluster is None:
            return None
        with contextlib.suppress(OSError, ValueError, IndexError):
            pidfile = self.cluster.data_dir / "postmaster.pid"
            return int(pidfile.read_text().split()[0])
        return None

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(
                self.log_path.read_text(errors="replace").splitlines()[-30:]
            )
        return ""

    def stop(self, *, keep: bool = False) -> None:
        """SIGINT (graceful: the CLI stops the embedded cluster), then force."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.stop(mode="immediate")
        if not (keep or self.persistent):
            shutil.rmtree(self.data_dir, ignore_errors=True)
