"""GET and WAIT read the job: a change made elsewhere (another process, another
host) is what the next request shows, announced or not; the row this process
wrote last is never the answer (no process keeps rows: see
tests/e2e/test_hosts_reads.py for two hosts)."""

from __future__ import annotations

import asyncio
import re

import asyncpg
from querywatch import final, submit, until_running
from testkit import Client

from aiouws.config import Settings

QUERY = "SELECT TOP 2 id FROM demo.stars"
#: Slow in PostgreSQL, yet at most one row: the fast lane runs it here.
SLOW_ONE = (
    "SELECT TOP 1 COUNT(*) AS n FROM demo.stars AS a, demo.stars AS b, demo.stars AS c"
)


def _destruction(document: str) -> str:
    match = re.search(r"<uws:destruction>([^<]+)</uws:destruction>", document)
    assert match is not None, document
    return match.group(1)


async def test_a_change_of_a_finished_job_made_elsewhere_is_seen(
    client: Client, settings: Settings
) -> None:
    assert settings.dsn is not None
    job = await submit(client, QUERY=QUERY)
    assert await final(client, job) == "COMPLETED"  # run in this process
    before = _destruction(await (await client.get(f"/tap/async/{job}")).text())
    # Another process moves the destruction time (no phase change).
    conn = await asyncpg.connect(settings.dsn)
    try:
        await conn.execute(
            "UPDATE uws.job SET destruction_time = '2031-02-03T04:05:06Z'"
            " WHERE job_id = $1",
            job,
        )
    finally:
        await conn.close()

    # At once, without waiting for the announcement.
    for params in ("", "?WAIT=5"):
        document = await (await client.get(f"/tap/async/{job}{params}")).text()
        assert _destruction(document).startswith("2031-02-03T04:05:06"), params
    assert not before.startswith("2031")


async def test_a_wait_on_a_job_running_here_that_times_out_reads_it(
    client: Client, settings: Settings
) -> None:
    """What WAIT returns after its timeout is read (another process changed the
    destruction time of a job this process runs)."""
    assert settings.dsn is not None
    job = await submit(client, QUERY=SLOW_ONE)
    await until_running(settings.dsn, 1, "query running in PostgreSQL")
    conn = await asyncpg.connect(settings.dsn)
    try:
        await conn.execute(
            "UPDATE uws.job SET destruction_time = '2031-02-03T04:05:06Z'"
            " WHERE job_id = $1",
            job,
        )
    finally:
        await conn.close()
    document = await (await client.get(f"/tap/async/{job}?WAIT=1")).text()
    assert "<uws:phase>EXECUTING</uws:phase>" in document
    assert _destruction(document).startswith("2031-02-03T04:05:06")
    await client.post(f"/tap/async/{job}/phase", data={"PHASE": "ABORT"})
    assert await final(client, job) == "ABORTED"
    await until_running(settings.dsn, 0, "query cancelled in PostgreSQL")


async def test_a_finished_job_changed_without_a_phase_change_is_not_announced(
    client: Client, settings: Settings
) -> None:
    """Nothing keeps rows, so a finished row's other changes (its destruction
    time) send no NOTIFY (migration 006); phase changes still do. NOTIFYs
    arrive in commit order, so the first one heard after the update is the
    next job's phase change."""
    assert settings.dsn is not None
    finished = await submit(client, QUERY=QUERY)
    assert await final(client, finished) == "COMPLETED"
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(settings.dsn)
    try:
        await listener.add_listener(
            "aiouws_job", lambda *args: heard.put_nowait(str(args[3]))
        )
        conn = await asyncpg.connect(settings.dsn)
        try:
            await conn.execute(
                "UPDATE uws.job SET destruction_time = '2031-02-03T04:05:06Z'"
                " WHERE job_id = $1",
                finished,
            )
        finally:
            await conn.close()
        later = await submit(client, QUERY=QUERY)
        first = await asyncio.wait_for(heard.get(), 10)
        assert first.split(" ")[0] == later, first
        trigger = await listener.fetchval(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger"
            " WHERE tgname = 'job_phase_notify'"
        )
        assert "UPDATE OF phase" in trigger, trigger  # renewals run no function
    finally:
        await listener.close()


async def test_a_change_made_elsewhere_while_the_write_returns_is_not_hidden(
    db_dsn: str,
) -> None:
    """Another process changes (or deletes) a job just after this process's
    write finished it (its announcement can arrive before the write's row
    comes back): the next get shows that change, not the row written here."""
    from test_store import new_job

    from aiouws.errors import JobNotFound
    from aiouws.phases import Phase
    from aiouws.storage.schema import init_connection, keep_session
    from aiouws.storage.store import JobStore

    pool = await asyncpg.create_pool(  # as the application's (no reset query)
        db_dsn, min_size=1, max_size=4, init=init_connection, reset=keep_session
    )
    store = JobStore(pool)
    holder = await asyncpg.connect(db_dsn)
    other = await asyncpg.connect(db_dsn)
    stale = []
    try:
        for round_ in range(20):
            job = await store.create(new_job(owner="o"))
            assert job is not None
            # The row is locked: this process's write and then the other's
            # queue behind the lock, and run one right after the other.
            async with holder.transaction():
                await holder.execute(
                    "SELECT 1 FROM uws.job WHERE job_id = $1 FOR UPDATE", job.job_id
                )
                ours = asyncio.ensure_future(
                    store.change_phase(
                        job.job_id, Phase.COMPLETED, allowed=(Phase.PENDING,)
                    )
                )
                await asyncio.sleep(0.02)
                theirs = asyncio.ensure_future(
                    other.execute(
                        "DELETE FROM uws.job WHERE job_id = $1"
                        if round_ % 2
                        else "UPDATE uws.job SET destruction_time ="
                        " '2031-02-03T04:05:06Z' WHERE job_id = $1",
                        job.job_id,
                    )
                )
                await asyncio.sleep(0.02)
            assert (await ours).phase is Phase.COMPLETED
            await theirs
            try:
                now = await store.get(job.job_id)
            except JobNotFound:
                gone = True
            else:
                gone = False
                if now.destruction_time.year != 2031:
                    stale.append(round_)
            if gone != bool(round_ % 2):
                stale.append(round_)
    finally:
        await holder.close()
        await other.close()
        await pool.close()
    assert stale == []
