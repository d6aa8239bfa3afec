"""The roles of proprietary access: principals, their roles, session roles.

See :mod:`taprunner.schema.access` for the design. A principal (a user, an
owner as the service names it, or a group) has a NOLOGIN role; an owner's
*session role* is one NOLOGIN role per distinct set of principal roles the
owner matches, a member of them and of :data:`PUBLIC_ROLE`; the query role is
its member (to switch to it) without inheriting. Owners matching no principal
use the query role itself. :func:`session_role_for` makes one and records it
in ``tap_acl.identities``, where runners look it up by owner.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiouws.storage import queryrole
from aiouws.storage.database import QUERY_ROLE
from aiouws.storage.queryrole import SESSION_ROLE_PREFIX, Grant, quote_identifier
from taprunner.schema.catalog import Connection
from taprunner.schema.metadata import TapSchemaError

__all__ = [
    "ACL_PREFIX",
    "PUBLIC_ROLE",
    "Principal",
    "create_role",
    "load_principals",
    "matched_roles",
    "principal_role",
    "refresh_identities",
    "session_role_for",
    "session_role_name",
    "sql_literal",
]

#: Every role this module makes starts so (the query role may be their member).
ACL_PREFIX = SESSION_ROLE_PREFIX
#: What every session role may read besides its grants: the public tables.
PUBLIC_ROLE = ACL_PREFIX + "public"
_SIMPLE = re.compile(r"[a-z0-9_]{1,40}")
_KINDS = {"user": "u", "group": "g"}


@dataclass(frozen=True, slots=True, order=True)
class Principal:
    """A user (an owner, as the service names it) or a group."""

    kind: str
    name: str

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"principal kind {self.kind!r} is not user or group")
        if not self.name or len(self.name) > 1024:
            raise TapSchemaError(f"empty or overlong {self.kind} name")


def principal_role(principal: Principal) -> str:
    """The NOLOGIN role of ``principal``: readable for simple lowercase names
    (``aiouws_acl_g_team``), else a digest of the name (``aiouws_acl_gh_...``)."""
    letter = _KINDS[principal.kind]
    if _SIMPLE.fullmatch(principal.name):
        return f"{ACL_PREFIX}{letter}_{principal.name}"
    digest = hashlib.sha256(principal.name.encode()).hexdigest()[:24]
    return f"{ACL_PREFIX}{letter}h_{digest}"


def session_role_name(principal_roles: Iterable[str]) -> str:
    """The session role of owners matching exactly these principals' roles
    (the query role when there are none)."""
    roles = sorted(set(principal_roles))
    if not roles:
        return QUERY_ROLE
    digest = hashlib.sha256("\n".join(roles).encode()).hexdigest()[:24]
    return f"{ACL_PREFIX}s_{digest}"


def matched_roles(
    principals: dict[Principal, str], owner: str | None, groups: Iterable[str]
) -> list[str]:
    """The roles of the principals ``owner`` and ``groups`` match."""
    if owner is None:
        return []
    wanted = [Principal("user", owner), *(Principal("group", g) for g in groups)]
    return sorted({principals[p] for p in wanted if p in principals})


async def load_principals(conn: Connection) -> dict[Principal, str]:
    """Every principal named by a grant, with its role."""
    rows = await conn.fetch("SELECT DISTINCT kind, principal, role FROM tap_acl.grants")
    return {Principal(r["kind"], r["principal"]): r["role"] for r in rows}


def create_role(role: str) -> Grant:
    return Grant(
        f"SELECT to_regrole({_lit(role)}) IS NOT NULL",
        f"CREATE ROLE {quote_identifier(role)} NOLOGIN",
    )


async def refresh_identities(conn: Connection) -> list[str]:
    """Derive every recorded owner's session role again (the grants changed)."""
    principals = await load_principals(conn)
    for row in await conn.fetch("SELECT owner, groups FROM tap_acl.identities"):
        roles = matched_roles(principals, row["owner"], row["groups"])
        await session_role_for(conn, row["owner"], row["groups"], roles)
    return []


async def session_role_for(
    conn: Connection, owner: str, groups: Sequence[str], roles: Sequence[str]
) -> str:
    """Make the session role of ``roles`` (principal roles an owner matched)
    exist with its memberships, and record it as ``owner``'s (with its
    ``groups``) for the runners; its name. Runs on the service's login.

    Raises
    ------
    TapSchemaError
        The current user may not create roles or grant memberships.
    """
    name = session_role_name(roles)
    async with conn.transaction():
        if roles:
            quoted = quote_identifier(name)
            statements = [create_role(name)]
            for member_of in sorted({*roles, PUBLIC_ROLE}):
                statements.append(
                    Grant(
                        f"SELECT pg_has_role({_lit(name)}, {_lit(member_of)},"
                        " 'MEMBER')",
                        f"GRANT {quote_identifier(member_of)} TO {quoted}",
                    )
                )
            statements.append(
                Grant(
                    f"SELECT pg_has_role('{QUERY_ROLE}', {_lit(name)}, 'MEMBER')",
                    f"GRANT {quoted} TO {queryrole.ROLE_SQL}",
                )
            )
            missing = await queryrole.apply(conn, statements)
            if missing:
                raise TapSchemaError(queryrole.missing_message(missing))
        await conn.execute(
            "INSERT INTO tap_acl.identities (owner, groups, role) VALUES ($1, $2, $3)"
            " ON CONFLICT (owner) DO UPDATE SET groups = EXCLUDED.groups,"
            " role = EXCLUDED.role, seen = now()",
            owner,
            sorted(groups),
            name,
        )
    return name


def sql_literal(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


_lit = sql_literal
