"""Public URLs: the configured base URL, or the origin the request came to as far
as the allowed hosts and trusted proxies vouch for it (:mod:`aiouws.http.proxies`)."""

from __future__ import annotations

from aiohttp import web

from aiouws.http.keys import SETTINGS
from aiouws.http.proxies import request_origin

__all__ = ["public_origin"]


def public_origin(request: web.Request) -> str:
    """``https://example.org`` as clients see the service (no trailing slash):
    ``base_url``, else :func:`~aiouws.http.proxies.request_origin` (never a host
    that ``allowed_hosts`` does not name)."""
    settings = request.config_dict[SETTINGS]
    if settings.base_url:
        return str(settings.base_url).rstrip("/")
    return request_origin(request, settings)
