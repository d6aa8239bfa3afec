"""JobStore against a real PostgreSQL: guarded transitions, claims, listing."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from aiouws.errors import InvalidPhaseError, JobNotFound
from aiouws.models import JobFilter, JobParameter, NewJob
from aiouws.phases import Phase
from aiouws.storage.schema import install_schema
from aiouws.storage.store import JobStore


def new_job(owner: str | None = None, kind: str = "demo", **kw: object) -> NewJob:
    return NewJob(
        job_id=secrets.token_urlsafe(16),
        kind=kind,
        owner=owner,
        run_id=None,
        execution_duration=60,
        destruction_time=datetime.now(UTC) + timedelta(days=1),
        parameters=(JobParameter(name="x", value="1"),),
        **kw,
    )  # type: ignore[arg-type]


async def test_create_and_get_roundtrip(store: JobStore) -> None:
    made = await store.create(new_job(owner="alice"))
    got = await store.get(made.job_id)
    assert got == made
    assert got.phase is Phase.PENDING
    assert got.creation_time.tzinfo is not None
    assert got.parameters == (JobParameter(name="x", value="1"),)


async def test_get_unknown_raises(store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        await store.get("doesnotexistdoesnotexist")


async def test_guarded_change_rejects_illegal_phase(store: JobStore) -> None:
    job = await store.create(new_job())
    with pytest.raises(InvalidPhaseError, match="PENDING"):
        await store.change_phase(job.job_id, Phase.COMPLETED)
    queued = await store.change_phase(job.job_id, Phase.QUEUED, set_now=["queued_time"])
    assert queued.phase is Phase.QUEUED and queued.queued_time is not None


async def test_concurrent_phase_changes_one_winner(store: JobStore) -> None:
    job = await store.create(new_job())
    await store.change_phase(job.job_id, Phase.QUEUED, set_now=["queued_time"])
    outcomes = await asyncio.gather(
        *(
            store.change_phase(job.job_id, Phase.ABORTED, allowed=[Phase.QUEUED])
            for _ in range(20)
        ),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(winners) == 1
    assert all(isinstance(o, InvalidPhaseError) for o in outcomes if o not in winners)


async def test_claims_are_exclusive_and_ordered(store: JobStore) -> None:
    ids = []
    for _ in range(30):
        job = await store.create(new_job(), phase=Phase.QUEUED)
        ids.append(job.job_id)
    batches = await asyncio.gather(
        *(store.claim_for_runners("demo", f"w{i}", 30, [i]) for i in range(40))
    )
    claims = [batch[0] if batch else None for batch in batches]
    claimed = [c.job_id for c in claims if c is not None]
    assert sorted(claimed) == sorted(ids)
    assert len(set(claimed)) == 30
    assert all(c.phase is Phase.EXECUTING for c in claims if c is not None)


async def test_list_filters(store: JobStore) -> None:
    a = [await store.create(new_job(owner="alice")) for _ in range(3)]
    await store.create(new_job(owner="bob"))
    await store.create(new_job(owner=None))
    await store.change_phase(a[0].job_id, Phase.QUEUED)
    mine = await store.list_jobs(JobFilter(owner="alice"))
    assert [r.job_id for r in mine] == [j.job_id for j in reversed(a)]
    queued = await store.list_jobs(
        JobFilter(owner="alice", phases=frozenset({Phase.QUEUED}))
    )
    assert [r.job_id for r in queued] == [a[0].job_id]
    last = await store.list_jobs(JobFilter(owner="alice", last=2))
    assert len(last) == 2
    anon = await store.list_jobs(JobFilter(owner=None))
    assert len(anon) == 1 and anon[0].owner is None


async def test_install_schema_is_idempotent(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        assert await install_schema(conn) == 0
    finally:
        await conn.close()


async def test_batch_claims_map_runners_in_queue_order(store: JobStore) -> None:
    ids = [(await store.create(new_job(), phase=Phase.QUEUED)).job_id for _ in range(5)]
    first = await store.claim_for_runners("demo", "me", 30, [101, 102, 103])
    assert [j.job_id for j in first] == ids[:3]
    assert [j.runner_pid for j in first] == [101, 102, 103]
    assert all(j.phase is Phase.EXECUTING and j.claimed_by == "me" for j in first)
    rest = await asyncio.gather(
        *(store.claim_for_runners("demo", f"o{i}", 30, [200 + i]) for i in range(4))
    )
    claimed = [j.job_id for batch in rest for j in batch]
    assert sorted(claimed) == sorted(ids[3:])
    assert await store.claim_for_runners("demo", "me", 30, [1, 2]) == []


async def test_heartbeat_renews_only_the_jobs_named(store: JobStore) -> None:
    for _ in range(2):
        await store.create(new_job(), phase=Phase.QUEUED)
    running, lost = await store.claim_for_runners("demo", "me", -5, [1, 2])
    assert await store.renew_leases("me", 30, [running.job_id]) == 1
    failed = await store.fail_expired_leases("lease expired")
    assert failed == [lost.job_id]
    assert (await store.get(running.job_id)).phase is Phase.EXECUTING


async def test_get_after_a_write_here_shows_changes_made_elsewhere(
    store: JobStore, pool: asyncpg.Pool
) -> None:
    """The store keeps no rows: what it wrote last is no answer once another
    process (host) has changed or deleted the job, announced or not."""
    job = await store.create(new_job())
    assert job is not None
    await store.change_phase(job.job_id, Phase.QUEUED, set_now=["queued_time"])
    aborted = await store.change_phase(job.job_id, Phase.ABORTED)
    # Another writer changes the row behind this store's back (no NOTIFY heard).
    await pool.execute(
        "UPDATE uws.job SET run_id = 'elsewhere' WHERE job_id = $1", job.job_id
    )
    assert (await store.get(job.job_id)).run_id == "elsewhere"
    archived = await JobStore(pool).change_phase(
        job.job_id, Phase.ARCHIVED, allowed=[Phase.ABORTED]
    )
    assert archived.phase is Phase.ARCHIVED and aborted.phase is Phase.ABORTED
    assert await store.get(job.job_id) == archived
    await JobStore(pool).delete(job.job_id)
    with pytest.raises(JobNotFound):
        await store.get(job.job_id)
