"""The query role: the login user queries run as, its creation and its grants.

User queries log in as :data:`~aiouws.storage.database.QUERY_ROLE` (see
:meth:`Database.for_queries`), never as the service's user with ``SET ROLE``: a
session that logged in as a superuser is a superuser again after
``set_config('role', 'postgres', true)``, a session that logged in as the query
role is not a member of any role it could switch to. The role is cluster-wide
(several databases of one cluster share it); what it may do is granted per
database: CONNECT and TEMPORARY (its upload tables are its own temporary tables),
and, by the job kinds that publish tables (TAP), USAGE and SELECT on what they
publish. It reads nothing else: not the job tables (``uws.*``), not unpublished
schemas.

Every privilege is a :class:`Grant`, a check and the statement that makes it
hold. :func:`apply` runs the statements whose check fails and returns those the
current user may not run (no superuser, no CREATEROLE, not the owner): the
command line prints them for an administrator (:func:`missing_message`) instead
of failing halfway. :func:`login_problems` checks a query connection at start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from aiouws.storage.database import QUERY_ROLE
from aiouws.storage.schema import Connection

__all__ = [
    "SESSION_ROLE_PREFIX",
    "Grant",
    "apply",
    "ensure_query_role",
    "login_problems",
    "missing_message",
    "quote_identifier",
]

ROLE_SQL = f'"{QUERY_ROLE}"'
#: Roles a query session may switch to (``SET LOCAL ROLE``), of which the query
#: role is a member without inheriting (NOINHERIT): the session roles of owners
#: with access to proprietary tables (``taprunner.schema.access``).
SESSION_ROLE_PREFIX = "aiouws_acl_"

#: What a statement the current user may not run raises.
_REFUSED = (
    asyncpg.InsufficientPrivilegeError,
    asyncpg.UndefinedObjectError,  # the role is missing: its CREATE was refused
    asyncpg.InvalidGrantOperationError,
    asyncpg.InvalidParameterValueError,
)


@dataclass(frozen=True, slots=True)
class Grant:
    """One privilege of the query role: ``check`` (SQL giving true when it is
    held) and the ``statement`` that grants it."""

    check: str
    statement: str


def quote_identifier(name: str) -> str:
    """``name`` as a double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


async def apply(conn: Connection, grants: Sequence[Grant]) -> list[str]:
    """Make every grant hold; the statements still missing, in order.

    Each statement runs in its own savepoint (or transaction) when its check
    fails; one the current user may not run (refused, or a GRANT that only
    warns for lack of a grant option) is returned, not raised.
    """
    missing = []
    for grant in grants:
        if await _holds(conn, grant.check):
            continue
        try:
            async with conn.transaction():
                await conn.execute(grant.statement)
        except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            pass  # CREATE ROLE raced with another database's install
        except _REFUSED:
            missing.append(grant.statement)
            continue
        if not await _holds(conn, grant.check):
            missing.append(grant.statement)
    return missing


async def _holds(conn: Connection, check: str) -> bool:
    try:
        async with conn.transaction():
            return bool(await conn.fetchval(check))
    except asyncpg.UndefinedObjectError:  # the role does not exist (yet)
        return False


async def ensure_query_role(conn: Connection) -> list[str]:
    """Create the query role if missing and let it into this database; the
    statements the current user may not run (see :func:`apply`).

    The role logs in, holds no privileged attribute and is a member of no other
    role; it gets CONNECT and TEMPORARY on the current database. The current
    user becomes a member of it, so that it may cancel and terminate the role's
    queries without being a superuser.
    """
    database = quote_identifier(await conn.fetchval("SELECT current_database()"))
    user = quote_identifier(await conn.fetchval("SELECT current_user"))
    role = f"'{QUERY_ROLE}'"
    attributes = f"SELECT {{}} FROM pg_roles WHERE rolname = {role}"
    grants = [
        Grant(
            f"SELECT to_regrole({role}) IS NOT NULL", f"CREATE ROLE {ROLE_SQL} LOGIN"
        ),
        Grant(attributes.format("rolcanlogin"), f"ALTER ROLE {ROLE_SQL} LOGIN"),
        Grant(
            attributes.format(
                "NOT (rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication"
                " OR rolbypassrls)"
            ),
            f"ALTER ROLE {ROLE_SQL} NOSUPERUSER NOCREATEROLE NOCREATEDB"
            " NOREPLICATION NOBYPASSRLS",
        ),
        Grant(
            f"SELECT has_database_privilege({role}, current_database(), 'CONNECT')",
            f"GRANT CONNECT ON DATABASE {database} TO {ROLE_SQL}",
        ),
        Grant(
            f"SELECT has_database_privilege({role}, current_database(), 'TEMPORARY')",
            f"GRANT TEMPORARY ON DATABASE {database} TO {ROLE_SQL}",
        ),
        Grant(
            f"SELECT pg_has_role(current_user, {role}, 'MEMBER')",
            f"GRANT {ROLE_SQL} TO {user}",
        ),
    ]
    missing = await apply(conn, grants)
    memberships = await conn.fetch(
        "SELECT m.roleid AS oid, m.roleid::regrole::text AS name"
        " FROM pg_auth_members m WHERE m.member = to_regrole($1)"
        " AND NOT starts_with(m.roleid::regrole::text, $2)",
        QUERY_ROLE,
        SESSION_ROLE_PREFIX,
    )
    # Never a member of another role (but session roles, see
    # SESSION_ROLE_PREFIX): SET ROLE would lead out of the boundary.
    revokes = [
        Grant(
            "SELECT NOT EXISTS (SELECT FROM pg_auth_members WHERE member ="
            f" to_regrole({role}) AND roleid = {int(r['oid'])})",
            f"REVOKE {r['name']} FROM {ROLE_SQL}",
        )
        for r in memberships
    ]
    return missing + await apply(conn, revokes)


async def login_problems(conn: Connection) -> list[str]:
    """What makes the session of ``conn`` (a query connection) no boundary:
    superuser or BYPASSRLS, membership in a role other than the query role,
    access to the job tables; empty when it is sound."""
    row = await conn.fetchrow(
        "SELECT current_user AS name, rolsuper, rolbypassrls, rolcreaterole,"
        " rolinherit,"
        " CASE WHEN to_regnamespace('uws') IS NULL THEN false"
        " ELSE has_schema_privilege('uws', 'USAGE') END AS jobs"
        " FROM pg_roles WHERE rolname = current_user"
    )
    assert row is not None  # current_user is a role
    problems = []
    if row["rolsuper"]:
        problems.append(f"{row['name']} is a superuser")
    if row["rolbypassrls"] or row["rolcreaterole"]:
        problems.append(f"{row['name']} has BYPASSRLS or CREATEROLE")
    if row["jobs"]:
        problems.append(f"{row['name']} may use the job schema uws")
    others = await conn.fetch(
        "SELECT m.roleid::regrole::text AS name FROM pg_auth_members m"
        " WHERE m.member = to_regrole(current_user::text)"
        " AND m.roleid IS DISTINCT FROM to_regrole($1)",
        QUERY_ROLE,
    )
    for other in others:
        if not other["name"].startswith(SESSION_ROLE_PREFIX):
            problems.append(f"{row['name']} is a member of {other['name']}")
        elif row["rolinherit"]:  # it would read every session role's tables
            problems.append(
                f"{row['name']} inherits the privileges of {other['name']}"
                " (it must be NOINHERIT)"
            )
    return problems


def missing_message(missing: Sequence[str]) -> str:
    """The operator's message for statements the current user may not run."""
    lines = "\n".join(f"  {statement};" for statement in missing)
    return (
        f"the query role {QUERY_ROLE} lacks privileges that this DSN's user may "
        "not grant (it is no superuser, lacks CREATEROLE or does not own the "
        f"objects); an administrator should run, in this database:\n{lines}"
    )
