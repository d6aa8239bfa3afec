import asyncpg


async def test_fresh_database_has_pg_sphere(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        value = await conn.fetchval("SELECT area(scircle(spoint(0, 0), 0.1)) > 0")
    finally:
        await conn.close()
    assert value is True
