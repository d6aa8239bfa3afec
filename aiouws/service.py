"""JobService: the UWS use cases (create, run, abort, delete, update, wait, list).

It enforces ownership, limits and the phase rules, and delegates storage to
:class:`~aiouws.storage.store.JobStore` and execution to a
:class:`~aiouws.admission.Dispatcher` (the queue supervisor), which admits each
job to be queued in one call. Following a job (WAIT, quote) is
:mod:`aiouws.progress`. HTTP handlers call exactly one method of this class per
request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from aiouws.admission import Admission, Dispatcher, Queued
from aiouws.config import Settings
from aiouws.contract import ERROR_VOTABLE
from aiouws.errors import (
    InvalidPhaseError,
    JobNotFound,
    NotFound,
    PermissionDenied,
    ResultsUnavailable,
    TooManyJobs,
)
from aiouws.jobfiles import JobFiles
from aiouws.kinds import JobKind
from aiouws.limits import clamp_destruction, clamp_duration, too_many
from aiouws.models import Job, JobFilter, JobParameter, JobRef, NewJob
from aiouws.phases import Action, ErrorType, Phase, PhaseChangeError, resolve_action
from aiouws.progress import estimate_quote, wait_for_change, wait_through_outage
from aiouws.results import LocalStore, ResultStore
from aiouws.storage.notify import PhaseListener
from aiouws.storage.store import JobStore
from aiouws.uploads import Upload, place_uploads, upload_parameters
from aiouws.workdir import JobDirs, new_job_id

__all__ = ["JobService", "log_context"]

log = logging.getLogger(__name__)

#: Phases in which a job's parameters and limits may still be changed.
_EDITABLE = frozenset({Phase.PENDING, Phase.HELD})


def _visible(job: Job, owner: str | None, kind: str | None = None) -> Job:
    """``job`` if ``owner`` may see it as one of ``kind`` (403 / 404 otherwise)."""
    if job.owner != owner:
        raise PermissionDenied(f"job {job.job_id} belongs to another user")
    if kind is not None and job.kind != kind:
        raise JobNotFound(job.job_id)
    return job


def log_context(job: Job) -> dict[str, object]:
    """The ``extra`` of every log line about a job."""
    return {
        "job_id": job.job_id,
        "phase": job.phase.value,
        "owner": job.owner,
        "kind": job.kind,
    }


class JobService:
    """The use cases of a UWS service over any number of job kinds."""

    def __init__(
        self,
        store: JobStore,
        dirs: JobDirs,
        kinds: Mapping[str, JobKind],
        settings: Settings,
        *,
        dispatcher: Dispatcher | None = None,
        listener: PhaseListener | None = None,
        results: ResultStore | None = None,
    ) -> None:
        self.store = store
        self.dirs = dirs
        self.kinds = kinds
        #: Where a job's files are kept (any host's jobs: a shared store).
        self.results = results or LocalStore(dirs.root)
        #: The files of a job (results, uploads, error documents).
        self.files = JobFiles(
            self.results, kinds, redirect=settings.results_delivery == "redirect"
        )
        self.settings = settings
        self.dispatcher = dispatcher
        self.listener = listener

    # -- queries --------------------------------------------------------------------

    async def get(self, job_id: str, owner: str | None) -> Job:
        """The job, if ``owner`` may see it (404 unknown, 403 someone else's)."""
        return _visible(await self.store.get(self.dirs_checked(job_id)), owner)

    async def get_of_kind(self, job_id: str, owner: str | None, kind: str) -> Job:
        """Like :meth:`get`, and 404 for a job of another kind. Always read:
        a GET shows every change committed before it, on any host."""
        return _visible(await self.store.get(self.dirs_checked(job_id)), owner, kind)

    async def list_jobs(self, flt: JobFilter) -> list[JobRef]:
        """The jobs of ``flt.owner`` that ``flt`` selects, newest first.

        Anonymous requests list no jobs: anonymous users cannot be told apart,
        so a job created anonymously belongs to no one and is reached only by
        its URL (its unguessable id), never found in a list.
        """
        if flt.owner is None:
            return []
        # A list is at most max_list_jobs long (the newest), LAST or not: one
        # request's memory and time stay bounded whatever an owner has.
        if flt.last is None or flt.last > self.settings.max_list_jobs:
            flt = replace(flt, last=self.settings.max_list_jobs)
        return await self.store.list_jobs(flt)

    async def summaries(
        self, refs: Sequence[JobRef], owner: str | None, chars: int
    ) -> dict[str, str]:
        """Job id -> the start of its query (or parameters), for ``owner``'s
        jobs among ``refs`` (see :meth:`JobStore.summaries`)."""
        return await self.store.summaries([r.job_id for r in refs], owner, chars)

    async def quote(self, job: Job) -> datetime | None:
        """The job's quote: estimated while it waits to run (with a dispatcher)."""
        if self.dispatcher is None or job.phase not in (Phase.PENDING, Phase.QUEUED):
            return job.quote
        kind = self.kinds.get(job.kind)
        if kind is None:
            return None
        return await estimate_quote(
            self.store, job, self.settings.cluster_cap(kind.name)
        )

    async def wait(
        self,
        job_id: str,
        owner: str | None,
        kind: str,
        timeout: float,
        phase: Phase | None = None,
    ) -> Job:
        """UWS 1.1 blocking GET: return when the phase changes or ``timeout`` passes.

        Returns at once if the job is in a final phase or not in ``phase`` (see
        :func:`aiouws.progress.wait_for_change`).
        """
        timeout = min(timeout, self.settings.wait_cap)
        listener = self.listener
        if listener is None or timeout <= 0:
            return await self.get_of_kind(job_id, owner, kind)
        return await wait_through_outage(
            lambda left: wait_for_change(
                listener,
                job_id,
                timeout=left,
                phase=phase,
                read=lambda: self.get_of_kind(job_id, owner, kind),
            ),
            timeout,
        )

    # -- commands -------------------------------------------------------------------

    async def create(
        self,
        kind_name: str,
        owner: str | None,
        params: Sequence[JobParameter],
        *,
        run_id: str | None = None,
        execution_duration: int | None = None,
        destruction: datetime | None = None,
        uploads: Sequence[Upload] = (),
        upload_url: str = "",
        run: bool = False,
    ) -> Job:
        """Create a job (PENDING, or QUEUED and dispatched when ``run``).

        Raises
        ------
        TooManyJobs
            The owner is at the queued or executing cap.
        """
        kind = self._kind(kind_name)
        job_id = new_job_id()
        files = upload_parameters(job_id, uploads, upload_url)
        problems, prepared = await kind.check(params, files) if run else ([], None)
        queue_now = run and not problems
        stored = tuple(kind.with_defaults(params) if queue_now else params) + files
        try:
            await place_uploads(self.results, job_id, uploads)
            new = NewJob(
                job_id=job_id,
                kind=kind.name,
                owner=owner,
                run_id=run_id,
                execution_duration=clamp_duration(self.settings, execution_duration),
                destruction_time=clamp_destruction(self.settings, destruction),
                parameters=stored,
            )
            admission = self._admit(kind, job_id, prepared, queue_now, new_job=True)
            job = await admission.store(
                lambda claim: self.store.create(
                    new,
                    phase=Phase.QUEUED if queue_now else Phase.PENDING,
                    max_queued=self.settings.max_queued_per_owner,
                    claim=claim,
                )
            )
            if job is None:
                raise await too_many(self.store, self.settings, owner) or TooManyJobs(
                    "too many active jobs; retry later"
                )
        except BaseException:
            await self.results.remove_job(job_id)
            raise
        log.info("job created", extra=log_context(job))
        if problems:
            return await self._reject(job, kind, problems)
        await admission.start(job)
        return job

    async def act(self, job_id: str, owner: str | None, action: Action) -> Job:
        """Apply a client action (RUN, ABORT, ...) to a job's phase."""
        job = await self.get(job_id, owner)
        try:
            target = resolve_action(job.phase, action)
        except PhaseChangeError as exc:
            raise InvalidPhaseError(str(exc)) from exc
        if target is None:
            log.info(
                "action ignored", extra={**log_context(job), "action": action.value}
            )
            return job
        if action is Action.RUN:
            return await self._run(job, self._kind(job.kind))
        if action is Action.ABORT:
            return await self._abort(job)
        return await self._change(job, target)

    async def delete(self, job_id: str, owner: str | None) -> None:
        """Delete a job: abort it if it runs, then remove its row and files."""
        job = await self.get(job_id, owner)
        if job.phase in (Phase.EXECUTING, Phase.QUEUED, Phase.SUSPENDED):
            try:
                job = await self._abort(job)
            except InvalidPhaseError:
                pass  # it finished meanwhile; delete it all the same
        gone = await self.store.delete(job_id)
        try:
            await self.results.remove_job(job_id)
        except ResultsUnavailable as exc:  # the job is gone: the sweep takes them
            log.warning(
                "files of a deleted job left to the sweep: %s",
                exc,
                extra={"job_id": job_id},
            )
        if gone is not None:
            log.info("job deleted", extra=log_context(gone))

    async def set_destruction(
        self, job_id: str, owner: str | None, when: datetime
    ) -> Job:
        job = await self.get(job_id, owner)
        allowed = frozenset(Phase) - {Phase.ARCHIVED}
        changed = await self.store.update(
            job.job_id,
            allowed=allowed,
            what="change the destruction time",
            destruction_time=clamp_destruction(self.settings, when),
        )
        if self.dispatcher is not None:
            self.dispatcher.destruction_changed()  # the timer may need to fire sooner
        return changed

    async def set_execution_duration(
        self, job_id: str, owner: str | None, seconds: int
    ) -> Job:
        job = await self.get(job_id, owner)
        return await self.store.update(
            job.job_id,
            allowed=_EDITABLE,
            what="change the execution duration",
            execution_duration=clamp_duration(self.settings, seconds),
        )

    async def update_parameters(
        self, job_id: str, owner: str | None, params: Sequence[JobParameter]
    ) -> Job:
        """Set or replace parameters of a PENDING job (UWS 1.1 POST parameters)."""
        job = await self.get(job_id, owner)
        if job.phase not in _EDITABLE:
            raise InvalidPhaseError(
                f"job is {job.phase.value}: parameters can only be "
                "changed while PENDING"
            )
        names = {p.name for p in params}
        merged = tuple(p for p in job.parameters if p.name not in names) + tuple(params)
        return await self.store.update(
            job.job_id, allowed=_EDITABLE, what="change parameters", parameters=merged
        )

    # -- checks -----------------------------------------------------------------------

    def dirs_checked(self, job_id: str) -> str:
        """Validate a job id from a URL (404 for anything that is not an id)."""
        self.dirs.path(job_id)
        return job_id

    # -- internals ----------------------------------------------------------------

    def _kind(self, name: str) -> JobKind:
        kind = self.kinds.get(name)
        if kind is None:
            raise NotFound(f"no job kind {name!r}")
        return kind

    async def _reject(self, job: Job, kind: JobKind, problems: Sequence[str]) -> Job:
        """End a job that cannot run (missing or bad parameters) in ERROR, with
        the kind's error document if it has one.

        It was stored PENDING and is never queued.
        """
        message = "; ".join(problems)
        document = None if kind.error_votable is None else kind.error_votable(message)
        if document is not None:
            await self.results.put(
                job.job_id, ERROR_VOTABLE, document, "application/x-votable+xml"
            )
        job = await self.store.change_phase(
            job.job_id,
            Phase.ERROR,
            allowed=_EDITABLE,
            set_now=["end_time"],
            error_type=ErrorType.FATAL,
            error_message=message,
            error_has_detail=document is not None,
        )
        log.info("job rejected at run", extra={**log_context(job), "reason": message})
        return job

    async def _run(self, job: Job, kind: JobKind) -> Job:
        problems, prepared = await kind.check(job.parameters)
        if problems:
            return await self._reject(job, kind, problems)
        job_id, parameters = job.job_id, kind.with_defaults(job.parameters)
        admission = self._admit(kind, job_id, prepared, True, new_job=False)
        queued = await admission.store(
            lambda _claim: self.store.queue_capped(
                job_id,
                job.owner,
                allowed=_EDITABLE,
                max_queued=self.settings.max_queued_per_owner,
                parameters=parameters,
            )
        )
        if queued is None:
            raise await too_many(self.store, self.settings, job.owner) or TooManyJobs(
                "too many active jobs; retry later"
            )
        job = queued
        log.info("job queued", extra=log_context(job))
        # Returns once the job is handed to a runner if a slot was free; the job
        # returned here is as queued (callers only redirect to it).
        await admission.start(job)
        return job

    def _admit(
        self,
        kind: JobKind,
        job_id: str,
        prepared: object,
        queue: bool,
        *,
        new_job: bool,
    ) -> Admission:
        """The dispatcher's admission of a job to be queued (``queue``); else
        one that stores the job as it is and starts nothing."""
        if not queue or self.dispatcher is None:
            return Queued()
        return self.dispatcher.admit(kind.name, job_id, prepared, new_job=new_job)

    async def _abort(self, job: Job) -> Job:
        was = job.phase
        aborted = await self.store.change_phase(
            job.job_id,
            Phase.ABORTED,
            allowed=(
                Phase.PENDING,
                Phase.HELD,
                Phase.QUEUED,
                Phase.EXECUTING,
                Phase.SUSPENDED,
            ),
            set_now=["end_time"],
        )
        log.info("job aborted", extra={**log_context(aborted), "was": was.value})
        if was is Phase.EXECUTING and self.dispatcher is not None:
            await self.dispatcher.job_aborted(job.job_id)
        return aborted

    async def _change(self, job: Job, target: Phase) -> Job:
        if target is Phase.ARCHIVED:
            # UWS 1.1: an archived job keeps its metadata, its results are gone.
            changed = await self.store.change_phase(
                job.job_id, target, allowed=[job.phase], results=()
            )
            await self.results.remove_job(job.job_id)
        else:
            changed = await self.store.change_phase(
                job.job_id, target, allowed=[job.phase]
            )
        log.info("job phase changed", extra=log_context(changed))
        return changed
