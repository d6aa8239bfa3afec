"""Runner processes and the slots that hold them.

A :class:`RunnerProcess` is one warm ``python -m aiouws.runner`` child in its own
session (so its whole process group can be killed). Everything it says, and its
death, arrives as events on one queue, which a job run reads; supervisor-side
stop requests are put on the same queue, so a job run waits on one thing only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from aiouws.contract import (
    ProtocolError,
    Ready,
    RunnerMessage,
    SupervisorMessage,
    encode,
    parse_runner_message,
)
from aiouws.kinds import JobKind

__all__ = [
    "Runner",
    "RunnerEvent",
    "RunnerExited",
    "RunnerProcess",
    "RunnerStartError",
    "Slot",
    "StopRequested",
    "exit_description",
    "resident_bytes",
]

log = logging.getLogger(__name__)
_READ_LIMIT = 16 * 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE")


class RunnerStartError(RuntimeError):
    """A runner process exited or stalled before it said ``ready``."""


@dataclass(frozen=True, slots=True)
class RunnerExited:
    """The runner process ended (``returncode`` < 0: killed by that signal)."""

    returncode: int


@dataclass(frozen=True, slots=True)
class StopRequested:
    """The supervisor wants ``job_id`` stopped (abort, deletion, shutdown, limit)."""

    job_id: str
    reason: str


RunnerEvent = RunnerMessage | RunnerExited | StopRequested


def exit_description(returncode: int) -> str:
    """``"signal 9"`` or ``"exit code 3"``, for error messages."""
    if returncode < 0:
        return f"signal {-returncode}"
    return f"exit code {returncode}"


def resident_bytes(pid: int) -> int | None:
    """The process's resident memory (VmRSS, from ``/proc/PID/statm``), None
    if unknown (no such process, no /proc)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


class Runner(Protocol):
    """What a slot holds: a runner process, or an in-process inline runner."""

    kind: JobKind
    pid: int
    events: asyncio.Queue[RunnerEvent]
    exited: asyncio.Future[int]
    on_exit: Callable[[Runner], None] | None

    @property
    def alive(self) -> bool: ...

    def send(self, message: SupervisorMessage) -> None: ...

    def kill(self) -> None: ...

    async def close(self, wait: float) -> None: ...


class RunnerProcess:
    """One runner child process and the events it produces."""

    def __init__(self, kind: JobKind, process: asyncio.subprocess.Process) -> None:
        self.kind = kind
        self.pid = process.pid
        self.events: asyncio.Queue[RunnerEvent] = asyncio.Queue()
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        #: Called once when the process has ended (after ``exited`` is set).
        self.on_exit: Callable[[Runner], None] | None = None
        self._process = process
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(), name=f"runner-{self.pid}")

    @classmethod
    async def spawn(
        cls,
        kind: JobKind,
        *,
        ready_timeout: float = 120.0,
        environ: Mapping[str, str] | None = None,
    ) -> RunnerProcess:
        """Start a runner for ``kind`` and wait until it has imported its code.

        Raises
        ------
        RunnerStartError
            If it exits or is not ready within ``ready_timeout`` seconds.
        """
        env = {**(os.environ if environ is None else environ), **kind.runner_env}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aiouws.runner",
            kind.entry_point,
            *kind.runner_args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
            limit=_READ_LIMIT,
        )
        runner = cls(kind, process)
        try:
            async with asyncio.timeout(ready_timeout):
                await runner._ready
        except (TimeoutError, RunnerStartError) as exc:
            runner.kill()
            await runner.exited
            raise RunnerStartError(
                f"runner for {kind.name} did not start: {exc or 'timed out'}"
            ) from exc
        except asyncio.CancelledError:  # e.g. shutdown during a refill
            runner.kill()
            raise
        log.debug("runner ready", extra={"kind": kind.name, "pid": runner.pid})
        return runner

    @property
    def alive(self) -> bool:
        return not self.exited.done()

    def send(self, message: SupervisorMessage) -> None:
        """Queue a message for the runner's stdin (never blocks; messages are small)."""
        stdin = self._process.stdin
        if stdin is None or stdin.is_closing():
            return  # dead or closing: its exit event tells the job run
        stdin.write(encode(message))

    def kill(self) -> None:
        """SIGKILL the runner's whole process group (job code's children too)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    async def close(self, wait: float) -> None:
        """Ask the runner to exit (stdin EOF); kill it after ``wait`` seconds."""
        stdin = self._process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        try:
            async with asyncio.timeout(wait):
                await asyncio.shield(self.exited)
        except TimeoutError:
            log.warning("runner did not exit; killing it", extra={"pid": self.pid})
            self.kill()
            await self.exited

    async def _read(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        try:
            while line := await stdout.readline():
                self._deliver(line)
        except (ValueError, asyncio.LimitOverrunError) as exc:
            log.error(
                "runner output unreadable; killing it: %s", exc, extra={"pid": self.pid}
            )
            self.kill()
        returncode = await self._process.wait()
        # Children of job code may linger in the group; the runner is gone.
        self.kill()
        self.exited.set_result(returncode)
        if not self._ready.done():
            self._ready.set_exception(RunnerStartError(exit_description(returncode)))
        self.events.put_nowait(RunnerExited(returncode))
        if self.on_exit is not None:
            self.on_exit(self)

    def _deliver(self, line: bytes) -> None:
        try:
            message = parse_runner_message(line)
        except ProtocolError as exc:
            log.warning("bad message from runner: %s", exc, extra={"pid": self.pid})
            return
        if isinstance(message, Ready):
            if not self._ready.done():
                self._ready.set_result(None)
            return
        self.events.put_nowait(message)


@dataclass(slots=True, eq=False)
class Slot:
    """One unit of a kind's run-count goal: a runner and the job it runs, if any.

    ``inline`` slots belong to the kind's inline lane (an in-process runner).
    A ``retiring`` runner grew past ``runner_max_rss``: it still takes jobs
    while no other runner is free, until its ``successor`` (a fresh runner,
    started in the background) takes its place between jobs. A runner that was
    past the bound from its start is never retired (a fresh one would be too).
    """

    kind: JobKind
    index: int
    runner: Runner | None = None
    job_id: str | None = None
    inline: bool = False
    retiring: bool = False
    successor: Runner | None = None
    #: The runner's resident memory when it was installed (bytes; None: unknown).
    fresh_rss: int | None = None
    #: A claim for this slot is in flight: its runner must not change meanwhile.
    claiming: bool = False

    @property
    def free(self) -> bool:
        return self.job_id is None and self.runner is not None and self.runner.alive
