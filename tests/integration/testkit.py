"""What the shared fixtures of ``tests/integration/conftest.py`` take and give.

A conftest cannot be imported, so the types and values a test module needs to
set those fixtures up live here: ``Client``/``MakeClient`` (the aiohttp test
client and its factory fixture) and ``DbSetup``, what a module's ``db_setup``
fixture returns to say what its ``conn`` finds in the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from taprunner.schema import tapschema
from taprunner.schema.metadata import TableMetadata

__all__ = ["STARS", "Client", "DbSetup", "MakeClient"]

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]


@dataclass(frozen=True)
class DbSetup:
    """What a test database holds before the test gets its connection.

    In this order: TAP_SCHEMA and the query role (``tap_schema``), then ``sql``,
    then each table of ``published`` published with its metadata (or none).
    """

    tap_schema: bool = False
    sql: str = ""
    published: Mapping[str, TableMetadata | None] = field(default_factory=dict)

    async def apply(self, conn: asyncpg.Connection) -> None:
        if self.tap_schema:
            await tapschema.install(conn)
        if self.sql:
            await conn.execute(self.sql)
        for table, metadata in self.published.items():
            await tapschema.publish(conn, table, metadata)


#: Two stars, ``tst.stars (id, mag)``, published in TAP_SCHEMA.
STARS = DbSetup(
    tap_schema=True,
    sql="""
        CREATE SCHEMA tst;
        CREATE TABLE tst.stars (id integer, mag real);
        INSERT INTO tst.stars VALUES (1, 11.5), (2, 12.5);
    """,
    published={"tst.stars": None},
)
