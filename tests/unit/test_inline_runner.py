"""InlineRunner on its own: the in-process runner of a kind's inline lane."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aiouws.contract import Cancel, Done, DoneStatus, Result, Run, Started
from aiouws.execution.inline import InlineRunner
from aiouws.execution.runnerpool import RunnerExited
from aiouws.jobapi import JobContext
from aiouws.kinds import InlineLane, JobKind


async def _work(ctx: JobContext) -> None:
    if ctx.parameters.get("mode") == "sleep":
        await asyncio.sleep(60)
    ctx.add_result("r", b"ok\n", "text/plain", file_name="r.txt")


KIND = JobKind(
    name="lane",
    entry_point="tests:unused",
    inline=InlineLane(accepts=lambda _params: True, run=_work, slots=1),
)


def run_message(workdir: Path, **params: str) -> Run:
    return Run(
        job_id="j1",
        workdir=str(workdir),
        parameters=tuple((k, v, False) for k, v in params.items()),
        execution_duration=0,
        owner=None,
    )


async def events_until_done(runner: InlineRunner) -> list[object]:
    seen: list[object] = []
    async with asyncio.timeout(10):
        while not seen or not isinstance(seen[-1], Done | RunnerExited):
            seen.append(await runner.events.get())
    return seen


async def test_a_job_runs_and_reports_like_a_runner_process(tmp_path: Path) -> None:
    runner = InlineRunner(KIND)
    runner.send(run_message(tmp_path / "j1"))
    seen = await events_until_done(runner)
    assert isinstance(seen[0], Started)
    assert any(isinstance(e, Result) and e.size == 3 for e in seen)
    assert isinstance(seen[-1], Done) and seen[-1].status is DoneStatus.COMPLETED
    assert (tmp_path / "j1" / "r.txt").read_bytes() == b"ok\n"


async def test_cancel_aborts_and_close_after_kill_is_harmless(tmp_path: Path) -> None:
    runner = InlineRunner(KIND)
    runner.send(run_message(tmp_path / "j1", mode="sleep"))
    assert isinstance(await runner.events.get(), Started)
    runner.send(Cancel(job_id="j1"))
    seen = await events_until_done(runner)
    assert isinstance(seen[-1], Done) and seen[-1].status is DoneStatus.ABORTED
    runner.kill()
    assert not runner.alive and await runner.exited == -9
    await runner.close(0.1)  # a runner already ended stays ended, no error
    runner.send(run_message(tmp_path / "j2"))  # ignored
    assert isinstance(await runner.events.get(), RunnerExited)
    assert runner.events.empty()


async def test_a_job_directory_that_cannot_be_made_ends_the_job_in_error(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    runner = InlineRunner(KIND)
    runner.send(run_message(blocker / "j1"))
    seen = await events_until_done(runner)
    assert isinstance(seen[-1], Done) and seen[-1].status is DoneStatus.ERROR
    assert "job directory" in (seen[-1].message or "")


def test_an_inline_lane_needs_a_coroutine_function() -> None:
    def blocking(_ctx: JobContext) -> None:
        return None

    with pytest.raises(TypeError, match="coroutine"):
        InlineLane(accepts=lambda _p: True, run=blocking, slots=1)  # type: ignore[arg-type]


async def _closes_its_file(ctx: JobContext) -> None:
    with ctx.open_result("r", "text/plain", "r.txt") as out:
        out.write(b"written, then closed by the job\n")
        out.close()  # e.g. a library that closes what it is given


async def test_a_result_file_the_job_closed_itself_is_still_published(
    tmp_path: Path,
) -> None:
    kind = JobKind(
        name="closer",
        entry_point="tests:unused",
        inline=InlineLane(accepts=lambda _p: True, run=_closes_its_file, slots=1),
    )
    runner = InlineRunner(kind)
    runner.send(run_message(tmp_path / "j1"))
    seen = await events_until_done(runner)
    assert isinstance(seen[-1], Done) and seen[-1].status is DoneStatus.COMPLETED
    (result,) = [e for e in seen if isinstance(e, Result)]
    assert result.size == len(b"written, then closed by the job\n")


async def test_the_expected_job_gets_its_prepared_value(tmp_path: Path) -> None:
    seen: list[object] = []

    async def record(ctx: JobContext) -> None:
        seen.append(ctx.prepared)

    kind = JobKind(
        name="lane",
        entry_point="tests:unused",
        inline=InlineLane(accepts=lambda _params: True, run=record, slots=1),
    )
    runner = InlineRunner(kind)
    prepared = object()
    runner.expect("j1", prepared)
    runner.send(run_message(tmp_path / "j1"))
    await events_until_done(runner)
    runner.expect("other", prepared)  # another job's value is not this one's
    runner.send(run_message(tmp_path / "j1"))
    await events_until_done(runner)
    runner.send(run_message(tmp_path / "j1"))  # expected once only
    await events_until_done(runner)
    assert seen[0] is prepared and seen[1:] == [None, None]
