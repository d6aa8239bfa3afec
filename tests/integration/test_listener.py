"""The NOTIFY listener tells its users whenever announcements may have been missed."""

from __future__ import annotations

import asyncio
import os
import signal

import asyncpg
import pytest
from querywatch import eventually

from aiouws.phases import Phase
from aiouws.storage.notify import PhaseListener


async def test_missed_announcements_are_reported_at_loss_and_at_reconnect(
    db_dsn: str,
) -> None:
    """A row cached between the loss and the new connection may be stale too, so
    users hear of it again once the new connection listens."""
    gate = asyncio.Event()
    gate.set()

    async def connect() -> asyncpg.Connection:
        await gate.wait()
        return await asyncpg.connect(db_dsn)

    missed: list[bool] = []
    listener = PhaseListener(connect)
    listener.on_lost(lambda: missed.append(listener.connected.is_set()))
    await listener.start()
    try:
        assert missed == [False]  # the first connection: nothing heard before it
        gate.clear()  # keep the next connection waiting
        admin = await asyncpg.connect(db_dsn)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()

        async def lost() -> bool:
            return len(missed) == 2

        await eventually(lost, "loss reported")
        assert not listener.connected.is_set()
        gate.set()

        async def reconnected() -> bool:
            return listener.connected.is_set()

        await eventually(reconnected, "listener reconnected")
        assert missed == [False, False, False]  # lost, then reconnected
    finally:
        await listener.stop()


async def test_a_kind_named_updated_has_its_phase_changes_published(
    db_dsn: str,
) -> None:
    """Kind names match ``[a-z][a-z0-9_-]*``, so a kind may be named
    ``updated``: its phase changes ('<id> <PHASE> updated', three words) wake
    waiters; a four-word payload (005's retired row-update notice) is ignored."""
    events: list[tuple[str, object, str]] = []
    listener = PhaseListener(lambda: asyncpg.connect(db_dsn))
    listener.subscribe(lambda e: events.append((e.job_id, e.phase, e.kind)))
    await listener.start()
    try:
        admin = await asyncpg.connect(db_dsn)
        try:
            for payload in (
                "j2 COMPLETED updated updated",
                "j1 QUEUED updated",
                "j3 ERROR tap",
            ):
                await admin.execute("SELECT pg_notify('aiouws_job', $1)", payload)
        finally:
            await admin.close()

        async def heard() -> bool:
            return len(events) >= 2

        await eventually(heard, "both phase changes heard")
        assert events == [("j1", Phase.QUEUED, "updated"), ("j3", Phase.ERROR, "tap")]
    finally:
        await listener.stop()


async def test_a_listener_connection_that_hangs_is_replaced(db_dsn: str) -> None:
    """A LISTEN connection whose server stops answering (here its backend is
    stopped with SIGSTOP: no close, no error) hears nothing, and rows kept on
    the strength of its silence would go stale: the probe finds it out within
    ``probe_seconds + probe_timeout``, reports the loss and listens afresh."""
    if os.geteuid() != 0:
        pytest.skip("stopping the backend needs root (as in CI)")
    missed: list[bool] = []
    listener = PhaseListener(
        lambda: asyncpg.connect(db_dsn), probe_seconds=0.2, probe_timeout=0.5
    )
    listener.on_lost(lambda: missed.append(listener.connected.is_set()))
    await listener.start()
    admin = await asyncpg.connect(db_dsn)
    stopped: int | None = None
    try:
        stopped = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
            " AND datname = current_database()"
        )
        assert stopped is not None
        os.kill(stopped, signal.SIGSTOP)
        started = asyncio.get_running_loop().time()

        async def replaced() -> bool:
            return len(missed) >= 3 and listener.connected.is_set()

        await eventually(replaced, "a new listening connection")
        # Found within a probe's interval and timeout (generous: a busy machine).
        took = asyncio.get_running_loop().time() - started
        assert took < 5, took
        heard: list[str] = []
        listener.subscribe(lambda e: heard.append(e.job_id))
        await admin.execute("SELECT pg_notify('aiouws_job', 'j9 QUEUED tap')")

        async def hears() -> bool:
            return heard == ["j9"]

        await eventually(hears, "the new connection hears")
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)
        await admin.close()
        await listener.stop()
