"""The one place where exceptions become HTTP responses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import ErrorCode, TooManyJobs, Unauthorized, UWSError
from .keys import SETTINGS

__all__ = ["error_body", "error_middleware"]

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_body(code: ErrorCode, message: str, detail: str | None = None) -> str:
    """``UsageError: LAST must be a positive integer`` (+ detail on its own line)."""
    body = f"{code.value}: {message}\n"
    if detail:
        body += f"\n{detail}\n"
    return body


def uws_error_response(exc: UWSError) -> web.Response:
    response = web.Response(
        status=exc.status,
        text=error_body(exc.error_code, exc.message, exc.detail),
        content_type="text/plain",
        charset="utf-8",
    )
    if isinstance(exc, TooManyJobs):
        response.headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Basic realm="aiouws", charset="UTF-8"'
    return response


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
        return uws_error_response(exc)
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
