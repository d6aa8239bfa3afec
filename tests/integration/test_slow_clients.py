"""Slow and hostile clients: request heads and bodies that never complete are
closed after their timeouts, one address holds at most its share of
connections, and clients that stop reading sync results give their database
connections back within the write timeout (availability says so meanwhile).

The service listens as ``aiouws serve`` does (a ``GuardedSite``), in the test's
event loop.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from urllib.parse import urlencode

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from aiouws.config import Settings
from aiouws.http.connections import CONNECTIONS, ConnectionGuard, GuardedSite
from aiouws.storage.database import QUERY_ROLE
from taprunner.settings import TapSettings
from taprunner.web.app import create_tap_app

TINY = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 id FROM demo.stars"}
BIG = "SELECT a.*, b.* FROM demo.stars AS a, demo.stars AS b"
#: The sync pool's size in create_tap_app (its default).
POOL = 10
#: Concurrent availability requests of the flood test.
FLOOD = 40


@dataclass
class Served:
    port: int
    guard: ConnectionGuard

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def limits() -> dict[str, float]:
    return {"header_timeout": 1.0, "body_timeout": 1.0, "write_timeout": 2.0}


@pytest.fixture
async def served(settings: Settings, limits: dict[str, float]) -> AsyncIterator[Served]:
    configured = replace(settings, **limits)  # type: ignore[arg-type]
    app = create_tap_app(
        configured,
        TapSettings.for_service(configured, maxrec_default=4_000_000, slots=1),
        demo_rows=2000,
    )
    guard = ConnectionGuard.of(configured)
    guard.cap_loopback = True  # the test's clients are local
    app[CONNECTIONS] = guard
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await GuardedSite(runner, guard, "127.0.0.1", port).start()
    try:
        yield Served(port, guard)
    finally:
        await runner.cleanup()


async def timed_get(
    served: Served, path: str, params: dict[str, str] | None = None
) -> tuple[int, float, str]:
    start = time.monotonic()
    async with (
        aiohttp.ClientSession() as session,
        session.get(served.url + path, params=params) as resp,
    ):
        text = await asyncio.wait_for(resp.text(), 30)
        return resp.status, time.monotonic() - start, text


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the server closes the connection within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(4096):
                pass
        return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


@pytest.mark.parametrize(
    "limits",
    [{"header_timeout": 1.0, "body_timeout": 1.0, "max_connections_per_address": 0}],
)
async def test_slowloris_connections_are_closed_after_the_header_timeout(
    served: Served,
) -> None:
    slow = []
    for i in range(200):
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        # Half a request head; some send nothing at all.
        if i % 2:
            writer.write(b"GET /tap/availability HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        slow.append((reader, writer))
    try:
        # A normal client is served meanwhile, at once.
        status, took, _ = await timed_get(served, "/tap/availability")
        assert status == 200 and took < 1.0, (status, took)
        for _, writer in slow[1::10]:  # trickling a byte does not extend it
            writer.write(b"x")
        assert sum(served.guard.open.values()) >= 200
        closed = await asyncio.gather(*(closed_within(r, 4.0) for r, _ in slow))
        assert all(closed), closed.count(False)  # before: all 200 held
        assert sum(served.guard.open.values()) == 0
    finally:
        for _, writer in slow:
            writer.close()


@pytest.mark.parametrize(
    "limits",
    [{"header_timeout": 1.0, "body_timeout": 1.0, "max_connections_per_address": 0}],
)
async def test_a_paused_body_is_cut_off_after_the_body_timeout(
    served: Served,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(
        b"POST /tap/sync HTTP/1.1\r\nHost: t\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 1000\r\n\r\nLANG=ADQL&QUERY="
    )
    try:
        status, took, _ = await timed_get(served, "/tap/sync", TINY)
        assert status == 200 and took < 2.0, (status, took)
        start = time.monotonic()
        assert await closed_within(reader, 5.0)
        assert time.monotonic() - start < 4.0
    finally:
        writer.close()


@pytest.mark.parametrize(
    "limits",
    [{"header_timeout": 10.0, "body_timeout": 10.0, "max_connections_per_address": 5}],
)
async def test_connections_per_address_are_capped(served: Served) -> None:
    held = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(5)]
    try:
        await asyncio.sleep(0.2)
        assert served.guard.open["127.0.0.1"] == 5
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        assert await closed_within(reader, 1.0)  # one too many: closed at once
        writer.close()
        assert not any([await closed_within(r, 0.2) for r, _ in held])
        held.pop()[1].close()  # one goes: room for a new client
        await asyncio.sleep(0.2)
        status, _, _ = await timed_get(served, "/tap/availability")
        assert status == 200
    finally:
        for _, writer in held:
            writer.close()


async def stalled_reader(served: Served) -> asyncio.StreamWriter:
    """A sync GET of a large result on a socket with a tiny buffer, never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", served.port))
    _, writer = await asyncio.open_connection(sock=sock)
    query = urlencode({"LANG": "ADQL", "QUERY": BIG, "MAXREC": "4000000"})
    writer.write(f"GET /tap/sync?{query} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    await writer.drain()
    return writer


@pytest.mark.parametrize(
    "limits",
    [{"header_timeout": 5.0, "body_timeout": 5.0, "write_timeout": 2.0}],
)
async def test_clients_that_stop_reading_give_their_connections_back(
    served: Served,
) -> None:
    readers = [await stalled_reader(served) for _ in range(POOL + 2)]
    try:
        await asyncio.sleep(1.0)  # every pooled connection is held by a reader
        status, took, text = await timed_get(served, "/tap/availability")
        # Before: "database unreachable" for as long as the readers held on.
        assert status == 200 and "available>true" in text, text
        assert took < 8.0, took  # a probe of its own (loaded machine: generous)
        # Served within the write timeout (2 s) and a margin (before: 503
        # "service busy" for 65 s).
        status, took, text = await timed_get(served, "/tap/sync", TINY)
        assert status == 200 and took < 8.0, (status, took, text[:200])
    finally:
        for writer in readers:
            writer.close()


async def _sessions(conn: asyncpg.Connection) -> tuple[int, dict[int, str]]:
    """Sessions ever opened to ``conn``'s database, and the users of its other
    open client sessions by pid (autovacuum workers have none)."""
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    sessions = await conn.fetchval(
        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    )
    users = await conn.fetch(
        "SELECT pid, usename FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend'"
    )
    return int(sessions), {int(r["pid"]): str(r["usename"]) for r in users}


@pytest.mark.parametrize(
    "limits",
    [{"header_timeout": 5.0, "body_timeout": 5.0, "write_timeout": 30.0}],
)
async def test_availability_floods_open_no_database_connection_each(
    served: Served, settings: Settings
) -> None:
    """Anonymous /tap/availability requests while the pool is busy share one
    probe connection at a time (before: one new PostgreSQL session each, so a
    public endpoint could exhaust max_connections), and it logs in as the query
    role, as the queries it vouches for do (before: the service's login)."""
    assert settings.dsn is not None
    readers = [await stalled_reader(served) for _ in range(POOL + 2)]
    watcher = await asyncpg.connect(settings.dsn)
    try:
        await asyncio.sleep(1.0)  # every pooled connection is held by a reader
        before, known = await _sessions(watcher)
        new_users: set[str] = set()
        flood = asyncio.gather(
            *(timed_get(served, "/tap/availability") for _ in range(FLOOD))
        )
        while not flood.done():
            _, users = await _sessions(watcher)
            new_users |= {user for pid, user in users.items() if pid not in known}
        answers = await flood
        after, _ = await _sessions(watcher)
        assert all(s == 200 and "available>true" in t for s, _, t in answers)
        assert after - before < FLOOD // 4, (before, after)
        assert new_users <= {QUERY_ROLE}, new_users
    finally:
        await watcher.close()
        for writer in readers:
            writer.close()


@pytest.mark.parametrize(
    "limits",
    [
        {
            "header_timeout": 1.0,
            "body_timeout": 1.0,
            "cors_origins": r"https://ok\.example",
        }
    ],
)
async def test_a_cors_preflight_completes_its_request_head(served: Served) -> None:
    """A preflight answered by the CORS middleware counts as a request whose
    head came in: its keep-alive connection stays open, nothing more written
    (before: the head timer ran on, and header_timeout after the connection
    opened an unsolicited 408 followed the 204 and the connection closed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(
            b"OPTIONS /tap/sync HTTP/1.1\r\nHost: t\r\nOrigin: https://ok.example\r\n"
            b"Access-Control-Request-Method: POST\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 204 "), head
        with pytest.raises(TimeoutError):
            extra = await asyncio.wait_for(reader.read(4096), 2.5)
            pytest.fail(f"after the preflight: {extra!r}")
        writer.write(b"GET /tap/availability HTTP/1.1\r\nHost: t\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 "), head
    finally:
        writer.close()
