"""ADQL → PostgreSQL translation, checked on the SQL text and the metadata."""

from __future__ import annotations

import pytest

from taprunner.adql.functions import USER_DEFINED_FUNCTIONS
from taprunner.adql.model import AdqlError, OutputColumn, StaticCatalog
from taprunner.adql.parse import parse_statement
from taprunner.adql.translate import translate

CATALOG = StaticCatalog(
    {
        "gaia.src": ["id", "ra", "dec", "mag", "name", "Weird Col"],
        "tap_schema.tables": ["schema_name", "table_name", "description"],
        "tap_upload.mine": ["id", "x"],
        "plain": ["id", "v"],
    }
)

CONE = (
    "spoint(radians(ra), radians(dec)) <@ "
    "scircle(spoint(radians(10), radians(20)), radians(1))"
)

# (ADQL, substrings the SQL must contain)
# fmt: off
ACCEPTED: list[tuple[str, list[str]]] = [
    ("SELECT ra FROM gaia.src", ["SELECT ra AS ra FROM gaia.src"]),
    ("select RA, Gaia.Src.DEC from GAIA.SRC", ["ra AS ra, gaia.src.dec AS dec"]),
    ('SELECT "Weird Col" FROM gaia.src', ['"Weird Col" AS "Weird Col"']),
    ("SELECT s.ra FROM gaia.src AS s", ["s.ra AS ra FROM gaia.src AS s"]),
    ("SELECT table_name FROM TAP_SCHEMA.tables", ["FROM tap_schema.tables"]),
    ("SELECT x FROM TAP_UPLOAD.mine", ["FROM tap_upload.mine"]),
    ("SELECT v FROM plain", ["FROM plain"]),
    ("SELECT * FROM plain", ["SELECT plain.id AS id, plain.v AS v FROM plain"]),
    ("SELECT 'it''s' AS s", ["'it''s' AS s"]),
    ("SELECT 'back\\slash'", ["E'back\\\\slash'"]),
    ("SELECT 'Zoë ☃'", ["'Zoë ☃'"]),
    ("SELECT ra -- a comment; DROP TABLE x\nFROM gaia.src /* c */", ["FROM gaia.src"]),
    ("SELECT id FROM gaia.src WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
     "CIRCLE('ICRS', 10, 20, 1))", [f"WHERE ({CONE})"]),
    ("SELECT id FROM gaia.src WHERE CONTAINS(POINT(ra, dec), CIRCLE(10, 20, 1))"
     " = 1", [f"WHERE ({CONE})"]),
    ("SELECT id FROM gaia.src WHERE CONTAINS(POINT(ra, dec), "
     "CIRCLE(POINT(10, 20), 1)) = 0", [f"WHERE (NOT ({CONE}))"]),
    ("SELECT CONTAINS(POINT(ra, dec), CIRCLE(10, 20, 1)) FROM gaia.src",
     [f"CAST(({CONE}) AS integer) AS contains"]),
    ("SELECT id FROM gaia.src WHERE 1 = INTERSECTS(CIRCLE(10, 20, 1), "
     "POINT(ra, dec))", [f"WHERE ({CONE})"]),
    ("SELECT INTERSECTS(CIRCLE(0, 0, 1), CIRCLE(1, 1, 1))", [" && "]),
    ("SELECT DISTANCE(POINT(ra, dec), POINT(1, 2)) FROM gaia.src",
     ["degrees(spoint(radians(ra), radians(dec)) <-> spoint(radians(1), "
      "radians(2))) AS distance"]),
    ("SELECT DISTANCE(ra, dec, 1, 2) FROM gaia.src", [" <-> "]),
    ("SELECT AREA(CIRCLE(1, 2, 3))", ["degrees(degrees(area(scircle("]),
    ("SELECT COORD1(POINT(1, 2)), COORD2(POINT(1, 2)), COORDSYS(POINT(1, 2))",
     ["degrees(long(spoint(", "degrees(lat(spoint(", "'ICRS' AS coordsys"]),
    ("SELECT POLYGON('ICRS', 1, 2, 3, 4, 5, 6)",
     ["CAST(ARRAY[1, 2, 3, 4, 5, 6] AS double precision[]) AS polygon"]),
    ("SELECT 1 FROM gaia.src WHERE 1 = CONTAINS(POINT(ra, dec), "
     "POLYGON(POINT(1, 2), POINT(3, 4), POINT(5, 6)))",
     ["spoly(v.p ORDER BY v.n)", "(0, spoint(radians(1), radians(2)))"]),
    ("SELECT ROUND(mag, 2), TRUNCATE(mag, 1) FROM gaia.src",
     ["CAST(round(CAST(CAST(mag AS double precision) AS numeric), CAST(2 AS "
      "integer)) AS double precision)",
      "CAST(trunc(CAST(CAST(mag AS double precision) AS numeric), CAST(1 AS "
      "integer)) AS double precision)"]),
    ("SELECT LOG(mag), LOG10(mag), CEILING(mag), RAND() FROM gaia.src",
     ["ln(mag)", "log(mag)", "ceiling(mag)", "random()"]),
    ("SELECT MOD(id, 3) FROM gaia.src", ["mod(CAST(id AS numeric), CAST(3 AS"]),
    ("SELECT COUNT(*), COUNT(DISTINCT name), AVG(mag) FROM gaia.src",
     ["count(*) AS count", "count(DISTINCT name) AS count_2", "avg(mag) AS avg"]),
    ("SELECT ivo_hasword(name, 'x') FROM gaia.src", ["to_tsvector('simple', name)"]),
    ("SELECT ivo_nocasematch(name, 'a%') FROM gaia.src",
     ["CAST((name ILIKE 'a%') AS integer) AS ivo_nocasematch"]),
    ("SELECT CAST(mag AS INTEGER), CAST(id AS VARCHAR(8)), CAST(id AS REAL), "
     "CAST(id AS DOUBLE PRECISION), CAST('2020-01-01' AS TIMESTAMP) FROM gaia.src",
     ["CAST(mag AS integer)", "CAST(id AS varchar(8))", "CAST(id AS real)",
      "CAST(id AS double precision)", "AS timestamp)"]),
    ("SELECT name FROM gaia.src WHERE name ILIKE 'a%' AND name NOT LIKE '%b'",
     ["(name ILIKE 'a%')", "(name NOT LIKE '%b')"]),
    ("SELECT id FROM gaia.src WHERE mag BETWEEN 1 AND 2 OR id NOT IN (1, 2)",
     ["(mag BETWEEN 1 AND 2)", "(NOT (id IN (1, 2)))"]),
    ("SELECT CASE WHEN mag > 1 THEN 'a' ELSE 'b' END FROM gaia.src",
     ["(CASE WHEN (mag > 1) THEN 'a' ELSE 'b' END) AS col_1"]),
    ("SELECT COALESCE(name, 'none') FROM gaia.src", ["coalesce(name, 'none')"]),
    ("SELECT LOWER(name) || UPPER(name) FROM gaia.src", ["(lower(name) || upper"]),
    ("SELECT DISTINCT name FROM gaia.src", ["SELECT DISTINCT name"]),
    ("SELECT name, COUNT(*) AS n FROM gaia.src GROUP BY name HAVING COUNT(*) > 1 "
     "ORDER BY n DESC", ["GROUP BY name HAVING (count(*) > 1) ORDER BY n DESC"]),
    ("SELECT ra AS x FROM gaia.src ORDER BY x, 1 DESC", ["ORDER BY x, 1 DESC"]),
    ("SELECT id FROM gaia.src ORDER BY id OFFSET 10", ["ORDER BY id OFFSET 10"]),
    ("SELECT id FROM gaia.src UNION ALL SELECT id FROM plain ORDER BY id",
     ["(SELECT id AS id FROM gaia.src) UNION ALL (SELECT id AS id FROM plain) "
      "ORDER BY id"]),
    ("SELECT id FROM gaia.src INTERSECT SELECT id FROM plain", [") INTERSECT ("]),
    ("SELECT id FROM gaia.src EXCEPT SELECT id FROM plain", [") EXCEPT ("]),
    ("WITH b AS (SELECT id, mag FROM gaia.src WHERE mag < 5) SELECT b.id FROM b",
     ["WITH b (id, mag) AS (SELECT id AS id, mag AS mag FROM gaia.src", "b.id"]),
    ("SELECT id FROM gaia.src WHERE id IN (SELECT id FROM plain)",
     ["(id IN (SELECT id AS id FROM plain))"]),
    ("SELECT s.id FROM gaia.src AS s WHERE EXISTS "
     "(SELECT 1 FROM plain AS p WHERE p.id = s.id)",
     ["(EXISTS (SELECT 1 AS col_1 FROM plain AS p WHERE (p.id = s.id)))"]),
    ("SELECT q.m FROM (SELECT MAX(mag) AS m FROM gaia.src) AS q",
     ["FROM (SELECT max(mag) AS m FROM gaia.src) AS q"]),
    ("SELECT * FROM gaia.src NATURAL JOIN tap_upload.mine",
     ["SELECT id AS id, gaia.src.ra AS ra", "tap_upload.mine.x AS x",
      "NATURAL JOIN tap_upload.mine"]),
    ("SELECT * FROM plain AS a JOIN plain AS b USING (id)",
     ["SELECT id AS id, a.v AS v, b.v AS v_2", "JOIN plain AS b USING (id)"]),
    ("SELECT a.v FROM plain AS a LEFT OUTER JOIN plain AS b ON a.id = b.id "
     "CROSS JOIN gaia.src", ["LEFT OUTER JOIN plain AS b ON (a.id = b.id) CROSS "
                             "JOIN gaia.src"]),
    ("SELECT a.v FROM plain AS a, plain AS b", ["FROM plain AS a, plain AS b"]),
    ("SELECT t.c FROM plain AS t(c, d)", ["FROM plain AS t (c, d)"]),
    ("SELECT (SELECT MAX(v) FROM plain) AS m", ["(SELECT max(v) AS max FROM plain)"]),
    ("SELECT -mag, mag * 2 + 1, mag / 3 FROM gaia.src",
     ["(-mag)", "((mag * 2) + 1)", "(mag / 3)"]),
    ("SELECT 1.5e3, .5", ["1.5e3", "0.5"]),
]
# fmt: on

# (ADQL, substring of the error message)
REJECTED: list[tuple[str, str]] = [
    ("SELECT ra FORM gaia.src", "syntax error at line 1, column 16"),
    ("SELECT ra\nFROM gaia.src WHERE (ra", "line 2"),
    ("SELECT 'open", "unterminated string"),
    ("", "empty"),
    ("SELECT 1; SELECT 2", "single SELECT"),
    ("INSERT INTO plain VALUES (1, 2)", "expected SELECT at the start"),
    ("DELETE FROM plain", "expected SELECT at the start"),
    ("UPDATE plain SET v = 1", "expected SELECT at the start"),
    ("DROP TABLE plain", "expected SELECT at the start"),
    ("CREATE TABLE x (a int)", "expected SELECT at the start"),
    ("SELECT id INTO newtab FROM plain", "SELECT INTO"),
    ("SELECT id FROM plain FOR UPDATE", "locking"),
    ("SELECT nope FROM gaia.src", "unknown column nope"),
    ("SELECT s.nope FROM gaia.src AS s", "unknown column nope in table s"),
    ("SELECT q.ra FROM gaia.src AS s", "unknown table q"),
    ('SELECT "RA" FROM gaia.src', "unknown column RA"),
    ("SELECT ra FROM gaia.unknown", "unknown table gaia.unknown"),
    ("SELECT id FROM pg_catalog.pg_authid", "unknown table"),
    ("SELECT pg_sleep(10)", "unknown function pg_sleep"),
    ("SELECT version()", "unknown function version"),
    ("SELECT current_setting('x')", "unknown function current_setting"),
    ("SELECT set_config('a', 'b', false)", "unknown function set_config"),
    ("SELECT pg_catalog.pg_sleep(1)", "unsupported expression"),
    ("SELECT id FROM plain WHERE id = ANY(ARRAY[1])", "unknown function"),
    ("SELECT POSITION('a' IN name) FROM gaia.src", "unknown function POSITION"),
    ("SELECT SUBSTRING(name FROM 1) FROM gaia.src", "syntax error"),
    ("SELECT EXTRACT(year FROM name) FROM gaia.src", "syntax error"),
    ("SELECT current_date", "unknown column current_date"),
    ("SELECT id::text FROM plain", "unexpected '::': not ADQL"),
    ("SELECT CAST(id AS regclass) FROM plain", "CAST to REGCLASS is not ADQL"),
    ("SELECT CAST(id AS FLOAT) FROM plain", "CAST to FLOAT is not ADQL"),
    ("SELECT CAST(id AS DOUBLE) FROM plain", "CAST to DOUBLE is not ADQL"),
    ("SELECT CAST(id AS INT) FROM plain", "CAST to INT is not ADQL"),
    ("SELECT COUNT(*) OVER () FROM plain", "unsupported expression"),
    ("SELECT id FROM plain WHERE v ~ 'a'", "expected a search condition"),
    ("SELECT id FROM plain WHERE v LIKE 'a' ESCAPE '!'", "expected a search"),
    ("SELECT v ~ 'a' FROM plain", "unsupported expression"),
    (
        "SELECT id FROM gaia.src WHERE CONTAINS(POINT(ra, dec), CIRCLE(10, 20, 1))",
        "write e.g. CONTAINS(...) = 1",
    ),
    ("SELECT id FROM plain WHERE id", "expected a search condition"),
    ("SELECT 1 WHERE 1 = 1", "expected FROM before WHERE"),
    ("SELECT FROM plain", "expected a select list"),
    ("SELECT _id FROM plain", "starts with a letter"),
    ("SELECT distance FROM plain", "a reserved word of ADQL"),
    ("SELECT id FROM plain OFFSET -1", "unsigned integer after OFFSET"),
    (
        "SELECT x.id FROM (WITH w AS (SELECT id FROM plain) SELECT id FROM w) AS x",
        "WITH may only begin",
    ),
    ("SELECT E'x'", "syntax error"),
    ("SELECT $$x$$", "syntax error"),
    ("SELECT id FROM LATERAL (SELECT 1) AS x", "unsupported FROM item"),
    ("SELECT id FROM (SELECT id FROM plain)", "correlation name"),
    ("WITH RECURSIVE r AS (SELECT 1 AS n) SELECT n FROM r", "RECURSIVE"),
    ("SELECT DISTINCT ON (id) id FROM plain", "ON is not allowed"),
    ("SELECT TOP 2.5 id FROM plain", "TOP"),
    ("SELECT IN_UNIT(mag, 'mag') FROM gaia.src", "IN_UNIT: mag has no known unit"),
    ("SELECT IN_UNIT(ra, 'm') FROM gaia.src", "IN_UNIT: ra has no known unit"),
    ("SELECT REGION('Circle ECLIPTIC 1 2 3')", "frame ECLIPTIC is not supported"),
    ("SELECT REGION('Union ICRS (Circle 1 2 3)')", "two regions or more"),
    ("SELECT REGION('NOT (Circle 1 2 3)')", "Not has no value to give"),
    ("SELECT REGION('Not Circle 1 2 3')", "Not needs '('"),
    ("SELECT REGION('Union (Circle 1 2 3 Circle 1 2 4')", "ends too early"),
    ("SELECT REGION('Circle 1 2 3 Circle 1 2 4')", "unexpected 'Circle'"),
    ("SELECT REGION('Ellipse 1 2 3 4 5')", "REGION supports Position"),
    (
        "SELECT CONTAINS(1, REGION('Union (Circle 1 2 3 Circle 1 2 4)'))",
        "CONTAINS expects a geometry, not a number",
    ),
    ("SELECT REGION('Polygon ICRS 1 2 3 4')", "three vertices or more"),
    ("SELECT REGION('Circle ICRS 1 2')", "Circle takes 3 numbers, not 2"),
    ("SELECT REGION('Circle ICRS 1 2 x')", "Circle takes 3 numbers, not 2"),
    ("SELECT REGION('Circle ICRS 1 2 3 unit arcsec')", "unit arcsec"),
    ("SELECT REGION('Circle ICRS 1 2 -3')", "sizes cannot be negative"),
    ("SELECT REGION('Box 1 2 3 -4')", "sizes cannot be negative"),
    ("SELECT REGION('Position 1 91')", "outside [-90, 90]"),
    ("SELECT REGION('Polygon 1 2 3 4 5 -90.5')", "outside [-90, 90]"),
    ("SELECT REGION(v) FROM plain", "written as one string literal"),
    ("SELECT REGION('Circle ICRS 1 2 3', 4)", "written as one string literal"),
    (
        "SELECT POINT(1, 2) FROM plain UNION SELECT CIRCLE(1, 2, 3) FROM plain",
        "a point on one side and a circle on the other",
    ),
    ("SELECT id, v FROM plain EXCEPT SELECT id FROM plain", "have 2 and 1 columns"),
    ("SELECT RAND(3, 4)", "RAND takes 0 to 1"),
    ("SELECT ROUND(1, 2, 3)", "ROUND takes 1 to 2"),
    ("SELECT POINT(1, 2, 3, 4)", "POINT takes 2"),
    ("SELECT POLYGON(1, 2, 3, 4)", "at least three vertices"),
    ("SELECT CONTAINS(1, CIRCLE(1, 2, 3))", "CONTAINS expects a geometry"),
    ("SELECT DISTANCE(CIRCLE(1, 2, 3), POINT(1, 2))", "expects a point"),
    ("SELECT ABS(POINT(1, 2))", "cannot take a point"),
    ("SELECT id FROM plain UNION SELECT id FROM plain ORDER BY v", "output columns"),
    ("SELECT id FROM plain ORDER BY 3", "out of range"),
    ("SELECT *", "select list is empty"),
    ("SELECT id FROM plain WHERE id IN ()", "IN needs"),
    ("SELECT TRUE", "unsupported expression"),
]

# (ADQL, limit, expected LIMIT clause or None)
LIMITS: list[tuple[str, int | None, str | None]] = [
    ("SELECT id FROM plain", None, None),
    ("SELECT id FROM plain", 101, " LIMIT 101"),
    ("SELECT id FROM plain", 0, " LIMIT 0"),
    ("SELECT TOP 5 id FROM plain", None, " LIMIT 5"),
    ("SELECT TOP 5 id FROM plain", 3, " LIMIT 3"),
    ("SELECT TOP 5 id FROM plain", 10, " LIMIT 5"),
    ("SELECT TOP 5 id FROM plain ORDER BY v DESC", 3, " ORDER BY v DESC LIMIT 3"),
    ("SELECT DISTINCT TOP 5 id FROM plain", 9, " LIMIT 5"),
    ("SELECT TOP 5 id FROM plain ORDER BY id OFFSET 2", 4, " LIMIT 4 OFFSET 2"),
    ("SELECT id FROM plain UNION SELECT id FROM plain", 7, ") LIMIT 7"),
]


@pytest.mark.parametrize(("adql", "fragments"), ACCEPTED)
def test_accepted(adql: str, fragments: list[str]) -> None:
    sql = translate(adql, CATALOG).sql
    for fragment in fragments:
        assert fragment in sql


@pytest.mark.parametrize(("adql", "fragments"), ACCEPTED)
def test_a_parsed_statement_is_translated_the_same_and_left_unchanged(
    adql: str, fragments: list[str]
) -> None:
    """The fast lane hands the statement it parsed to the translator, which
    must only read it (the lane keeps no copy, but the test must hold)."""
    statement = parse_statement(adql)
    before = statement.copy()
    given = translate(adql, CATALOG, limit=11, statement=statement)
    assert given == translate(adql, CATALOG, limit=11)
    assert statement == before and statement.sql() == before.sql()


@pytest.mark.parametrize(("adql", "message"), REJECTED)
def test_rejected(adql: str, message: str) -> None:
    with pytest.raises(AdqlError) as caught:
        translate(adql, CATALOG)
    assert message in str(caught.value)


@pytest.mark.parametrize(("adql", "limit", "clause"), LIMITS)
def test_top_and_limit_combine(
    adql: str, limit: int | None, clause: str | None
) -> None:
    sql = translate(adql, CATALOG, limit=limit).sql
    if clause is None:
        assert "LIMIT" not in sql
    else:
        assert clause in sql
        assert sql.count("LIMIT") == 1


def test_syntax_error_carries_position() -> None:
    with pytest.raises(AdqlError) as caught:
        translate("SELECT ra\n  FROM gaia.src WHERE ra >", CATALOG)
    assert caught.value.line == 2
    with pytest.raises(AdqlError) as caught:
        translate("SELECT ra FORM gaia.src", CATALOG)
    assert (caught.value.line, caught.value.column) == (1, 16)
    assert "near 'gaia'" in str(caught.value)


def test_unknown_column_error_carries_position() -> None:
    with pytest.raises(AdqlError) as caught:
        translate("SELECT ra,\n  bogus FROM gaia.src", CATALOG)
    assert (caught.value.line, caught.value.column) == (2, 3)


# (ADQL, expected output columns)
# fmt: off
COLUMNS: list[tuple[str, list[OutputColumn]]] = [
    ("SELECT ra, s.dec AS d, mag * 2 FROM gaia.src AS s", [
        OutputColumn("ra", "gaia.src", "ra", None),
        OutputColumn("d", "gaia.src", "dec", None),
        OutputColumn("col_3", None, None, None),
    ]),
    ("SELECT a.id, b.id, a.id FROM plain AS a JOIN plain AS b ON a.id = b.id", [
        OutputColumn("id", "plain", "id", None),
        OutputColumn("id_2", "plain", "id", None),
        OutputColumn("id_3", "plain", "id", None),
    ]),
    ('SELECT "Weird Col", ra AS "Mixed Case" FROM gaia.src', [
        OutputColumn("Weird Col", "gaia.src", "Weird Col", None),
        OutputColumn("Mixed Case", "gaia.src", "ra", None),
    ]),
    ("SELECT POINT(ra, dec), CIRCLE(ra, dec, 1) AS c, POLYGON(1, 2, 3, 4, 5, 6) "
     "FROM gaia.src", [
        OutputColumn("point", None, None, "point"),
        OutputColumn("c", None, None, "circle"),
        OutputColumn("polygon", None, None, "polygon"),
    ]),
    ("SELECT q.p FROM (SELECT POINT(ra, dec) AS p FROM gaia.src) AS q", [
        OutputColumn("p", None, None, "point"),
    ]),
    ("WITH w AS (SELECT ra FROM gaia.src) SELECT * FROM w", [
        OutputColumn("ra", "gaia.src", "ra", None),
    ]),
    ("SELECT COUNT(*), DISTANCE(POINT(ra, dec), POINT(1, 2)) FROM gaia.src", [
        OutputColumn("count", None, None, None),
        OutputColumn("distance", None, None, None),
    ]),
]
# fmt: on


@pytest.mark.parametrize(("adql", "expected"), COLUMNS)
def test_output_columns(adql: str, expected: list[OutputColumn]) -> None:
    assert list(translate(adql, CATALOG).columns) == expected


def test_geometry_outputs_are_dali_arrays() -> None:
    sql = translate(
        "SELECT POINT(ra, dec), q.c FROM gaia.src, "
        "(SELECT CIRCLE(1, 2, 3) AS c FROM plain) AS q",
        CATALOG,
    ).sql
    # NULL when a coordinate is (never an array of NULLs)
    assert (
        "(CASE WHEN num_nulls(ra, dec) = 0 THEN "
        "CAST(ARRAY[ra, dec] AS double precision[]) END) AS point"
    ) in sql
    assert "CASE WHEN q.c IS NOT NULL THEN ARRAY[" in sql
    # a circle from a subquery is an scircle inside, DALI only at the top
    assert "ARRAY[degrees(long(center(q.c))), degrees(lat(center(q.c)))" in sql
    assert "scircle(spoint(radians(1), radians(2)), radians(3)) AS c" in sql


def test_tables_lists_catalog_tables_but_not_ctes() -> None:
    translation = translate(
        "WITH w AS (SELECT id FROM plain) SELECT w.id FROM w "
        "JOIN tap_upload.mine AS m ON m.id = w.id",
        CATALOG,
    )
    assert translation.tables == frozenset({"plain", "tap_upload.mine"})


def test_user_defined_functions_are_declared() -> None:
    assert [f.name for f in USER_DEFINED_FUNCTIONS] == [
        "ivo_hasword",
        "ivo_nocasematch",
        "ivo_hashlist_has",
        "ivo_interval_overlaps",
        "ivo_string_agg",
        "ivo_healpix_index",
        "ivo_healpix_center",
        "ivo_epoch_prop",
        "ivo_epoch_prop_pos",
        "ESO_INTERSECTION",
        "eso_dateadd_sec",
    ]


def test_negative_limit_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        translate("SELECT id FROM plain", CATALOG, limit=-1)
