"""Request bodies: bounded by ``max_request_bytes``, big ones decoded off the loop.

Before: ``request.post()`` decoded an urlencoded body on the event loop; a 15 MB
body of escapes with ``charset=latin-1`` (``parse_qsl``) held it for 1.6 s, and
every other client waited that long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

import pytest
from aiohttp import FormData
from querywatch import final
from testkit import Client

from aiouws.config import Settings

T = TypeVar("T")
MIB = 1024 * 1024
#: 15 MB of escapes: the slowest kind of body to decode.
ESCAPES = b"LANG=ADQL&QUERY=SELECT+TOP+1+id+FROM+demo.stars+--" + b"%41" * 5_000_000


def form(charset: str = "utf-8") -> dict[str, str]:
    return {"Content-Type": f"application/x-www-form-urlencoded; charset={charset}"}


async def probe_while(
    client: Client, hostile: Callable[[], Awaitable[T]]
) -> tuple[float, T]:
    """The longest wait for a GET /tap/availability, sent every 20 ms while
    ``hostile`` runs (the test shares the server's loop: a blocked loop delays
    its sleeps as well as its requests); and the hostile one's answer."""
    slowest = 0.0
    task: asyncio.Future[T] | None = None
    while task is None or not task.done():
        start = time.monotonic()
        resp = await client.get("/tap/availability")
        assert resp.status == 200
        await resp.read()
        if task is None:
            task = asyncio.ensure_future(hostile())
        await asyncio.sleep(0.02)
        slowest = max(slowest, time.monotonic() - start - 0.02)
    return slowest, task.result()


class TestBigBodiesAllowed:
    """With ``max_request_bytes`` raised to 16 MiB (the old default)."""

    @pytest.fixture
    def app_settings(self, settings: Settings) -> Settings:
        return replace(settings, max_request_bytes=16 * MIB)

    @pytest.mark.parametrize("charset", ["latin-1", "utf-8"])
    async def test_a_15_mb_sync_body_does_not_stall_other_clients(
        self, client: Client, charset: str
    ) -> None:
        async def post() -> tuple[int, str]:
            resp = await client.post("/tap/sync", data=ESCAPES, headers=form(charset))
            return resp.status, await resp.text()

        slowest, (status, body) = await probe_while(client, post)
        assert status == 400 and "tap_max_query_bytes" in body, body[:300]
        assert "QUERY_STATUS" in body  # a DALI error document
        assert slowest < 0.3, f"availability waited {slowest:.2f} s"

    async def test_a_15_mb_async_body_does_not_stall_other_clients(
        self, client: Client
    ) -> None:
        async def create() -> str:
            resp = await client.post(
                "/tap/async",
                data=ESCAPES + b"&PHASE=RUN",
                headers=form("latin-1"),
                allow_redirects=False,
            )
            assert resp.status == 303, await resp.text()
            return str(resp.headers["Location"]).rsplit("/", 1)[1]

        slowest, job = await probe_while(client, create)
        assert slowest < 0.3, f"availability waited {slowest:.2f} s"
        assert await final(client, job) == "ERROR"
        error = await (await client.get(f"/tap/async/{job}/error")).text()
        assert "tap_max_query_bytes" in error


async def test_a_body_over_max_request_bytes_is_a_413_before_it_is_read(
    client: Client,
) -> None:
    start = time.monotonic()
    resp = await client.post("/tap/sync", data=ESCAPES, headers=form())
    body = await resp.text()
    assert resp.status == 413 and "max_request_bytes" in body, body[:300]
    assert "QUERY_STATUS" in body
    resp = await client.post("/tap/async", data=ESCAPES, headers=form())
    assert resp.status == 413 and "max_request_bytes" in await resp.text()
    assert time.monotonic() - start < 5
    assert (await client.get("/tap/availability")).status == 200


async def test_a_chunked_body_is_refused_once_over_the_limit(
    client: Client, settings: Settings
) -> None:
    """No Content-Length to refuse it by: it is read until it is too long."""
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b"LANG=ADQL&QUERY="
        for _ in range(64):  # 16 MiB, if it were all read
            sent += 256 * 1024
            yield b"x" * (256 * 1024)

    resp = await client.post("/tap/sync", data=chunks(), headers=form())
    assert resp.status == 413 and "max_request_bytes" in await resp.text()
    assert settings.max_request_bytes == 4 * MIB
    assert (await client.get("/tap/availability")).status == 200


async def test_too_many_fields_or_an_odd_charset_are_4xx(client: Client) -> None:
    resp = await client.post("/tap/async", data=b"a=1&" * 1000, headers=form())
    assert resp.status == 413 and "1,000 fields" in await resp.text()
    resp = await client.post(
        "/tap/sync", data=b"LANG=ADQL&QUERY=SELECT+1", headers=form("utf-16")
    )
    assert resp.status == 400 and "charset" in await resp.text()
    resp = await client.post(
        "/tap/sync", data=b"LANG=ADQL&QUERY=SELECT+1", headers=form("no-such")
    )
    assert resp.status == 400


async def test_a_big_multipart_text_part_is_refused_by_the_query_limit(
    client: Client,
) -> None:
    data = FormData()
    data.add_field("LANG", "ADQL")
    data.add_field("QUERY", "SELECT TOP 1 id FROM demo.stars -- " + "é" * 1_500_000)
    data.add_field("t", b"<VOTABLE/>", filename="t.xml")
    slowest, resp = await probe_while(
        client, lambda: client.post("/tap/sync", data=data)
    )
    body = await resp.text()
    assert resp.status == 400 and "tap_max_query_bytes" in body, body[:300]
    assert slowest < 0.3, f"availability waited {slowest:.2f} s"


async def test_a_small_form_still_runs(client: Client) -> None:
    resp = await client.post(
        "/tap/sync",
        data=b"lang=ADQL&responseformat=csv&"
        b"query=SELECT+TOP+2+id+FROM+demo.stars+WHERE+id+%3E%3D+2+ORDER+BY+id",
        headers=form(),
    )
    assert resp.status == 200
    assert (await resp.text()).split() == ["id", "2", "3"]
