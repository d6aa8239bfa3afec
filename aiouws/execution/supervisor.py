"""QueueSupervisor: claims QUEUED jobs into warm runner processes and watches them.

Queueing follows DaCHS's UWSWithQueueing run-count goal: per kind, at most N jobs
execute in this process (N = ``kind.slots`` or ``settings.slots_per_kind``), and
a slot is refilled by one claim in queue order, so any number of supervisors
may share a database. The claim also holds the global caps, counted across
all hosts (:mod:`aiouws.storage.claims`): the kind's (``cluster_slots``) and
each owner's (``max_executing_per_owner``); jobs they hold back stay QUEUED
until a job ends on some host. Dispatch passes run when a job
is queued (:meth:`job_queued` and NOTIFY), when a slot frees, and on a slow
safety poll. The supervisor alone writes ``EXECUTING → COMPLETED/ERROR``
(:mod:`.jobrun`), always guarded, so a concurrent ABORT wins.

Its helpers own the rest: :mod:`.slots` the runners, :mod:`.fastlane`
the inline slots, :mod:`.leases` crash safety (a job whose server died
ends in ERROR, never re-queued), :mod:`.queuenews` when a claim is worth
making, :mod:`.sidetasks` the background tasks.

An ABORT or deletion by another process reaches a running job through the
PhaseListener, and one made while the listener was down through
:mod:`.reconcile` once it listens again; without a listener, only
:meth:`job_aborted` stops jobs (a job aborted elsewhere then runs on, and its
guarded final write simply fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from aiouws.admission import Admission, Queued
from aiouws.config import Settings
from aiouws.contract import Run
from aiouws.errors import StoreError
from aiouws.execution.fastlane import FastLane, InlineAdmission
from aiouws.execution.jobrun import JobRun
from aiouws.execution.leases import SHUTDOWN_MESSAGE, Leases
from aiouws.execution.queuenews import QueueNews
from aiouws.execution.reaper import DestructionTimer
from aiouws.execution.reconcile import Reconciler
from aiouws.execution.runnerpool import Runner, Slot
from aiouws.execution.sidetasks import SideTasks
from aiouws.execution.slots import RunnerSlots
from aiouws.kinds import JobKind
from aiouws.models import Job
from aiouws.phases import Phase
from aiouws.results import LocalStore, ResultStore
from aiouws.results.sweep import OrphanSweep
from aiouws.storage.claims import NO_CAP
from aiouws.storage.notify import PhaseEvent, PhaseListener
from aiouws.storage.store import JobStore
from aiouws.workdir import JobDirs

__all__ = ["QueueSupervisor"]

log = logging.getLogger(__name__)


class QueueSupervisor:
    """Runs the queued jobs of some kinds in warm runner processes."""

    def __init__(
        self,
        store: JobStore,
        kinds: Mapping[str, JobKind],
        dirs: JobDirs,
        settings: Settings,
        listener: PhaseListener | None,
        *,
        instance_id: str | None = None,
        lease_seconds: float = 30.0,
        poll_interval: float = 5.0,
        results: ResultStore | None = None,
    ) -> None:
        self.store = store
        self.kinds = dict(kinds)
        self.dirs = dirs
        #: Where results, error documents and uploads are kept.
        self.results = results or LocalStore(dirs.root)
        self.settings = settings
        self.poll_interval = poll_interval
        self.leases = Leases(
            store, instance_id=instance_id, lease_seconds=lease_seconds
        )
        self._listener = listener
        self._tasks = SideTasks(on_death=lambda: self.stop())
        self.slots = RunnerSlots(
            self.kinds,
            settings.slots_per_kind,
            on_ready=self._request_dispatch,
            spawn=self._tasks.spawn,
            stopping=lambda: self._stopping,
            max_rss=settings.runner_max_rss * 1024 * 1024,
        )
        self._fast = FastLane(
            self.kinds,
            self.slots.inline,
            self.leases,
            hand_over=self._hand_over,
            spawn=self._tasks.spawn,
            is_open=lambda: self._started and not self._stopping,
            stopping=lambda: self._stopping,
            max_owner=settings.max_executing_per_owner,
            max_lane=settings.cluster_inline_slots or NO_CAP,
        )
        self._locks = {name: asyncio.Lock() for name in self.kinds}
        self._running: dict[str, tuple[JobRun, asyncio.Task[None]]] = {}
        self._woken: set[str] = set()
        #: Jobs stopped (aborted, deleted) before this process registered them.
        self._early_stops: dict[str, str] = {}
        self._news = QueueNews(self.kinds)
        self._wake = asyncio.Event()
        self._started = False
        self._stopping = False
        self._stopped = asyncio.Event()
        self.destruction = DestructionTimer(store, self.results, self)
        self.sweep = OrphanSweep(
            self.results,
            store,
            interval=settings.results_sweep_seconds,
            grace=settings.results_sweep_grace,
        )
        self.reconciler = Reconciler(
            store, lambda: {job_id: run for job_id, (run, _) in self._running.items()}
        )
        #: Called with each job (as claimed) once this process has run it.
        self.on_finished: list[Callable[[Job], None]] = []

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Reconcile the table, start warm runners and side tasks, dispatch the queue.

        Raises
        ------
        RunnerStartError
            If a runner cannot be started (all started ones are closed again).
        """
        self.dirs.ensure_root()
        await self.leases.recover(at_start=True)
        runners = await self.slots.start()
        self._started = True
        if self._listener is not None:
            self._listener.subscribe(self._on_event)
            self._listener.on_lost(self.reconciler.soon)
        self._tasks.start("dispatcher", self._dispatch_loop())
        self._tasks.start("heartbeat", self.leases.heartbeat(lambda: self._running))
        self._tasks.start("destruction timer", self.destruction.run())
        if self.sweep.interval > 0:
            self._tasks.start("results sweep", self.sweep.run())
            if self.settings.results_store == "s3" and not self.settings.results_prefix:
                log.warning(
                    "the results sweep runs over the whole bucket (no results_prefix):"
                    " job-shaped folders that this service's database does not know"
                    " are removed, so do not share the bucket"
                )
        for kind in self.kinds:
            await self._dispatch(kind)
        log.info(
            "supervisor started",
            extra={"instance": self.leases.instance_id, "runners": runners},
        )

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming, let running jobs finish for ``grace`` s, abort the rest."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        grace = self.settings.grace if grace is None else grace
        self._tasks.closing(keep="heartbeat")
        running = list(self._running.values())
        if running:
            await asyncio.wait([task for _, task in running], timeout=grace)
        for run, _task in list(self._running.values()):
            await self.leases.mark_aborted(run.job_id, SHUTDOWN_MESSAGE)
            run.request_stop(SHUTDOWN_MESSAGE)
        left = [task for _, task in self._running.values()]
        if left:
            # e.g. an outcome retried while the database is away: not for ever
            _, pending = await asyncio.wait(left, timeout=max(grace, 1.0) + 5.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)
        await self._tasks.cancel_all()
        await self.reconciler.close()
        await self.slots.close(max(grace, 1.0))
        self._stopped.set()
        log.info("supervisor stopped", extra={"instance": self.leases.instance_id})

    # -- what the service calls ---------------------------------------------------

    def admit(
        self, kind: str, job_id: str, prepared: object, *, new_job: bool
    ) -> Admission:
        """Admit job ``job_id`` of ``kind`` about to be queued (see
        :class:`aiouws.admission.Dispatcher`): a new job the kind's fast lane
        accepts takes a free inline slot and is created EXECUTING; any other is
        stored QUEUED and dispatched by ``admission.start`` (:meth:`job_queued`)."""
        if new_job:
            reservation = self._fast.reserve(kind, prepared)
            if reservation is not None:
                return InlineAdmission(
                    self._fast,
                    reservation,
                    job_id,
                    lambda job: self.job_queued(job.kind, job.job_id),
                )
        # The job's QUEUED NOTIFY, which may come before job_queued(), is no news.
        self._news.announced.add(job_id)
        return Queued(lambda job: self.job_queued(job.kind, job.job_id, prepared))

    async def job_queued(
        self, kind: str, job_id: str | None = None, prepared: object = ()
    ) -> None:
        """Job ``job_id`` (or some job) of ``kind`` became QUEUED: dispatch now.

        When this returns and a slot was free, the job is EXECUTING and its
        runner has been sent the job. A job the kind's inline lane accepts (by
        ``prepared``, see :meth:`admit`) takes a free inline slot at once, ahead
        of the queue. A database failure is logged, not raised: the job is
        safely QUEUED and the safety poll claims it later.
        """
        if kind not in self.kinds:
            return
        try:
            if job_id is not None and await self._fast.run_queued(
                kind, job_id, prepared
            ):
                return
        except Exception as exc:  # the job stays QUEUED for the runners
            log.warning("inline dispatch failed: %s", exc, extra={"kind": kind})
        if job_id is None:
            self._news.maybe_queued(kind)
        else:
            self._news.announced.add(job_id)
        try:
            await self._dispatch(kind, job_id)
        except StoreError as exc:
            log.warning("dispatch failed: %s", exc, extra={"kind": kind})

    async def job_aborted(self, job_id: str) -> None:
        """The job is ABORTED in the table; stop it if it runs here; await its slot."""
        entry = self._running.get(job_id)
        if entry is None:
            self._note_stopped(job_id, "aborted")
            return
        run, task = entry
        run.request_stop("aborted")
        await asyncio.shield(task)

    def destruction_changed(self) -> None:
        """A job's destruction time changed: the timer re-reads the next one."""
        self.destruction.wake()

    # -- dispatching --------------------------------------------------------------

    async def _dispatch(self, kind: str, job_id: str | None = None) -> None:
        """Fill the kind's free slots from the queue, oldest job first.

        One claim statement serves all free slots, and none is made while the
        queue is known to be empty (:class:`.queuenews.QueueNews`). The
        signal of ``job_id`` (job_queued) counts only while that job is unclaimed.
        """
        async with self._locks[kind]:
            if job_id is not None:
                if job_id in self._news.claimed:
                    return  # e.g. its NOTIFY came first
                self._news.maybe_queued(kind)
            generation = self._news.generation(kind)
            if self._stopping or generation is None:
                return
            free = self.slots.free(kind)
            if not free:
                return
            pids = [s.runner.pid for s in free if s.runner is not None]
            # The claim names these runners: none is swapped until each job is
            # handed to the runner named for it (or the slot stays idle).
            for slot in free:
                slot.claiming = True
            try:
                jobs = await self.store.claim_for_runners(
                    kind,
                    self.leases.instance_id,
                    self.leases.lease_seconds,
                    pids,
                    max_kind=self.settings.cluster_cap(kind) or NO_CAP,
                    max_owner=self.settings.max_executing_per_owner,
                )
                if self._stopping:  # claimed while stop() closes the runners
                    for job in jobs:
                        await self.leases.mark_aborted(job.job_id, SHUTDOWN_MESSAGE)
                    return
                for slot, job in zip(free, jobs, strict=False):
                    assert slot.runner is not None
                    self._hand_over(slot, slot.runner, job)
                if len(jobs) < len(free):
                    self._news.found_empty(kind, generation)
                    if await self.store.queue_waiting(kind):
                        self._news.held_back(kind)  # by the global caps
            finally:
                for slot in free:
                    slot.claiming = False
                    if not self._stopping:
                        self.slots.take_successor(slot)  # idle: one got ready meanwhile

    def _hand_over(self, slot: Slot, runner: Runner, job: Job) -> None:
        workdir = self.dirs.path(job.job_id)  # the runner creates it
        spec = self.results.spec
        runner.send(
            Run(
                job_id=job.job_id,
                workdir=str(workdir),
                store=None if spec.kind == "local" else spec.as_message(),
                parameters=tuple(
                    (p.name, p.value, p.by_reference) for p in job.parameters
                ),
                execution_duration=job.execution_duration,
                owner=job.owner,
            )
        )
        slot.job_id = job.job_id
        self._news.claimed.add(job.job_id)
        run = JobRun(
            self.store,
            job,
            slot,
            runner,
            grace=self.settings.grace,
            refill=self.slots.refill,
        )
        task = asyncio.create_task(self._follow(run), name=f"job-{job.job_id}")
        self._running[job.job_id] = (run, task)
        stopped = self._early_stops.pop(job.job_id, None)
        if stopped is not None:
            run.request_stop(stopped)
        log.debug(
            "job claimed",
            extra={
                "job_id": job.job_id,
                "kind": job.kind,
                "owner": job.owner,
                "pid": runner.pid,
            },
        )

    async def _follow(self, run: JobRun) -> None:
        try:
            await run.follow()
            for callback in self.on_finished:
                callback(run.job)
        except Exception:
            # A bug here must not leak the slot; the lease resolves the job.
            log.exception("job run failed", extra={"job_id": run.job_id})
        finally:
            del self._running[run.job_id]
            run.slot.job_id = None
            self.slots.job_ended(run.slot)
            self._request_dispatch(run.slot.kind.name)

    def _request_dispatch(self, kind: str) -> None:
        if not self._stopping:
            self._woken.add(kind)
            self._wake.set()

    async def _dispatch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + self.poll_interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(next_poll):
                    await self._wake.wait()
            self._wake.clear()
            if loop.time() >= next_poll:
                # The safety poll, on a fixed clock (a busy server is woken all
                # the time): look at every queue again.
                next_poll = loop.time() + self.poll_interval
                for kind in self.kinds:
                    self._news.maybe_queued(kind)
                self._woken = set(self.kinds)
            kinds, self._woken = self._woken, set()
            for kind in kinds:
                try:
                    await self._dispatch(kind)
                except StoreError as exc:
                    log.warning("dispatch failed: %s", exc, extra={"kind": kind})

    # -- events ---------------------------------------------------------------------

    def _on_event(self, event: PhaseEvent) -> None:
        if not self._started or self._stopping:
            return
        if event.phase is Phase.QUEUED:
            if not self._news.notified(event.job_id):
                return  # queued or claimed here: dispatched already
            if event.kind in self.kinds:
                self._news.maybe_queued(event.kind)
                self._request_dispatch(event.kind)
            return
        if event.phase is Phase.EXECUTING:
            return
        for kind in self._news.room_made():  # the global caps may have room
            self._request_dispatch(kind)
        entry = self._running.get(event.job_id)
        what = "deleted" if event.phase is None else event.phase.value
        if entry is not None:
            entry[0].request_stop(f"job {what} elsewhere")
        else:
            self._note_stopped(event.job_id, f"job {what} elsewhere")

    def _note_stopped(self, job_id: str, reason: str) -> None:
        """Remember a stop for a job not (yet) handed over: a claim may be in flight.

        An ABORT can commit between our claim's commit and its hand-over; the
        hand-over then finds the job here and stops it at once.
        """
        self._early_stops[job_id] = reason
        while len(self._early_stops) > 1000:
            del self._early_stops[next(iter(self._early_stops))]
