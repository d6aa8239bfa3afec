"""Whom to believe about a request: the client's address and the public origin.

A request's ``Host`` header, and the ``X-Forwarded-*`` headers a reverse proxy
adds, are written by the client unless a proxy replaced them. So generated URLs
use a ``Host`` (or a trusted proxy's ``X-Forwarded-Host``) only when it names one
of ``allowed_hosts``; ``X-Forwarded-For``/``-Proto``/``-Prefix`` count only when
the peer is in ``trusted_proxies``; anything else falls back to the address the
request came in on. ``base_url``, when set, wins over all of it
(:func:`aiouws.http.urls.public_origin`).
"""

from __future__ import annotations

import ipaddress
import re

from aiohttp import web

from aiouws.config import Settings
from aiouws.trust import ProxyTrust, parse_trust

__all__ = ["client_address", "request_origin", "trust_of"]

#: An X-Forwarded-Prefix: path segments of unreserved and sub-delim characters.
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*/?$")


def trust_of(settings: Settings) -> ProxyTrust:
    """The parsed trust settings (validated by :meth:`Settings.validate`)."""
    return parse_trust(settings.trusted_proxies, settings.allowed_hosts)


def _first(value: str | None) -> str:
    """The first of a comma-separated header's values (the client-side proxy's)."""
    return (value or "").split(",")[0].strip()


def client_address(request: web.BaseRequest, settings: Settings) -> str:
    """The client's IP address: the peer's, or what trusted proxies forwarded.

    ``X-Forwarded-For`` is read from the right (the hop nearest to us) past
    trusted proxies; the first address that is not one is the client.
    """
    trust = trust_of(settings)
    peer = request.remote or ""
    if not trust.trusts(peer):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getall("X-Forwarded-For", [])
        for hop in header.split(",")
    ]
    client = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # garbage: believe nothing further left
        client = hop
        if not trust.trusts(hop):
            break
    return client


def _listening(request: web.BaseRequest, settings: Settings) -> str:
    """``host:port`` of the socket the request came in on."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host, port = str(sockname[0]), int(sockname[1])
    else:
        host, port = settings.host, settings.port
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}"


def request_origin(request: web.BaseRequest, settings: Settings) -> str:
    """``scheme://host[:port][/prefix]`` as the client addressed the service.

    The host is the ``Host`` header (a trusted proxy's ``X-Forwarded-Host``)
    when it is one of ``allowed_hosts``; the scheme and prefix are a trusted
    proxy's ``X-Forwarded-Proto`` and ``X-Forwarded-Prefix``. Otherwise: the
    listening address and the connection's own scheme, no prefix.
    """
    trust = trust_of(settings)
    proxied = trust.trusts(request.remote)
    headers = request.headers
    host = (_first(headers.get("X-Forwarded-Host")) if proxied else "") or headers.get(
        "Host", ""
    )
    if not trust.allows(host):
        return f"{request.scheme}://{_listening(request, settings)}"
    scheme = request.scheme
    prefix = ""
    if proxied:
        forwarded = _first(headers.get("X-Forwarded-Proto")).lower()
        scheme = forwarded if forwarded in ("http", "https") else scheme
        given = _first(headers.get("X-Forwarded-Prefix"))
        prefix = given.rstrip("/") if _PREFIX.match(given) else ""
    return f"{scheme}://{host.lower()}{prefix}"
