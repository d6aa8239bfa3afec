"""REGION beyond one ICRS shape (other frames, Union, Intersection, Not), ESO's
UDFs and geometry CASTs of malformed text on a real PostgreSQL with pg_sphere,
against published positions and geometry computed independently."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta

import asyncpg
import pytest
from test_adql21_pg import SETUP, UNITS, _row
from testkit import DbSetup

from taprunner.adql.model import AdqlError
from taprunner.adql.translate import translate
from taprunner.schema.catalog import TapCatalog


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup(tap_schema=True, sql=SETUP, published={"tst.obj": UNITS})


async def test_eso_functions(conn: asyncpg.Connection, catalog: TapCatalog) -> None:
    """ESO_INTERSECTION against the lens of two circles (flat formula: at 1
    degree the sphere changes it by 1e-4) and squares' overlaps, from above
    within 1 % (a HEALPix coverage holds every pixel a region touches);
    eso_dateadd_sec against datetime."""
    lens = 2 * math.acos(0.5) - 0.5 * math.sqrt(3)  # r = 1, d = 1 (deg)
    cap = 2 * math.pi * (1 - math.cos(math.radians(1))) * (180 / math.pi) ** 2
    square = "POLYGON(0, 0, 1, 0, 1, 1, 0, 1)"
    adql = (
        "SELECT ESO_INTERSECTION(CIRCLE(0, 0, 1), CIRCLE(1, 0, 1)),"
        " ESO_INTERSECTION(CIRCLE(20, 30, 1), CIRCLE(20, 30, 1)),"
        f" ESO_INTERSECTION({square}, POLYGON(0.5, 0, 1.5, 0, 1.5, 1, 0.5, 1)),"
        f" ESO_INTERSECTION({square}, CIRCLE(0, 0, 0.5)),"
        f" ESO_INTERSECTION({square}, CIRCLE(3, 3, 0.5))"
    )
    got = await _row(conn, catalog, adql)
    for value, exact in zip(got[:4], (lens, cap, 0.5, cap / 4 / 4), strict=True):
        assert exact <= value <= exact * 1.01, (got, exact)
    assert got[4] == 0.0
    moved = await _row(
        conn,
        catalog,
        "SELECT eso_dateadd_sec(-2700.5, '2019-06-06T09:55:27'),"
        " eso_dateadd_sec(360, CAST('2020-02-28T23:59:00' AS TIMESTAMP))",
    )
    start = datetime(2019, 6, 6, 9, 55, 27)
    assert moved == (start - timedelta(seconds=2700.5), datetime(2020, 2, 29, 0, 5))


async def test_region_frames_and_compounds(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    """REGION in other frames lands on the published ICRS positions (the
    Galactic centre; 3C 273 from its FK4 B1950 position, SIMBAD); Union,
    Intersection and Not select the rows of (10, 20), (200, -45), (300, 60)
    they contain, and compare circles (exact where rewritten, as coverages else)."""

    async def ids(condition: str) -> list[int]:
        adql = f"SELECT id FROM tst.obj WHERE {condition} ORDER BY id"
        return [r["id"] for r in await conn.fetch(translate(adql, catalog).sql)]

    def inside(region: str) -> str:
        return f"1 = CONTAINS(POINT(ra, dec), REGION('{region}'))"

    centre = await _row(
        conn,
        catalog,
        "SELECT COORD1(REGION('Position GALACTIC 0 0')),"
        " COORD2(REGION('Position GALACTIC 0 0')),"
        " COORD1(REGION('Position FK4 186.6385417 2.3286944')),"
        " COORD2(REGION('Position FK4 186.6385417 2.3286944')),"
        " DISTANCE(CENTROID(REGION('Circle FK5 10 20 1')), POINT(10, 20))",
    )
    assert centre[:2] == pytest.approx((266.40499, -28.93617), abs=1e-4)
    assert centre[2:4] == pytest.approx((187.2779154, 2.0523883), abs=6e-4)
    assert centre[4] < 1e-4  # FK5 J2000 and ICRS differ by milliarcseconds
    assert await ids(inside("Union ICRS (Circle 10 20 1 Circle 200 -45 1)")) == [1, 2]
    assert await ids(inside("Intersection (Circle 10 20 2 Circle 11 20 2)")) == [1]
    assert await ids(inside("Intersection (Circle 10 20 2 Circle 14 20 2)")) == []
    assert await ids(inside("Not (Circle 10 20 1)")) == [2, 3]
    assert await ids(
        inside(
            "Intersection (Not (Circle 10 20 1)"
            " Union (Circle 200 -45 1 Box 300 60 1 1))"
        )
    ) == [2, 3]
    assert await ids(
        "1 = INTERSECTS(REGION('Not (Circle 10 20 1)'), POINT(ra, dec))"
    ) == [2, 3]
    lens = "REGION('Intersection (Circle 10 19.5 0.6 Circle 10 20.5 0.6)')"
    pair = "REGION('Union (Circle 10 19.8 0.5 Circle 10 20.2 0.5)')"
    checks = await _row(
        conn,
        catalog,
        f"SELECT CONTAINS(CIRCLE(10, 20, 0.1), {pair}),"
        f" CONTAINS(CIRCLE(10, 20, 0.6), {pair}),"
        f" INTERSECTS(CIRCLE(10, 20, 0.3), {lens}),"
        f" INTERSECTS(CIRCLE(15, 20, 0.3), {lens}),"
        f" CONTAINS({lens}, CIRCLE(10, 20, 0.5)),"
        f" CONTAINS(CIRCLE(10, 20, 0.5), REGION('Not (Circle 30 20 1)')),"
        f" CONTAINS(CIRCLE(10, 20, 0.5), REGION('Not (Circle 10.5 20 1)'))",
    )
    assert checks == (1, 0, 1, 0, 1, 1, 0)
    # lyonetia's: a Union of a Position and an Intersection within a circle
    assert await ids(
        "1 = CONTAINS(REGION('Union ICRS (Position 10 20 Intersection (circle 10 20 1"
        " circle 10.5 20 1))'), REGION('circle 10 20 2'))"
    ) == [1, 2, 3]
    with pytest.raises(AdqlError, match="no value to give"):
        translate("SELECT REGION('Union (Circle 1 2 3 Circle 4 5 6)')", catalog)
    with pytest.raises(AdqlError, match="this Not cannot be evaluated"):
        translate(
            "SELECT CONTAINS(REGION('Not (Circle 1 2 3)'), CIRCLE(1, 2, 3))", catalog
        )


async def test_geometry_cast_of_a_malformed_value_fails_saying_so(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    """A column value with the wrong count of numbers is an error naming it,
    never a shape cut to size; NULL stays NULL."""
    sql = translate("SELECT CAST(bands AS POINT) FROM tst.obj WHERE id = 2", catalog)
    with pytest.raises(asyncpg.PostgresError) as caught:
        await conn.fetch(sql.sql)
    assert "CAST to POINT: not 2 numbers: X-ray" in str(caught.value)
    for shape in ("POINT", "CIRCLE", "POLYGON"):
        adql = f"SELECT CAST(bands AS {shape}) FROM tst.obj WHERE id = 3"
        assert await _row(conn, catalog, adql) == (None,)
    adql = "SELECT CAST(name AS CIRCLE) FROM tst.obj WHERE id = 1"
    with pytest.raises(asyncpg.PostgresError, match="not 3 numbers: alpha"):
        await conn.fetch(translate(adql, catalog).sql)


async def test_eso_intersection_of_a_tiny_and_a_large_region_is_quick(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    """A tiny region made the order 29 and pg_sphere's coverage of the large
    one (10 degrees: hundreds of millions of pixels, not cancellable) ran for
    minutes and killed the backend. Within the other: its own area, exactly;
    partly overlapping: a coarser coverage, at once."""
    tiny = 2 * math.pi * (1 - math.cos(math.radians(1e-4))) * (180 / math.pi) ** 2
    started = time.monotonic()
    got = await _row(
        conn,
        catalog,
        "SELECT ESO_INTERSECTION(CIRCLE(0, 0, 0.0001), CIRCLE(0, 0, 10)),"
        " ESO_INTERSECTION(CIRCLE(0, 0, 80), POLYGON(1, 1, 1.01, 1, 1, 1.01)),"
        " ESO_INTERSECTION(CIRCLE(10, 0, 0.0001), CIRCLE(0, 0, 10)),"
        " ESO_INTERSECTION(CIRCLE(0, 0, 80), POLYGON(1, 1, 1.0001, 1, 1, 1.0001))",
    )
    assert time.monotonic() - started < 20
    assert got[0] == pytest.approx(tiny, rel=1e-9)
    assert got[1] == pytest.approx(0.5e-4 * math.cos(math.radians(1)), rel=1e-3)
    # coarse: pg_sphere's coverage at order 16 gives a pixel of order 13 here
    assert 0 < got[2] < 1e-4
    assert 0.5e-8 < got[3] < 1e-4
