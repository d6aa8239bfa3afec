"""A warm runner's prepared statements: reused across queries, renewed when stale."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from astropy.io.votable import parse  # type: ignore[import-untyped]
from testkit import STARS, DbSetup
from uploadkit import MB, ids_table, write_parts

from taprunner.query.caches import StatementCache
from taprunner.query.execute import run_query
from taprunner.query.uploads import load_uploads
from taprunner.request import FORMATS, TapRequest, parse_uploads
from taprunner.schema.catalog import TapCatalog

QUERY = "SELECT id, mag FROM tst.stars ORDER BY id"


@pytest.fixture
def db_setup() -> DbSetup:
    return STARS


async def result(
    conn: asyncpg.Connection, cache: StatementCache, request: TapRequest, catalog: Any
) -> Any:
    """Run ``request`` as the runner does; the result as an astropy table."""
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    await run_query(conn, request, catalog, sink, timeout=30, statements=cache)
    return parse(io.BytesIO(b"".join(chunks))).get_first_table()


async def query(
    conn: asyncpg.Connection, cache: StatementCache, adql: str = QUERY
) -> tuple[dict[str, str], list[tuple[object, ...]]]:
    """Run ``adql`` with the cache; the FIELD datatypes and the rows."""
    request = TapRequest(query=adql, maxrec=100, format=FORMATS["votable"])
    table = await result(conn, cache, request, await TapCatalog.load(conn))
    types = {f.ID or f.name: f.datatype for f in table.fields}
    return types, [tuple(row) for row in table.array.tolist()]


async def prepared_count(conn: asyncpg.Connection, fragment: str) -> int:
    count = await conn.fetchval(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE $1",
        f"%{fragment}%",
    )
    assert isinstance(count, int)
    return count


async def test_a_repeated_query_reuses_one_prepared_statement(
    conn: asyncpg.Connection,
) -> None:
    cache = StatementCache()
    answers = [await query(conn, cache) for _ in range(4)]
    assert all(a == answers[0] for a in answers)
    assert answers[0][1] == [(1, 11.5), (2, 12.5)]
    assert len(cache) == 1
    assert await prepared_count(conn, "FROM tst.stars") == 1


async def test_the_cache_keeps_only_the_most_recent_statements(
    conn: asyncpg.Connection,
) -> None:
    cache = StatementCache(size=2)
    for limit in (1, 2, 3):
        _, rows = await query(conn, cache, f"SELECT TOP {limit} id FROM tst.stars")
        assert len(rows) == min(limit, 2)
    assert len(cache) == 2


async def test_the_cache_is_bounded_in_bytes_of_sql(conn: asyncpg.Connection) -> None:
    """Big queries' statements hold their text: the cache keeps what fits in
    its bytes, and none over a quarter of them."""
    cache = StatementCache(max_bytes=40_000)
    for i in range(6):
        padding = "x" * 8_000
        adql = f"SELECT id FROM tst.stars WHERE id <> {i + 100} OR '{padding}' = ''"
        _, rows = await query(conn, cache, adql)
        assert len(rows) == 2
        assert 0 < cache.retained_bytes <= 40_000
    assert len(cache) == 4  # of about 8,100 bytes each: the first two dropped
    await query(
        conn, cache, "SELECT id FROM tst.stars WHERE '" + "x" * 11_000 + "' = ''"
    )
    assert len(cache) == 4  # over a quarter: prepared, run, not kept
    assert cache.retained_bytes <= 40_000


async def test_a_table_that_changed_shape_gets_a_fresh_statement(
    conn: asyncpg.Connection,
) -> None:
    cache = StatementCache()
    types, _ = await query(conn, cache)
    assert types["mag"] == "float"
    await conn.execute("ALTER TABLE tst.stars ALTER COLUMN mag TYPE double precision")
    types, rows = await query(conn, cache)
    assert types["mag"] == "double"
    assert rows == [(1, 11.5), (2, 12.5)]
    assert len(cache) == 1


async def test_queries_with_uploads_are_not_cached(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    cache = StatementCache()
    catalog = await TapCatalog.load(conn)
    parts = write_parts(tmp_path, up=ids_table([2, 3]))
    for _ in range(2):
        async with load_uploads(
            conn, parse_uploads("up,param:up"), parts, catalog, max_bytes=MB
        ) as full:
            request = TapRequest(
                query="SELECT s.id FROM tst.stars AS s JOIN TAP_UPLOAD.up AS u"
                " ON u.id = s.id",
                maxrec=100,
                format=FORMATS["votable"],
                uploads=parse_uploads("up,param:up"),
            )
            table = await result(conn, cache, request, full)
            assert table.array["id"].tolist() == [2]
    assert len(cache) == 0
