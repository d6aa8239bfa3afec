"""QueueSupervisor: claims QUEUED jobs into warm runner processes and watches them.

Queueing follows DaCHS's UWSWithQueueing run-count goal: per kind, at most N jobs
execute in this process (N = ``kind.slots`` or ``settings.slots_per_kind``), and
a slot is refilled by one ``FOR UPDATE SKIP LOCKED`` claim in queue order, so
any number of supervisors may share a database. Dispatch passes run when a job
is queued (:meth:`job_queued` and NOTIFY), when a slot frees, and on a slow
safety poll. The supervisor alone writes ``EXECUTING → COMPLETED/ERROR``
(:mod:`aiouws.jobrun`), always guarded, so a concurrent ABORT wins.

Crash safety: every claim carries a lease that a heartbeat renews. At start and
on every heartbeat, EXECUTING jobs whose lease expired (their server died), and
at start those claimed under this instance id, end in **ERROR, not re-queued**:
a half-run job may have had side effects (written files, sent mail, run a long
query), so running it again silently is worse than telling the client.

An ABORT or deletion by another process reaches a running job through the
PhaseListener; without a listener, only :meth:`job_aborted` stops jobs (a job
aborted elsewhere then runs on, and its guarded final write simply fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import statistics
from collections import OrderedDict
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .config import Settings
from .contract import Run
from .errors import StoreError
from .inline import InlineRunner
from .jobrun import JobRun
from .kinds import JobKind
from .models import Job, JobParameter
from .notify import PhaseEvent, PhaseListener
from .phases import Phase
from .reaper import DestructionTimer
from .runnerpool import Runner, RunnerProcess, RunnerStartError, Slot
from .store import Claim, JobStore
from .workdir import JobDirs

__all__ = ["LEASE_EXPIRED_MESSAGE", "InlineReservation", "QueueSupervisor"]

log = logging.getLogger(__name__)


#: The job id of an inline slot reserved for a job being created.
_RESERVED = "(reserved)"


@dataclass(frozen=True, slots=True)
class InlineReservation:
    """An inline slot held for a job being created (see reserve_inline)."""

    slot: Slot
    claim: Claim


class _RecentIds:
    """The most recent job ids of some kind, a bounded set (oldest dropped first)."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, job_id: str) -> None:
        self._ids[job_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)

    def pop(self, job_id: str) -> bool:
        """Remove ``job_id``; whether it was there."""
        return self._ids.pop(job_id, False) is None

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._ids


LEASE_EXPIRED_MESSAGE = "server stopped while the job was executing (lease expired)"
RESTARTED_MESSAGE = "server stopped while the job was executing"
SHUTDOWN_MESSAGE = "service shut down"


def _default_instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


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
    ) -> None:
        self.store = store
        self.kinds = dict(kinds)
        self.dirs = dirs
        self.settings = settings
        self.instance_id = instance_id or _default_instance_id()
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self._listener = listener
        self._slots = {
            name: [
                Slot(kind=kind, index=i)
                for i in range(kind.slots or settings.slots_per_kind)
            ]
            for name, kind in self.kinds.items()
        }
        #: Each kind's inline lane (in-process runners for small jobs), if any.
        self._inline_slots = {
            name: [
                Slot(kind=kind, index=i, inline=True) for i in range(kind.inline.slots)
            ]
            for name, kind in self.kinds.items()
            if kind.inline is not None
        }
        self._locks = {name: asyncio.Lock() for name in self.kinds}
        self._running: dict[str, tuple[JobRun, asyncio.Task[None]]] = {}
        self._woken: set[str] = set()
        #: Jobs stopped (aborted, deleted) before this process registered them.
        self._early_stops: dict[str, str] = {}
        #: A job's QUEUED NOTIFY and job_queued() are two signals for one job;
        #: whichever comes second is no news when the job is in one of these.
        self._announced = _RecentIds()  # queued through job_queued()
        self._claimed = _RecentIds()  # claimed by this process
        self._queued_gen: dict[str, int] = {kind: 1 for kind in kinds}
        self._empty_gen: dict[str, int] = {kind: 0 for kind in kinds}
        self._wake = asyncio.Event()
        self._side_tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._started = False
        self._stopping = False
        self._stopped = asyncio.Event()
        self.destruction = DestructionTimer(store, dirs, self)

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Reconcile the table, start warm runners and side tasks, dispatch the queue.

        Raises
        ------
        RunnerStartError
            If a runner cannot be started (all started ones are closed again).
        """
        self.dirs.ensure_root()
        await self._recover(at_start=True)
        slots = [slot for slots in self._slots.values() for slot in slots]
        spawned = await asyncio.gather(
            *(RunnerProcess.spawn(slot.kind) for slot in slots), return_exceptions=True
        )
        failures = [r for r in spawned if isinstance(r, BaseException)]
        for slot, runner in zip(slots, spawned, strict=True):
            if isinstance(runner, RunnerProcess):
                self._install(slot, runner)
        if failures:
            await asyncio.gather(*(s.runner.close(1.0) for s in slots if s.runner))
            raise failures[0]
        for inline in self._inline_slots.values():
            for slot in inline:
                self._install(slot, InlineRunner(slot.kind))
        self._started = True
        if self._listener is not None:
            self._listener.subscribe(self._on_event)
        self._side("dispatcher", self._dispatch_loop())
        self._side("heartbeat", self._heartbeat())
        self._side("destruction timer", self.destruction.run())
        for kind in self.kinds:
            await self._dispatch(kind)
        log.info(
            "supervisor started",
            extra={"instance": self.instance_id, "runners": len(slots)},
        )

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming, let running jobs finish for ``grace`` s, abort the rest."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        grace = self.settings.grace if grace is None else grace
        for task in self._side_tasks:
            if task.get_name() != "heartbeat":
                task.cancel()
        running = list(self._running.values())
        if running:
            await asyncio.wait([task for _, task in running], timeout=grace)
        for run, _task in list(self._running.values()):
            await self._mark_aborted(run.job_id, SHUTDOWN_MESSAGE)
            run.request_stop(SHUTDOWN_MESSAGE)
        await asyncio.gather(
            *(task for _, task in list(self._running.values())), return_exceptions=True
        )
        others = [
            t
            for t in [*self._side_tasks, *self._background]
            if t is not asyncio.current_task()
        ]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await asyncio.gather(
            *(
                slot.runner.close(max(grace, 1.0))
                for slots in [*self._slots.values(), *self._inline_slots.values()]
                for slot in slots
                if slot.runner is not None
            )
        )
        self._stopped.set()
        log.info("supervisor stopped", extra={"instance": self.instance_id})

    # -- what the service calls ---------------------------------------------------

    def reserve_inline(
        self, kind: str, parameters: Sequence[JobParameter]
    ) -> InlineReservation | None:
        """A free inline slot for a job about to be created with RUN, if the kind's
        lane accepts it: the job is then inserted EXECUTING with the returned
        claim (no queueing, no claim statement) and :meth:`start_reserved` runs
        it; :meth:`release` gives the slot back if the insert did not happen."""
        spec = self.kinds.get(kind)
        if spec is None or spec.inline is None or self._stopping or not self._started:
            return None
        slot = next((s for s in self._inline_slots[kind] if s.free), None)
        if slot is None or slot.runner is None:
            return None
        try:
            if not spec.inline.accepts(parameters):
                return None
        except Exception:  # a lane's test failing: the queue takes the job
            log.exception("inline lane test failed", extra={"kind": kind})
            return None
        slot.job_id = _RESERVED
        claim = Claim(self.instance_id, self.lease_seconds, slot.runner.pid)
        return InlineReservation(slot, claim)

    def start_reserved(self, reservation: object, job: Job) -> None:
        """Run ``job``, created EXECUTING with the reservation's claim."""
        assert isinstance(reservation, InlineReservation)
        slot = reservation.slot
        slot.job_id = None
        if self._stopping or slot.runner is None or not slot.runner.alive:
            self._spawn_background(self._mark_aborted(job.job_id, SHUTDOWN_MESSAGE))
            return
        self._hand_over(slot, slot.runner, job)

    def release(self, reservation: object, job_id: str | None = None) -> None:
        assert isinstance(reservation, InlineReservation)
        if reservation.slot.job_id == _RESERVED:
            reservation.slot.job_id = None
        if job_id is not None:
            # Its INSERT may have committed (EXECUTING, claimed here, yet not
            # running): end it now rather than when its lease runs out.
            self._spawn_background(
                self._mark_aborted(job_id, "job creation was interrupted")
            )

    def expect_queued(self, job_id: str) -> None:
        """This process is about to queue ``job_id`` and then call job_queued():
        the job's QUEUED NOTIFY, which may come first, is no news."""
        self._announced.add(job_id)

    async def job_queued(
        self,
        kind: str,
        job_id: str | None = None,
        parameters: Sequence[JobParameter] = (),
    ) -> None:
        """Job ``job_id`` (or some job) of ``kind`` became QUEUED: dispatch now.

        When this returns and a slot was free, the job is EXECUTING and its
        runner has been sent the job. A job the kind's inline lane accepts (by
        its ``parameters``) takes a free inline slot at once, ahead of the queue.
        A database failure is logged, not raised: the job is safely QUEUED and
        the safety poll claims it later.
        """
        if kind not in self.kinds:
            return
        try:
            if job_id is not None and await self._run_inline(kind, job_id, parameters):
                return
        except Exception as exc:  # the job stays QUEUED for the runners
            log.warning("inline dispatch failed: %s", exc, extra={"kind": kind})
        if job_id is None:
            self._maybe_queued(kind)
        else:
            self._announced.add(job_id)
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

    async def quote(self, job: Job) -> datetime | None:
        """When the job will likely be done, from the queue and recent run times.

        None when there is no history for the kind or the job is final.
        """
        runs = await self.store.recent_run_seconds(job.kind)
        if not runs or job.kind not in self.kinds:
            return None
        typical = timedelta(seconds=statistics.median(runs))
        now = datetime.now(UTC)
        if job.phase is Phase.EXECUTING and job.start_time is not None:
            return max(job.start_time + typical, now)
        if job.phase is Phase.QUEUED:
            ahead = await self.store.queue_position(job) or 0
        elif job.phase in (Phase.PENDING, Phase.HELD):
            ahead = await self.store.count_queued(job.kind)
        else:
            return None
        slots = len(self._slots[job.kind])
        # Jobs run in rounds of ``slots``; the running round is half done on average.
        return now + typical * (ahead // slots + 1) + typical / 2

    # -- dispatching --------------------------------------------------------------

    async def _dispatch(self, kind: str, job_id: str | None = None) -> None:
        """Fill the kind's free slots from the queue, oldest job first.

        One claim statement serves all free slots, and none is made while the
        queue is known to be empty: ``_queued_gen`` counts the signals that jobs
        may be waiting (job_queued, NOTIFY, safety poll), ``_empty_gen`` the
        signal count at the last claim that found fewer jobs than slots. The
        signal of ``job_id`` (job_queued) counts only while that job is unclaimed.
        """
        async with self._locks[kind]:
            if job_id is not None:
                if job_id in self._claimed:
                    return  # e.g. its NOTIFY came first
                self._maybe_queued(kind)
            if self._stopping or self._queued_gen[kind] == self._empty_gen[kind]:
                return
            free = [s for s in self._slots[kind] if s.free and s.runner is not None]
            if not free:
                return
            generation = self._queued_gen[kind]
            pids = [s.runner.pid for s in free if s.runner is not None]
            jobs = await self.store.claim_for_runners(
                kind, self.instance_id, self.lease_seconds, pids
            )
            if self._stopping:  # claimed while stop() closes the runners
                for job in jobs:
                    await self._mark_aborted(job.job_id, SHUTDOWN_MESSAGE)
                return
            if len(jobs) < len(free):
                self._empty_gen[kind] = generation
            for slot, job in zip(free, jobs, strict=False):
                assert slot.runner is not None
                self._hand_over(slot, slot.runner, job)

    async def _run_inline(
        self, kind: str, job_id: str, parameters: Sequence[JobParameter]
    ) -> bool:
        """Claim ``job_id`` for a free inline slot if its lane accepts it."""
        reservation = self.reserve_inline(kind, parameters)
        if reservation is None:
            return False
        try:
            job = await self.store.claim_job(job_id, reservation.claim)
        except BaseException:
            self.release(reservation)
            raise
        if job is None:  # taken or stopped meanwhile: nothing left to do here
            self.release(reservation)
        else:
            self.start_reserved(reservation, job)
        return True

    def _maybe_queued(self, kind: str) -> None:
        """Note that jobs of ``kind`` may be waiting (see :meth:`_dispatch`)."""
        self._queued_gen[kind] += 1

    def _hand_over(self, slot: Slot, runner: Runner, job: Job) -> None:
        workdir = self.dirs.path(job.job_id)  # the runner creates it
        runner.send(
            Run(
                job_id=job.job_id,
                workdir=str(workdir),
                parameters=tuple(
                    (p.name, p.value, p.by_reference) for p in job.parameters
                ),
                execution_duration=job.execution_duration,
                owner=job.owner,
            )
        )
        slot.job_id = job.job_id
        self._claimed.add(job.job_id)
        run = JobRun(
            self.store,
            job,
            slot,
            runner,
            grace=self.settings.grace,
            refill=self._refill,
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
        except Exception:
            # A bug here must not leak the slot; the lease resolves the job.
            log.exception("job run failed", extra={"job_id": run.job_id})
        finally:
            del self._running[run.job_id]
            run.slot.job_id = None
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
                    self._maybe_queued(kind)
                self._woken = set(self.kinds)
            kinds, self._woken = self._woken, set()
            for kind in kinds:
                try:
                    await self._dispatch(kind)
                except StoreError as exc:
                    log.warning("dispatch failed: %s", exc, extra={"kind": kind})

    # -- runners ------------------------------------------------------------------

    def _install(self, slot: Slot, runner: Runner) -> None:
        slot.runner = runner
        runner.on_exit = lambda r: self._runner_exited(slot, r)

    def _runner_exited(self, slot: Slot, runner: Runner) -> None:
        """An idle runner died: replace it in the background (busy ones: JobRun)."""
        if slot.job_id is None and slot.runner is runner and not self._stopping:
            log.error(
                "idle runner died", extra={"kind": slot.kind.name, "pid": runner.pid}
            )
            self._spawn_background(self._refill(slot))

    async def _refill(self, slot: Slot) -> None:
        """Give the slot a fresh runner, retrying with back-off while it fails."""
        delay = 0.5
        while not self._stopping:
            try:
                if slot.inline:
                    self._install(slot, InlineRunner(slot.kind))
                else:
                    self._install(slot, await RunnerProcess.spawn(slot.kind))
            except (RunnerStartError, OSError) as exc:
                log.error(
                    "cannot start runner: %s", exc, extra={"kind": slot.kind.name}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            else:
                self._request_dispatch(slot.kind.name)
                return

    # -- events, leases, recovery -------------------------------------------------

    def _on_event(self, event: PhaseEvent) -> None:
        if not self._started or self._stopping:
            return
        if event.phase is Phase.QUEUED:
            if self._announced.pop(event.job_id) or event.job_id in self._claimed:
                return  # queued or claimed here: dispatched already
            if event.kind in self.kinds:
                self._maybe_queued(event.kind)
                self._request_dispatch(event.kind)
            return
        if event.phase is Phase.EXECUTING:
            return
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

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if self._running:
                    await self.store.renew_leases(
                        self.instance_id, self.lease_seconds, list(self._running)
                    )
                await self._recover(at_start=False)
            except StoreError as exc:
                log.warning("heartbeat failed: %s", exc)

    async def _recover(self, *, at_start: bool) -> None:
        """Resolve EXECUTING jobs no live server runs any more to ERROR."""
        lost = await self.store.fail_expired_leases(LEASE_EXPIRED_MESSAGE)
        if at_start:
            lost += await self.store.fail_claimed(self.instance_id, RESTARTED_MESSAGE)
        for job_id in lost:
            log.warning("lost job resolved to ERROR", extra={"job_id": job_id})

    async def _mark_aborted(self, job_id: str, message: str) -> None:
        with contextlib.suppress(StoreError):
            await self.store.mark_aborted(job_id, message)

    # -- side tasks ---------------------------------------------------------------

    def _side(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._side_task_ended)
        self._side_tasks.append(task)

    def _side_task_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopping:
            return
        log.critical(
            "supervisor side task %s died; stopping the supervisor",
            task.get_name(),
            exc_info=task.exception(),
        )
        self._spawn_background(self.stop())

    def _spawn_background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
