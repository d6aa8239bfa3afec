"""A job's files as the UWS resources serve them: its results, uploads and error
documents, found in its working directory (:class:`~aiouws.workdir.JobDirs`).

Read-only; which job a request may see is :class:`~aiouws.service.JobService`'s
concern (its ``files``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aiouws.errors import NotFound
from aiouws.kinds import JobKind
from aiouws.models import Job
from aiouws.workdir import JobDirs

__all__ = ["JobFiles"]


class JobFiles:
    """Where a job's results, uploads and error documents are."""

    def __init__(self, dirs: JobDirs, kinds: Mapping[str, JobKind]) -> None:
        self.dirs = dirs
        self.kinds = kinds

    def error_detail(self, job: Job) -> tuple[Path, str] | None:
        """The job's error detail file and media type, if there is one (an
        empty file, e.g. left by a full disk, is none)."""
        if job.error is None or not job.error.has_detail:
            return None
        for name, media in (
            ("error.vot", "application/x-votable+xml"),
            ("error.txt", "text/plain; charset=utf-8"),
        ):
            path = self.dirs.path(job.job_id) / name
            try:
                if path.is_file() and path.stat().st_size > 0:
                    return path, media
            except OSError:
                continue
        return None

    def error_summary(self, job: Job) -> tuple[bytes, str] | None:
        """The job's error message as its kind's error document (TAP: a DALI
        VOTable), for a job without a detail file; None: the kind has none."""
        kind = self.kinds.get(job.kind)
        if job.error is None or kind is None or kind.error_votable is None:
            return None
        return kind.error_votable(job.error.message), "application/x-votable+xml"

    def result_file(
        self, job: Job, result_id: str
    ) -> tuple[Path | None, str, str | None]:
        """(local path or None, media type, external href) of a result; 404 if none."""
        result = job.result(result_id)
        if result is None:
            raise NotFound(f"job {job.job_id} has no result {result_id!r}")
        if result.file_name is None:
            return None, result.media_type, result.href
        return self.dirs.file(job.job_id, result.file_name), result.media_type, None

    def upload_file(self, job: Job, name: str) -> Path:
        path = self.dirs.file(job.job_id, "upload-" + name)
        if not path.is_file():
            raise NotFound(f"job {job.job_id} has no uploaded file {name!r}")
        return path
