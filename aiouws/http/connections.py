"""Slow and hostile clients: what one connection, and one address, may hold.

aiohttp has no timeout for a request's head or body (a client sending a header
line now and then holds its connection, and a file descriptor, for good), and no
cap per client. :class:`ConnectionGuard` wraps each connection's protocol (the
:class:`GuardedSite` listens with it) and closes a connection that

- has not sent a whole request head ``header_timeout`` seconds after it opened,
  or after the first byte of a next request (answered 408 first);
- pauses a request body for ``body_timeout`` seconds;
- is one too many of its client address (``max_connections_per_address``):
  closed as it comes. Loopback addresses are not capped: a reverse proxy on
  the same host (deploy/nginx.conf) brings every client from there, and local
  tools and benchmarks open many connections.

A request's head is complete when the application sees the request: the
outermost middleware (:func:`connection_middleware`) tells the guard, which is
found under :data:`CONNECTIONS` (absent: nothing is guarded, e.g. in tests that
serve the application otherwise).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import cast

from aiohttp import web

from aiouws.config import Settings

__all__ = ["CONNECTIONS", "ConnectionGuard", "GuardedSite", "connection_middleware"]

log = logging.getLogger(__name__)

_LATE = b"request head not received in time\n"
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
    b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
) % (len(_LATE), _LATE)


class ConnectionGuard:
    """Counts connections per address and times their request heads and bodies."""

    def __init__(
        self,
        *,
        header_timeout: float,
        body_timeout: float,
        max_per_address: int,
        cap_loopback: bool = False,
    ) -> None:
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_per_address = max_per_address
        self.cap_loopback = cap_loopback
        self.open: Counter[str] = Counter()
        self._by_handler: dict[object, _Guarded] = {}
        self._warned: set[str] = set()

    @classmethod
    def of(cls, settings: Settings) -> ConnectionGuard:
        return cls(
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            max_per_address=settings.max_connections_per_address,
        )

    def factory(
        self, make_handler: Callable[[], asyncio.Protocol]
    ) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server``: ``make_handler``'s
        protocols (aiohttp's ``Server``), each guarded."""
        return lambda: _Guarded(self, make_handler())

    def admit(self, address: str, guarded: _Guarded) -> bool:
        """Count a new connection of ``address``; False if it is one too many."""
        if (
            self.max_per_address
            and self.open[address] >= self.max_per_address
            and (self.cap_loopback or not _is_loopback(address))
        ):
            if address not in self._warned:
                self._warned.add(address)
                log.warning(
                    "connections refused: client at its cap",
                    extra={"address": address, "cap": self.max_per_address},
                )
            return False
        self.open[address] += 1
        self._by_handler[guarded.handler] = guarded
        return True

    def release(self, address: str, guarded: _Guarded) -> None:
        self._by_handler.pop(guarded.handler, None)
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]
        if self.open[address] < self.max_per_address:
            self._warned.discard(address)

    def request_started(self, request: web.BaseRequest) -> _Guarded | None:
        guarded = self._by_handler.get(request.protocol)
        if guarded is not None:
            guarded.request_started(request)
        return guarded


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class _Guarded(asyncio.Protocol):
    """One connection's protocol (aiohttp's request handler), guarded."""

    def __init__(self, guard: ConnectionGuard, handler: asyncio.Protocol) -> None:
        self.guard = guard
        self.handler = handler
        self._transport: asyncio.Transport | None = None
        self._address: str | None = None
        self._loop = asyncio.get_running_loop()
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._request: web.BaseRequest | None = None
        self._last_data = 0.0

    # -- asyncio.Protocol, passed on to the handler ----------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are no asyncio.Transport subclasses: no isinstance.
        transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self.guard.admit(address, self):
            transport.abort()
            return
        self._transport, self._address = transport, address
        self._last_data = self._loop.time()
        self._start_head_timer()
        self.handler.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._address is None:
            return  # refused at once
        self._cancel_timers()
        self.guard.release(self._address, self)
        self.handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._last_data = self._loop.time()
        if self._request is None and self._head_timer is None:
            self._start_head_timer()  # the first byte of a next request
        self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received()

    def pause_writing(self) -> None:
        self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.handler.resume_writing()

    # -- the request's progress (from connection_middleware) ----------------------

    def request_started(self, request: web.BaseRequest) -> None:
        """The head is in: stop its timer; time the body until it is complete."""
        self._cancel_timers()
        self._request = request
        if not request.content.is_eof():
            self._body_timer = self._loop.call_later(
                self.guard.body_timeout, self._check_body
            )

    def request_finished(self) -> None:
        self._cancel_timers()
        self._request = None

    # -- internals ----------------------------------------------------------------

    def _start_head_timer(self) -> None:
        self._head_timer = self._loop.call_later(
            self.guard.header_timeout, self._head_overdue
        )

    def _head_overdue(self) -> None:
        self._head_timer = None
        if self._request is not None or self._transport is None:
            return
        log.info(
            "connection closed: request head not received in time",
            extra={"address": self._address, "timeout": self.guard.header_timeout},
        )
        if not self._transport.is_closing():
            self._transport.write(_TIMED_OUT)
            self._transport.close()

    def _check_body(self) -> None:
        self._body_timer = None
        request, transport = self._request, self._transport
        if request is None or transport is None or request.content.is_eof():
            return
        idle = self._loop.time() - self._last_data
        if idle < self.guard.body_timeout:
            self._body_timer = self._loop.call_later(
                self.guard.body_timeout - idle, self._check_body
            )
            return
        log.info(
            "connection closed: request body paused too long",
            extra={"address": self._address, "timeout": self.guard.body_timeout},
        )
        transport.abort()

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None


#: The connection guard of the listening site (absent: connections unguarded).
CONNECTIONS = web.AppKey("aiouws_connections", ConnectionGuard)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def connection_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Tell the connection's guard that its request's head is complete (stops
    the head timer, starts the body's) and when the request is done."""
    guard = request.config_dict.get(CONNECTIONS)
    guarded = None if guard is None else guard.request_started(request)
    try:
        return await handler(request)
    finally:
        if guarded is not None:
            guarded.request_finished()


class GuardedSite(web.BaseSite):
    """A TCP site whose connections ``guard`` guards (else as aiohttp's
    ``TCPSite``)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        guard: ConnectionGuard,
        host: str,
        port: int,
        *,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner)
        self._guard = guard
        self._host = host
        self._port = port
        self._reuse_port = reuse_port

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.factory(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
            reuse_port=self._reuse_port or None,
        )
