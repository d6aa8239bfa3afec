"""UWS WAIT (blocking GET) on real HTTP: woken by a change, in this app or another."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from testkit import Client, MakeClient
from uwskit import ECHO, create, echo_app

from aiouws.config import Settings
from aiouws.http.app import create_app


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

    resp = await client.get(f"/jobs/echo/{job_id}?WAIT=30&PHASE=QUEUED")
    assert "PENDING" in await resp.text()  # guard differs: immediate

    waiter = asyncio.create_task(client.get(f"/jobs/echo/{job_id}?WAIT=30"))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    await client.post(f"/jobs/echo/{job_id}/phase", data={"PHASE": "RUN"})
    resp = await asyncio.wait_for(waiter, 10)
    assert "<uws:phase>QUEUED</uws:phase>" in await resp.text()


async def test_wait_across_two_app_instances(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    one = await aiohttp_client(create_app(settings, [ECHO], execute=False))
    two = await aiohttp_client(create_app(settings, [ECHO], execute=False))
    job_id = await create(one, needed="1")
    waiter = asyncio.create_task(two.get(f"/jobs/echo/{job_id}?WAIT=30"))
    await asyncio.sleep(0.2)
    await one.post(f"/jobs/echo/{job_id}/phase", data={"PHASE": "ABORT"})
    resp = await asyncio.wait_for(waiter, 10)
    assert "<uws:phase>ABORTED</uws:phase>" in await resp.text()
