"""Fetching client-chosen URLs from public addresses only (no SSRF).

An aiohttp connector whose resolver refuses names with a non-public address, and
a check for IP literals, which aiohttp connects to without resolving;
:func:`fetch_upload` fetches a TAP upload with them into a file.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import IO

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from taprunner.errors import TapUsageError
from taprunner.query.uploadlimits import too_large

__all__ = [
    "NotPublicError",
    "check_literal_host",
    "connector",
    "fetch_upload",
    "is_public",
]

log = logging.getLogger(__name__)


class NotPublicError(OSError):
    """The URL's host is, or resolves to, an address that is not public."""


def is_public(address: str) -> bool:
    """Whether ``address`` (an IP literal) is globally routable unicast.

    Loopback, private, link-local, shared, reserved, unspecified and multicast
    addresses are not; IPv4-mapped IPv6 addresses count as their IPv4 address.
    """
    ip = ipaddress.ip_address(address.partition("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_literal_host(url: str) -> None:
    """Refuse ``url`` if its host is an IP literal that is not public.

    Raises
    ------
    NotPublicError
        The host is missing or a non-public IP literal. Host names pass: the
        resolver of :func:`connector` checks them.
    """
    host = URL(url).host
    if not host:
        raise NotPublicError(f"{url}: no host")
    try:
        public = is_public(host)
    except ValueError:
        return
    if not public:
        raise NotPublicError(f"{host} is not a public address")


class PublicResolver(AbstractResolver):
    """aiohttp's default resolver, refusing any name with a non-public address.

    All of a name's addresses must be public, so whichever the connector tries
    does not matter; the connector connects only to addresses returned here, so
    a second lookup (DNS rebinding) cannot swap in another one.
    """

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self._inner.resolve(host, port, family)
        if not addresses or not all(is_public(a["host"]) for a in addresses):
            raise NotPublicError(f"{host} resolves to an address that is not public")
        return addresses

    async def close(self) -> None:
        await self._inner.close()


def connector(allow_private: bool) -> aiohttp.TCPConnector:
    """A connector for one fetch: public addresses only unless ``allow_private``."""
    if allow_private:
        return aiohttp.TCPConnector()
    return aiohttp.TCPConnector(resolver=PublicResolver())


async def fetch_upload(
    name: str,
    url: str,
    out: IO[bytes],
    *,
    max_bytes: int,
    allow_private: bool,
    seconds: float,
) -> None:
    """GET upload ``name`` from ``url`` (a public address only) into ``out``;
    every failure reads the same.

    The client chooses the URL, so the fetch must not become a way into the
    service's own network (SSRF) or a port scanner: IP literals and every address
    a host name resolves to must be global, the connection goes only to an address
    so checked (the resolver refuses others, so DNS rebinding cannot swap it),
    redirects are not followed, and connection failures, HTTP errors and timeouts
    give one message (a timeout: after ``seconds``). ``allow_private`` lifts
    the address check (tests). More than ``max_bytes`` bytes are refused as
    they arrive.
    """
    cannot = f"upload {name!r}: cannot fetch {url}"
    timeout = aiohttp.ClientTimeout(total=seconds)
    try:
        if not allow_private:
            check_literal_host(url)
        async with (
            aiohttp.ClientSession(
                timeout=timeout, connector=connector(allow_private), trust_env=False
            ) as session,
            session.get(url, allow_redirects=False) as response,
        ):
            if 300 <= response.status < 400:
                raise TapUsageError(f"{cannot} (redirects are not followed)")
            response.raise_for_status()
            if (response.content_length or 0) > max_bytes:
                raise TapUsageError(too_large(name, max_bytes))
            size = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise TapUsageError(too_large(name, max_bytes))
                out.write(chunk)
    except (NotPublicError, TimeoutError, aiohttp.ClientError, ValueError) as exc:
        log.info("upload fetch failed", extra={"url": url, "reason": str(exc)})
        raise TapUsageError(cannot) from exc
