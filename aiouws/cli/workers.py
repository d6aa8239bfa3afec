"""``aiouws serve --workers N``: N server processes on one port (SO_REUSEPORT).

Each worker is a whole ``aiouws serve`` (HTTP, queue supervisor, warm runners)
with its own event loop; the kernel spreads incoming connections over them, so
request handling and sync queries use more than one core. The workers share the
database (jobs are claimed with ``SKIP LOCKED`` and leases, phase changes travel
by NOTIFY, so a WAIT on one worker wakes for a change made by another) and the
data directory.

The first worker starts alone (it installs the schema, TAP_SCHEMA and the demo
data), the others once it listens. A worker that dies is started again; the jobs
it was running end as after any crash (ERROR once their lease expires). SIGTERM
or SIGINT stops all workers gracefully. Each worker watches a pipe from this
process and shuts down when it closes, so none outlives a killed parent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

__all__ = ["WorkerPool", "exit_with_parent", "worker_count"]

log = logging.getLogger(__name__)

#: A worker that exits sooner than this after its start is restarted with backoff.
_QUICK_EXIT = 10.0


def worker_count(requested: int) -> int:
    """``requested`` workers (validated by Settings); 0 means one per CPU core."""
    return requested or os.cpu_count() or 1


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)


class WorkerPool:
    """Starts, watches and stops the worker processes (synchronous, in the parent).

    ``command(index)`` is the argv of worker ``index``; its stdin is the parent pipe.
    ``on_listening()`` is called once the first worker accepts connections.
    """

    def __init__(
        self,
        command: Callable[[int], Sequence[str]],
        count: int,
        *,
        host: str,
        port: int,
        grace: float,
        env: Mapping[str, str] | None = None,
        poll: float = 0.2,
        on_listening: Callable[[], None] | None = None,
    ) -> None:
        self._command = command
        self._env = None if env is None else dict(env)
        self._count = count
        self._address = (_connectable(host), port)
        self._listen = (host, port)
        self._grace = grace
        self._poll = poll
        self._workers: list[_Worker] = []
        self._stopping = False
        self._on_listening = on_listening

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; the exit code for the ``aiouws`` command."""
        previous = {
            sig: signal.signal(sig, self._stop_requested)
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            _check_free(*self._listen)
            first = self._spawn(0)
            self._workers.append(first)
            if not self._wait_listening(first):
                return first.process.returncode or 1
            if self._on_listening is not None:
                self._on_listening()
            self._workers += [self._spawn(i) for i in range(1, self._count)]
            log.info("workers started", extra={"pid": os.getpid()})
            self._watch()
            return 0
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- internals ----------------------------------------------------------------

    def _stop_requested(self, _signum: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def _spawn(self, index: int) -> _Worker:
        # Its own session: a terminal's Ctrl-C reaches only this process, which
        # then stops each worker with one SIGTERM.
        process = subprocess.Popen(
            self._command(index),
            stdin=subprocess.PIPE,
            start_new_session=True,
            env=self._env,
        )
        worker = _Worker(index, process)
        log.info("worker started", extra={"pid": process.pid, "action": f"#{index}"})
        return worker

    def _wait_listening(self, worker: _Worker) -> bool:
        """Wait until the first worker accepts connections (False: it exited)."""
        while not self._stopping:
            if worker.process.poll() is not None:
                log.error(
                    "first worker exited during startup",
                    extra={"pid": worker.process.pid},
                )
                return False
            try:
                with socket.create_connection(self._address, timeout=1):
                    return True
            except OSError:
                time.sleep(self._poll)
        return False

    def _watch(self) -> None:
        backoff = {w.index: 1.0 for w in self._workers}
        while not self._stopping:
            time.sleep(self._poll)
            for n, worker in enumerate(self._workers):
                code = worker.process.poll()
                if code is None or self._stopping:
                    continue
                quick = time.monotonic() - worker.started < _QUICK_EXIT
                delay = backoff[worker.index] if quick else 1.0
                backoff[worker.index] = min(delay * 2, 30.0) if quick else 1.0
                log.warning(
                    "worker exited (code %s); starting it again in %.0f s",
                    code,
                    delay,
                    extra={"pid": worker.process.pid, "action": f"#{worker.index}"},
                )
                self._sleep(delay)
                if not self._stopping:
                    self._workers[n] = self._spawn(worker.index)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(min(self._poll, deadline - time.monotonic()))

    def _stop_all(self) -> None:
        alive = [w for w in self._workers if w.process.poll() is None]
        for worker in alive:
            worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace + 15
        for worker in alive:
            try:
                worker.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning(
                    "worker did not stop; killing it", extra={"pid": worker.process.pid}
                )
                worker.process.kill()
                worker.process.wait()
        for worker in self._workers:
            if worker.process.stdin is not None:
                worker.process.stdin.close()


async def exit_with_parent(_app: object) -> None:
    """In a worker: shut down gracefully (SIGTERM to self) when stdin, the pipe
    from the parent, closes, i.e. when the parent is gone."""

    class _ParentPipe(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            os.kill(os.getpid(), signal.SIGTERM)

    loop = asyncio.get_running_loop()
    _parent_pipe.append(
        (await loop.connect_read_pipe(_ParentPipe, os.fdopen(0, "rb", buffering=0)))[0]
    )


_parent_pipe: list[asyncio.BaseTransport] = []


def _check_free(host: str, port: int) -> None:
    """Raise OSError (EADDRINUSE) if something listens on ``host:port`` already.

    The workers bind with SO_REUSEPORT, and the parent's check that the first
    one listens connects to the port: another program listening there would
    pass both. A bind without SO_REUSEPORT tells.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)


def _connectable(host: str) -> str:
    """An address to test a listener bound to ``host`` (wildcards: loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host
