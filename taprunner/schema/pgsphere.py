"""pg_sphere in the database: :func:`ensure_pg_sphere`, for every place that needs it.

Three outcomes (:class:`Sphere`):

- ``EXTENSION``: ``CREATE EXTENSION IF NOT EXISTS pg_sphere`` worked (or the
  extension was there). Where that works, nothing else is ever done.
- ``SCRIPT``: PostgreSQL refused the packaged script with exactly
  :data:`REFUSED_COMMUTATOR`. PostgreSQL 15.20 (backported from 17) no longer
  lets an operator name a commutator that is already another operator's, and
  pg_sphere 1.2.0's two obsolete DaCHS compatibility operators ``@(bigint,
  smoc)`` and ``@(spoint, smoc)`` do so. Upstream dropped exactly those two
  (postgrespro/pgsphere issue #85, PR #92); so do we: the packaged script of the
  default version is read *on the database server* (``pg_read_file``: the
  script that matches the server's ``pg_sphere.so``, wherever the service
  runs), the two ``CREATE OPERATOR @`` statements are removed (exactly two, or
  we refuse), and the rest runs as PostgreSQL's own ``CREATE EXTENSION`` would
  run it (``\\echo`` lines out, ``MODULE_PATHNAME`` replaced, search_path the
  target schema, function bodies unchecked), in one transaction together with
  the marker table :data:`MARKER` (version, time, what was left out).
- ``MISSING``: pg_sphere is not installed on the server or we may not create it;
  :attr:`SphereStatus.problem` says why and what to run. TAP then runs without
  geometry (:mod:`taprunner.schema.catalog` tells the translator).

Why loose objects and not an extension: PostgreSQL 15 reads extension scripts
only from its own share directory (``extension_control_path`` comes with 18);
writing a patched script there needs root and changes the server for every
database, and forging ``pg_extension``/``pg_depend`` rows is catalog surgery.
The cost: ``DROP EXTENSION pg_sphere`` does not know these objects, and a later
pg_sphere package is not picked up by itself. So the marker is checked first:
a database that has it is never offered ``CREATE EXTENSION`` again (it would
fail on the existing types), and a newer packaged version than the marker's is
reported as a warning with the way to move (dump the tables using pg_sphere
types, ``DROP TABLE aiouws_pg_sphere``, drop the types ``CASCADE``, restart).
An advisory lock makes concurrent starts (``serve --workers N``) install once.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import asyncpg

from taprunner.schema.catalog import Connection

__all__ = [
    "INSTALL_HINT",
    "MARKER",
    "REFUSED_COMMUTATOR",
    "Sphere",
    "SphereStatus",
    "ensure_pg_sphere",
    "patch_script",
]

#: The error PostgreSQL ≥ 15.20 gives for pg_sphere 1.2.0's script.
REFUSED_COMMUTATOR = "commutator operator @> is already the commutator of operator <@"
#: The table recording a script install (in the schema pg_sphere went to).
MARKER = "aiouws_pg_sphere"
INSTALL_HINT = (
    "install it on the database server (Debian: apt-get install "
    "postgresql-{major}-pgsphere) and restart the service"
)
#: Arbitrary constant key of the advisory lock serialising installs.
_LOCK_KEY = 0x61696F7573706872
#: The two operators upstream dropped (pgsphere PR #92): ``CREATE OPERATOR @``
#: with LEFTARG bigint or spoint and RIGHTARG smoc.
_OBSOLETE = re.compile(
    r"^CREATE OPERATOR @ \(\s*LEFTARG\s*=\s*(?:bigint|spoint)\s*,"
    r"\s*RIGHTARG\s*=\s*smoc\s*,[^;]*\);[ \t]*\n?",
    re.MULTILINE | re.IGNORECASE,
)
_ECHO = re.compile(r"^\\echo.*$", re.MULTILINE)


class Sphere(enum.StrEnum):
    """How pg_sphere is present in the database."""

    EXTENSION = "extension"
    SCRIPT = "script"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class SphereStatus:
    """The outcome of :func:`ensure_pg_sphere`."""

    sphere: Sphere
    version: str | None = None
    problem: str | None = None
    """For MISSING (and a stale SCRIPT install): the cause and the remedy."""

    @property
    def geometry(self) -> bool:
        """Whether ADQL geometry can run."""
        return self.sphere is not Sphere.MISSING


async def ensure_pg_sphere(conn: Connection) -> SphereStatus:
    """Make pg_sphere usable in ``conn``'s database, or say why it cannot be.

    Idempotent; safe to run from several processes at once. Never raises for a
    pg_sphere that is missing or may not be created (that is MISSING).

    Raises
    ------
    asyncpg.PostgresError
        Any other failure of ``CREATE EXTENSION`` or of the script install.
    ValueError
        The packaged script does not hold the two operators where expected.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        installed = await _installed(conn)
        if installed is not None:
            return installed
        available = await conn.fetchval(
            "SELECT default_version FROM pg_available_extensions "
            "WHERE name = 'pg_sphere'"
        )
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
        install = INSTALL_HINT.format(major=major)
        if available is None:
            return _missing("not installed on the database server", install)
        try:
            async with conn.transaction():
                # The refusal is recognised by its text: have it in English
                # whatever the server's lc_messages (only a superuser may set
                # it, and only a superuser may create pg_sphere).
                await conn.execute(
                    "SELECT set_config('lc_messages', 'C', true) FROM pg_roles"
                    " WHERE rolname = current_user AND rolsuper"
                )
                await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_sphere")
        except asyncpg.InsufficientPrivilegeError as exc:
            return _missing(
                f"the service's database role may not create it ({exc})",
                remedy="a superuser runs CREATE EXTENSION pg_sphere in this database",
            )
        except asyncpg.UndefinedFileError as exc:
            return _missing(f"installed incompletely ({exc})", install)
        except asyncpg.PostgresError as exc:
            if str(exc) != REFUSED_COMMUTATOR:
                raise
            await _install_script(conn, available)
            return SphereStatus(Sphere.SCRIPT, available)
        return SphereStatus(Sphere.EXTENSION, await _extension_version(conn))


def _missing(cause: str, remedy: str) -> SphereStatus:
    return SphereStatus(
        Sphere.MISSING,
        problem=f"{cause}: TAP runs without ADQL geometry; to have it, {remedy}",
    )


async def _extension_version(conn: Connection) -> str | None:
    version: str | None = await conn.fetchval(
        "SELECT extversion FROM pg_extension WHERE extname = 'pg_sphere'"
    )
    return version


async def _installed(conn: Connection) -> SphereStatus | None:
    """What an earlier start installed, if anything."""
    version = await _extension_version(conn)
    if version is not None:
        return SphereStatus(Sphere.EXTENSION, version)
    if await conn.fetchval("SELECT to_regclass($1)", MARKER) is None:
        return None
    marked: str = await conn.fetchval(f"SELECT version FROM {MARKER}")
    available = await conn.fetchval(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'pg_sphere'"
    )
    problem = None
    if available is not None and available != marked:
        problem = (
            f"pg_sphere {marked} was installed from its script without two "
            f"operators PostgreSQL refuses, and the server now has {available}: "
            f"to move to it, dump the tables with pg_sphere columns, drop table "
            f"{MARKER} and the pg_sphere types (CASCADE), and restart the service"
        )
    return SphereStatus(Sphere.SCRIPT, marked, problem)


def patch_script(script: str, module_pathname: str) -> str:
    """``script`` as PostgreSQL's CREATE EXTENSION would run it, without the two
    obsolete ``@(bigint, smoc)`` and ``@(spoint, smoc)`` operators.

    Raises
    ------
    ValueError
        The script does not define exactly those two (an unknown script: better
        to stop than to guess).
    """
    patched, removed = _OBSOLETE.subn("", script)
    if removed != 2:
        raise ValueError(
            f"expected the two obsolete operators @(bigint, smoc) and "
            f"@(spoint, smoc) in the pg_sphere script, found {removed}"
        )
    patched = _ECHO.sub("", patched)
    return patched.replace("MODULE_PATHNAME", module_pathname)


async def _install_script(conn: Connection, version: str) -> None:
    """Run the packaged script minus the two operators, and write the marker."""
    sharedir = await conn.fetchval(
        "SELECT setting FROM pg_config WHERE name = 'SHAREDIR'"
    )
    base = f"{sharedir}/extension/pg_sphere"
    control = await conn.fetchval("SELECT pg_read_file($1)", f"{base}.control")
    script = await conn.fetchval("SELECT pg_read_file($1)", f"{base}--{version}.sql")
    found = re.search(r"^\s*module_pathname\s*=\s*'([^']*)'", control, re.MULTILINE)
    module = found.group(1) if found else "$libdir/pg_sphere"
    schema = await conn.fetchval("SELECT current_schema()")
    async with conn.transaction():
        await conn.execute(
            "SELECT set_config('search_path', quote_ident($1), true), "
            "set_config('check_function_bodies', 'off', true), "
            "set_config('client_min_messages', 'warning', true)",
            schema,
        )
        await conn.execute(patch_script(script, module))
        await conn.execute(
            f"CREATE TABLE {MARKER} (version text NOT NULL, "
            "installed timestamptz NOT NULL DEFAULT now(), left_out text NOT NULL);"
            f"COMMENT ON TABLE {MARKER} IS 'pg_sphere installed from its packaged "
            "script by aiouws (taprunner/schema/pgsphere.py) because PostgreSQL "
            "refused two obsolete operators of it'"
        )
        await conn.execute(
            f"INSERT INTO {MARKER} (version, left_out) VALUES ($1, $2)",
            version,
            "OPERATOR @(bigint, smoc), OPERATOR @(spoint, smoc)",
        )
