"""Frozen dataclasses for jobs and their parts; datetimes are tz-aware UTC."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiouws.phases import ErrorType, Phase

__all__ = [
    "Job",
    "JobError",
    "JobFilter",
    "JobParameter",
    "JobRef",
    "JobResult",
    "NewJob",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobParameter:
    """One job parameter as the client sent it (names are lowercased)."""

    name: str
    value: str
    #: True when ``value`` is a URL to the data (uploads, remote references).
    by_reference: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class JobResult:
    """One result of a job: a file in its working directory or an external URL."""

    id: str
    #: File name inside the job directory, or None for an external ``href``.
    file_name: str | None = None
    href: str | None = None
    media_type: str = "application/octet-stream"
    size: int | None = None
    rows: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobError:
    """The error summary of a job in ERROR (or ABORTED by a limit)."""

    type: ErrorType = ErrorType.FATAL
    message: str
    #: Whether ``{job}/error`` has a detail document (the job dir's error file).
    has_detail: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """Everything UWS says about a job, plus execution bookkeeping."""

    job_id: str
    kind: str
    phase: Phase
    owner: str | None = None
    run_id: str | None = None
    creation_time: datetime
    queued_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    #: Wall-clock limit in seconds; 0 means unlimited.
    execution_duration: int = 0
    destruction_time: datetime | None = None
    quote: datetime | None = None
    parameters: tuple[JobParameter, ...] = ()
    results: tuple[JobResult, ...] = ()
    error: JobError | None = None
    #: Free-form progress notes published as ``jobInfo``.
    job_info: tuple[tuple[str, str], ...] = ()
    runner_pid: int | None = None
    backend_pid: int | None = None
    claimed_by: str | None = None
    lease_until: datetime | None = None

    def parameter(self, name: str) -> str | None:
        """The value of the first parameter called ``name`` (case-insensitive)."""
        wanted = name.lower()
        for p in self.parameters:
            if p.name == wanted:
                return p.value
        return None

    def result(self, result_id: str) -> JobResult | None:
        for r in self.results:
            if r.id == result_id:
                return r
        return None

    @property
    def duration(self) -> timedelta | None:
        if self.execution_duration <= 0:
            return None
        return timedelta(seconds=self.execution_duration)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJob:
    """What the service hands to the store to create a job."""

    job_id: str
    kind: str
    owner: str | None
    run_id: str | None
    execution_duration: int
    destruction_time: datetime
    parameters: tuple[JobParameter, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRef:
    """A row of the job list."""

    job_id: str
    kind: str
    phase: Phase
    run_id: str | None
    owner: str | None
    creation_time: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class JobFilter:
    """The job-list query of UWS 1.1: PHASE (union), AFTER, LAST, all ANDed."""

    owner: str | None
    #: When True, list every owner's jobs (operators only; ``owner`` is ignored).
    all_owners: bool = False
    phases: frozenset[Phase] = field(default_factory=frozenset)
    after: datetime | None = None
    last: int | None = None
    kind: str | None = None
    include_archived: bool = False
