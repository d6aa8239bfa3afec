"""Every endpoint resolves the user the same way: wrong credentials are a 401 on
``/tap/sync`` and VOSI as on UWS; ``require_auth`` refuses anonymous requests
except to the public paths; anonymous requests list no jobs."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from testkit import Client, MakeClient
from uwskit import ECHO

from aiouws.config import ConfigError, Settings
from aiouws.http.app import create_app
from aiouws.http.auth import hash_password
from taprunner.web.app import create_tap_app

SYNC = "/tap/sync?LANG=ADQL&QUERY=SELECT+TOP+1+id+FROM+demo.stars"
TAP_PATHS = (
    SYNC,
    "/tap/async",
    "/tap/tables",
    "/tap/examples",
    "/tap/capabilities",
    "/tap/availability",
    "/tap/resource",
    "/",
)
PUBLIC = ("/tap/capabilities", "/tap/availability", "/tap/resource")


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def tap_client(
    settings: Settings, aiohttp_client: MakeClient, **changes: Any
) -> Client:
    return await aiohttp_client(
        create_tap_app(replace(settings, **changes), demo_rows=10)
    )


async def test_wrong_passwords_are_refused_on_every_endpoint(
    settings: Settings, aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    """Before: /tap/sync and VOSI answered 200 to a wrong password."""
    passwd = tmp_path / "passwd"
    passwd.write_text(f"carol:{hash_password('s3cret')}\n")
    client = await tap_client(
        settings, aiohttp_client, auth="basic", passwd_file=passwd
    )
    for i, path in enumerate(TAP_PATHS):
        # A name and an address each (forwarded by the trusted loopback proxy):
        # no back-off.
        wrong = basic(f"user{i}", "nope") | {"X-Forwarded-For": f"10.5.0.{i}"}
        resp = await client.get(path, headers=wrong)
        assert resp.status == 401, path
        assert resp.headers["WWW-Authenticate"].startswith("Basic"), path
        right = basic("carol", "s3cret")
        assert (await client.get(path, headers=right)).status == 200, path
        assert (await client.get(path)).status == 200  # anonymous is allowed


async def test_require_auth_refuses_anonymous_requests_but_the_public_ones(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    client = await tap_client(
        settings, aiohttp_client, auth="header", require_auth=True
    )
    alice = {"X-Remote-User": "alice"}
    for path in TAP_PATHS:
        resp = await client.get(path)
        if path in PUBLIC:
            assert resp.status == 200, path
        else:
            assert resp.status == 401, path
            assert "WWW-Authenticate" in resp.headers
        assert (await client.get(path, headers=alice)).status == 200, path
    resp = await client.post(
        "/tap/async", data={"QUERY": "SELECT 1 AS x"}, allow_redirects=False
    )
    assert resp.status == 401
    assert (await client.get("/tap/async/stylesheet.xsl")).status == 401


def test_require_auth_needs_an_authentication(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="require_auth"):
        replace(settings, require_auth=True).validate()
    with pytest.raises(ConfigError, match="trusted_proxies"):
        replace(settings, trusted_proxies="10.0.0.0/33").validate()
    with pytest.raises(ConfigError, match="allowed_hosts"):
        replace(settings, allowed_hosts="http://x.org").validate()


async def test_anonymous_requests_list_no_jobs_but_reach_one_by_its_url(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    client = await aiohttp_client(create_app(settings, [ECHO], execute=False))
    resp = await client.post("/jobs/echo", data={"needed": "1"}, allow_redirects=False)
    job_url = resp.headers["Location"]
    job_path = "/" + job_url.split("/", 3)[3]
    listing = await (await client.get("/jobs/echo")).text()
    assert "<uws:jobs" in listing and "uws:jobref" not in listing
    assert (await client.get(job_path)).status == 200  # its URL is its key
    resp = await client.delete(job_path, allow_redirects=False)
    assert resp.status == 303
    assert (await client.get(job_path)).status == 404


async def test_users_list_only_their_own_jobs(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    client = await aiohttp_client(
        create_app(replace(settings, auth="header"), [ECHO], execute=False)
    )
    ids = {}
    for user in ("alice", "bob", None):
        headers = {"X-Remote-User": user} if user else {}
        resp = await client.post(
            "/jobs/echo", data={"needed": "1"}, headers=headers, allow_redirects=False
        )
        ids[user] = resp.headers["Location"].rsplit("/", 1)[1]
    for user in ("alice", "bob"):
        listing = await (
            await client.get("/jobs/echo", headers={"X-Remote-User": user})
        ).text()
        assert {u for u, i in ids.items() if i in listing} == {user}
    assert "uws:jobref" not in await (await client.get("/jobs/echo")).text()


async def test_the_user_header_is_believed_only_from_trusted_proxies(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    """Before: any client that reached the port could name any user."""
    untrusted = replace(settings, auth="header", trusted_proxies="192.0.2.0/24")
    client = await aiohttp_client(create_app(untrusted, [ECHO], execute=False))
    resp = await client.get("/jobs/echo", headers={"X-Remote-User": "alice"})
    assert resp.status == 403
    assert "trusted_proxies" in await resp.text()
    assert (await client.get("/jobs/echo")).status == 200  # anonymous still is
