"""A catalogue load whose database server stops answering mid-session (here its
backend is stopped with SIGSTOP: no close, no error, TCP stays up) is given up
after CATALOG_LOAD_TIMEOUT: the requests that need the catalogue get the one
already loaded (stale) or a 503, never wait for ever, and the hung connection
is not handed out again."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from testkit import Client

from aiouws.config import Settings
from taprunner.settings import TapSettings
from taprunner.web import state
from taprunner.web.app import create_tap_app
from taprunner.web.state import TAP

LOAD = 1.0  # CATALOG_LOAD_TIMEOUT here
GUARD = 30.0  # seconds; only a hang guard (the code before gave no answer at all)
TINY = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 id FROM demo.stars"}

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="stopping a backend needs root (as in CI)"
)


@pytest.fixture
def app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> web.Application:
    monkeypatch.setattr(state, "CATALOG_LOAD_TIMEOUT", LOAD, raising=False)
    monkeypatch.setattr(state, "CATALOG_TTL", 0.0)  # every request reloads
    tap = TapSettings.for_service(settings)
    # One pooled connection: the catalogue load cannot dodge the stopped one.
    return create_tap_app(settings, tap, demo_rows=2000, sync_pool_size=1)


@asynccontextmanager
async def stopped_pool_backend(client: Client) -> AsyncIterator[int]:
    """The backend of the pool's (only) connection, stopped meanwhile."""
    assert client.app is not None
    tap = client.app[TAP]
    async with tap.connection() as conn:
        pid: int = await conn.fetchval("SELECT pg_backend_pid()")
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


async def timed(client: Client, path: str, **params: str) -> tuple[int, float, str]:
    start = time.monotonic()
    resp = await client.get(path, params=params)
    text = await resp.text()
    return resp.status, time.monotonic() - start, text


async def test_a_hung_load_falls_back_to_the_stale_catalogue(client: Client) -> None:
    status, _, before = await timed(client, "/tap/tables")
    assert status == 200 and "demo.stars" in before
    async with stopped_pool_backend(client):
        async with asyncio.timeout(GUARD):
            answers = await asyncio.gather(
                *(timed(client, "/tap/tables") for _ in range(3)),
                timed(client, "/tap/sync", **TINY),
            )
        # All of them waited for the one load, which was given up after LOAD s
        # (generous margins: a busy machine); then the sync query got a fresh
        # connection (the hung one was terminated, not pooled again).
        for status, took, text in answers:
            assert status == 200 and took < LOAD + 5.0, (status, took, text)
        assert [a[2] for a in answers[:3]] == [before] * 3
        assert "<TABLEDATA>" in answers[3][2] or "<BINARY" in answers[3][2]


async def test_a_hung_first_load_is_a_503(client: Client) -> None:
    async with stopped_pool_backend(client):
        async with asyncio.timeout(GUARD):
            status, took, text = await timed(client, "/tap/tables")
            assert status == 503 and took < LOAD + 5.0, (status, took, text)
            assert "did not load within" in text
            # The pool's connection was replaced while the old backend is
            # still stopped: the next request is served.
            status, took, text = await timed(client, "/tap/tables")
        assert status == 200 and "demo.stars" in text, (status, took, text)
