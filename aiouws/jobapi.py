"""The API job code sees: :class:`JobContext` and :class:`JobCancelled`.

Stdlib only, so that a job kind's module imports nothing of the web stack. Job
code is ``def run(ctx) -> None`` (run in a thread; poll ``ctx.cancelled``) or
``async def run(ctx) -> None`` (run as a task; aborts arrive as
``CancelledError`` at the current ``await``). A result is published once its
file is complete, and results become visible with the job's final phase.
"""

from __future__ import annotations

import errno
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

from aiouws.contract import Backend, Info, Result, RunnerMessage
from aiouws.results.local import LocalOutputs
from aiouws.results.store import AsyncWriter, JobOutputs, Writer

__all__ = ["NO_SPACE", "JobCancelled", "JobContext", "is_disk_full"]

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

#: The error of a job whose files did not fit on the jobs directory's disk.
NO_SPACE = "no space left on device (jobs directory)"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says a file system is full (or the owner's quota is)."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class JobCancelled(Exception):  # noqa: N818 -- the name job code expects
    """Raise from job code to stop because ``ctx.cancelled`` is set."""


def _checked_name(name: str, what: str) -> str:
    if not _SAFE_NAME.match(name) or ".." in name:
        raise ValueError(f"invalid {what} {name!r}: use letters, digits, '.', '_', '-'")
    return name


class JobContext:
    """What one job run gets: its id, parameters, directory and outputs.

    Thread-safe: a sync job may call :meth:`note` and :meth:`add_result` from
    any thread.
    """

    def __init__(
        self,
        *,
        job_id: str,
        workdir: Path,
        parameters: tuple[tuple[str, str, bool], ...],
        owner: str | None,
        execution_duration: int,
        emit: Callable[[RunnerMessage], None],
        runner_args: tuple[str, ...] = (),
        prepared: object = None,
        outputs: JobOutputs | None = None,
    ) -> None:
        self.job_id = job_id
        #: The job's local directory: where its files are with the local
        #: results store, scratch (removed after the job) with object storage.
        self.workdir = workdir
        #: Where the job's files go (:mod:`aiouws.results`): results through
        #: :meth:`open_result`, documents through :meth:`write_file`.
        self.outputs: JobOutputs = outputs or LocalOutputs(workdir)
        self.owner = owner
        #: Wall-clock limit in seconds (0: none); the supervisor enforces it.
        self.execution_duration = execution_duration
        #: The kind's ``runner_args`` (e.g. a DSN), as given to the runner process.
        self.runner_args = runner_args
        #: Every parameter as ``(name, value, by_reference)``, in client order.
        self.parameter_list = parameters
        first: dict[str, str] = {}
        for name, value, _by_ref in parameters:
            first.setdefault(name.lower(), value)
        #: Lowercase name → first value.
        self.parameters: Mapping[str, str] = MappingProxyType(first)
        #: What the kind's ``prepare`` hook made of the parameters, when the job
        #: runs in the server process (a kind's inline lane) that parsed them
        #: before storing the job; None in a runner process, whose job code reads
        #: :attr:`parameters` itself.
        self.prepared = prepared
        #: Set when the job is aborted; a sync job should poll it and stop.
        self.cancelled = threading.Event()
        self._emit = emit

    def check_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if the job was aborted."""
        if self.cancelled.is_set():
            raise JobCancelled(self.job_id)

    def report_backend(self, pid: int, started: str) -> None:
        """Say which PostgreSQL backend runs this job's query (``pg_backend_pid()``
        and its ``pg_stat_activity.backend_start`` as ISO text): should the runner
        die, or its server, the supervisor or lease recovery terminates it."""
        self._emit(Backend(job_id=self.job_id, pid=int(pid), started=started))

    def note(self, key: str, value: object) -> None:
        """Publish a progress note in the job's jobInfo (the latest per key wins)."""
        self._emit(Info(job_id=self.job_id, key=str(key), value=str(value)))

    def add_result(
        self,
        result_id: str,
        data: Path | str | bytes,
        media_type: str,
        *,
        file_name: str | None = None,
        rows: int | None = None,
    ) -> None:
        """Publish a result: ``bytes`` are written, a path is moved into the
        results store."""
        name = _checked_name(file_name or result_id, "file name")
        _checked_name(result_id, "result id")
        if isinstance(data, bytes):
            with self.outputs.open(name, media_type) as out:
                out.write(data)
            size = len(data)
        else:
            source = Path(data)
            size = source.stat().st_size
            self.outputs.put_file(name, source, media_type)
        self._published(result_id, name, media_type, rows, size)

    @contextmanager
    def open_result(
        self,
        result_id: str,
        media_type: str,
        file_name: str | None = None,
        *,
        rows: int | None = None,
    ) -> Iterator[BinaryIO]:
        """Write a result as it is produced (a file, or a multipart upload to
        object storage); it is published when the block exits.

        If the block raises, nothing is published and the file is removed.
        Only ``write`` may be called on what it yields.
        """
        name = _checked_name(file_name or result_id, "file name")
        _checked_name(result_id, "result id")
        with self.outputs.open(name, media_type, name) as out:
            counted = _Counted(out)
            yield counted  # type: ignore[misc]
        self._published(result_id, name, media_type, rows, counted.size)

    @asynccontextmanager
    async def open_result_async(
        self,
        result_id: str,
        media_type: str,
        file_name: str | None = None,
        *,
        rows: int | None = None,
    ) -> AsyncIterator[AsyncWriter]:
        """:meth:`open_result` for async job code: ``await out.write(data)``
        waits for the results store (an object store's part uploads), never
        blocking the event loop (the server's, in an inline lane)."""
        name = _checked_name(file_name or result_id, "file name")
        _checked_name(result_id, "result id")
        async with self.outputs.open_async(name, media_type, name) as out:
            counted = _AsyncCounted(out)
            yield counted
        self._published(result_id, name, media_type, rows, counted.size)

    def write_file(self, name: str, data: bytes, media_type: str) -> None:
        """Store a small document of the job whole (e.g. its error document),
        complete or not at all."""
        self.outputs.put(_checked_name(name, "file name"), data, media_type)

    def fetch_file(self, name: str) -> Path | None:
        """A local copy of the job's stored file ``name`` (e.g. an upload sent
        with the job), None if there is none."""
        return self.outputs.fetch(_checked_name(name, "file name"))

    # -- internals ----------------------------------------------------------------

    def _published(
        self, result_id: str, name: str, media_type: str, rows: int | None, size: int
    ) -> None:
        self._emit(
            Result(
                job_id=self.job_id,
                id=result_id,
                file_name=name,
                media_type=media_type,
                size=size,
                rows=rows,
            )
        )


class _Counted:
    """A result being written, counting its bytes. Job code (or a library) may
    close it: the store completes the file when the block exits."""

    def __init__(self, out: Writer) -> None:
        self._out = out
        self.size = 0
        self.closed = False

    def write(self, data: bytes, /) -> int:
        if self.closed:
            raise ValueError("write to a closed result file")
        self.size += len(data)
        return self._out.write(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


class _AsyncCounted:
    """A result being written by async job code, counting its bytes."""

    def __init__(self, out: AsyncWriter) -> None:
        self._out = out
        self.size = 0

    async def write(self, data: bytes, /) -> int:
        self.size += len(data)
        return await self._out.write(data)
