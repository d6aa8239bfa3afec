"""The one place where exceptions become HTTP responses.

A :class:`~aiouws.errors.UWSError` (a job kind's own errors included) answers
with its status, its rendered body and its headers; an ``HTTPException`` with a
``text/plain`` body; anything else with a logged 500. :func:`started_guard`
keeps such an answer from going out after a response already started.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from aiouws.errors import ErrorCode, UWSError, error_body
from aiouws.http.keys import SETTINGS

__all__ = ["error_middleware", "error_response", "started_guard"]

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(exc: UWSError) -> web.Response:
    """``exc`` as the client reads it: its status, body, media type and headers."""
    return web.Response(
        status=exc.status,
        body=exc.render(),
        content_type=exc.media_type,
        charset="utf-8",
        headers=exc.headers(),
    )


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
    except UWSError as exc:
        if exc.status >= 500:
            log.warning("request failed: %s", exc, extra={"path": request.path})
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {
            k: v
            for k, v in exc.headers.items()
            if k.lower() not in ("content-type", "content-length")
        }
        return web.Response(
            status=exc.status,
            headers=headers,
            text=f"{exc.text or exc.reason}\n".replace("\n\n", "\n"),
            content_type="text/plain",
            charset="utf-8",
        )
    except Exception:
        log.exception("unexpected error", extra={"path": request.path})
        return web.Response(
            status=500,
            text=error_body(
                ErrorCode.INTERNAL_ERROR, "internal error; the operator has been told"
            ),
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
