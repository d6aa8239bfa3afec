"""Fetching client-chosen URLs from public addresses only (no SSRF).

An aiohttp connector whose resolver refuses names with a non-public address, and
a check for IP literals, which aiohttp connects to without resolving.
"""

from __future__ import annotations

import ipaddress
import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

__all__ = ["NotPublicError", "check_literal_host", "connector", "is_public"]


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
