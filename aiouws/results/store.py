"""The results store: where a job's results, error documents and uploads live.

Two sides of one store. The server side (:class:`ResultStore`, async) places
uploads, writes rejection documents, serves files and removes a job's objects;
the runner side (:class:`JobOutputs`, sync, what :class:`~aiouws.jobapi.JobContext`
writes through) streams results into it as they are produced. Every object's
name is ``<job_id>/<name>``: the job id is checked against the id pattern and
the name is a plain file name, so nothing a client sends can name an object
outside its job's prefix.

Stdlib only: runner processes import it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Protocol

__all__ = [
    "JOB_ID",
    "AsyncWriter",
    "JobOutputs",
    "ResultStore",
    "Served",
    "StoreSpec",
    "Writer",
    "check_name",
    "object_key",
]

#: Job ids (as :data:`aiouws.workdir.JOB_ID_PATTERN`).
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
#: A stored file's name: a plain file name as a client may give one
#: (:func:`aiouws.workdir.safe_file_name`, up to 128 characters) with a prefix
#: of up to 16 of the store's own (``upload-``).
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,143}$")


def check_name(name: str) -> str:
    """``name`` if it is a plain file name (no separator, no leading dot, no
    ``..``); ValueError if not."""
    if not _SAFE_NAME.match(name) or ".." in name:
        raise ValueError(f"invalid file name {name!r}")
    return name


def object_key(job_id: str, name: str) -> str:
    """The store's name of a job's file: ``<job_id>/<name>``, both checked."""
    if not JOB_ID.match(job_id):
        raise ValueError(f"invalid job id {job_id!r}")
    return f"{job_id}/{check_name(name)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSpec:
    """Which store, without secrets: what a runner is told with each job (the
    ``store`` of :class:`~aiouws.contract.Run`). Credentials come from the
    environment (``AWS_ACCESS_KEY_ID`` ...) or from ``credentials_file``."""

    kind: str = "local"  #: "local" or "s3"
    bucket: str = ""
    endpoint: str = ""  #: e.g. ``http://127.0.0.1:9000``; "" for AWS itself
    region: str = ""
    prefix: str = ""  #: key prefix inside the bucket, e.g. ``tap/``
    credentials_file: str = ""

    def as_message(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_message(cls, body: Mapping[str, object]) -> StoreSpec:
        known = {f.name for f in fields(cls)}
        return cls(**{k: str(v) for k, v in body.items() if k in known})


@dataclass(frozen=True, slots=True)
class Served:
    """How to answer a GET of a stored file: exactly one of ``path`` (a local
    file), ``url`` (a presigned URL to redirect to) or ``chunks`` (bytes
    streamed through the server, ``size`` of them)."""

    media_type: str
    path: Path | None = None
    url: str | None = None
    chunks: AsyncIterator[bytes] | None = None
    size: int | None = None


class Writer(Protocol):
    """A result being written (a file, or a multipart upload)."""

    def write(self, data: bytes, /) -> int: ...


class AsyncWriter(Protocol):
    """A result being written by async job code."""

    async def write(self, data: bytes, /) -> int: ...


class JobOutputs(Protocol):
    """The runner side of the store, for one job (thread-safe enough for one job:
    one writer at a time)."""

    #: The job's local scratch directory (the runner's working directory).
    workdir: Path
    #: Whether files in ``workdir`` are the stored ones (the local store).
    local: bool

    def open(
        self, name: str, media_type: str, download_name: str | None = None
    ) -> AbstractContextManager[Writer]:
        """Write file ``name``; it is complete when the block exits, and gone
        if the block raises."""
        ...

    def open_async(
        self, name: str, media_type: str, download_name: str | None = None
    ) -> AbstractAsyncContextManager[AsyncWriter]:
        """:meth:`open` for async job code: writes wait for the store (an
        object store's part uploads) without blocking the event loop."""
        ...

    def put(self, name: str, data: bytes, media_type: str) -> None:
        """Store a small file whole (complete or not at all)."""
        ...

    def put_file(self, name: str, source: Path, media_type: str) -> None:
        """Store the local file ``source`` as ``name`` (moved or uploaded)."""
        ...

    def size(self, name: str) -> int | None:
        """The stored file's size, None if there is none."""
        ...

    def fetch(self, name: str) -> Path | None:
        """A local copy of stored file ``name`` (in ``workdir``), None if none."""
        ...


class ResultStore(Protocol):
    """The server side of the store."""

    spec: StoreSpec

    def outputs(self, job_id: str, workdir: Path) -> JobOutputs:
        """The runner side for one job (the inline lane's, in the server)."""
        ...

    async def put_file(
        self, job_id: str, name: str, source: Path, media_type: str
    ) -> None:
        """Store the local file ``source`` (moved or uploaded, then gone)."""
        ...

    async def put(
        self, job_id: str, name: str, data: bytes, media_type: str
    ) -> None: ...

    async def size(self, job_id: str, name: str) -> int | None:
        """The stored file's size, None if there is none."""
        ...

    async def serve(
        self, job_id: str, name: str, media_type: str, *, redirect: bool
    ) -> Served | None:
        """How to answer a GET of the file (None: there is none). ``redirect``:
        a presigned URL where the store can make one."""
        ...

    async def remove_job(self, job_id: str) -> None:
        """Remove every file of the job (no error if there is none)."""
        ...

    async def job_ids(self) -> set[str]:
        """The jobs that have files in the store."""
        ...

    async def last_modified(self, job_id: str) -> float | None:
        """When a file of the job last changed (epoch seconds; None: none)."""
        ...

    async def close(self) -> None: ...
