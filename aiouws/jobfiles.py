"""A job's files as the UWS resources serve them: its results, uploads and error
documents, found in the results store (:mod:`aiouws.results`), whichever host
wrote them.

Read-only; which job a request may see is :class:`~aiouws.service.JobService`'s
concern (its ``files``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiouws.errors import NotFound
from aiouws.kinds import JobKind
from aiouws.models import Job
from aiouws.results.store import ResultStore, Served, check_name

__all__ = ["JobFiles", "ResultHead"]

_DETAILS = (
    ("error.vot", "application/x-votable+xml"),
    ("error.txt", "text/plain; charset=utf-8"),
)


@dataclass(frozen=True, slots=True)
class ResultHead:
    """The beginning of a stored result, for a page's preview: the local file
    itself (``path``), or its first bytes read from the store (``data``, of
    ``size`` in all)."""

    file_name: str
    media_type: str
    path: Path | None = None
    data: bytes = b""
    size: int = 0


class JobFiles:
    """Where a job's results, uploads and error documents are.

    ``redirect``: results (and uploads) are answered by a presigned URL where
    the store makes them, else streamed through the server.
    """

    def __init__(
        self, results: ResultStore, kinds: Mapping[str, JobKind], *, redirect: bool
    ) -> None:
        self.results = results
        self.kinds = kinds
        self.redirect = redirect

    async def error_detail(self, job: Job) -> Served | None:
        """The job's error detail file, if there is one (an empty file, e.g.
        left by a full disk, is none). Served by the server, never redirected:
        it is small, and clients read it as the job's error."""
        if job.error is None or not job.error.has_detail:
            return None
        for name, media in _DETAILS:
            if await self.results.size(job.job_id, name):
                served = await self.results.serve(
                    job.job_id, name, media, redirect=False
                )
                if served is not None:
                    return served
        return None

    def error_summary(self, job: Job) -> tuple[bytes, str] | None:
        """The job's error message as its kind's error document (TAP: a DALI
        VOTable), for a job without a detail file; None: the kind has none."""
        kind = self.kinds.get(job.kind)
        if job.error is None or kind is None or kind.error_votable is None:
            return None
        return kind.error_votable(job.error.message), "application/x-votable+xml"

    async def result(self, job: Job, result_id: str) -> Served:
        """How to answer a GET of a result (an external one: its href); 404 if
        there is none or its file is gone."""
        result = job.result(result_id)
        if result is None:
            raise NotFound(f"job {job.job_id} has no result {result_id!r}")
        if result.file_name is None:
            return Served(result.media_type, url=result.href or "")
        served = await self.results.serve(
            job.job_id, result.file_name, result.media_type, redirect=self.redirect
        )
        if served is None:
            raise NotFound(f"result file of job {job.job_id} is gone")
        return served

    async def result_head(self, job: Job, result_id: str, limit: int) -> ResultHead:
        """The stored result's file, or at most its first ``limit`` bytes where
        it is no local file; 404 as :meth:`result` (or for an external one)."""
        result = job.result(result_id)
        if result is None or result.file_name is None:
            raise NotFound(f"job {job.job_id} has no stored result {result_id!r}")
        served = await self.results.serve(
            job.job_id, result.file_name, result.media_type, redirect=False
        )
        if served is None:
            raise NotFound(f"result file of job {job.job_id} is gone")
        head = ResultHead(result.file_name, result.media_type, path=served.path)
        if served.path is not None or served.chunks is None:
            return head
        data = bytearray()
        chunks = served.chunks
        try:
            async for chunk in chunks:
                data += chunk
                if len(data) >= limit:
                    break
        finally:
            closing = getattr(chunks, "aclose", None)
            if closing is not None:
                await closing()
        size = served.size if served.size is not None else len(data)
        return ResultHead(
            result.file_name, result.media_type, data=bytes(data[:limit]), size=size
        )

    async def upload(self, job: Job, name: str) -> Served:
        try:
            stored = "upload-" + check_name(name)
        except ValueError:
            raise NotFound(f"job {job.job_id} has no uploaded file {name!r}") from None
        served = await self.results.serve(
            job.job_id, stored, "application/octet-stream", redirect=self.redirect
        )
        if served is None:
            raise NotFound(f"job {job.job_id} has no uploaded file {name!r}")
        return served
