"""An unavailable database is recognised in one place and answered with a 503
that says when to retry: DALI for TAP, text/plain for UWS, never a 500."""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from aiouws.errors import DatabaseUnavailable, ServiceUnavailable, StoreError
from aiouws.http.middleware import UNAVAILABLE_ERROR, error_middleware
from aiouws.storage.outage import unavailable_cause, unavailable_message
from taprunner.errors import TapUnavailable

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


def _chained() -> BaseException:
    try:
        try:
            raise asyncpg.AdminShutdownError("terminating connection")
        except asyncpg.AdminShutdownError as exc:
            raise RuntimeError("while writing") from exc
    except RuntimeError as outer:
        return outer


OUTAGES: list[BaseException] = [
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.InterfaceError("pool is closing"),
    asyncpg.InternalClientError("cannot switch to state 12; another operation"),
    ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
    _chained(),
]
NOT_OUTAGES: list[BaseException] = [
    OSError(errno.ENOSPC, "No space left on device"),
    FileNotFoundError(errno.ENOENT, "no such result"),
    asyncpg.DivisionByZeroError("division by zero"),
    asyncpg.InterfaceError("the server expects 2 arguments, 1 was passed"),
    RuntimeError("a bug"),
]


@pytest.mark.parametrize("exc", OUTAGES, ids=lambda e: type(e).__name__)
def test_outages_are_recognised(exc: BaseException) -> None:
    assert unavailable_cause(exc) is not None


@pytest.mark.parametrize("exc", NOT_OUTAGES, ids=lambda e: type(e).__name__)
def test_other_failures_are_not_outages(exc: BaseException) -> None:
    assert unavailable_cause(exc) is None


def test_talking_to_the_database_any_os_error_is_an_outage() -> None:
    missing_socket = FileNotFoundError(errno.ENOENT, "No such file or directory")
    assert unavailable_cause(missing_socket, connecting=True) is missing_socket


def test_the_hierarchy() -> None:
    assert issubclass(StoreError, DatabaseUnavailable)
    assert issubclass(DatabaseUnavailable, ServiceUnavailable)
    assert issubclass(TapUnavailable, DatabaseUnavailable)
    assert TapUnavailable("x").status == 503
    assert TapUnavailable("x").headers() == {"Retry-After": "5"}


async def _answer(
    aiohttp_client: MakeClient, exc: BaseException, *, tap: bool
) -> tuple[int, dict[str, str], str]:
    async def handler(request: web.Request) -> web.Response:
        raise exc

    app = web.Application(middlewares=[error_middleware])
    if tap:
        app[UNAVAILABLE_ERROR] = TapUnavailable
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    resp = await client.get("/")
    return resp.status, dict(resp.headers), await resp.text()


@pytest.mark.parametrize("exc", OUTAGES, ids=lambda e: type(e).__name__)
async def test_a_raw_outage_is_a_503_with_retry_after(
    aiohttp_client: MakeClient, exc: BaseException
) -> None:
    status, headers, body = await _answer(aiohttp_client, exc, tap=False)
    assert status == 503
    assert headers["Retry-After"] == "5"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body.startswith("ServiceUnavailable: database unavailable: ")


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.CannotConnectNowError("the database system is starting up"),
        StoreError("job database unavailable: gone"),
    ],
    ids=["raw", "store"],
)
async def test_tap_answers_an_outage_with_a_dali_document(
    aiohttp_client: MakeClient, exc: BaseException
) -> None:
    status, headers, body = await _answer(aiohttp_client, exc, tap=True)
    assert status == 503
    assert headers["Retry-After"] == "5"
    assert headers["Content-Type"] == "application/x-votable+xml; charset=utf-8"
    assert '<INFO name="QUERY_STATUS" value="ERROR">' in body
    assert "database unavailable: " in body


async def test_a_full_disk_is_no_outage(aiohttp_client: MakeClient) -> None:
    exc = OSError(errno.ENOSPC, "No space left on device")
    status, headers, body = await _answer(aiohttp_client, exc, tap=False)
    assert status == 507  # the disk, said as such: no 503, no internal error
    assert "Retry-After" not in headers
    assert "no space left on device" in body


def test_a_refused_connection_is_told_without_the_servers_address() -> None:
    """Found in review: the client read the host and port (or socket path)."""
    refused = ConnectionRefusedError(
        errno.ECONNREFUSED, "Connect call failed ('10.1.2.3', 5432)"
    )
    message = unavailable_message(refused)
    assert message.startswith("database unavailable")
    assert "10.1.2.3" not in message and "5432" not in message
    shutdown = asyncpg.AdminShutdownError("terminating connection due to admin")
    assert "terminating connection" in unavailable_message(shutdown)
