"""CORS for browser-based clients: credentials only for the configured origins.

An origin matching ``cors_origins`` (a regular expression, matched in full) gets
its own origin back with ``Access-Control-Allow-Credentials: true``; with
``cors_any_origin`` every other origin gets ``*`` (anonymous requests only).
Headers are added as each response is prepared (streamed sync results too);
preflight ``OPTIONS`` requests are answered by a middleware before any handler.
"""

from __future__ import annotations

import re

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from aiouws.config import Settings
from aiouws.http.connections import connection_middleware

__all__ = ["CorsPolicy", "install_cors"]

METHODS = "GET, POST, DELETE, OPTIONS"
#: Response headers a browser script may read (UWS and TAP clients need these).
EXPOSED = "Location, Content-Disposition, Content-Encoding, Retry-After"
#: Seconds a browser may cache a preflight answer.
MAX_AGE = "600"


class CorsPolicy:
    """Which origins get which CORS answer."""

    def __init__(self, origins: str | None, any_origin: bool) -> None:
        self._origins = None if origins is None else re.compile(origins)
        self._any = any_origin

    def allow(self, origin: str) -> tuple[str, bool] | None:
        """(Access-Control-Allow-Origin, credentials) for ``origin``, or None.

        An origin that is not printable ASCII (a serialised origin always is)
        is never allowed: it would be echoed in a header.
        """
        if not _printable(origin):
            return None
        if self._origins is not None and self._origins.fullmatch(origin):
            return origin, True
        if self._any:
            return "*", False
        return None

    def headers(self, origin: str | None) -> dict[str, str]:
        """The CORS headers of a response to a request from ``origin``."""
        if not origin:
            return {}
        allowed = self.allow(origin)
        if allowed is None:
            return {}
        value, credentials = allowed
        headers: dict[str, str] = {
            hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: value,
            hdrs.ACCESS_CONTROL_EXPOSE_HEADERS: EXPOSED,
        }
        if credentials:
            headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
        return headers

    async def add_headers(
        self, request: web.Request, response: web.StreamResponse
    ) -> None:
        """``on_response_prepare``: the CORS headers, before they are sent."""
        if hdrs.ACCESS_CONTROL_ALLOW_ORIGIN in response.headers:
            return  # a preflight answer
        origin = request.headers.get(hdrs.ORIGIN)
        response.headers.update(self.headers(origin))
        if self._origins is not None or self._any:
            response.headers.add(hdrs.VARY, hdrs.ORIGIN)

    @web.middleware
    async def preflight(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        """Answer a preflight request (OPTIONS with Origin and
        Access-Control-Request-Method): 204 with what is allowed, 403 for an
        origin that is not."""
        origin = request.headers.get(hdrs.ORIGIN)
        wanted = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_METHOD)
        if request.method != hdrs.METH_OPTIONS or not origin or not wanted:
            return await handler(request)
        headers = self.headers(origin)
        if not headers:
            shown = origin if _printable(origin) else ascii(origin)
            raise web.HTTPForbidden(text=f"origin {shown} is not allowed")
        headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = METHODS
        requested = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
        if requested and _printable(requested):
            headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = requested
        headers[hdrs.ACCESS_CONTROL_MAX_AGE] = MAX_AGE
        headers[hdrs.VARY] = hdrs.ORIGIN
        return web.Response(status=204, headers=headers)


def _printable(value: str) -> bool:
    """Whether ``value`` is printable ASCII (safe to echo in a header or text)."""
    return value.isascii() and value.isprintable()


def install_cors(app: web.Application, settings: Settings) -> None:
    """CORS on ``app`` as ``settings`` configure it (nothing when off)."""
    if settings.cors_origins is None and not settings.cors_any_origin:
        return
    policy = CorsPolicy(settings.cors_origins, settings.cors_any_origin)
    # Outermost but for the connection's guard, which must hear of a preflight
    # as of any request (its head is in: the head timer stops).
    middlewares = list(app.middlewares)
    at = (
        middlewares.index(connection_middleware) + 1
        if connection_middleware in middlewares
        else 0
    )
    app.middlewares.insert(at, policy.preflight)
    app.on_response_prepare.append(policy.add_headers)
