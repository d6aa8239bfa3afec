"""Clients that stop reading a sync result cannot keep the service's connections."""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlencode

import pytest
from aiohttp import web
from testkit import Client

from aiouws.config import Settings
from taprunner.settings import TapSettings
from taprunner.web import endpoints, state
from taprunner.web.app import create_tap_app

POOL = 2
BIG = "SELECT a.*, b.* FROM demo.stars AS a, demo.stars AS b"
TINY = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 id FROM demo.stars"}


@pytest.fixture
def app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> web.Application:
    monkeypatch.setattr(endpoints, "SYNC_MARGIN", 1.0)
    monkeypatch.setattr(state, "ACQUIRE_TIMEOUT", 1.0)
    fast = TapSettings.for_service(
        settings, sync_timeout=2.0, maxrec_default=4_000_000, slots=1
    )
    return create_tap_app(settings, fast, demo_rows=2000, sync_pool_size=POOL)


async def stalled_reader(client: Client) -> asyncio.StreamWriter:
    """A GET for a large result on a socket with a tiny buffer that is never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", client.port))
    _, writer = await asyncio.open_connection(sock=sock)
    query = urlencode({"LANG": "ADQL", "QUERY": BIG, "MAXREC": "4000000"})
    writer.write(f"GET /tap/sync?{query} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    await writer.drain()
    return writer


async def timed(client: Client, path: str, **params: str) -> tuple[int, float, str]:
    start = time.monotonic()
    resp = await asyncio.wait_for(client.get(path, params=params), 30)
    text = await resp.text()
    return resp.status, time.monotonic() - start, text


async def test_stalled_readers_do_not_block_the_service(client: Client) -> None:
    status, _, _ = await timed(client, "/tap/sync", **TINY)
    assert status == 200
    readers = [await stalled_reader(client) for _ in range(POOL + 2)]
    try:
        await asyncio.sleep(0.5)  # the readers hold every pooled connection
        # A request waiting for a connection is answered "busy" or served,
        # never left waiting past the readers' deadline (2 s + 1 s margin).
        status, took, text = await timed(client, "/tap/sync", **TINY)
        assert status in (200, 503) and took < 4.0, (status, took)
        assert status == 200 or "service busy, retry" in text
        await asyncio.sleep(3.5)  # past the deadline: the readers were dropped
        for path, params in (("/tap/sync", TINY), ("/tap/tables", {}), ("/", {})):
            status, took, _ = await timed(client, path, **params)
            assert status == 200 and took < 2.0, (path, status, took)
    finally:
        for writer in readers:
            writer.close()
