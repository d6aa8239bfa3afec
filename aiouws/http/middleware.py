"""The one place where exceptions become HTTP responses.

A :class:`~aiouws.errors.UWSError` (a job kind's own errors included) answers
with its status, its rendered body and its headers; an ``HTTPException`` with a
``text/plain`` body; an unavailable database (whatever raised it, as
:mod:`aiouws.storage.outage` decides) with a 503 and ``Retry-After``, in the form
the application registered under :data:`UNAVAILABLE_ERROR` (TAP: a DALI error
document); a full disk (e.g. under an upload) with a 507; anything else with
a logged 500. :func:`started_guard` keeps such an answer from going out after a
response already started.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from aiouws.errors import (
    DatabaseUnavailable,
    ErrorCode,
    StorageFull,
    UWSError,
    error_body,
)
from aiouws.http.jobpages import error_page
from aiouws.http.keys import SETTINGS
from aiouws.http.negotiate import prefers_html
from aiouws.jobapi import NO_SPACE, is_disk_full
from aiouws.storage.outage import unavailable_cause, unavailable_message

__all__ = [
    "UNAVAILABLE_ERROR",
    "error_answer",
    "error_middleware",
    "error_response",
    "started_guard",
]

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: The error an application answers with while the database is unavailable,
#: made from its message (default :class:`DatabaseUnavailable`, ``text/plain``).
UNAVAILABLE_ERROR: web.AppKey[Callable[[str], UWSError]] = web.AppKey(
    "aiouws_unavailable_error"
)


def _unavailable(request: web.Request, message: str) -> web.Response:
    make = request.config_dict.get(UNAVAILABLE_ERROR, DatabaseUnavailable)
    log.warning("request failed: %s", message, extra={"path": request.path})
    return error_answer(request, make(message))


def error_answer(request: web.Request, exc: UWSError) -> web.Response:
    """``exc`` for the client of ``request``: :func:`error_response`, or an HTML
    page with the same status and headers for a browser (which prefers
    ``text/html``; API clients keep the documents the standards define)."""
    if prefers_html(request):
        return error_page(
            request,
            exc.status,
            exc.error_code.value,
            exc.message,
            exc.detail,
            exc.headers(),
        )
    return error_response(exc)


def error_response(exc: UWSError) -> web.Response:
    """``exc`` as the client reads it: its status, body, media type and headers."""
    return web.Response(
        status=exc.status,
        body=exc.render(),
        content_type=exc.media_type,
        charset="utf-8",
        headers=exc.headers(),
    )


_INTERNAL = "internal error; the operator has been told"
_HTTP_CODES = {
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.PERMISSION_DENIED,
    404: ErrorCode.NOT_FOUND,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
}


@web.middleware
async def error_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    settings = request.config_dict.get(SETTINGS)
    if settings is not None and len(request.raw_path) > settings.max_url_bytes:
        text = error_body(
            ErrorCode.USAGE_ERROR,
            f"URL longer than {settings.max_url_bytes} bytes; send long parameters "
            "with POST",
        )
        return web.Response(status=414, text=text, content_type="text/plain")
    try:
        return await handler(request)
    except DatabaseUnavailable as exc:
        return _unavailable(request, exc.message)
    except UWSError as exc:
        if exc.status >= 500:
            log.warning("request failed: %s", exc, extra={"path": request.path})
        return error_answer(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {
            k: v
            for k, v in exc.headers.items()
            if k.lower() not in ("content-type", "content-length")
        }
        if prefers_html(request):
            code = _HTTP_CODES.get(exc.status, ErrorCode.USAGE_ERROR).value
            message = (exc.text or exc.reason).strip()
            return error_page(request, exc.status, code, message, None, headers)
        return web.Response(
            status=exc.status,
            headers=headers,
            text=f"{exc.text or exc.reason}\n".replace("\n\n", "\n"),
            content_type="text/plain",
            charset="utf-8",
        )
    except Exception as exc:
        if is_disk_full(exc):
            log.warning("request failed: %s", exc, extra={"path": request.path})
            return error_answer(request, StorageFull(NO_SPACE))
        cause = unavailable_cause(exc)
        if cause is not None:
            return _unavailable(request, unavailable_message(cause))
        log.exception("unexpected error", extra={"path": request.path})
        if prefers_html(request):
            return error_page(request, 500, ErrorCode.INTERNAL_ERROR.value, _INTERNAL)
        return web.Response(
            status=500,
            text=error_body(ErrorCode.INTERNAL_ERROR, _INTERNAL),
            content_type="text/plain",
            charset="utf-8",
        )


@web.middleware
async def started_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No second response once a first one started (outside the error mapping).

    A handler that fails after its streamed response sent bytes (e.g. a result
    that cannot be encoded) gets an error answer from the mapping, which would
    go out *inside* the first response's body. Instead the failure is logged
    and the connection aborted: the client sees an incomplete response.
    """
    response = await handler(request)
    if not response.prepared and request.writer.output_size > 0:
        log.error(
            "request failed after its response started; connection cut off",
            extra={"path": request.path, "status": response.status},
        )
        if request.transport is not None:
            request.transport.abort()  # the answer below goes nowhere
    return response
