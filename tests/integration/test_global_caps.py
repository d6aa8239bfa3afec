"""The global caps at claim time (aiouws.storage.claims): counted over the whole
table, whichever claimant (host) claims, exact under concurrent claims."""

from __future__ import annotations

import asyncio
from collections import Counter

from test_store import new_job

from aiouws.phases import Phase
from aiouws.storage.claims import Claim
from aiouws.storage.store import JobStore


async def _queue(store: JobStore, n: int, owner: str | None = None) -> list[str]:
    return [
        (await store.create(new_job(owner=owner), phase=Phase.QUEUED)).job_id
        for _ in range(n)
    ]


async def _executing(store: JobStore) -> Counter[str | None]:
    return Counter(job.owner for job in await store.executing())


async def test_concurrent_claimants_never_exceed_the_kind_cap(store: JobStore) -> None:
    await _queue(store, 40)
    # 20 "hosts" with 2 free runners each, all at once, under a cap of 5.
    batches = await asyncio.gather(
        *(
            store.claim_for_runners("demo", f"host{i}", 30, [1, 2], max_kind=5)
            for i in range(20)
        )
    )
    assert sum(len(b) for b in batches) == 5
    assert sum((await _executing(store)).values()) == 5
    # A job ending anywhere makes room for exactly one more.
    ended = batches[0][0] if batches[0] else next(b[0] for b in batches if b)
    await store.change_phase(ended.job_id, Phase.COMPLETED, set_now=("end_time",))
    more = await store.claim_for_runners("demo", "other", 30, [1, 2, 3], max_kind=5)
    assert len(more) == 1


async def test_a_job_over_its_owners_cap_stays_queued_and_others_pass(
    store: JobStore,
) -> None:
    alice = await _queue(store, 4, owner="alice")
    bob = await _queue(store, 2, owner="bob")
    claimed = await asyncio.gather(
        *(
            store.claim_for_runners("demo", f"host{i}", 30, [1, 2], max_owner=1)
            for i in range(6)
        )
    )
    ids = {job.job_id for batch in claimed for job in batch}
    assert ids == {alice[0], bob[0]}  # the oldest of each, one each
    assert (await _executing(store)) == {"alice": 1, "bob": 1}
    assert (await store.get(alice[1])).phase is Phase.QUEUED
    assert await store.queue_waiting("demo")


async def test_the_fast_lane_counts_towards_the_owner_cap_and_its_own_cap(
    store: JobStore,
) -> None:
    lane = Claim("host", 30.0, 7, inline=True, max_owner=2, max_lane=1)
    first = await store.create(new_job(owner="carol"), phase=Phase.QUEUED, claim=lane)
    assert first is not None and first.phase is Phase.EXECUTING
    # The lane's global cap (1) is reached: created QUEUED, for the queue.
    second = await store.create(new_job(owner="carol"), phase=Phase.QUEUED, claim=lane)
    assert second is not None and second.phase is Phase.QUEUED
    assert await store.claim_job(second.job_id, lane) is None
    # The runner lane is apart from the fast lane's cap, not from the owner's.
    (ran,) = await store.claim_for_runners("demo", "host", 30, [1, 2], max_owner=2)
    assert ran.job_id == second.job_id
    third = await store.create(new_job(owner="carol"), phase=Phase.QUEUED)
    assert third is not None
    assert await store.claim_for_runners("demo", "host", 30, [1], max_owner=2) == []
    assert await store.claim_job(third.job_id, lane) is None


async def test_an_owner_filling_the_head_of_the_queue_leaves_no_runner_idle(
    store: JobStore,
) -> None:
    """An owner with room for one more job and more queued jobs than the claim
    reads of the queue's head (runners + 32) must not keep another owner's
    job from a free runner: one claim with two runners takes the owner's
    oldest and the other owner's job."""
    alice = await _queue(store, 40, owner="alice")
    bob = await _queue(store, 1, owner="bob")
    claimed = await store.claim_for_runners("demo", "host", 30, [101, 102], max_owner=1)
    assert [job.job_id for job in claimed] == [alice[0], bob[0]]
    assert [job.runner_pid for job in claimed] == [101, 102]
    assert (await _executing(store)) == {"alice": 1, "bob": 1}
