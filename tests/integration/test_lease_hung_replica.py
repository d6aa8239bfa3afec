"""A catalogue replica that hangs while a lost job's backends are terminated
(lease recovery, :func:`aiouws.storage.backends.terminate_on_replicas`, up to
REPLICA_SECONDS) must not hold up the heartbeat's lease renewals: the leases of
the jobs this server runs would run out meanwhile, and another server's
recovery would end them in ERROR while they run fine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from supervisorkit import GUARD, KINDS, submit, wait_final, wait_for
from test_replica_terminate import _server, _silent

from aiouws.config import Settings
from aiouws.execution.supervisor import QueueSupervisor
from aiouws.phases import Phase
from aiouws.storage import backends, database
from aiouws.storage.database import Database
from aiouws.storage.notify import PhaseListener
from aiouws.storage.store import JobStore
from aiouws.workdir import JobDirs

LEASE = 1.5


async def test_a_hung_replica_does_not_stall_lease_renewals(
    store: JobStore,
    pool: asyncpg.Pool,
    dirs: JobDirs,
    listener: PhaseListener,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backends, "REPLICA_SECONDS", 4 * LEASE)
    async with _server(_silent) as silent:
        database._down_until.pop(silent, None)
        here = JobStore(pool, [Database(silent)])  # this host's store
        settings = Settings(data_dir=tmp_path, jobs_dir=dirs.root, grace=0.5)
        sup = QueueSupervisor(
            here, KINDS, dirs, settings, listener, lease_seconds=LEASE
        )
        await sup.start()
        try:
            job = await submit(
                here, "serial", supervisor=sup, action="sleep", seconds="6"
            )
            await sup.job_queued("serial", job.job_id)
            await wait_for(store, job.job_id, [Phase.EXECUTING])
            # A job another host lost (its lease ran out), with a recorded
            # backend: this host's heartbeat resolves it and terminates its
            # backend on the replicas, the hung one too.
            lost = await submit(store, "elsewhere")
            await pool.execute(
                "UPDATE uws.job SET phase = 'EXECUTING', start_time = now(),"
                " claimed_by = 'gone', lease_until = now() - interval '1 s',"
                " backend_pids = '{2147483000}', backend_starts = ARRAY[now()]"
                " WHERE job_id = $1",
                lost.job_id,
            )
            await wait_for(store, lost.job_id, [Phase.ERROR])
            # Meanwhile another host's heartbeat looks for expired leases.
            loop = asyncio.get_running_loop()
            until = loop.time() + 2.5 * LEASE
            while loop.time() < until:
                assert await store.fail_expired_leases("lease expired") == []
                await asyncio.sleep(0.1)
            done = await asyncio.wait_for(wait_final(store, job.job_id), GUARD)
            assert done.phase is Phase.COMPLETED, done.error_message
        finally:
            await sup.stop(grace=0)
            database._down_until.pop(silent, None)
