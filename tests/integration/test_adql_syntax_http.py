"""ADQL syntax errors reach /tap/sync clients as a 400 DALI error document that
says line, column and what was expected, without parser internals."""

from __future__ import annotations

from adqlsyntax import INTERNALS, MALFORMED
from lxml import etree
from testkit import Client


async def test_sync_syntax_errors_are_dali_error_documents(client: Client) -> None:
    for adql, line, column, says in MALFORMED:
        resp = await client.post("/tap/sync", data={"LANG": "ADQL", "QUERY": adql})
        body = await resp.read()
        assert resp.status == 400, (adql, body)
        root = etree.fromstring(body)
        infos = root.iter("{*}INFO")
        status = next(i for i in infos if i.get("name") == "QUERY_STATUS")
        assert status.get("value") == "ERROR"
        message = status.text or ""
        if not adql.strip():  # a TAP parameter error before any parsing
            assert message == "QUERY parameter missing or empty"
            continue
        assert says in message, (adql, message)
        assert f"line {line}, column {column}" in message, (adql, message)
        for word in INTERNALS:
            assert word not in message, (adql, message)


async def test_grammar_violations_are_refused_before_the_database(
    client: Client,
) -> None:
    """Invalid ADQL that PostgreSQL would take (or fail on later) is a 400 with
    the ADQL reason, answered quickly (no query reached the database)."""
    for adql, says in (
        ("SELECT CAST(1 AS FLOAT) FROM tap_schema.tables", "CAST to FLOAT is not"),
        (
            "SELECT a.table_name FROM tap_schema.tables AS a INNER JOIN "
            "tap_schema.tables AS b",
            "expected ON with a condition or USING",
        ),
        (
            "SELECT POINT(1, 2) FROM tap_schema.tables UNION "
            "SELECT CIRCLE(1, 2, 3) FROM tap_schema.tables",
            "is a point on one side and a circle on the other",
        ),
        ("SELECT table_name FROM tap_schema.tables OFFSET -1", "unsigned integer"),
        ("SELECT REGION('Circle ECLIPTIC 1 2 3')", "frame ECLIPTIC is not supported"),
        (
            "SELECT REGION('Union ICRS (Circle 1 2 3 Circle 4 5 6)')",
            "a Union, Intersection or Not has no value to give",
        ),
        ("SELECT REGION('Polygon 1 2 3 4')", "three vertices or more"),
        ("SELECT REGION('Circle 1 2 nan')", "not a finite number"),
        ("SELECT REGION(table_name) FROM tap_schema.tables", "one string literal"),
    ):
        resp = await client.post("/tap/sync", data={"LANG": "ADQL", "QUERY": adql})
        body = await resp.read()
        assert resp.status == 400, (adql, body)
        status = next(
            i
            for i in etree.fromstring(body).iter("{*}INFO")
            if i.get("name") == "QUERY_STATUS"
        )
        assert status.get("value") == "ERROR"
        assert says in (status.text or ""), (adql, status.text)


async def test_postgresql_casts_and_limit_do_not_pass_for_adql(client: Client) -> None:
    """PostgreSQL's ``x::type`` cast, LIMIT, and a CAST spelt as the delimited
    identifier "CAST" went through the translator untouched by the ADQL checks
    (CAST to FLOAT refused, ``ra::float`` and ``"CAST"(ra AS FLOAT)`` answered);
    a valid query with '::' in a string and a column "cast" still runs."""
    table = "FROM tap_schema.tables"
    for adql, says in (
        (f"SELECT table_index::float {table}", "'::'"),
        (f"SELECT table_index::integer {table}", "'::'"),
        (f"SELECT table_name {table} LIMIT 2", "LIMIT"),
        (f'SELECT "CAST"(table_index AS FLOAT) {table}', "CAST to FLOAT is not"),
    ):
        resp = await client.post("/tap/sync", data={"LANG": "ADQL", "QUERY": adql})
        body = await resp.read()
        assert resp.status == 400, (adql, body)
        status = next(
            i
            for i in etree.fromstring(body).iter("{*}INFO")
            if i.get("name") == "QUERY_STATUS"
        )
        assert says in (status.text or ""), (adql, status.text)
    valid = f"SELECT TOP 1 'a::b' AS x, table_name AS \"cast\" {table}"
    resp = await client.post(
        "/tap/sync", data={"LANG": "ADQL", "QUERY": valid, "FORMAT": "csv"}
    )
    assert resp.status == 200 and (await resp.text()).startswith("x,cast\na::b,")


async def test_meaningless_shape_sizes_are_refused_with_the_reason(
    client: Client,
) -> None:
    """A BOX's width and height must be below 180 degrees (there the sides
    meeting its cross's arm ends coincide; 200 gave a polygon of wrong corners,
    400 the box of 40, -2 that of 2), a CIRCLE's radius 0 to 90 (pg_sphere's
    error reached the client), a number finite: the reason, before the database.
    The same for a literal CAST to a geometry (a radius of 120 was pg_sphere's
    error; a latitude of 100 silently the point at 80, 180 degrees on)."""
    table = "FROM tap_schema.tables"
    for adql, says in (
        (
            "SELECT BOX(10, 20, 200, 1)",
            "BOX: the width must be at least 0 and below 180",
        ),
        ("SELECT BOX(10, 20, 360, 1)", "the width must be at least 0 and below 180"),
        ("SELECT BOX(10, 20, 400, 1)", "the width must be at least 0 and below 180"),
        ("SELECT BOX(10, 20, -2, 1)", "the width must be at least 0 and below 180"),
        ("SELECT BOX(10, 20, 2, 180)", "the height must be at least 0 and below 180"),
        (
            f"SELECT table_name {table} WHERE"
            " CONTAINS(POINT(10, 20), CIRCLE(10, 20, 100)) = 1",
            "CIRCLE: the radius must be 0 to 90 degrees, not 100",
        ),
        ("SELECT CIRCLE(10, 20, -1)", "the radius must be 0 to 90 degrees"),
        ("SELECT AREA(CIRCLE(10, 20, 200))", "the radius must be 0 to 90 degrees"),
        ("SELECT CIRCLE(10, 20, 1e400)", "CIRCLE: 1e400 is not a finite number"),
        ("SELECT POINT(1e400, 20)", "POINT: 1e400 is not a finite number"),
        (
            "SELECT REGION('Box ICRS 10 20 400 10')",
            "width and height must be below 180",
        ),
        ("SELECT REGION('Box GALACTIC 10 20 1 180')", "must be below 180"),
        ("SELECT REGION('Circle 10 20 100')", "radius must be 0 to 90 degrees"),
        (
            "SELECT AREA(CAST('1 2 120' AS CIRCLE))",
            "CAST to CIRCLE: the radius must be 0 to 90 degrees, not 120",
        ),
        ("SELECT CAST('1 2 -1' AS CIRCLE)", "the radius must be 0 to 90 degrees"),
        (
            "SELECT CAST('1 100' AS POINT)",
            "CAST to POINT: the latitude must be -90 to 90 degrees, not 100",
        ),
        (
            "SELECT CAST('1 -95 1' AS CIRCLE)",
            "CAST to CIRCLE: the latitude must be -90 to 90 degrees, not -95",
        ),
        (
            "SELECT CAST('1 2 3 4 5 91' AS POLYGON)",
            "CAST to POLYGON: the latitude must be -90 to 90 degrees, not 91",
        ),
    ):
        resp = await client.post("/tap/sync", data={"LANG": "ADQL", "QUERY": adql})
        body = await resp.read()
        assert resp.status == 400, (adql, body)
        status = next(
            i
            for i in etree.fromstring(body).iter("{*}INFO")
            if i.get("name") == "QUERY_STATUS"
        )
        assert status.get("value") == "ERROR"
        assert says in (status.text or ""), (adql, status.text)
        assert "pg_sphere" not in (status.text or "")
