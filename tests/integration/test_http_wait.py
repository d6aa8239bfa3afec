"""UWS WAIT (blocking GET) on real HTTP: woken by a change, in this app or another.

The tests measure how fast a WAIT returns, not only what it returns: with the
tests' WAIT cap (5 s) and the service's safety re-read (every 5 s) a WAIT whose
wake-up was lost would still return the new phase, only seconds late.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from testkit import Client, MakeClient
from uwskit import ECHO, create, echo_app

from aiouws.config import Settings
from aiouws.http.app import create_app

#: Seconds within which a WAIT must return after the change that ends it, or at
#: once when its PHASE guard differs: far below the 5 s of the cap and re-read.
WAKE_UP = 1.0


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return echo_app(settings)


async def test_wait_returns_on_change_timeout_and_guard(client: Client) -> None:
    job_id = await create(client, needed="1")
    loop = asyncio.get_running_loop()

    started = loop.time()
    resp = await client.get(f"/jobs/echo/{job_id}?WAIT=0.3")
    assert resp.status == 200
    assert loop.time() - started >= 0.25  # waited: still PENDING

    started = loop.time()
    resp = await client.get(f"/jobs/echo/{job_id}?WAIT=30&PHASE=QUEUED")
    assert "PENDING" in await resp.text()  # guard differs: immediate
    assert loop.time() - started < WAKE_UP

    waiter = asyncio.create_task(client.get(f"/jobs/echo/{job_id}?WAIT=30"))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    changed = loop.time()
    await client.post(f"/jobs/echo/{job_id}/phase", data={"PHASE": "RUN"})
    resp = await asyncio.wait_for(waiter, 10)
    woke = loop.time() - changed
    assert "<uws:phase>QUEUED</uws:phase>" in await resp.text()
    assert woke < WAKE_UP, f"WAIT returned {woke:.2f} s after the RUN"


async def test_wait_across_two_app_instances(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    one = await aiohttp_client(create_app(settings, [ECHO], execute=False))
    two = await aiohttp_client(create_app(settings, [ECHO], execute=False))
    job_id = await create(one, needed="1")
    waiter = asyncio.create_task(two.get(f"/jobs/echo/{job_id}?WAIT=30"))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    loop = asyncio.get_running_loop()
    aborted = loop.time()
    await one.post(f"/jobs/echo/{job_id}/phase", data={"PHASE": "ABORT"})
    resp = await asyncio.wait_for(waiter, 10)
    woke = loop.time() - aborted
    assert "<uws:phase>ABORTED</uws:phase>" in await resp.text()
    # Only the database's NOTIFY reaches the other app's listener in time.
    assert woke < WAKE_UP, f"WAIT in the other app returned {woke:.2f} s after ABORT"
