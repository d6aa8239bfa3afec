"""Proprietary tables: who may read them, enforced by PostgreSQL's privileges.

A table (``schema.table``) or a whole schema is *restricted* once
``aiouws tap grant`` names users or groups (principals) for it. Each principal
has a NOLOGIN role (:func:`principal_role`) holding SELECT on what it was
granted; the query role :data:`QUERY_ROLE` loses SELECT on restricted tables, so
anonymous users and everybody without a grant cannot read them, and the
row-level security of TAP_SCHEMA (``sql/tap_acl.sql``) hides their rows from
every role that cannot read them.

A signed-in owner's queries run as a *session role* (:func:`session_role_name`):
one NOLOGIN role per distinct set of principals an owner matches, a member of
those principals' roles and of :data:`PUBLIC_ROLE` (what everybody may read,
kept equal to the query role's own grants by :func:`enforce`). The server
derives it from the owner and the groups its authentication vouched for, never
from anything the client may choose, and switches to it with ``SET LOCAL ROLE``
inside the query's transaction (gone at its end). The query role logs in, is a
member of the session roles (PostgreSQL allows ``SET ROLE`` only so) but
NOINHERIT, so that without the switch it reads only what is public. Roles are
never dropped here: they are cluster-wide and may hold privileges in other
databases. Owners without any grant use the query role itself: the set of roles
is bounded by the grants, not by the users.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

from aiouws.storage import queryrole
from aiouws.storage.database import QUERY_ROLE
from aiouws.storage.queryrole import Grant, quote_identifier
from taprunner.schema.aclroles import (
    ACL_PREFIX,
    PUBLIC_ROLE,
    Principal,
    create_role,
    load_principals,
    matched_roles,
    principal_role,
    refresh_identities,
    session_role_for,
    session_role_name,
)
from taprunner.schema.aclroles import (
    sql_literal as _lit,
)
from taprunner.schema.catalog import Connection
from taprunner.schema.metadata import TapSchemaError
from taprunner.schema.names import relation_oid

__all__ = [
    "ACL_PREFIX",
    "PUBLIC_ROLE",
    "Principal",
    "enforce",
    "grant",
    "install",
    "load_principals",
    "matched_roles",
    "principal_role",
    "revoke",
    "session_role_for",
    "session_role_name",
]


async def install(conn: Connection) -> list[str]:
    """Create tap_acl, TAP_SCHEMA's row-level security and :data:`PUBLIC_ROLE`,
    make the query role NOINHERIT and able to look up session roles; then
    :func:`enforce`. The statements the current user may not run come back."""
    sql = (
        resources.files("taprunner.schema")
        .joinpath("sql/tap_acl.sql")
        .read_text("utf-8")
    )
    await conn.execute(sql)
    role = queryrole.ROLE_SQL
    literal = f"'{QUERY_ROLE}'"
    public = quote_identifier(PUBLIC_ROLE)
    grants = [
        Grant(
            f"SELECT to_regrole('{PUBLIC_ROLE}') IS NOT NULL",
            f"CREATE ROLE {public} NOLOGIN",
        ),
        Grant(
            f"SELECT NOT rolinherit FROM pg_roles WHERE rolname = {literal}",
            f"ALTER ROLE {role} NOINHERIT",
        ),
        Grant(
            f"SELECT has_schema_privilege({literal}, 'tap_acl', 'USAGE')",
            f"GRANT USAGE ON SCHEMA tap_acl TO {role}",
        ),
        Grant(
            f"SELECT has_function_privilege({literal},"
            " 'tap_acl.session_role(text)', 'EXECUTE')",
            f"GRANT EXECUTE ON FUNCTION tap_acl.session_role(text) TO {role}",
        ),
    ]
    return await queryrole.apply(conn, grants) + await enforce(conn)


async def grant(
    conn: Connection, target: str, principals: Sequence[Principal]
) -> list[str]:
    """Restrict ``target`` (``schema`` or ``schema.table``) to ``principals``
    (added to those it has); see :func:`enforce` for what comes back.

    Raises
    ------
    TapSchemaError
        No principal, or the target does not exist.
    """
    if not principals:
        raise TapSchemaError("name at least one --user or --group")
    async with conn.transaction():
        await _check_target(conn, target)
        missing: list[str] = []
        for principal in principals:
            role = principal_role(principal)
            missing += await queryrole.apply(conn, [create_role(role)])
            await conn.execute(
                "INSERT INTO tap_acl.grants (target, kind, principal, role)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                target,
                principal.kind,
                principal.name,
                role,
            )
        return missing + await enforce(conn) + await refresh_identities(conn)


async def revoke(
    conn: Connection, target: str, principals: Sequence[Principal]
) -> list[str]:
    """Take ``principals``' access to ``target`` away; with none named, every
    grant of ``target`` goes and it is public again (unless its schema is
    restricted).

    Raises
    ------
    TapSchemaError
        ``target`` has no such grant, or the principals named hold its last
        grants (that would make it public: name none to mean it).
    """
    async with conn.transaction():
        if principals:
            deleted = 0
            for p in principals:
                deleted += await conn.fetchval(
                    f"WITH d AS (DELETE FROM tap_acl.grants WHERE {_OF_TARGET}"
                    " AND kind = $2 AND principal = $3 RETURNING 1)"
                    " SELECT count(*) FROM d",
                    target,
                    p.kind,
                    p.name,
                )
        else:
            deleted = await conn.fetchval(
                f"WITH d AS (DELETE FROM tap_acl.grants WHERE {_OF_TARGET}"
                " RETURNING 1) SELECT count(*) FROM d",
                target,
            )
        if not deleted:
            raise TapSchemaError(f"{target!r} has no such grant")
        left = await conn.fetchval(
            f"SELECT count(*) FROM tap_acl.grants WHERE {_OF_TARGET}", target
        )
        if principals and not left:
            raise TapSchemaError(
                f"revoking the last grant of {target!r} would make it public;"
                " to do so, revoke without --user and --group"
            )
        return await enforce(conn) + await refresh_identities(conn)


async def _check_target(conn: Connection, target: str) -> None:
    schema, dot, table = target.partition(".")
    if not schema or "." in table or (dot and not table):
        raise TapSchemaError(f"{target!r} is neither SCHEMA nor SCHEMA.TABLE")
    if schema.lower() in _SERVICE_SCHEMAS or schema.lower().startswith("pg_"):
        # TAP_SCHEMA restricted: no catalogue for the query role; uws: the job
        # tables for the principals.
        raise TapSchemaError(f"schema {schema!r} is the service's or PostgreSQL's own")
    if not dot:
        if await conn.fetchval("SELECT to_regnamespace($1) IS NULL", _ident(schema)):
            raise TapSchemaError(f"unknown schema {schema!r}")
    elif await relation_oid(conn, schema, table) is None:
        raise TapSchemaError(f"unknown table {target!r}")


#: Schemas no grant restricts: TAP's, the grants', the job store's, PostgreSQL's.
_SERVICE_SCHEMAS = frozenset(
    {"tap_schema", "tap_acl", "tap_upload", "uws", "information_schema"}
)


def _ident(name: str) -> str:
    return quote_identifier(name)


def _oid_of(target: str) -> str:
    """SQL: the oid of the relation (``schema.table``) or schema a target text
    expression names, NULL when there is none."""
    return (
        f"CASE WHEN position('.' IN {target}) > 0 THEN"
        f" to_regclass(quote_ident(split_part({target}, '.', 1)) || '.'"
        f" || quote_ident(split_part({target}, '.', 2)))::oid"
        f" ELSE to_regnamespace(quote_ident({target}))::oid END"
    )


# Grants follow their object: a relation or schema renamed (ALTER ... RENAME,
# SET SCHEMA) keeps its restriction under its new name, and the old name stays
# restricted too (a table loaded under it is as secret as the one renamed).
# Then every grant records the object its name stands for now.
_FOLLOW_SQL = f"""
INSERT INTO tap_acl.grants (target, kind, principal, role, object_oid)
SELECT named.now, g.kind, g.principal, g.role, g.object_oid
FROM tap_acl.grants g, LATERAL (
    SELECT CASE WHEN position('.' IN g.target) > 0 THEN
        (SELECT n.nspname || '.' || c.relname FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = g.object_oid)
    ELSE (SELECT nspname FROM pg_namespace WHERE oid = g.object_oid) END AS now
) AS named
WHERE named.now IS NOT NULL AND named.now <> g.target
ON CONFLICT DO NOTHING;
UPDATE tap_acl.grants SET object_oid = {_oid_of("target")}
WHERE object_oid IS DISTINCT FROM {_oid_of("target")}
"""

# Grants of a target (``$1``) and of its object under the names it had.
_OF_TARGET = (
    "(target = $1 OR (object_oid = "
    + _oid_of("$1::text")
    + " AND (position('.' IN target) > 0) = (position('.' IN $1) > 0)))"
)


# Every relation the grants name, table by table: (schema, table, roles).
_RESTRICTED_SQL = """
SELECT n.nspname AS schema, c.relname AS table, array_agg(DISTINCT g.role) AS roles
FROM tap_acl.grants g
JOIN pg_namespace n ON n.nspname = split_part(g.target, '.', 1)
JOIN pg_class c ON c.relnamespace = n.oid
    AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
    AND (g.target = n.nspname OR g.target = n.nspname || '.' || c.relname)
GROUP BY n.nspname, c.relname
"""

# The published relations (TAP_SCHEMA's own tables apart).
_PUBLISHED_SQL = """
SELECT n.nspname AS schema, c.relname AS table
FROM tap_schema.tables t
JOIN pg_class c ON c.oid = to_regclass(t.table_name)
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname <> 'tap_schema'
"""

# Relations on which ``$1`` holds a direct privilege, and schemas.
_HELD_SQL = """
SELECT c.oid::regclass::text AS target, 'TABLE' AS what
FROM pg_class c, aclexplode(c.relacl) a
WHERE a.grantee = to_regrole($1) AND a.privilege_type = 'SELECT'
UNION
SELECT n.nspname, 'SCHEMA'
FROM pg_namespace n, aclexplode(n.nspacl) a
WHERE a.grantee = to_regrole($1) AND a.privilege_type = 'USAGE'
"""


async def enforce(conn: Connection) -> list[str]:
    """Make the privileges match the grants; the statements the current user
    may not run (see :func:`aiouws.storage.queryrole.apply`).

    Restricted relations: no SELECT for the query role, :data:`PUBLIC_ROLE`
    and PUBLIC, SELECT (and USAGE on the schema) for exactly their principals' roles;
    other published relations: SELECT for the query role.
    :data:`PUBLIC_ROLE` then holds what the query role holds directly (SELECT,
    USAGE) and TEMPORARY on the database (uploads are temporary tables).
    Called after every grant, revoke, publish and install.
    """
    await conn.execute(_FOLLOW_SQL)
    restricted = {
        (r["schema"], r["table"]): set(r["roles"])
        for r in await conn.fetch(_RESTRICTED_SQL)
    }
    grants: list[Grant] = []
    for (schema, table), roles in restricted.items():
        target = f"{_ident(schema)}.{_ident(table)}"
        for role in (QUERY_ROLE, PUBLIC_ROLE):
            grants.append(_revoke_select(target, role))
        # SELECT to PUBLIC (by hand, or default privileges on a table a load
        # made anew) is SELECT for the query role too.
        grants.append(_revoke_public_select(target))
        for role in roles:
            grants.append(_usage(schema, role))
            grants.append(_select(target, role))
    for row in await conn.fetch(_PUBLISHED_SQL):
        if (row["schema"], row["table"]) not in restricted:  # public (again)
            target = f"{_ident(row['schema'])}.{_ident(row['table'])}"
            grants += [_usage(row["schema"], QUERY_ROLE), _select(target, QUERY_ROLE)]
    principals = {
        r["role"] for r in await conn.fetch("SELECT role FROM tap_acl.grants")
    }
    for role in principals | set(await _acl_roles(conn)):
        for row in await conn.fetch(_HELD_SQL, role):
            if row["what"] != "TABLE":
                continue
            relation = await conn.fetchrow(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE c.oid = $1::regclass",
                row["target"],
            )
            assert relation is not None
            if role not in restricted.get((relation[0], relation[1]), set()):
                grants.append(_revoke_select(row["target"], role))
    missing = await queryrole.apply(conn, grants)
    return missing + await _mirror_public(conn)


async def _acl_roles(conn: Connection) -> list[str]:
    """Principal roles that exist but no grant names any more (in this
    database their privileges go)."""
    rows = await conn.fetch(
        "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)"
        " AND rolname <> $2 AND rolname NOT LIKE $3"
        " AND rolname NOT IN (SELECT role FROM tap_acl.grants)",
        ACL_PREFIX,
        PUBLIC_ROLE,
        ACL_PREFIX.replace("_", r"\_") + r"s\_%",
    )
    return [r[0] for r in rows]


async def _mirror_public(conn: Connection) -> list[str]:
    held = {(r["target"], r["what"]) for r in await conn.fetch(_HELD_SQL, QUERY_ROLE)}
    mirrored = {
        (r["target"], r["what"]) for r in await conn.fetch(_HELD_SQL, PUBLIC_ROLE)
    }
    public = quote_identifier(PUBLIC_ROLE)
    grants = []
    for target, what in sorted(held - mirrored):
        if what == "TABLE":
            grants.append(_select(target, PUBLIC_ROLE))
        else:
            grants.append(
                Grant(
                    f"SELECT has_schema_privilege('{PUBLIC_ROLE}', {_lit(target)},"
                    " 'USAGE')",
                    f"GRANT USAGE ON SCHEMA {_ident(target)} TO {public}",
                )
            )
    for target, what in sorted(mirrored - held):
        if what == "TABLE":
            grants.append(_revoke_select(target, PUBLIC_ROLE))
    database = quote_identifier(await conn.fetchval("SELECT current_database()"))
    grants.append(
        Grant(
            f"SELECT has_database_privilege('{PUBLIC_ROLE}', current_database(),"
            " 'TEMPORARY')",
            f"GRANT TEMPORARY ON DATABASE {database} TO {public}",
        )
    )
    return await queryrole.apply(conn, grants)


def _select(target: str, role: str) -> Grant:
    return Grant(
        f"SELECT has_table_privilege({_lit(role)}, {_lit(target)}, 'SELECT')",
        f"GRANT SELECT ON {target} TO {quote_identifier(role)}",
    )


def _revoke_select(target: str, role: str) -> Grant:
    return Grant(
        f"SELECT to_regrole({_lit(role)}) IS NULL OR NOT EXISTS (SELECT FROM"
        f" pg_class c, aclexplode(c.relacl) a WHERE c.oid = {_lit(target)}"
        f"::regclass AND a.grantee = to_regrole({_lit(role)})"
        " AND a.privilege_type = 'SELECT')",
        f"REVOKE SELECT ON {target} FROM {quote_identifier(role)}",
    )


def _revoke_public_select(target: str) -> Grant:
    return Grant(
        "SELECT NOT EXISTS (SELECT FROM pg_class c, aclexplode(c.relacl) a"
        f" WHERE c.oid = {_lit(target)}::regclass AND a.grantee = 0"
        " AND a.privilege_type = 'SELECT')",
        f"REVOKE SELECT ON {target} FROM PUBLIC",
    )


def _usage(schema: str, role: str) -> Grant:
    return Grant(
        f"SELECT has_schema_privilege({_lit(role)}, {_lit(schema)}, 'USAGE')",
        f"GRANT USAGE ON SCHEMA {_ident(schema)} TO {quote_identifier(role)}",
    )
