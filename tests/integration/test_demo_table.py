"""The demo catalogue (demo.stars): contents, determinism, index, the examples on it."""

from __future__ import annotations

import asyncpg
from tapschemakit import columns_of

from taprunner.schema import tapschema
from taprunner.schema.catalog import TapCatalog
from taprunner.schema.demo import load_demo

# --------------------------------------------------------------------- demo


async def test_load_demo(conn: asyncpg.Connection) -> None:
    await load_demo(conn, rows=1000)
    assert await conn.fetchval("SELECT count(*) FROM demo.stars") == 1000
    stats = await conn.fetchrow(
        "SELECT min(ra) >= 0 AND max(ra) < 360 AS ra_ok,"
        " min(dec) >= -90 AND max(dec) <= 90 AS dec_ok,"
        " count(DISTINCT name) AS names, avg(sin(radians(dec))) AS mean_sin"
        " FROM demo.stars"
    )
    assert stats["ra_ok"] and stats["dec_ok"] and stats["names"] == 1000
    assert abs(stats["mean_sin"]) < 0.1
    indexdef = await conn.fetchval(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'demo'"
        " AND indexdef LIKE '%gist%'"
    )
    assert "spoint(radians(ra), radians(dec))" in indexdef.replace('"', "")
    columns = await columns_of(conn, "demo.stars")
    assert {n: (r["unit"], r["ucd"]) for n, r in columns.items()} == {
        "id": (None, "meta.id;meta.main"),
        "ra": ("deg", "pos.eq.ra;meta.main"),
        "dec": ("deg", "pos.eq.dec;meta.main"),
        "mag": ("mag", "phot.mag"),
        "name": (None, "meta.id"),
    }
    assert columns["ra"]["indexed"] == columns["dec"]["indexed"] == 1
    assert columns["id"]["datatype"] == "long"


async def test_load_demo_is_deterministic_and_idempotent(
    conn: asyncpg.Connection,
) -> None:
    await load_demo(conn, rows=500)
    first = await conn.fetch("SELECT * FROM demo.stars ORDER BY id LIMIT 5")
    oid = await conn.fetchval("SELECT 'demo.stars'::regclass::oid")
    await load_demo(conn, rows=500)
    assert await conn.fetchval("SELECT 'demo.stars'::regclass::oid") == oid
    await load_demo(conn, rows=300)
    assert await conn.fetchval("SELECT count(*) FROM demo.stars") == 300
    await load_demo(conn, rows=500)
    again = await conn.fetch("SELECT * FROM demo.stars ORDER BY id LIMIT 5")
    assert [tuple(r) for r in again] == [tuple(r) for r in first]


async def test_demo_cone_query_uses_index(conn: asyncpg.Connection) -> None:
    await load_demo(conn, rows=20_000)
    await conn.execute(f"SET ROLE {tapschema.QUERY_ROLE}")
    try:
        plan = "\n".join(
            row[0]
            for row in await conn.fetch(
                "EXPLAIN SELECT id FROM demo.stars"
                " WHERE spoint(radians(ra), radians(dec))"
                " @ scircle(spoint(radians(180.0), 0.0), radians(0.5))"
            )
        )
        count = await conn.fetchval(
            "SELECT count(*) FROM demo.stars WHERE spoint(radians(ra), radians(dec))"
            " @ scircle(spoint(radians(180.0), 0.0), radians(5.0))"
        )
    finally:
        await conn.execute("RESET ROLE")
    assert "stars_pos_idx" in plan
    assert 0 < count < 20_000


async def test_default_examples_run_on_demo(conn: asyncpg.Connection) -> None:
    from taprunner.adql.translate import translate
    from taprunner.web.examples import DEFAULT_EXAMPLES

    await load_demo(conn, rows=5_000)
    catalog = await TapCatalog.load(conn)
    await conn.execute(f"SET ROLE {tapschema.QUERY_ROLE}")
    try:
        counts = [
            len(await conn.fetch(translate(query, catalog).sql))
            for _, _, query in DEFAULT_EXAMPLES
        ]
    finally:
        await conn.execute("RESET ROLE")
    # Cones of 0.5 and 1 degree may be empty with 5000 stars; the rest are not.
    assert all(counts[2:]), counts
