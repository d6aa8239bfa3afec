"""The error middleware's answers, byte for byte: UWS errors as text/plain, TAP
errors as DALI VOTable documents, each with its status and headers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from aiouws.errors import JobNotFound, TooManyJobs, Unauthorized, UsageError, UWSError
from aiouws.http.middleware import error_middleware
from taprunner.errors import ServiceBusy, TapError, TapQueryError, TapUsageError
from taprunner.web import endpoints

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]

VOTABLE = "application/x-votable+xml; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


def dali(message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
        '<RESOURCE type="results">\n'
        f'<INFO name="QUERY_STATUS" value="ERROR">{message}</INFO>\n'
        "</RESOURCE>\n</VOTABLE>\n"
    )


#: (exception, status, Content-Type, body, headers besides Content-Type)
CASES: list[tuple[Exception, int, str, str, dict[str, str]]] = [
    (
        TapUsageError("bad <query> & worse"),
        400,
        VOTABLE,
        dali("bad &lt;query&gt; &amp; worse"),
        {},
    ),
    (
        TapQueryError("query cancelled: timeout (limit 2 s)"),
        400,
        VOTABLE,
        dali("query cancelled: timeout (limit 2 s)"),
        {},
    ),
    (
        ServiceBusy(),
        503,
        VOTABLE,
        dali("service busy, retry in a few seconds"),
        {"Retry-After": "5"},
    ),
    (
        TapError("database unavailable: gone"),
        500,
        VOTABLE,
        dali("database unavailable: gone"),
        {},
    ),
    (
        UsageError("LAST must be a positive integer"),
        400,
        TEXT,
        "UsageError: LAST must be a positive integer\n",
        {},
    ),
    (
        UsageError("bad", detail="more\nlines"),
        400,
        TEXT,
        "UsageError: bad\n\nmore\nlines\n",
        {},
    ),
    (JobNotFound("abc"), 404, TEXT, "NotFound: no job 'abc'\n", {}),
    (
        TooManyJobs("too many jobs queued", retry_after=30),
        429,
        TEXT,
        "TooManyJobs: too many jobs queued\n",
        {"Retry-After": "30"},
    ),
    (
        Unauthorized("credentials required"),
        401,
        TEXT,
        "Unauthorized: credentials required\n",
        {"WWW-Authenticate": 'Basic realm="aiouws", charset="UTF-8"'},
    ),
    (
        RuntimeError("a bug"),
        500,
        TEXT,
        "InternalError: internal error; the operator has been told\n",
        {},
    ),
]


def test_tap_errors_are_uws_errors() -> None:
    assert issubclass(TapError, UWSError)
    assert issubclass(ServiceBusy, TapError)


@pytest.mark.parametrize(
    ("exc", "status", "content_type", "body", "headers"),
    CASES,
    ids=[type(case[0]).__name__ for case in CASES],
)
async def test_error_response(
    aiohttp_client: MakeClient,
    exc: Exception,
    status: int,
    content_type: str,
    body: str,
    headers: dict[str, str],
) -> None:
    async def handler(request: web.Request) -> web.Response:
        raise exc

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    resp = await client.get("/")
    assert resp.status == status
    assert resp.headers["Content-Type"] == content_type
    assert await resp.text() == body
    for name, value in headers.items():
        assert resp.headers[name] == value
    if not headers:
        assert "Retry-After" not in resp.headers


async def sync_like(
    client_app: Callable[[web.Application], Awaitable[Client]],
    body: Callable[[endpoints._LazyStream], Awaitable[None]],
) -> Client:
    """A client of an app whose handler streams like ``/tap/sync`` does."""

    async def handler(request: web.Request) -> web.StreamResponse:
        stream = endpoints._LazyStream(request, "text/csv")
        async with stream.delivering(0.0):
            await body(stream)
        assert stream.response is not None
        return stream.response

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/", handler)
    return await client_app(app)


async def test_sync_timeout_before_the_first_bytes_is_a_dali_400(
    aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(endpoints, "SYNC_MARGIN", 0.05)

    async def slow(stream: endpoints._LazyStream) -> None:
        await asyncio.sleep(5)

    client = await sync_like(aiohttp_client, slow)
    resp = await client.get("/")
    assert resp.status == 400
    assert resp.headers["Content-Type"] == VOTABLE
    assert await resp.text() == dali("query did not finish within 0 s")


async def test_sync_error_after_the_first_bytes_ends_the_stream(
    aiohttp_client: MakeClient,
) -> None:
    async def failing(stream: endpoints._LazyStream) -> None:
        await stream.write(b"a,b\n")
        raise TapQueryError("query failed: division by zero")

    client = await sync_like(aiohttp_client, failing)
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/csv"
    # CSV has no trailer: the body is cut off, never complete-looking.
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()


async def test_no_second_response_after_a_started_one(
    aiohttp_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler failing after its streamed response sent bytes: the error
    mapping's answer never goes out inside the body; the connection is cut."""
    from aiouws.http.middleware import started_guard

    async def half_then_fail(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first rows\n")
        raise RuntimeError("encoder broke")

    app = web.Application(middlewares=[started_guard, error_middleware])
    app.router.add_get("/half", half_then_fail)
    client = await aiohttp_client(app)
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(b"GET /half HTTP/1.1\r\nHost: t\r\n\r\n")
    raw = await asyncio.wait_for(reader.read(), 10)  # until the server closes
    writer.close()
    assert raw.count(b"HTTP/1.1") == 1, raw  # before: a 500 inside the body
    assert b"first rows" in raw and not raw.endswith(b"0\r\n\r\n")
    assert "failed after its response started" in caplog.text
