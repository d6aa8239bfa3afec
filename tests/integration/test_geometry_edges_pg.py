"""Geometry at its edges on the real pg_sphere: NULL vertices, and sizes computed
per row out of their range (literal ones are refused: test_adql_syntax_http.py)."""

from __future__ import annotations

import asyncpg
import pytest
from testkit import DbSetup

from taprunner.adql.translate import translate
from taprunner.schema.catalog import TapCatalog
from taprunner.schema.metadata import TableMetadata

SETUP = """
CREATE SCHEMA tst;
CREATE TABLE tst.obj (id integer PRIMARY KEY, ra double precision,
    dec double precision, pmra double precision);
INSERT INTO tst.obj VALUES (1, 10.0, 20.0, 3600.0), (2, 200.0, -45.0, -7.5),
    (3, 300.0, 60.0, NULL);
"""


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup(
        tap_schema=True, sql=SETUP, published={"tst.obj": TableMetadata(columns=())}
    )


async def test_a_polygon_with_a_null_vertex_is_null(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    """pg_sphere's spoly aggregate crashed its backend on a NULL first vertex
    (signal 11: PostgreSQL ended every session and recovered) and silently
    dropped a NULL later one (a triangle of a quadrilateral). A polygon with
    a NULL vertex is NULL, as DALI's empty cell."""
    rows = await conn.fetch(
        translate(
            "SELECT id,"
            " CONTAINS(POINT(10.5, 20.4), POLYGON(10, 20, 11, 20, pmra / 360, 21)),"
            " CONTAINS(POINT(10, 20), POLYGON(pmra / 360, 20, 11, 20, 11, 21)),"
            " POLYGON(10, 20, 11, 20, pmra / 360, 21)"
            " FROM tst.obj ORDER BY id",
            catalog,
        ).sql
    )
    first, second, third = (tuple(r) for r in rows)
    assert first[1:] == (1, 1, [10.0, 20.0, 11.0, 20.0, 10.0, 21.0])
    assert second[1:3] == (0, 0)
    assert third[1:] == (None, None, None)  # pmra is NULL
    assert await conn.fetchval("SELECT 1") == 1  # the session survived


async def test_shapes_of_computed_sizes_out_of_range_are_null(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    """A size computed per row out of its range (BOX: 0 to below 180, CIRCLE:
    0 to 90, NaN too) makes the shape NULL, as a NULL size does: before, a BOX
    of width 200 was a polygon of wrong corners and a circle of radius 120
    failed the whole query with pg_sphere's error."""
    rows = await conn.fetch(
        translate(
            "SELECT id, BOX(10, 20, id * 100, 1), CIRCLE(10, 20, id * 60),"
            " CIRCLE(10, 20, CAST('NaN' AS DOUBLE PRECISION) * id),"
            " CONTAINS(POINT(10, 20), BOX(10, 20, id * 100, 1)),"
            " CONTAINS(POINT(10, 20), CIRCLE(10, 20, id * 60)),"
            " CONTAINS(POINT(10, 20), BOX(10, 20, 1, id - 2))"
            " FROM tst.obj ORDER BY id",
            catalog,
        ).sql
    )
    first, second, third = (tuple(r) for r in rows)
    assert first[1] is not None and first[2] == [10.0, 20.0, 60.0]
    assert first[3] is None and first[4:7] == (1, 1, None)  # height -1
    assert second[1:6] == (None, None, None, None, None)  # width 200, radius 120
    assert third[1:6] == (None, None, None, None, None)
