"""Admission: JobService hands a job to the dispatcher in one call, and the fast
lane's admission gives its slot back (and ends a maybe-inserted job) on failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from aiouws.admission import Admission, Queued
from aiouws.config import Settings
from aiouws.errors import TooManyJobs, UsageError
from aiouws.execution.fastlane import FastLane, InlineAdmission
from aiouws.execution.leases import Leases
from aiouws.execution.runnerpool import Runner, Slot
from aiouws.jobapi import JobContext
from aiouws.kinds import InlineLane, JobKind, ParameterSpec
from aiouws.models import Job, JobParameter
from aiouws.phases import Action, Phase
from aiouws.service import JobService
from aiouws.storage.queries import Claim
from aiouws.storage.store import JobStore
from aiouws.workdir import JobDirs


async def _nothing(ctx: JobContext) -> None:
    return None


def _prepare(params: Sequence[JobParameter]) -> object:
    values = {p.name: p.value for p in params}
    if values.get("n") == "bad":
        raise UsageError("N must not be bad")
    return ("prepared", values.get("n"))


KIND = JobKind(
    name="counted",
    entry_point="scripted:run",
    parameters=(ParameterSpec(name="n", default="1"),),
    prepare=_prepare,
)


class RecordingDispatcher:
    """A dispatcher that admits every job to the queue and records the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, object, bool]] = []
        self.started: list[Job] = []

    def admit(
        self, kind: str, job_id: str, prepared: object, *, new_job: bool
    ) -> Admission:
        self.calls.append((kind, job_id, prepared, new_job))
        return Queued(self._start)

    async def _start(self, job: Job) -> None:
        self.started.append(job)

    async def job_aborted(self, job_id: str) -> None:
        return None

    def destruction_changed(self) -> None:
        return None


def _service(
    store: JobStore, tmp_path: Path, dispatcher: RecordingDispatcher, **limits: Any
) -> JobService:
    settings = Settings(data_dir=tmp_path, jobs_dir=tmp_path / "jobs", **limits)
    dirs = JobDirs(settings.jobs_dir or tmp_path / "jobs")
    dirs.ensure_root()
    return JobService(store, dirs, {"counted": KIND}, settings, dispatcher=dispatcher)


async def test_create_with_run_admits_once_with_the_prepared_parameters(
    store: JobStore, tmp_path: Path
) -> None:
    dispatcher = RecordingDispatcher()
    service = _service(store, tmp_path, dispatcher)
    job = await service.create("counted", "me", [], run=True)
    assert job.phase is Phase.QUEUED
    assert dispatcher.calls == [("counted", job.job_id, ("prepared", "1"), True)]
    assert dispatcher.started == [job]
    pending = await service.create("counted", "me", [JobParameter(name="n", value="2")])
    assert len(dispatcher.calls) == 1  # a PENDING job is not admitted
    await service.act(pending.job_id, "me", Action.RUN)
    assert dispatcher.calls[-1] == ("counted", pending.job_id, ("prepared", "2"), False)


async def test_a_job_the_hook_refuses_ends_in_error_unadmitted(
    store: JobStore, tmp_path: Path
) -> None:
    dispatcher = RecordingDispatcher()
    service = _service(store, tmp_path, dispatcher)
    bad = [JobParameter(name="n", value="bad")]
    job = await service.create("counted", "me", bad, run=True)
    assert job.phase is Phase.ERROR
    assert job.error is not None and job.error.message == "N must not be bad"
    assert job.queued_time is None
    assert dispatcher.calls == [] and dispatcher.started == []


async def test_a_refused_create_starts_nothing(store: JobStore, tmp_path: Path) -> None:
    dispatcher = RecordingDispatcher()
    service = _service(store, tmp_path, dispatcher, max_queued_per_owner=0)
    with pytest.raises(TooManyJobs):
        await service.create("counted", "me", [], run=True)
    assert len(dispatcher.calls) == 1 and dispatcher.started == []


# -- the fast lane's admission ---------------------------------------------------


class FakeRunner:
    pid = 4242
    alive = True
    on_exit: Callable[[Runner], None] | None = None


class FakeLeases:
    def __init__(self) -> None:
        self.aborted: list[tuple[str, str]] = []

    def claim(self, runner_pid: int, **caps: Any) -> Claim:
        return Claim("me", 30.0, runner_pid, **caps)

    async def mark_aborted(self, job_id: str, message: str) -> None:
        self.aborted.append((job_id, message))


def _lane(
    accepts: Callable[[Any], bool],
) -> tuple[FastLane, Slot, FakeLeases, list[Job]]:
    kind = JobKind(
        name="quick",
        entry_point="scripted:run",
        inline=InlineLane(accepts=accepts, run=_nothing, slots=1),
    )
    slot = Slot(kind=kind, index=0, inline=True, runner=cast(Runner, FakeRunner()))
    leases = FakeLeases()
    handed: list[Job] = []
    background: list[asyncio.Task[None]] = []
    lane = FastLane(
        {"quick": kind},
        {"quick": [slot]},
        cast(Leases, leases),
        hand_over=lambda _slot, _runner, job: handed.append(job),
        spawn=lambda coro: background.append(asyncio.ensure_future(coro)),
        is_open=lambda: True,
        stopping=lambda: False,
    )
    return lane, slot, leases, handed


def _admission(lane: FastLane, job_id: str) -> InlineAdmission:
    reservation = lane.reserve("quick", "small")
    assert reservation is not None
    return InlineAdmission(lane, reservation, job_id, _nothing_queued)


async def _nothing_queued(job: Job) -> None:
    raise AssertionError(f"{job.job_id} was not to be queued")


async def test_the_lane_admission_gives_the_slot_back_when_the_insert_fails() -> None:
    lane, slot, leases, handed = _lane(lambda prepared: prepared == "small")
    admission = _admission(lane, "job-a")
    assert not slot.free  # reserved
    claims: list[Claim | None] = []

    async def failing(claim: Claim | None) -> Job | None:
        claims.append(claim)
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await admission.store(failing)
    assert claims == [Claim("me", 30.0, 4242, inline=True)]
    assert slot.free
    await asyncio.sleep(0)
    assert leases.aborted == [("job-a", "job creation was interrupted")]
    assert handed == []


async def test_the_lane_admission_gives_the_slot_back_when_nothing_is_inserted() -> (
    None
):
    lane, slot, leases, handed = _lane(lambda prepared: True)
    admission = _admission(lane, "job-b")

    async def refused(claim: Claim | None) -> Job | None:
        return None

    assert await admission.store(refused) is None
    assert slot.free
    await asyncio.sleep(0)
    assert leases.aborted == [] and handed == []


async def test_the_lane_takes_only_what_it_accepts() -> None:
    lane, slot, _, _ = _lane(lambda prepared: prepared == "small")
    assert lane.reserve("quick", "big") is None
    assert lane.reserve("other", "small") is None
    assert lane.reserve("quick", "small") is not None
    assert lane.reserve("quick", "small") is None  # its one slot is reserved

    def broken(prepared: object) -> bool:
        raise RuntimeError("lane test failed")

    lane, _, _, _ = _lane(broken)
    assert lane.reserve("quick", "small") is None


async def test_queued_admission_stores_without_a_claim() -> None:
    started: list[Job] = []

    async def start(job: Job) -> None:
        started.append(job)

    async def write(claim: Claim | None) -> str:
        return f"stored with {claim}"

    admission = Queued(cast(Callable[[Job], Awaitable[None]], start))
    assert await admission.store(write) == "stored with None"
    await Queued().start(cast(Job, "job"))  # no dispatch: nothing to start
    assert started == []
