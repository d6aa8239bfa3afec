"""The runner process: ``python -m aiouws.runner MODULE:FUNCTION [ARGS...]``.

A warm worker: it imports the job kind's entry point once, says ``ready`` and
then runs one job at a time, as told over stdin, for as long as stdin is open
(protocol in :mod:`aiouws.contract`). It never imports aiohttp or asyncpg itself;
job code may. The protocol uses private duplicates of fds 0 and 1: job code's
``print`` goes to stderr and its stdin is ``/dev/null``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import shutil
import stat
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiouws.contract import (
    ERROR_TEXT,
    ERROR_VOTABLE,
    Cancel,
    Done,
    DoneStatus,
    ProtocolError,
    Ready,
    Run,
    RunnerMessage,
    Started,
    encode,
    parse_supervisor_message,
)
from aiouws.jobapi import NO_SPACE, JobCancelled, JobContext, is_disk_full
from aiouws.logs import runner_logging
from aiouws.results import StoreSpec, job_outputs

__all__ = ["Executor", "JobFunction", "load_entry_point", "main"]

log = logging.getLogger("aiouws.runner")

JobFunction = Callable[[JobContext], Any]
#: The longest protocol line read from the supervisor.
_LINE_LIMIT = 64 * 1024 * 1024
_pumps: set[asyncio.Future[None]] = set()


def load_entry_point(spec: str) -> JobFunction:
    """Import ``module:function`` and return the function."""
    module_name, _, attr = spec.partition(":")
    function = getattr(importlib.import_module(module_name), attr)
    if not callable(function):
        raise TypeError(f"{spec} is not callable")
    return function  # type: ignore[no-any-return]


@dataclass(slots=True)
class _Current:
    """The job being run: its context and the future of its code."""

    ctx: JobContext
    work: asyncio.Future[Any]
    ended: asyncio.Task[None]


class Executor:
    """Runs one job at a time as told (``start`` / ``cancel``), reporting by ``emit``.

    A runner process drives one from its protocol pipe. The server drives one in
    its own process for a kind's inline lane; ``chdir`` is then False, because
    the working directory belongs to the whole process.
    """

    def __init__(
        self,
        function: JobFunction,
        emit: Callable[[RunnerMessage], None],
        runner_args: tuple[str, ...] = (),
        *,
        chdir: bool = True,
    ) -> None:
        self._function = function
        self._is_async = inspect.iscoroutinefunction(function)
        self._emit = emit
        self._runner_args = runner_args
        self._chdir = chdir
        self._current: _Current | None = None

    @property
    def busy(self) -> bool:
        return self._current is not None and not self._current.ended.done()

    def start(self, run: Run, prepared: object = None) -> None:
        """Run the job of ``run``; ``prepared``: its :attr:`JobContext.prepared`."""
        if self.busy:
            # The supervisor never does this; refuse rather than run two jobs.
            self._emit(
                Done(
                    job_id=run.job_id,
                    status=DoneStatus.ERROR,
                    message="runner busy with another job",
                )
            )
            return
        workdir = Path(run.workdir)
        try:
            spec = None if run.store is None else StoreSpec.from_message(run.store)
            outputs = job_outputs(spec, run.job_id, workdir)
            made = self._chdir or not outputs.local or not self._is_async
            if made:  # else: in the server (an inline lane), off its loop below
                workdir.mkdir(mode=0o750, exist_ok=True)
        except Exception as exc:  # no directory, or a results store unusable
            self._emit(
                Done(
                    job_id=run.job_id,
                    status=DoneStatus.ERROR,
                    message=f"cannot create the job directory: {exc}",
                )
            )
            return
        ctx = JobContext(
            job_id=run.job_id,
            workdir=workdir,
            outputs=outputs,
            parameters=run.parameters,
            owner=run.owner,
            execution_duration=run.execution_duration,
            emit=self._emit,
            runner_args=self._runner_args,
            prepared=prepared,
        )
        self._emit(Started(job_id=run.job_id))
        if self._chdir:
            os.chdir(workdir)
        if self._is_async:
            job = (
                self._function(ctx)
                if made
                else _made_then(workdir, self._function, ctx)
            )
            work: asyncio.Future[Any] = asyncio.ensure_future(job)
        else:
            work = _in_thread(self._function, ctx)
        ended = asyncio.create_task(self._finish(ctx, work))
        self._current = _Current(ctx=ctx, work=work, ended=ended)

    def cancel(self, job_id: str) -> None:
        current = self._current
        if current is None or current.ctx.job_id != job_id or current.ended.done():
            return
        current.ctx.cancelled.set()
        if self._is_async:
            current.work.cancel()

    async def cancel_current(self) -> None:
        """Cancel the running job, if any, and wait until it has reported."""
        if self._current is not None:
            self.cancel(self._current.ctx.job_id)
            await self._current.ended

    async def _finish(self, ctx: JobContext, work: Awaitable[Any]) -> None:
        try:
            await work
        except (JobCancelled, asyncio.CancelledError):
            done = Done(
                job_id=ctx.job_id, status=DoneStatus.ABORTED, message="job aborted"
            )
        except _NoWorkdir as exc:
            done = Done(job_id=ctx.job_id, status=DoneStatus.ERROR, message=str(exc))
        except BaseException as exc:  # job code's failure is the job's outcome
            # Off the loop: it asks the results store (an object store's round
            # trips), and an inline lane's loop is the server's.
            done = await asyncio.to_thread(_error_outcome, ctx, exc)
        else:
            done = Done(job_id=ctx.job_id, status=DoneStatus.COMPLETED)
        if self._chdir:
            os.chdir("/")
        if not ctx.outputs.local:  # the directory was scratch: the store has all
            await asyncio.to_thread(shutil.rmtree, ctx.workdir, ignore_errors=True)
        self._emit(done)


class _NoWorkdir(Exception):
    """The job directory could not be made (the job never ran)."""


async def _made_then(
    workdir: Path, function: Callable[[JobContext], Awaitable[Any]], ctx: JobContext
) -> Any:
    """``function(ctx)`` once the job directory is made, in a worker thread
    (file system metadata can take milliseconds: not on the server's loop)."""
    try:
        await asyncio.to_thread(workdir.mkdir, 0o750, False, True)
    except OSError as exc:
        raise _NoWorkdir(f"cannot create the job directory: {exc}") from exc
    return await function(ctx)


def _pipe_emitter(fd: int) -> Callable[[RunnerMessage], None]:
    """An ``emit`` that writes messages to ``fd``; callable from any thread."""
    lock = threading.Lock()

    def emit(message: RunnerMessage) -> None:
        data = encode(message)
        with lock:
            while data:
                data = data[os.write(fd, data) :]

    return emit


async def _serve(
    executor: Executor, proto_in: int, emit: Callable[[RunnerMessage], None]
) -> None:
    """Drive ``executor`` from the supervisor's messages until stdin closes."""
    emit(Ready(pid=os.getpid()))
    lines = _read_lines(proto_in)
    while line := await lines.get():
        if not line.strip():
            continue
        try:
            message = parse_supervisor_message(line)
        except ProtocolError as exc:
            log.error("bad message from supervisor: %s", exc)
            continue
        if isinstance(message, Run):
            executor.start(message)
        elif isinstance(message, Cancel):
            executor.cancel(message.job_id)
    # stdin closed: the supervisor wants us gone.
    await executor.cancel_current()


def _read_lines(fd: int) -> asyncio.Queue[bytes]:
    """Lines from ``fd`` (any kind of file: pipe, file, tty), then ``b""`` at EOF.

    A pipe or socket (what the supervisor gives) is read on the event loop; other
    files, which ``connect_read_pipe`` refuses (regular files, ``/dev/null``), by
    a blocking reader thread.
    """
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        task = asyncio.ensure_future(_pump_pipe(fd, queue))
        _pumps.add(task)  # a task needs a reference until it is done
        task.add_done_callback(_pumps.discard)
    else:
        _pump_in_thread(fd, queue)
    return queue


async def _pump_pipe(fd: int, queue: asyncio.Queue[bytes]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_LINE_LIMIT)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    try:
        while line := await reader.readline():
            queue.put_nowait(line)
    except ValueError as exc:  # a line over the limit: the supervisor is broken
        log.error("protocol line too long: %s", exc)
    queue.put_nowait(b"")


def _pump_in_thread(fd: int, queue: asyncio.Queue[bytes]) -> None:
    loop = asyncio.get_running_loop()

    def pump() -> None:
        with contextlib.suppress(RuntimeError), os.fdopen(fd, "rb") as stream:
            # RuntimeError: the loop is closed, the runner is exiting anyway.
            for line in iter(stream.readline, b""):
                loop.call_soon_threadsafe(queue.put_nowait, line)
            loop.call_soon_threadsafe(queue.put_nowait, b"")

    threading.Thread(target=pump, name="protocol-reader", daemon=True).start()


def _in_thread(function: JobFunction, ctx: JobContext) -> asyncio.Future[Any]:
    """Run sync job code in a daemon thread (a stuck one never blocks exit)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)

    def target() -> None:
        try:
            function(ctx)
        except BaseException as exc:  # handed to the loop, reported as the outcome
            loop.call_soon_threadsafe(settle, exc)
        else:
            loop.call_soon_threadsafe(settle, None)

    threading.Thread(target=target, name=f"job-{ctx.job_id}", daemon=True).start()
    return future


def _error_outcome(ctx: JobContext, exc: BaseException) -> Done:
    """Write the error detail (unless the job wrote a VOTable one) and say so.

    The detail is the exception's type and message; its traceback is logged.
    A full disk is said as such (:data:`NO_SPACE`); a detail that cannot be
    written leaves no file at all (``{job}/error`` then serves the message).
    """
    message = NO_SPACE if is_disk_full(exc) else str(exc) or type(exc).__name__
    if _stored_size(ctx, ERROR_VOTABLE):
        return Done(
            job_id=ctx.job_id,
            status=DoneStatus.ERROR,
            message=message,
            detail_file=ERROR_VOTABLE,
        )
    # The client reads the error document: it gets what failed, never the
    # traceback, which goes to the log (the server's, for runners and inline).
    log.error(
        "job failed: %s",
        message,
        exc_info=exc,
        extra={"job_id": ctx.job_id},
    )
    text = f"{type(exc).__name__}: {message}\n"
    try:
        ctx.outputs.put(ERROR_TEXT, text.encode(), "text/plain; charset=utf-8")
    except Exception as write_error:  # a full disk, an unreachable store
        log.error("cannot write error detail: %s", write_error)
        return Done(job_id=ctx.job_id, status=DoneStatus.ERROR, message=message)
    return Done(
        job_id=ctx.job_id,
        status=DoneStatus.ERROR,
        message=message,
        detail_file=ERROR_TEXT,
    )


def _stored_size(ctx: JobContext, name: str) -> int:
    """The size of the job's stored file ``name`` (0: none, or unknowable)."""
    try:
        return ctx.outputs.size(name) or 0
    except Exception as exc:  # an unreachable store: as if there were none
        log.error("cannot look for %s: %s", name, exc)
        return 0


def _protocol_fds() -> tuple[int, int]:
    """Keep private copies of stdin/stdout for the protocol; detach fds 0 and 1."""
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return proto_in, proto_out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(
            "usage: python -m aiouws.runner MODULE:FUNCTION [ARGS...]", file=sys.stderr
        )
        return 2
    # stderr is the server's: the server's log format, WARNING and the query log.
    runner_logging()
    proto_in, proto_out = _protocol_fds()
    try:
        function = load_entry_point(args[0])
    except (ImportError, AttributeError, TypeError) as exc:
        log.error("cannot load entry point %s: %s", args[0], exc)
        return 3
    emit = _pipe_emitter(proto_out)
    executor = Executor(function, emit, tuple(args[1:]))
    try:
        asyncio.run(_serve(executor, proto_in, emit))
    except BrokenPipeError:  # the supervisor went away
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
