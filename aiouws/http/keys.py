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
