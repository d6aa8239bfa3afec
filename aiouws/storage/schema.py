"""The job database's schema and sessions: migrations, connection setup, pool reset."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources

import asyncpg

__all__ = [
    "SCHEMA_VERSION",
    "Connection",
    "init_connection",
    "install_schema",
    "keep_session",
]

#: A plain connection or one borrowed from a pool.
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

#: The migrations in ``aiouws/storage/sql/NNN_*.sql``, applied in order.
_MIGRATIONS = (
    "001_jobs.sql",
    "002_job_list_index.sql",
    "003_job_backend.sql",
    "004_hosts.sql",
    "005_one_statement_admission.sql",
    "006_no_update_notices.sql",
)
SCHEMA_VERSION = len(_MIGRATIONS)
_MIGRATION_LOCK = 0x61696F757773  # "aiouws"


async def init_connection(conn: Connection) -> None:
    """Per-connection setup: JSON codecs for jsonb, timestamps that always
    decode (:func:`_decode_time`), UTC session time zone."""
    await conn.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )
    await conn.set_type_codec(
        "timestamptz",
        encoder=_encode_time,
        decoder=_decode_time,
        schema="pg_catalog",
        format="tuple",
    )
    await conn.execute("SET TIME ZONE 'UTC'")


#: PostgreSQL's epoch: its binary timestamps count microseconds from here.
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def _decode_time(value: tuple[int]) -> datetime:
    """A stored time, clamped to Python's range: a year before 1 or after 9999
    (BC dates, ``infinity``, written by hand) reads as the nearest end instead
    of failing every read of its row."""
    try:
        return _PG_EPOCH + timedelta(microseconds=value[0])
    except OverflowError:
        return _EARLIEST if value[0] < 0 else _LATEST


def _encode_time(value: datetime) -> tuple[int]:
    """A time to store; a naive one is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return ((value - _PG_EPOCH) // timedelta(microseconds=1),)


async def keep_session(conn: Connection) -> None:
    """Pool ``reset`` hook that keeps the session as ``init_connection`` set it.

    asyncpg's default reset runs ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN
    *; RESET ALL`` on every release: half of all statements of a tiny job, and
    it would undo the UTC time zone. The pool still rolls back any open
    transaction; our code takes only transaction-scoped locks and settings.
    """


async def install_schema(conn: Connection) -> int:
    """Create or upgrade the job schema; idempotent and safe to run concurrently.

    Returns the number of migrations applied.
    """
    applied = 0
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE SCHEMA IF NOT EXISTS uws;"
            "CREATE TABLE IF NOT EXISTS uws.schema_migration ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            r["version"]
            for r in await conn.fetch("SELECT version FROM uws.schema_migration")
        }
        for version, name in enumerate(_MIGRATIONS, start=1):
            if version in done:
                continue
            sql = resources.files("aiouws.storage").joinpath("sql", name).read_text()
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO uws.schema_migration (version, name) VALUES ($1, $2)",
                version,
                name,
            )
            applied += 1
    return applied
