"""Every language feature and UDF the capabilities advertise runs on PostgreSQL
and gives the right value: one checked query per advertised form, and the test
fails when a form is advertised without one (or one is listed that is not)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from lxml import etree
from testkit import DbSetup

from taprunner.adql.model import StaticCatalog
from taprunner.adql.translate import translate
from taprunner.web.capabilities import capabilities_document

SETUP = """
CREATE SCHEMA tst;
CREATE TABLE tst.t (a integer, s text, x double precision);
INSERT INTO tst.t VALUES (1, 'Alpha', 10.0), (2, 'beta', 20.0), (3, NULL, NULL);
"""
CATALOG = StaticCatalog({"tst.t": ["a", "s", "x"]}, units={"tst.t": {"x": "deg"}})
_HALF = math.degrees(math.asin(2 / 3))
_DEC = math.degrees(math.atan(math.radians(0.1)))

#: Advertised form -> (ADQL query, its first row).
CHECKS: dict[str, tuple[str, tuple[Any, ...]]] = {
    # geometry
    "POINT": ("SELECT POINT(10, 20)", ([10.0, 20.0],)),
    "CIRCLE": ("SELECT CIRCLE(POINT(1, 2), 3)", ([1.0, 2.0, 3.0],)),
    "POLYGON": ("SELECT POLYGON(1, 2, 3, 4, 5, 6)", ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0],)),
    "BOX": (
        "SELECT CONTAINS(POINT(10.9, 20.4), BOX(10, 20, 2, 1)), "
        "CONTAINS(POINT(11.1, 20), BOX(10, 20, 2, 1))",
        (1, 0),
    ),
    "REGION": (
        "SELECT CONTAINS(POINT(10.9, 20.4), REGION('Box ICRS 10 20 2 1')), "
        "CONTAINS(POINT(11.1, 20), REGION('box 10 20 2 1')), "
        "DISTANCE(REGION('Position ICRS 0 0'), POINT(0, 1)), "
        "REGION('Circle ICRS 1 2 3'), REGION('Polygon 1 2 3 4 5 6')",
        (1, 0, 1.0, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    ),
    "CENTROID": ("SELECT CENTROID(CIRCLE(10, 20, 1))", ([10.0, 20.0],)),
    "CONTAINS": (
        "SELECT a FROM tst.t WHERE 1 = CONTAINS(POINT(x, 0), CIRCLE(10, 0, 1))",
        (1,),
    ),
    "INTERSECTS": ("SELECT INTERSECTS(CIRCLE(0, 0, 1), CIRCLE(1.5, 0, 1))", (1,)),
    "DISTANCE": ("SELECT DISTANCE(POINT(0, 0), POINT(0, 1))", (1.0,)),
    "AREA": (
        "SELECT AREA(CIRCLE(0, 0, 1))",
        (2 * math.pi * (1 - math.cos(math.radians(1))) * (180 / math.pi) ** 2,),
    ),
    "COORD1": ("SELECT COORD1(POINT(10, 20))", (10.0,)),
    "COORD2": ("SELECT COORD2(POINT(10, 20))", (20.0,)),
    "COORDSYS": ("SELECT COORDSYS(POINT(10, 20))", ("ICRS",)),
    # strings
    "LOWER": ("SELECT LOWER(s) FROM tst.t WHERE a = 1", ("alpha",)),
    "UPPER": ("SELECT UPPER(s) FROM tst.t WHERE a = 1", ("ALPHA",)),
    "ILIKE": ("SELECT a FROM tst.t WHERE s ILIKE 'ALP%'", (1,)),
    # cardinality, CTE, sets, types, units
    "OFFSET": ("SELECT a FROM tst.t ORDER BY a OFFSET 2", (3,)),
    "WITH": ("WITH w AS (SELECT a FROM tst.t WHERE a > 1) SELECT MIN(a) FROM w", (2,)),
    "UNION": (
        "SELECT COUNT(*) FROM (SELECT a FROM tst.t UNION SELECT a FROM tst.t) AS u",
        (3,),
    ),
    "EXCEPT": (
        "SELECT a FROM tst.t EXCEPT SELECT a FROM tst.t WHERE a < 3",
        (3,),
    ),
    "INTERSECT": (
        "SELECT a FROM tst.t WHERE a > 1 INTERSECT SELECT a FROM tst.t WHERE a < 3",
        (2,),
    ),
    "CAST": (
        "SELECT CAST(x AS INTEGER), CAST(a AS VARCHAR(3)), CAST('1 2' AS POINT)"
        " FROM tst.t WHERE a = 2",
        (20, "2", [1.0, 2.0]),
    ),
    "IN_UNIT": ("SELECT IN_UNIT(x, 'arcmin') FROM tst.t WHERE a = 1", (600.0,)),
    "COALESCE": (
        "SELECT COALESCE(s, 'none'), COALESCE(x, 7), COALESCE(NULL, s, 'z') FROM tst.t"
        " WHERE a = 3",
        ("none", 7.0, "z"),
    ),
    # user-defined functions
    "ivo_hasword": ("SELECT ivo_hasword('the quick fox', 'QUICK')", (1,)),
    "ivo_nocasematch": ("SELECT ivo_nocasematch('Beta Star', 'beta%')", (1,)),
    "ivo_hashlist_has": ("SELECT ivo_hashlist_has('a#Bc#d', 'bc')", (1,)),
    "ivo_interval_overlaps": ("SELECT ivo_interval_overlaps(1, 2, 3, 4)", (0,)),
    "ivo_string_agg": (
        "SELECT ivo_string_agg(s, ',') FROM (SELECT s FROM tst.t WHERE a = 2) AS q",
        ("beta",),
    ),
    "ivo_healpix_index": ("SELECT ivo_healpix_index(0, 45, 60)", (0,)),
    "ivo_healpix_center": ("SELECT ivo_healpix_center(0, 0)", ([45.0, _HALF],)),
    # 0.1 degree of proper motion in a century, without parallax: a straight line
    # on the tangent plane, seen from the centre.
    "ivo_epoch_prop": (
        "SELECT ivo_epoch_prop(10, 0, NULL, 0, 3600, 0, 2000, 2100)",
        ([10.0, _DEC, 0.0, 0.0, 3600 * math.cos(math.radians(_DEC)) ** 2, 0.0],),
    ),
    "ivo_epoch_prop_pos": (
        "SELECT ivo_epoch_prop_pos(10, 0, 0, 0, 3600, 0, 2000, 2100)",
        ([10.0, _DEC],),
    ),
    # ESO's (their values: tests/integration/test_adql21_pg.py)
    "ESO_INTERSECTION": (
        "SELECT ESO_INTERSECTION(CIRCLE(0, 0, 1), CIRCLE(10, 0, 1)),"
        " ESO_INTERSECTION(CIRCLE(0, 0, 1), CIRCLE(x, 0, 1)) FROM tst.t WHERE a = 3",
        (0.0, None),
    ),
    "eso_dateadd_sec": (
        "SELECT eso_dateadd_sec(-360, '2019-06-06T09:55:27')",
        (datetime(2019, 6, 6, 9, 49, 27),),
    ),
}


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup(sql=SETUP)


def _advertised() -> set[str]:
    root = etree.fromstring(
        capabilities_document(
            "http://localhost/tap",
            upload_limit_bytes=1,
            max_rec_default=1,
            max_rec_hard=1,
            retention_default_s=1,
            retention_hard_s=1,
            execution_default_s=1,
            execution_hard_s=1,
        )
    )
    forms = root.xpath("//*[local-name()='languageFeatures']/feature/form/text()")
    return {str(f).partition("(")[0] for f in forms}


def test_every_advertised_form_has_a_checked_query() -> None:
    assert _advertised() == set(CHECKS)


def _approx(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        pytest.approx(v, rel=1e-9, abs=1e-9) if isinstance(v, float | list) else v
        for v in row
    )


@pytest.mark.parametrize("form", sorted(CHECKS))
async def test_advertised_form_gives_the_right_value(
    conn: asyncpg.Connection, form: str
) -> None:
    adql, expected = CHECKS[form]
    row = await conn.fetchrow(translate(adql, CATALOG).sql)
    assert row is not None
    assert tuple(row) == _approx(expected)
