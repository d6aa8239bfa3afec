"""The UWS quote: stable between reads while the job's queue position stays,
moved when the position changes, never in the past."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
from supervisorkit import submit

from aiouws.phases import Phase
from aiouws.progress import QUOTE_STEP, estimate_quote
from aiouws.storage.store import JobStore

KIND = "quoted"  # no supervisor serves it: its jobs stay QUEUED


async def _history(store: JobStore, db_dsn: str, seconds: float) -> None:
    """Two completed jobs of KIND that ran ``seconds`` each."""
    done = [await submit(store, KIND) for _ in range(2)]
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute(
            "UPDATE uws.job SET phase = 'COMPLETED', end_time = now(),"
            " start_time = now() - make_interval(secs => $2)"
            " WHERE job_id = ANY($1)",
            [j.job_id for j in done],
            seconds,
        )
    finally:
        await conn.close()


async def test_quote_stands_still_and_follows_the_queue(
    store: JobStore, db_dsn: str
) -> None:
    await _history(store, db_dsn, 100.0)
    queued = [await submit(store, KIND) for _ in range(3)]
    last = await store.get(queued[2].job_id)
    first = await estimate_quote(store, last, 1)
    await asyncio.sleep(0.4)
    again = await estimate_quote(store, await store.get(last.job_id), 1)
    assert first is not None and first == again
    assert last.queued_time is not None
    # Two ahead, one slot: three rounds of 100 s and the half-done one.
    assert first == last.queued_time + timedelta(seconds=350)
    await store.delete(queued[0].job_id)  # one ahead now
    moved = await estimate_quote(store, await store.get(last.job_id), 1)
    assert moved == last.queued_time + timedelta(seconds=250)
    pending = await store.get(queued[1].job_id)
    assert pending.phase is Phase.QUEUED


async def test_quote_that_has_passed_steps_on_but_stands_still(
    store: JobStore, db_dsn: str
) -> None:
    await _history(store, db_dsn, 0.01)
    job = await submit(store, KIND)
    await asyncio.sleep(0.1)  # its estimate (about 15 ms after queueing) passed
    quotes = []
    for _ in range(3):
        quotes.append(await estimate_quote(store, await store.get(job.job_id), 2))
        await asyncio.sleep(0.3)
    now = datetime.now(UTC)
    assert quotes[0] is not None and len(set(quotes)) == 1
    assert job.queued_time is not None
    estimate = job.queued_time + timedelta(seconds=0.015)  # 1.5 runs of 10 ms
    assert quotes[0] == estimate + QUOTE_STEP
    assert now < quotes[0] < now + QUOTE_STEP


async def test_an_executing_job_keeps_a_quote_from_its_start(
    store: JobStore, db_dsn: str
) -> None:
    """UWS 1.1: the quote is when the job is likely to complete; a running job
    has one most usefully (it had one before the quote was anchored): its
    start_time plus the typical run time, standing still between reads."""
    await _history(store, db_dsn, 100.0)
    job = await submit(store, KIND)
    (running,) = await store.claim_for_runners(KIND, "test", 60.0, [0])
    assert running.job_id == job.job_id
    assert running.phase is Phase.EXECUTING and running.start_time is not None
    first = await estimate_quote(store, running, 1)
    await asyncio.sleep(0.3)
    again = await estimate_quote(store, await store.get(job.job_id), 1)
    assert first == again == running.start_time + timedelta(seconds=100)
