"""CORS over real HTTP: listed origins get credentials, others ``*`` only when
``cors_any_origin``; preflights answered; streamed and error responses too."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from testkit import Client, MakeClient

from aiouws.config import Settings
from taprunner.settings import TapSettings
from taprunner.web.app import create_tap_app

LISTED = "https://www.example.org"
OTHER = "https://elsewhere.net"
PATTERN = r"https://(www\.)?example\.org"


async def _client(
    settings: Settings, aiohttp_client: MakeClient, **changes: object
) -> Client:
    changed = replace(settings, **changes)
    app = create_tap_app(changed, TapSettings.for_service(changed), demo_rows=50)
    return await aiohttp_client(app)


@pytest.fixture
async def cors_client(settings: Settings, aiohttp_client: MakeClient) -> Client:
    return await _client(
        settings, aiohttp_client, cors_origins=PATTERN, cors_any_origin=True
    )


async def test_listed_origin_gets_credentials(cors_client: Client) -> None:
    response = await cors_client.get("/tap/availability", headers={"Origin": LISTED})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == LISTED
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Location" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" in response.headers.getall("Vary")


async def test_other_origin_gets_anonymous_access_only(cors_client: Client) -> None:
    for origin in (OTHER, "https://example.org.evil.net", "http://example.org"):
        response = await cors_client.get(
            "/tap/availability", headers={"Origin": origin}
        )
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers


async def test_streamed_and_error_responses_carry_the_headers(
    cors_client: Client,
) -> None:
    sync = await cors_client.get(
        "/tap/sync",
        params={"LANG": "ADQL", "QUERY": "SELECT TOP 2 id FROM demo.stars"},
        headers={"Origin": LISTED},
    )
    assert sync.status == 200
    assert sync.headers["Access-Control-Allow-Origin"] == LISTED
    bad = await cors_client.get(
        "/tap/sync",
        params={"LANG": "ADQL", "QUERY": "SELECT nothing FROM nowhere"},
        headers={"Origin": LISTED},
    )
    assert bad.status == 400
    assert bad.headers["Access-Control-Allow-Origin"] == LISTED
    missing = await cors_client.get("/no/such/page", headers={"Origin": OTHER})
    assert missing.status == 404
    assert missing.headers["Access-Control-Allow-Origin"] == "*"


async def test_no_origin_no_cors_headers(cors_client: Client) -> None:
    response = await cors_client.get("/tap/availability")
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_preflight_is_answered(cors_client: Client) -> None:
    response = await cors_client.options(
        "/tap/async",
        headers={
            "Origin": LISTED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == LISTED
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "DELETE" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == (
        "authorization, content-type"
    )
    assert int(response.headers["Access-Control-Max-Age"]) > 0


async def test_listed_origins_only(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    client = await _client(settings, aiohttp_client, cors_origins=PATTERN)
    response = await client.get("/tap/availability", headers={"Origin": OTHER})
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = await client.options(
        "/tap/sync",
        headers={"Origin": OTHER, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 403
    listed = await client.options(
        "/tap/sync",
        headers={"Origin": LISTED, "Access-Control-Request-Method": "POST"},
    )
    assert listed.status == 204


async def test_cors_off_by_default(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    client = await _client(settings, aiohttp_client)
    response = await client.get("/tap/availability", headers={"Origin": LISTED})
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = await client.options(
        "/tap/sync",
        headers={"Origin": LISTED, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 405


async def _raw(client: Client, head: bytes) -> bytes:
    """The answer to a request sent as raw bytes (a browser never sends these)."""
    reader, writer = await asyncio.open_connection(
        str(client.server.host), int(client.server.port or 0)
    )
    writer.write(head + b"Host: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


async def test_non_ascii_origin_is_refused_not_a_500(cors_client: Client) -> None:
    preflight = await _raw(
        cors_client,
        b"OPTIONS /tap/sync HTTP/1.1\r\nOrigin: https://\xff.example.org\r\n"
        b"Access-Control-Request-Method: POST\r\n",
    )
    assert preflight.startswith(b"HTTP/1.1 403 "), preflight[:200]
    assert b"https://\\udcff.example.org" in preflight
    plain = await _raw(
        cors_client,
        b"GET /tap/availability HTTP/1.1\r\nOrigin: https://www.\xffexample.org\r\n",
    )
    assert plain.startswith(b"HTTP/1.1 200 "), plain[:200]
    assert b"access-control-allow-origin" not in plain.lower()
