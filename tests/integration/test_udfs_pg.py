"""User-defined functions executed on a real PostgreSQL: their IVOA semantics."""

from __future__ import annotations

import asyncpg

from taprunner.adql.model import StaticCatalog
from taprunner.adql.translate import translate

CATALOG = StaticCatalog({})


async def test_ivo_nocasematch_is_a_case_insensitive_like(db_dsn: str) -> None:
    adql = (
        "SELECT ivo_nocasematch('Beta Star', 'beta%'),"
        " ivo_nocasematch('Beta Star', 'BETA_STAR'),"
        " ivo_nocasematch('Beta Star', 'star'),"
        " ivo_nocasematch(NULL, 'x')"
    )
    conn = await asyncpg.connect(db_dsn)
    try:
        row = await conn.fetchrow(translate(adql, CATALOG).sql)
    finally:
        await conn.close()
    assert tuple(row) == (1, 1, 0, None)
