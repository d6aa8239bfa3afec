"""Typed application keys shared by the HTTP modules."""

from __future__ import annotations

from aiohttp import web

from aiouws.config import Settings
from aiouws.http.auth import OwnerResolver
from aiouws.service import JobService

SERVICE = web.AppKey("aiouws_service", JobService)
SETTINGS = web.AppKey("aiouws_settings", Settings)
RESOLVER: web.AppKey[OwnerResolver] = web.AppKey("aiouws_owner_resolver")
#: The job kind a UWS sub-application serves.
KIND = web.AppKey("aiouws_kind", str)
#: Paths answered to anonymous requests even with ``require_auth`` (see
#: :func:`aiouws.http.app.make_public`).
PUBLIC_PATHS: web.AppKey[frozenset[str]] = web.AppKey("aiouws_public_paths")


async def request_owner(request: web.Request) -> str | None:
    """The request's owner as the service's resolver says (None: anonymous).

    Raises
    ------
    Unauthorized
        Wrong credentials, or none where they are required.
    """
    return await request.config_dict[RESOLVER](request)
