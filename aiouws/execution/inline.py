"""InlineRunner: a runner that lives in the server process (a kind's inline lane).

It quacks like :class:`.runnerpool.RunnerProcess` for the supervisor and
:class:`.jobrun.JobRun`: the same ``send`` (Run, Cancel), the same events
(Started, Info, Result, Done) and ``exited``. The job runs on the server's event
loop through the same :class:`aiouws.runner.Executor` a runner process uses, so
outcomes, error details and cancellation are identical. What it cannot do is
kill: a job that ignores cancellation is abandoned (its slot gets a fresh
InlineRunner, the job's outcome is already written). What it can do is hand the
job code what the kind's prepare hook made of the parameters before the job was
stored (:meth:`InlineRunner.expect`, as ``ctx.prepared``), so that the job's run
does not parse them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable

from aiouws.contract import Cancel, Run, RunnerMessage, SupervisorMessage
from aiouws.execution.runnerpool import Runner, RunnerEvent, RunnerExited
from aiouws.kinds import JobKind
from aiouws.runner import Executor

__all__ = ["InlineRunner"]

log = logging.getLogger(__name__)


class InlineRunner:
    """Runs one job at a time of ``kind``'s inline lane, in this process."""

    def __init__(self, kind: JobKind) -> None:
        if kind.inline is None:
            raise ValueError(f"job kind {kind.name} has no inline lane")
        self.kind = kind
        self.pid = os.getpid()
        self.events: asyncio.Queue[RunnerEvent] = asyncio.Queue()
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.on_exit: Callable[[Runner], None] | None = None
        self._executor = Executor(kind.inline.run, self._deliver, chdir=False)
        #: The job expected next and its prepared parameters (see expect).
        self._expected: tuple[str, object] | None = None

    @property
    def alive(self) -> bool:
        return not self.exited.done()

    def expect(self, job_id: str, prepared: object) -> None:
        """Give the Run of ``job_id``, about to be sent, ``prepared`` as its
        ``ctx.prepared`` (a Run of another job gets None)."""
        self._expected = (job_id, prepared)

    def send(self, message: SupervisorMessage) -> None:
        if not self.alive:
            return
        if isinstance(message, Run):
            expected, self._expected = self._expected, None
            prepared = None
            if expected is not None and expected[0] == message.job_id:
                prepared = expected[1]
            self._executor.start(message, prepared)
        elif isinstance(message, Cancel):
            self._executor.cancel(message.job_id)

    def kill(self) -> None:
        """Give up on the job: cancel it once more and end this runner."""
        if not self.alive:
            return
        if self._executor.busy:
            log.error("inline job ignored cancellation; abandoning it")
        self._exit(-signal.SIGKILL)

    async def close(self, wait: float) -> None:
        """Cancel the running job (if any), wait up to ``wait`` s, then end."""
        if not self.alive:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._executor.cancel_current()
        self._exit(0)

    def _deliver(self, message: RunnerMessage) -> None:
        self.events.put_nowait(message)

    def _exit(self, returncode: int) -> None:
        if not self.alive:
            return
        self.exited.set_result(returncode)
        self.events.put_nowait(RunnerExited(returncode))
        if self.on_exit is not None:
            self.on_exit(self)
