"""The database role a TAP request's queries and catalogue use (proprietary tables).

:class:`SessionRoles` derives it from what authentication vouched for: the
owner and its groups (never from a parameter the client chooses), through the
grants (:mod:`taprunner.schema.access`). An owner matching no grant's principal
gets the query role itself; one that does gets its session role, created and
recorded on the service's login the first time that owner (with those groups)
is seen, so that runners and the fast lane find it by owner
(``tap_acl.session_role``). The middleware :func:`session_role_middleware`
notes it in each request of the TAP application (:func:`request_role`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from aiouws.errors import UWSError
from aiouws.http.identity import request_groups
from aiouws.http.keys import request_owner
from aiouws.storage.database import QUERY_ROLE, Database
from taprunner.schema import access
from taprunner.schema.metadata import TapSchemaError

__all__ = [
    "PRINCIPALS_TTL",
    "ROLES",
    "SessionRoles",
    "request_role",
    "session_role_middleware",
]

log = logging.getLogger(__name__)

#: Seconds the grants' principals are reused before they are read again (a
#: ``tap grant`` takes effect within this long).
PRINCIPALS_TTL = 5.0
#: Owners whose session roles are remembered (per process).
REMEMBERED = 10_000
_ROLE: web.RequestKey[str] = web.RequestKey("aiouws_tap_role", str)
_NO_TABLES = frozenset({"/tap/availability", "/tap/capabilities", "/metrics"})


class SessionRoles:
    """Session roles by owner and groups, on the service's own login."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._principals: dict[access.Principal, str] = {}
        self._loaded = -PRINCIPALS_TTL
        self._known: dict[tuple[str, frozenset[str]], tuple[str, float]] = {}
        self._lock = asyncio.Lock()

    async def role_for(self, owner: str | None, groups: frozenset[str]) -> str:
        """The role ``owner`` (with ``groups``) queries as; made and recorded
        when new. Anonymous requests get the query role at once."""
        if owner is None:
            return QUERY_ROLE
        now = time.monotonic()
        known = self._known.get((owner, groups))
        if known is not None and now - known[1] <= PRINCIPALS_TTL:
            return known[0]
        async with self._lock:
            if now - self._loaded > PRINCIPALS_TTL:
                conn = await self._database.connect()
                try:
                    self._principals = await access.load_principals(conn)
                finally:
                    await conn.close()
                self._loaded = now
            roles = access.matched_roles(self._principals, owner, groups)
            # Recorded whenever due, not only when it changed here: the record
            # is by owner alone (runners and the fast lane read it), and another
            # process, or this one for the owner's other groups, may have
            # recorded a role of groups the owner has left since.
            role = await self._record(owner, groups, roles)
            if len(self._known) >= REMEMBERED:
                self._known.clear()
            self._known[(owner, groups)] = (role, now)
            return role

    async def _record(
        self, owner: str, groups: frozenset[str], roles: list[str]
    ) -> str:
        conn = await self._database.connect()
        try:
            return await access.session_role_for(conn, owner, sorted(groups), roles)
        except TapSchemaError as exc:
            # Least privilege: the owner reads what is public until an
            # administrator runs what is missing.
            log.error("no session role for owner %s: %s", owner, exc)
            return QUERY_ROLE
        finally:
            await conn.close()


ROLES = web.AppKey("aiouws_tap_roles", SessionRoles)


@web.middleware
async def session_role_middleware(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    """Note the request's session role (refused credentials: the handler
    refuses them; without one, the query role). Paths that show no table
    (availability, capabilities, metrics) skip it: a monitor's probe must not
    depend on the grants' database reads."""
    if request.path in _NO_TABLES:
        return await handler(request)
    try:
        owner = await request_owner(request)
    except UWSError:
        return await handler(request)
    roles = request.config_dict.get(ROLES)
    if owner is not None and roles is not None:
        request[_ROLE] = await roles.role_for(owner, request_groups(request))
    return await handler(request)


def request_role(request: web.Request) -> str:
    """The role this request's queries and catalogue use."""
    role: str = request.get(_ROLE, QUERY_ROLE)
    return role
