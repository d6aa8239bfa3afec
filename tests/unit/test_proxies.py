"""Whom to believe (aiouws/http/proxies.py, aiouws/trust.py): the client address
behind trusted proxies and the origin of generated URLs, for given peers and
headers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from aiouws.config import Settings
from aiouws.http.proxies import client_address, request_origin
from aiouws.trust import parse_trust

BASE = Settings(trusted_proxies="127.0.0.0/8,10.0.0.0/8", allowed_hosts="tap.org")


class Transport:
    """The two things a request asks its transport for."""

    def __init__(self, peer: str) -> None:
        self._extra = {"peername": (peer, 5555), "sockname": ("192.0.2.7", 8080)}

    def get_extra_info(self, key: str, default: object = None) -> object:
        return self._extra.get(key, default)


def request(peer: str, **headers: str) -> web.Request:
    named = {k.replace("_", "-"): v for k, v in headers.items()}
    return make_mocked_request("GET", "/", headers=named, transport=Transport(peer))


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # untrusted peer: its own
        ("127.0.0.1", "1.2.3.4", "1.2.3.4"),
        ("127.0.0.1", "6.6.6.6, 1.2.3.4, 10.1.1.1", "1.2.3.4"),  # past proxies
        ("127.0.0.1", "6.6.6.6, garbage, 10.1.1.1", "10.1.1.1"),
        ("127.0.0.1", "", "127.0.0.1"),
        ("::ffff:127.0.0.1", "1.2.3.4", "1.2.3.4"),
    ],
)
def test_client_address(peer: str, forwarded: str, client: str) -> None:
    assert client_address(request(peer, X_Forwarded_For=forwarded), BASE) == client


@pytest.mark.parametrize(
    ("peer", "headers", "origin"),
    [
        ("203.0.113.9", {"Host": "evil.org"}, "http://192.0.2.7:8080"),
        ("203.0.113.9", {"Host": "TAP.org:81"}, "http://tap.org:81"),
        (
            "203.0.113.9",
            {"Host": "tap.org", "X_Forwarded_Proto": "https"},
            "http://tap.org",
        ),
        (
            "10.0.0.5",
            {
                "Host": "x",
                "X_Forwarded_Host": "tap.org",
                "X_Forwarded_Proto": "https",
                "X_Forwarded_Prefix": "/a/b",
            },
            "https://tap.org/a/b",
        ),
        ("10.0.0.5", {"X_Forwarded_Host": "evil.org"}, "http://192.0.2.7:8080"),
        ("10.0.0.5", {}, "http://192.0.2.7:8080"),
    ],
)
def test_request_origin(peer: str, headers: dict[str, str], origin: str) -> None:
    assert request_origin(request(peer, **headers), BASE) == origin


def test_allowed_host_entries() -> None:
    trust = parse_trust("", "a.org, b.org:8443, .c.org, [::1]")
    allowed = ["a.org", "a.org:1", "b.org:8443", "c.org", "x.c.org:9", "[::1]:80"]
    for host in allowed:
        assert trust.allows(host), host
    for host in ("b.org", "b.org:80", "xc.org", "a.org.evil", "a.org@evil", ""):
        assert not trust.allows(host), host
    assert parse_trust("", "*").allows("anything.example")
    assert not parse_trust("", "").allows("127.0.0.1:8080")


def test_nothing_is_trusted_when_no_proxies_are() -> None:
    none = replace(BASE, trusted_proxies="")
    assert client_address(request("127.0.0.1", X_Forwarded_For="1.2.3.4"), none) == (
        "127.0.0.1"
    )
