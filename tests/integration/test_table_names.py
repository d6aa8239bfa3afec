"""ADQL table names reach PostgreSQL as the relation TAP_SCHEMA names (qualified)."""

from __future__ import annotations

import io
from dataclasses import replace

import asyncpg
import pytest
from astropy.io.votable import parse  # type: ignore[import-untyped]
from testkit import STARS, DbSetup

from taprunner.errors import TapUsageError
from taprunner.query.execute import run_query
from taprunner.request import FORMATS, TapRequest
from taprunner.schema.catalog import TapCatalog


async def ids(conn: asyncpg.Connection, adql: str) -> list[int]:
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    request = TapRequest(query=adql, maxrec=100, format=FORMATS["votable"])
    await run_query(conn, request, await TapCatalog.load(conn), sink, timeout=30)
    table = parse(io.BytesIO(b"".join(chunks))).get_first_table()
    return sorted(int(v) for v in table.array["id"])


@pytest.fixture
def db_setup() -> DbSetup:
    return replace(
        STARS,
        sql=STARS.sql
        + """
        CREATE TABLE public."Odd" (id integer);
        INSERT INTO public."Odd" VALUES (7);
        """,
        published={"tst.stars": None, "public.Odd": None},
    )


async def test_unqualified_name_reads_the_published_table(
    conn: asyncpg.Connection,
) -> None:
    assert await ids(conn, "SELECT id FROM stars") == [1, 2]
    assert await ids(conn, "SELECT s.id FROM STARS AS s WHERE s.mag < 12") == [1]
    assert await ids(conn, "SELECT stars.id FROM stars") == [1, 2]
    assert await ids(conn, 'SELECT id FROM "tst"."stars"') == [1, 2]


async def test_delimited_names_match_exactly(conn: asyncpg.Connection) -> None:
    for adql in (
        'SELECT id FROM "TST"."STARS"',
        'SELECT id FROM tst."Stars"',
        "SELECT id FROM odd",
        "SELECT id FROM public.Odd",
    ):
        with pytest.raises(TapUsageError, match="unknown table"):
            await ids(conn, adql)
    assert await ids(conn, 'SELECT id FROM "Odd"') == [7]
    assert await ids(conn, 'SELECT id FROM PUBLIC."Odd"') == [7]


async def test_a_temporary_table_cannot_stand_in(conn: asyncpg.Connection) -> None:
    # pg_temp comes first in search_path: an unqualified name would find these.
    await conn.execute("""
        CREATE TEMPORARY TABLE stars (id integer, mag real);
        INSERT INTO stars VALUES (99, 1);
        CREATE TEMPORARY TABLE "Odd" (id integer);
        INSERT INTO "Odd" VALUES (99);
        CREATE SCHEMA "TST";
        CREATE TABLE "TST"."STARS" (id integer);
        INSERT INTO "TST"."STARS" VALUES (98);
        GRANT USAGE ON SCHEMA "TST" TO aiouws_query;
        GRANT SELECT ON pg_temp.stars, pg_temp."Odd", "TST"."STARS" TO aiouws_query;
    """)
    assert await ids(conn, "SELECT id FROM stars") == [1, 2]
    assert await ids(conn, 'SELECT id FROM "Odd"') == [7]
    with pytest.raises(TapUsageError, match="unknown table"):
        await ids(conn, 'SELECT id FROM "TST"."STARS"')
