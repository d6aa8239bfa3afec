"""Cone searches on a table loaded by ``tap load --position``: the translation
cache's shape templates (taprunner/query/shapes.py) give the translator's SQL,
the CONTAINS plan scans the position index, and the rows are the translator's."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import numpy as np
import pytest
from loadkit import big_csv
from testkit import DbSetup

from taprunner.adql.translate import translate
from taprunner.load import LoadOptions, load_files
from taprunner.query.caches import TranslationCache
from taprunner.schema.catalog import TapCatalog

CONE = (
    "SELECT id, ra, dec, mag, name FROM cat.sky WHERE CONTAINS(POINT('ICRS', ra,"
    " dec), CIRCLE('ICRS', {:.6f}, {:.6f}, 2.0)) = 1"
)
DISTANCE = (
    "SELECT id FROM cat.sky WHERE DISTANCE(POINT('ICRS', ra, dec),"
    " POINT('ICRS', {:.6f}, {:.6f})) < 1.5"
)


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup(tap_schema=True)


async def test_cone_templates_give_the_translators_sql_plan_and_rows(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    path = big_csv(tmp_path / "sky.csv", 20_000)
    await load_files(conn, [path], "cat.sky", LoadOptions(position=("ra", "dec")))
    catalog = await TapCatalog.load(conn)
    cache = TranslationCache()
    rng = np.random.default_rng(3)
    found = 0
    for query in (CONE, DISTANCE):
        for _ in range(8):
            ra, dec = rng.uniform(0, 360), rng.uniform(-80, 80)
            adql = query.format(ra, dec)
            expected = translate(adql, catalog, limit=1001)
            got = await cache.translate(adql, catalog, 1001)
            assert got == expected
            if query is CONE:  # (DISTANCE < r is not translated indexably yet)
                plan = await conn.fetch("EXPLAIN " + got.sql)
                text = "\n".join(r[0] for r in plan)
                assert "sky_pos_idx" in text and "Seq Scan" not in text, text
            rows = await conn.fetch(got.sql)
            assert rows == await conn.fetch(expected.sql)
            found += len(rows)
    assert len(cache.shapes) >= 2  # both shapes learnt: later cones were filled in
    assert found > 0
