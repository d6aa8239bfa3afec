"""gzip/deflate of the XML and text documents the service builds in memory.

A middleware: a :class:`web.Response` a handler returns (not a stream, not a
file: files go out with sendfile, which compression would forfeit) of an XML or
text type, big enough to pay, is compressed when the client's Accept-Encoding
allows (aiohttp picks deflate or gzip). Streamed query results decide for themselves
(TAP's format registry says which formats compress).
"""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

__all__ = ["COMPRESSIBLE", "MIN_BYTES", "compression_middleware"]

#: Content types worth compressing.
COMPRESSIBLE = frozenset(
    {
        "text/xml",
        "application/xml",
        "application/xhtml+xml",
        "text/html",
        "text/plain",
        "text/csv",
        "text/tab-separated-values",
    }
)
#: Bodies smaller than this go out as they are (compression would not pay).
MIN_BYTES = 1024


@web.middleware
async def compression_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Compress the handler's document if it is worth it."""
    response = await handler(request)
    if _worth_it(response):
        response.enable_compression()
        response.headers.add(hdrs.VARY, hdrs.ACCEPT_ENCODING)
    return response


def _worth_it(response: web.StreamResponse) -> bool:
    if type(response) is not web.Response or response.prepared:
        return False
    if response.compression or hdrs.CONTENT_ENCODING in response.headers:
        return False
    if response.content_type not in COMPRESSIBLE:
        return False
    body = response.body
    # A payload object (e.g. a file) or a body too small to pay goes as it is.
    return isinstance(body, bytes | bytearray) and len(body) >= MIN_BYTES
