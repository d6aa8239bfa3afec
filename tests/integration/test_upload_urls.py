"""TAP uploads by URL: fetched only from public addresses, never redirected."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from testkit import DbSetup
from uploadkit import MB, TAP_STARS, ids_table, run_adql

from taprunner.errors import TapUsageError
from taprunner.query import uploads
from taprunner.query.uploads import load_uploads
from taprunner.request import parse_uploads
from taprunner.schema.catalog import TapCatalog


@pytest.fixture
def db_setup() -> DbSetup:
    return TAP_STARS


# --------------------------------------------------------------------------------
# Uploads by URL


@pytest.fixture
async def vot_server(aiohttp_server: Callable[..., Awaitable[Any]]) -> Any:
    async def table(request: web.Request) -> web.Response:
        request.app[HITS].append(request.path)
        return web.Response(
            body=ids_table([7, 8], "u"), content_type="application/x-votable+xml"
        )

    async def missing(request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(body=b"")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/t.vot")

    app = web.Application()
    app[HITS] = []
    app.router.add_get("/t.vot", table)
    app.router.add_get("/missing", missing)
    app.router.add_get("/slow", slow)
    app.router.add_get("/moved", moved)
    return await aiohttp_server(app)


HITS = web.AppKey("hits", list[str])


async def fetch_error(
    conn: asyncpg.Connection, catalog: TapCatalog, url: str, **kwargs: Any
) -> str:
    with pytest.raises(TapUsageError) as info:
        async with load_uploads(
            conn, parse_uploads(f"r,{url}"), {}, catalog, **{"max_bytes": MB, **kwargs}
        ):
            pass
    return str(info.value)


async def test_upload_by_url(
    conn: asyncpg.Connection,
    catalog: TapCatalog,
    vot_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = str(vot_server.make_url("/t.vot"))
    async with load_uploads(
        conn,
        parse_uploads(f"remote,{url}"),
        {},
        catalog,
        max_bytes=MB,
        allow_private_urls=True,
    ) as full:
        rows = await run_adql(
            conn, full, "SELECT label FROM TAP_UPLOAD.remote ORDER BY id"
        )
    assert list(rows["label"]) == ["u7", "u8"]
    monkeypatch.setattr(uploads, "FETCH_TIMEOUT", 0.3)
    message = await fetch_error(
        conn, catalog, url, max_bytes=100, allow_private_urls=True
    )
    assert "larger than the limit of 100" in message
    # Refused connection, HTTP error and timeout read the same (no port scanner).
    for target in (
        str(vot_server.make_url("/missing")),
        str(vot_server.make_url("/slow")),
        "http://127.0.0.1:1/x",
    ):
        message = await fetch_error(conn, catalog, target, allow_private_urls=True)
        assert message == f"upload 'r': cannot fetch {target}"


async def test_upload_urls_must_be_public(
    conn: asyncpg.Connection,
    catalog: TapCatalog,
    vot_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(uploads, "FETCH_TIMEOUT", 2.0)
    port = vot_server.port
    for url in (
        f"http://127.0.0.1:{port}/t.vot",
        f"http://localhost:{port}/t.vot",
        f"http://[::1]:{port}/t.vot",
        f"http://[::ffff:127.0.0.1]:{port}/t.vot",
        f"http://2130706433:{port}/t.vot",
        "http://10.1.2.3/t.vot",
        "http://192.168.0.1/t.vot",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/t.vot",
        "http://224.0.0.1/t.vot",
    ):
        assert await fetch_error(conn, catalog, url) == (
            f"upload 'r': cannot fetch {url}"
        )
    assert vot_server.app[HITS] == []


async def test_upload_urls_are_not_redirected(
    conn: asyncpg.Connection, catalog: TapCatalog, vot_server: Any
) -> None:
    url = str(vot_server.make_url("/moved"))
    message = await fetch_error(conn, catalog, url, allow_private_urls=True)
    assert message == f"upload 'r': cannot fetch {url} (redirects are not followed)"
    assert vot_server.app[HITS] == []


def test_public_addresses() -> None:
    from taprunner.query.urlfetch import is_public

    assert is_public("8.8.8.8") and is_public("2001:4860:4860::8888")
    for address in ("127.0.0.1", "::1", "10.0.0.1", "172.16.0.1", "169.254.1.1",
                    "fe80::1%eth0", "fc00::1", "100.64.0.1", "0.0.0.0", "::",
                    "255.255.255.255", "240.0.0.1", "::ffff:10.0.0.1"):  # fmt: skip
        assert not is_public(address), address
