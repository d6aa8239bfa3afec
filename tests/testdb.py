"""The test databases: the template's name and fresh databases cloned from it.

``tests/conftest.py`` builds the template (``template_dsn``) and gives each test
its database (``db_dsn``); the e2e servers' databases (``tests/e2e/liveserver.py``)
come from the same two functions. Import as ``from testdb import ...`` (``tests``
is on ``sys.path`` once ``tests/conftest.py`` is loaded).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg

__all__ = ["TEMPLATE_DB", "create_database", "drop_database", "job_row", "with_db"]

#: The template database with the extensions and the application schema.
TEMPLATE_DB = "aiouws_test_template"


def with_db(dsn: str, database: str) -> str:
    """Return ``dsn`` pointing at ``database`` instead."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


async def create_database(admin_dsn: str, prefix: str = "t_") -> str:
    """Create a fresh database (``prefix`` + random hex) from the template; its DSN."""
    name = prefix + secrets.token_hex(6)
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    finally:
        await admin.close()
    return with_db(admin_dsn, name)


async def drop_database(admin_dsn: str, dsn: str) -> None:
    """Drop the database ``dsn`` names, disconnecting whoever still uses it."""
    name = urlsplit(dsn).path.lstrip("/")
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def job_row(dsn: str, job_id: str, *, columns: str) -> asyncpg.Record:
    """The job table's ``columns`` (SQL select list) of one job, which must exist."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            f"SELECT {columns} FROM uws.job WHERE job_id = $1", job_id
        )
    finally:
        await conn.close()
    assert row is not None
    return row
