"""Public URLs: the configured base URL, or the origin the request came to."""

from __future__ import annotations

from aiohttp import web

from aiouws.http.keys import SETTINGS

__all__ = ["public_origin"]


def public_origin(request: web.Request) -> str:
    """``https://example.org`` as clients see the service (no trailing slash)."""
    settings = request.config_dict[SETTINGS]
    if settings.base_url:
        return str(settings.base_url).rstrip("/")
    return str(request.url.origin())
