"""Terminating a dead job's backends on the catalogue replicas asks them all at
once, within one bound, however they hang: before, each replica was asked in
turn, 10 s per connection that hung, and without limit once connected."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator

import asyncpg
import pytest

from aiouws.storage import backends, database
from aiouws.storage.database import Database
from aiouws.storage.store import JobStore


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts and never answers."""
    await reader.read()  # until the client goes


async def _stops_after_startup(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answers the startup as a PostgreSQL server (trust), then never again:
    a server that stops once the client is in (as a SIGSTOPped backend)."""
    (length,) = struct.unpack("!i", await reader.readexactly(4))
    await reader.readexactly(length - 4)
    version = b"server_version\x0015.20\x00"
    writer.write(
        b"R" + struct.pack("!ii", 8, 0)
        + b"S" + struct.pack("!i", 4 + len(version)) + version
        + b"K" + struct.pack("!iii", 12, 4242, 1)
        + b"Z" + struct.pack("!i", 5) + b"I"
    )  # fmt: skip
    await writer.drain()
    await reader.read()


@contextlib.asynccontextmanager
async def _server(handler: object) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"postgresql://nobody@127.0.0.1:{port}/hung?sslmode=disable"
    finally:
        server.close()


async def test_hung_replicas_are_asked_at_once_within_one_bound(
    db_dsn: str, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backends, "REPLICA_SECONDS", 2.0)
    async with (
        _server(_silent) as silent,
        _server(_stops_after_startup) as stops,
        _server(_silent) as silent_too,
    ):
        for dsn in (silent, stops, silent_too):
            database._down_until.pop(dsn, None)
        # the test database stands for a replica that answers (the primary too)
        replicas = [Database(dsn) for dsn in (silent, stops, db_dsn, silent_too)]
        store = JobStore(pool, replicas)
        victim = await asyncpg.connect(db_dsn)
        try:
            pid, started = await victim.fetchrow(
                "SELECT pid, backend_start FROM pg_stat_activity"
                " WHERE pid = pg_backend_pid()"
            )
            loop = asyncio.get_running_loop()
            begun = loop.time()
            # before: 10 s for the first silent replica, then for ever (not
            # even a cancel ended it: its connection's close waited too)
            call = asyncio.ensure_future(store.terminate_backends([(pid, started)]))
            await asyncio.wait([call], timeout=30)
            took = loop.time() - begun
            assert call.done(), "still waiting for a hung replica after 30 s"
            ended = call.result()
            assert ended == 1  # by the primary; the replica found it gone
            assert 1.9 < took < 4.0, took  # the bound, once, not per replica
            gone = (asyncpg.InterfaceError, asyncpg.PostgresError, OSError)
            with pytest.raises(gone):
                await victim.fetchval("SELECT 1")
        finally:
            victim.terminate()
            for dsn in (silent, stops, silent_too):
                database._down_until.pop(dsn, None)


async def test_answering_replicas_are_not_waited_for_beyond_their_answer(
    db_dsn: str, pool: asyncpg.Pool
) -> None:
    """With no replica hung, the call takes what the replicas take (here the
    test database standing for two), not the bound."""
    store = JobStore(pool, [Database(db_dsn), Database(db_dsn)])
    victim = await asyncpg.connect(db_dsn)
    try:
        pid, started = await victim.fetchrow(
            "SELECT pid, backend_start FROM pg_stat_activity"
            " WHERE pid = pg_backend_pid()"
        )
        loop = asyncio.get_running_loop()
        begun = loop.time()
        assert await store.terminate_backends([(pid, started)]) == 1
        assert loop.time() - begun < backends.REPLICA_SECONDS / 2
    finally:
        victim.terminate()
