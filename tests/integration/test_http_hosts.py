"""Generated URLs never take a client's word for the host: ``Location``, job and
result hrefs, the stylesheet instruction and TAP's documents use ``base_url``,
an allowed host, or the listening address; ``X-Forwarded-*`` only from trusted
proxies."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from testkit import Client, MakeClient
from uwskit import ECHO

from aiouws.config import Settings
from aiouws.http.app import create_app

EVIL = "evil.example.com"
SPOOFED = {
    "X-Forwarded-Host": EVIL,
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Prefix": "/phish",
}


async def echo_client(
    settings: Settings, aiohttp_client: MakeClient, **changes: Any
) -> tuple[Client, str]:
    client = await aiohttp_client(
        create_app(replace(settings, **changes), [ECHO], execute=False)
    )
    return client, f"http://127.0.0.1:{client.port}"


async def location(client: Client, headers: dict[str, str]) -> str:
    resp = await client.post(
        "/jobs/echo", data={"needed": "1"}, headers=headers, allow_redirects=False
    )
    assert resp.status == 303
    return resp.headers["Location"]


async def test_a_spoofed_host_gets_the_listening_address(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    client, listening = await echo_client(settings, aiohttp_client, stylesheet=True)
    job_url = await location(client, {"Host": EVIL})
    assert job_url.startswith(f"{listening}/jobs/echo/")
    job_id = job_url.rsplit("/", 1)[1]
    resp = await client.get(f"/jobs/echo/{job_id}", headers={"Host": EVIL})
    document = await resp.text()
    assert EVIL not in document
    assert f'href="{listening}/jobs/echo/stylesheet.xsl"' in document
    listing = await (await client.get("/jobs/echo", headers={"Host": EVIL})).text()
    assert EVIL not in listing


async def test_an_allowed_host_is_used_and_others_are_not(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    client, listening = await echo_client(
        settings, aiohttp_client, allowed_hosts="tap.example.org, .example.net"
    )
    for host, origin in (
        ("tap.example.org", "http://tap.example.org"),
        ("TAP.example.org:8443", "http://tap.example.org:8443"),
        ("mirror.example.net", "http://mirror.example.net"),
        ("example.net", "http://example.net"),
        (EVIL, listening),
        ("tap.example.org.evil.example.com", listening),
        ("tap.example.org@evil.example.com", listening),
    ):
        assert (await location(client, {"Host": host})).startswith(
            f"{origin}/jobs/echo/"
        ), host


async def test_forwarded_headers_from_an_untrusted_address_are_ignored(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    client, listening = await echo_client(
        settings,
        aiohttp_client,
        trusted_proxies="192.0.2.0/24",  # not the test client's 127.0.0.1
        allowed_hosts=f"tap.example.org,{EVIL}",
    )
    url = await location(client, {"Host": "tap.example.org", **SPOOFED})
    assert url.startswith("http://tap.example.org/jobs/echo/")
    url = await location(client, {"Host": listening.split("//")[1], **SPOOFED})
    assert url.startswith(f"{listening}/jobs/echo/")


async def test_a_trusted_proxy_sets_scheme_prefix_and_an_allowed_host(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    # Loopback is trusted by default (a proxy on the same machine).
    client, listening = await echo_client(
        settings, aiohttp_client, allowed_hosts="tap.example.org"
    )
    forwarded = {
        "X-Forwarded-Host": "tap.example.org",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Prefix": "/svc/",
    }
    url = await location(client, forwarded)
    assert url.startswith("https://tap.example.org/svc/jobs/echo/")
    # Even a trusted proxy cannot name a host that is not allowed.
    url = await location(client, {**forwarded, "X-Forwarded-Host": EVIL})
    assert url.startswith(f"{listening}/jobs/echo/")
    # A malformed prefix or scheme is ignored.
    url = await location(
        client,
        {
            **forwarded,
            "X-Forwarded-Prefix": "//evil.example.com",
            "X-Forwarded-Proto": "javascript",
        },
    )
    assert url.startswith("http://tap.example.org/jobs/echo/")


async def test_base_url_wins(settings: Settings, aiohttp_client: MakeClient) -> None:
    client, _ = await echo_client(
        settings, aiohttp_client, base_url="https://public.example.org/"
    )
    url = await location(client, {"Host": EVIL, **SPOOFED})
    assert url.startswith("https://public.example.org/jobs/echo/")


async def test_tap_documents_never_name_a_spoofed_host(client: Client) -> None:
    """The TAP service (``client``): capabilities, the examples page, the home
    page and an async job's result hrefs."""
    spoof = {"Host": EVIL, **SPOOFED}
    for path in ("/tap/capabilities", "/tap/examples", "/"):
        resp = await client.get(path, headers=spoof)
        assert resp.status == 200
        assert EVIL not in await resp.text(), path
    resp = await client.post(
        "/tap/async",
        data={"QUERY": "SELECT TOP 1 id FROM demo.stars", "PHASE": "RUN"},
        headers=spoof,
        allow_redirects=False,
    )
    job_url = resp.headers["Location"]
    assert EVIL not in job_url
    job_path = "/" + job_url.split("/", 3)[3]
    for _ in range(20):
        done = await client.get(f"{job_path}?WAIT=5", headers=spoof)
        if "COMPLETED" in await done.text():
            break
    else:
        raise AssertionError("the job did not complete")
    results = await (await client.get(f"{job_path}/results", headers=spoof)).text()
    assert "xlink:href" in results and EVIL not in results
