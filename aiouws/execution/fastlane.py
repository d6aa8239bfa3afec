"""The fast lane: jobs a kind's inline lane accepts take a free inline slot at once.

A job about to be created with RUN reserves a free inline slot
(:meth:`FastLane.reserve`, from the supervisor's ``admit``) and is inserted
EXECUTING with the slot's claim: no queueing and no claim statement. A job
queued otherwise (RUN of a PENDING job) is claimed by id for a free inline slot
(:meth:`FastLane.run_queued`). Either way the supervisor then follows it like
any job (:class:`.jobrun.JobRun`), and the job's run gets what the kind's
prepare hook made of its parameters (the value the lane's test accepted) as
``ctx.prepared``: they are parsed once.

Fast-lane jobs count towards the global caps (:mod:`aiouws.storage.claims`):
towards their owner's executing cap like any job, and towards a cap of the
kind's fast lane on all hosts (``cluster_inline_slots``), kept apart from the
runner lane's (``cluster_slots``) so that small queries never wait behind big
ones, which is the lane's point. A job the caps hold back is stored QUEUED and
goes to the queue like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiouws.execution.inline import InlineRunner
from aiouws.execution.leases import SHUTDOWN_MESSAGE, Leases
from aiouws.execution.runnerpool import Runner, Slot
from aiouws.kinds import JobKind
from aiouws.models import Job
from aiouws.phases import Phase
from aiouws.storage.claims import NO_CAP, Claim

__all__ = ["FastLane", "InlineAdmission", "InlineReservation"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The job id of an inline slot reserved for a job being created.
_RESERVED = "(reserved)"


@dataclass(frozen=True, slots=True)
class InlineReservation:
    """An inline slot held for a job (see FastLane.reserve), and what the
    kind's prepare hook made of the job's parameters (its run gets it)."""

    slot: Slot
    claim: Claim
    prepared: object


class FastLane:
    """The inline slots of some kinds, reserved and handed over.

    ``hand_over`` starts a claimed job on a slot's runner (the supervisor's);
    ``is_open`` says whether the supervisor takes jobs, ``stopping`` whether it
    is shutting down; ``spawn`` runs a coroutine in the background.
    """

    def __init__(
        self,
        kinds: Mapping[str, JobKind],
        slots: Mapping[str, list[Slot]],
        leases: Leases,
        *,
        hand_over: Callable[[Slot, Runner, Job], None],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        is_open: Callable[[], bool],
        stopping: Callable[[], bool],
        max_owner: int = NO_CAP,
        max_lane: int = NO_CAP,
    ) -> None:
        self._kinds = kinds
        self._caps = {"max_owner": max_owner, "max_lane": max_lane}
        self._slots = slots
        self._leases = leases
        self._hand_over = hand_over
        self._spawn = spawn
        self._is_open = is_open
        self._stopping = stopping

    def reserve(self, kind: str, prepared: object) -> InlineReservation | None:
        """A free inline slot for a job of ``kind``, if the kind's lane accepts it
        (by ``prepared``, see :attr:`aiouws.kinds.InlineLane.accepts`)."""
        spec = self._kinds.get(kind)
        if spec is None or spec.inline is None or not self._is_open():
            return None
        slot = next((s for s in self._slots[kind] if s.free), None)
        if slot is None or slot.runner is None:
            return None
        try:
            if not spec.inline.accepts(prepared):
                return None
        except Exception:  # a lane's test failing: the queue takes the job
            log.exception("inline lane test failed", extra={"kind": kind})
            return None
        slot.job_id = _RESERVED
        claim = self._leases.claim(slot.runner.pid, inline=True, **self._caps)
        return InlineReservation(slot, claim, prepared)

    def start(self, reservation: InlineReservation, job: Job) -> None:
        """Run ``job``, created EXECUTING with the reservation's claim."""
        slot = reservation.slot
        slot.job_id = None
        if self._stopping() or slot.runner is None or not slot.runner.alive:
            self._spawn(self._leases.mark_aborted(job.job_id, SHUTDOWN_MESSAGE))
            return
        if isinstance(slot.runner, InlineRunner):
            slot.runner.expect(job.job_id, reservation.prepared)
        self._hand_over(slot, slot.runner, job)

    def release(
        self, reservation: InlineReservation, job_id: str | None = None
    ) -> None:
        """Give back a reservation whose job was not started; ``job_id``: its
        insert may have committed (then the job is ended, not left running)."""
        if reservation.slot.job_id == _RESERVED:
            reservation.slot.job_id = None
        if job_id is not None:
            # Its INSERT may have committed (EXECUTING, claimed here, yet not
            # running): end it now rather than when its lease runs out.
            self._spawn(
                self._leases.mark_aborted(job_id, "job creation was interrupted")
            )

    async def run_queued(self, kind: str, job_id: str, prepared: object) -> bool:
        """Claim the QUEUED job ``job_id`` for a free inline slot if its lane
        accepts it and the global caps leave room; whether the lane took it."""
        reservation = self.reserve(kind, prepared)
        if reservation is None:
            return False
        try:
            job = await self._leases.store.claim_job(job_id, reservation.claim)
        except BaseException:
            self.release(reservation)
            raise
        if job is None:  # taken, stopped, or held back by the caps: the queue's
            self.release(reservation)
            return False
        self.start(reservation, job)
        return True


class InlineAdmission:
    """A job being created that an inline slot takes at once (see admission);
    ``queued`` dispatches it if the global caps had it stored QUEUED instead."""

    def __init__(
        self,
        lane: FastLane,
        reservation: InlineReservation,
        job_id: str,
        queued: Callable[[Job], Awaitable[None]],
    ) -> None:
        self._lane = lane
        self._reservation = reservation
        self._job_id = job_id
        self._queued = queued

    async def store(self, write: Callable[[Claim | None], Awaitable[T]]) -> T:
        try:
            stored = await write(self._reservation.claim)
        except BaseException:
            # Cancelled or cut off after the INSERT may have committed.
            self._lane.release(self._reservation, self._job_id)
            raise
        if stored is None or getattr(stored, "phase", None) is Phase.QUEUED:
            self._lane.release(self._reservation)  # refused, or held back
        return stored

    async def start(self, job: Job) -> None:
        if job.phase is Phase.QUEUED:
            await self._queued(job)
        else:
            self._lane.start(self._reservation, job)
