"""The access log: one ``request`` line per HTTP request, with its owner."""

from __future__ import annotations

import logging
import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

__all__ = ["ACCESS_OWNER", "ACCESS_REMOTE", "AccessLogger", "redact_query"]

#: The owner a request was made for, set by the owner middleware for the logs.
ACCESS_OWNER = web.RequestKey("aiouws_access_owner", str)
#: The client's address (trusted proxies' X-Forwarded-For believed), set by the
#: owner middleware.
ACCESS_REMOTE = web.RequestKey("aiouws_access_remote", str)

_SECRET = re.compile(r"(?i)(passw(or)?d|pwd|secret|token|api_?key|auth\w*)")


def redact_query(path_qs: str) -> str:
    """``path_qs`` with the values of secret-looking parameters replaced by ``***``."""
    path, sep, query = path_qs.partition("?")
    if not sep:
        return path
    parts = []
    for pair in query.split("&"):
        name, eq, _value = pair.partition("=")
        parts.append(f"{name}=***" if eq and _SECRET.search(name) else pair)
    return f"{path}?{'&'.join(parts)}"


class AccessLogger(AbstractAccessLogger):
    """One ``request`` line per HTTP request (``web.run_app(access_log_class=…)``):
    method, path with query string (secrets redacted), status, bytes (sent on
    the wire, headers included, as aiohttp's ``%b``), seconds, owner and remote
    address (the client's, as trusted proxies forward it). Headers
    (Authorization) are never logged."""

    def log(
        self, request: web.BaseRequest, response: web.StreamResponse, time: float
    ) -> None:
        self.logger.info(
            "request",
            extra={
                "method": request.method,
                "path": redact_query(request.path_qs),
                "status": response.status,
                "bytes": response.body_length,
                "seconds": round(time, 6),
                "owner": request.get(ACCESS_OWNER) or "-",
                "remote": request.get(ACCESS_REMOTE) or request.remote,
            },
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
