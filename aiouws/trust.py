"""The trust settings parsed: ``trusted_proxies`` (networks of reverse proxies)
and ``allowed_hosts`` (host names generated URLs may use). Stdlib only; the
configuration checks them, :mod:`aiouws.http.proxies` applies them."""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

__all__ = ["ProxyTrust", "parse_trust"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: A Host value: a name or IPv4 address, or a bracketed IPv6 address; a port.
_HOST = re.compile(
    r"^(?P<name>\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::(?P<port>[0-9]{1,5}))?$"
)
#: An allowed_hosts entry: ``*``, ``.domain``, or a host as above.
_ENTRY = re.compile(r"^(\*|\.[a-z0-9_-][a-z0-9_.-]*)$")


@dataclass(frozen=True, slots=True)
class ProxyTrust:
    """Which peers are trusted proxies and which hosts URLs may name."""

    networks: tuple[Network, ...]
    hosts: tuple[str, ...]

    def trusts(self, peer: str | None) -> bool:
        """Whether ``peer`` (an IP address) is a trusted proxy (remembered for
        the most recent peers: asked on every request)."""
        return _trusts(self, peer)

    def _trusts(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def allows(self, host: str) -> bool:
        """Whether the Host value ``host`` (``name[:port]``) is an allowed host.

        An entry ``name`` allows that name on any port, ``name:port`` only that
        port, ``.example.org`` the domain and its subdomains, ``*`` every host.
        """
        host = host.lower()
        match = _HOST.match(host)
        if match is None:
            return False
        name = match["name"]
        for entry in self.hosts:
            if entry in ("*", host, name):
                return True
            if entry.startswith(".") and (name == entry[1:] or name.endswith(entry)):
                return True
        return False


@functools.lru_cache(maxsize=16)
def parse_trust(trusted_proxies: str, allowed_hosts: str) -> ProxyTrust:
    """The comma-separated settings parsed.

    Raises
    ------
    ValueError
        Naming the setting and the entry that does not parse.
    """
    networks = []
    for item in filter(None, (i.strip() for i in trusted_proxies.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"trusted_proxies: {exc}") from None
    hosts = tuple(filter(None, (i.strip().lower() for i in allowed_hosts.split(","))))
    for host in hosts:
        if not (_HOST.match(host) or _ENTRY.match(host)):
            raise ValueError(
                f"allowed_hosts: {host!r} is not a host (name, name:port, .domain or *)"
            )
    return ProxyTrust(tuple(networks), hosts)


@functools.lru_cache(maxsize=1024)
def _trusts(trust: ProxyTrust, peer: str | None) -> bool:
    return trust._trusts(peer)
