"""Job owners on the UWS API: header and basic authentication, isolation."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from testkit import MakeClient
from uwskit import ECHO

from aiouws.config import Settings
from aiouws.http.app import create_app


async def test_owner_isolation_with_header_auth(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    from dataclasses import replace

    client = await aiohttp_client(
        create_app(replace(settings, auth="header"), [ECHO], execute=False)
    )
    alice = {"X-Remote-User": "alice"}
    resp = await client.post(
        "/jobs/echo", data={"needed": "1"}, headers=alice, allow_redirects=False
    )
    job_id = resp.headers["Location"].rsplit("/", 1)[1]
    assert (
        await (await client.get(f"/jobs/echo/{job_id}/owner", headers=alice)).text()
        == "alice"
    )
    for headers in ({"X-Remote-User": "bob"}, {}):
        assert (await client.get(f"/jobs/echo/{job_id}", headers=headers)).status == 403
        assert (
            await client.delete(f"/jobs/echo/{job_id}", headers=headers)
        ).status == 403
        listing = await (await client.get("/jobs/echo", headers=headers)).text()
        assert job_id not in listing
    assert job_id in await (await client.get("/jobs/echo", headers=alice)).text()


async def test_basic_auth(
    settings: Settings, aiohttp_client: MakeClient, tmp_path: Any
) -> None:
    from dataclasses import replace

    from aiouws.http.auth import hash_password

    passwd = tmp_path / "passwd"
    passwd.write_text(f"carol:{hash_password('s3cret')}\n")
    client = await aiohttp_client(
        create_app(
            replace(settings, auth="basic", passwd_file=passwd), [ECHO], execute=False
        )
    )
    good = {"Authorization": "Basic " + base64.b64encode(b"carol:s3cret").decode()}
    bad = {"Authorization": "Basic " + base64.b64encode(b"carol:nope").decode()}
    resp = await client.post(
        "/jobs/echo", data={"needed": "1"}, headers=good, allow_redirects=False
    )
    assert resp.status == 303
    job_id = resp.headers["Location"].rsplit("/", 1)[1]
    assert (
        await (await client.get(f"/jobs/echo/{job_id}/owner", headers=good)).text()
        == "carol"
    )
    resp = await client.get("/jobs/echo", headers=bad)
    assert resp.status == 401 and "WWW-Authenticate" in resp.headers
    assert (await client.get(f"/jobs/echo/{job_id}")).status == 403


async def test_basic_credentials_not_ascii_are_a_401_not_a_500(
    settings: Settings, aiohttp_client: MakeClient, tmp_path: Any
) -> None:
    import asyncio
    from dataclasses import replace

    passwd = tmp_path / "passwd"
    passwd.write_text("")
    client = await aiohttp_client(
        create_app(
            replace(settings, auth="basic", passwd_file=passwd), [ECHO], execute=False
        )
    )
    # A raw byte a client library would refuse to send; the server must not.
    reader, writer = await asyncio.open_connection(
        str(client.server.host), int(client.server.port or 0)
    )
    writer.write(
        b"GET /jobs/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \xffQQ==\r\n"
        b"Connection: close\r\n\r\n"
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:300]


async def test_refused_credentials_are_hashed_once_per_request(
    settings: Settings,
    aiohttp_client: MakeClient,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The owner middleware (for the access log) and the handler both ask who
    the owner is: a wrong password costs one PBKDF2, not two."""
    import hashlib
    from dataclasses import replace

    from aiouws.http.auth import hash_password

    passwd = tmp_path / "passwd"
    passwd.write_text(f"carol:{hash_password('s3cret')}\n")
    client = await aiohttp_client(
        create_app(
            replace(settings, auth="basic", passwd_file=passwd), [ECHO], execute=False
        )
    )
    real = hashlib.pbkdf2_hmac
    calls: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counted)
    bad = {"Authorization": "Basic " + base64.b64encode(b"carol:nope").decode()}
    resp = await client.get("/jobs/echo", headers=bad)
    assert resp.status == 401
    assert len(calls) == 1
