"""The proprietary-tables tests' database and helpers (test_proprietary.py,
test_identities.py): ``secret.t`` granted to the group ``team``, the schema
``vault`` to the user ``alice``; sync queries and their VOTables read back."""

from __future__ import annotations

import io
import re

import asyncpg
from astropy.io.votable import parse  # type: ignore[import-untyped]
from testkit import Client

from taprunner.schema import access, tapschema

__all__ = ["GOLD", "SECRET", "acl_database", "status_text", "sync", "values"]

SECRET = "CLASSIFIED-ROW"
GOLD = "GOLD-NUGGET"

SETUP = f"""
CREATE SCHEMA pub;
CREATE TABLE pub.open (id int PRIMARY KEY, name text);
INSERT INTO pub.open VALUES (1, 'public-one'), (2, 'public-two');
CREATE SCHEMA secret;
CREATE TABLE secret.t (id int PRIMARY KEY, open_id int REFERENCES pub.open (id),
                       hush text);
INSERT INTO secret.t VALUES (1, 1, '{SECRET}'), (2, 2, '{SECRET}');
CREATE SCHEMA vault;
CREATE TABLE vault.gold (nugget text, hush_ref int REFERENCES secret.t (id));
INSERT INTO vault.gold VALUES ('{GOLD}', 1);
"""


async def acl_database(
    dsn: str, team: access.Principal, alice: access.Principal
) -> None:
    """Create and publish the tables; ``secret.t`` for ``team``, ``vault`` for
    ``alice``."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SETUP)
        assert await tapschema.install(conn) == []
        for table in ("pub.open", "secret.t", "vault.gold"):
            assert await tapschema.publish(conn, table) == []
        assert await access.grant(conn, "secret.t", [team]) == []
        assert await access.grant(conn, "vault", [alice]) == []
    finally:
        await conn.close()


def status_text(document: bytes) -> str:
    match = re.search(
        rb'name="QUERY_STATUS" value="ERROR"[^>]*>(.*?)</INFO>', document, re.S
    )
    assert match is not None, document[:500]
    return match.group(1).decode().strip()


async def sync(client: Client, headers: dict[str, str], adql: str) -> tuple[int, bytes]:
    resp = await client.post(
        "/tap/sync", data={"LANG": "ADQL", "QUERY": adql}, headers=headers
    )
    return resp.status, await resp.read()


def values(document: bytes) -> set[str]:
    table = parse(io.BytesIO(document)).get_first_table().to_table()
    return {str(v) for name in table.colnames for v in table[name]}
