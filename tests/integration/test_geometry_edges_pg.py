"""Geometry at its edges on the real pg_sphere: NULL vertices, and sizes computed
per row out of their range (literal ones are refused: test_adql_syntax_http.py)."""

from __future__ import annotations

import asyncpg
import pytest
from testkit import Client, DbSetup

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


#: Shapes of sizes or coordinates near 0 next to the same with 0 (a BOX of
#: size 0 is a polygon of coinciding corners, NULL).
TINY = (
    "CONTAINS(POINT(10, 10), BOX('ICRS', 10, 10, {t}, {t}))",
    "AREA(BOX('ICRS', 10, 10, {t}, {t}))",
    "CONTAINS(POINT(10, 10.2), BOX(10, 10, {t}, 1))",
    "CONTAINS(POINT(0.2, 0.3), BOX(0, {t}, 1, 1))",
    "CONTAINS(POINT(0.2, -0.3), BOX(0, -{t}, 1, 1))",
    "CONTAINS(POINT(0, 0), BOX(0, {t}, 1e-50, 1e-50))",
    "CONTAINS(POINT(0, 0), BOX(0, -{t}, 1e-50, 1e-50))",
    "CONTAINS(POINT(0, 0), BOX(POINT({t}, {t}), 1e-100, 1))",
    "CONTAINS(POINT(10, 10), CIRCLE(10, 10, {t}))",
    "CONTAINS(POINT(0, 0), POLYGON({t}, {t}, 1, {t}, 1, 1))",
)


async def test_sizes_and_coordinates_near_0_are_those_of_0(client: Client) -> None:
    """A BOX of width 1e-300, or at dec 1e-300 with sizes 1e-50: PostgreSQL's
    product of its corners' factors underflowed, "query failed: value out of
    range: underflow". The answer is that of 0, which they are at any
    precision pg_sphere has (1e-9 radians); so are a CIRCLE's and a POLYGON's
    (they were already). The same shape with other numbers: the later ones
    are filled into the learnt template (taprunner.query.shapes)."""
    for shape in TINY:
        answers = set()
        for value in ("1e-300", "1e-320", "5e-324", "0"):
            if value == "5e-324" and "BOX" not in shape:
                continue  # radians(5e-324) underflows: left to PostgreSQL's 400
            query = f"SELECT {shape.format(t=value)} AS x"
            resp = await client.post(
                "/tap/sync", data={"LANG": "ADQL", "QUERY": query, "FORMAT": "csv"}
            )
            text = await resp.text()
            assert resp.status == 200, (query, text)
            answers.add(text)
        assert len(answers) == 1, (shape, answers)
