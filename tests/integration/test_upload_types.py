"""Uploaded columns keep their FIELDs: char stays char (ASCII values), and DALI
geometry (xtype point, circle, polygon) becomes pg_sphere values that the ADQL
geometry functions take: a crossmatch of an uploaded point list with a table."""

from __future__ import annotations

import io
import math
from pathlib import Path

import asyncpg
import pytest
from aiohttp import FormData
from astropy.io.votable import parse  # type: ignore[import-untyped]
from testkit import Client, DbSetup
from uploadkit import MB, ODD, run_adql, write_parts

from taprunner.errors import TapUsageError
from taprunner.query.execute import run_query
from taprunner.query.uploadparse import parse_votable
from taprunner.query.uploads import load_uploads
from taprunner.request import FORMATS, TapRequest, parse_uploads
from taprunner.schema.catalog import TapCatalog

SOURCES = DbSetup(
    tap_schema=True,
    sql="""
        CREATE SCHEMA tst;
        CREATE TABLE tst.src (id integer PRIMARY KEY, ra double precision,
                              dec double precision);
        INSERT INTO tst.src VALUES (1, 10, 20), (2, 10.5, 20), (3, 12, 20),
                                   (4, 200, -45), (5, 200.2, -45.1);
    """,
    published={"tst.src": None},
)
#: Two targets near sources 1-2 and 4-5, one far from all; a circle and a
#: polygon around source 3.
SHAPES = """<?xml version="1.0" encoding="utf-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE type="results"><TABLE>
<FIELD name="tid" datatype="int"/>
<FIELD name="code" datatype="char" arraysize="8"/>
<FIELD name="pos" datatype="double" arraysize="2" xtype="point" unit="deg"/>
<FIELD name="area" datatype="double" arraysize="3" xtype="circle"/>
<FIELD name="poly" datatype="double" arraysize="*" xtype="polygon"/>
<DATA><TABLEDATA>
<TR><TD>1</TD><TD>A</TD><TD>10.2 20</TD><TD>12 20 0.5</TD>
<TD>11.5 19.5 12.5 19.5 12.5 20.5 11.5 20.5</TD></TR>
<TR><TD>2</TD><TD>B</TD><TD>200.1 -45.05</TD><TD></TD><TD></TD></TR>
<TR><TD>3</TD><TD>C</TD><TD>100 0</TD><TD>0 0 1e-05</TD><TD></TD></TR>
</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>
"""


@pytest.fixture
def db_setup() -> DbSetup:
    return SOURCES


async def _fields(conn: asyncpg.Connection, catalog: object, adql: str) -> dict:
    """The result FIELDs (name -> (datatype, arraysize, xtype)) of ``adql``."""
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    request = TapRequest(query=adql, maxrec=100, format=FORMATS["votable"])
    await run_query(conn, request, catalog, sink, timeout=30)  # type: ignore[arg-type]
    table = parse(io.BytesIO(b"".join(chunks))).get_first_table()
    return {f.name: (f.datatype, f.arraysize, f.xtype) for f in table.fields}


async def test_char_columns_stay_char_where_values_are_ascii(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    parts = write_parts(tmp_path, odd=ODD.encode(), shapes=SHAPES.encode())
    async with load_uploads(
        conn, parse_uploads("odd,param:odd;s,param:shapes"), parts, catalog,
        max_bytes=MB,
    ) as full:  # fmt: skip
        fields = await _fields(
            conn,
            full,
            'SELECT "MixedCase", "näme", "when", code FROM tap_upload.odd, '
            "tap_upload.s WHERE tid = 1",
        )
        values = await run_adql(
            conn, full, 'SELECT "MixedCase" FROM tap_upload.odd ORDER BY "Id"'
        )
    assert fields["MixedCase"][0] == "char"  # declared char, ASCII values
    assert fields["code"][0] == "char"
    assert fields["näme"][0] == "unicodeChar"  # declared unicodeChar
    assert fields["when"] == ("char", "*", "timestamp")
    assert list(values["MixedCase"])[0] == "abc"


async def test_non_ascii_char_column_becomes_unicode_char(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    document = SHAPES.replace("<TD>B</TD>", "<TD>Zoë</TD>")
    parts = write_parts(tmp_path, s=document.encode())
    async with load_uploads(
        conn, parse_uploads("s,param:s"), parts, catalog, max_bytes=MB
    ) as full:
        fields = await _fields(conn, full, "SELECT code FROM tap_upload.s")
        values = await run_adql(conn, full, "SELECT code FROM tap_upload.s")
    assert fields["code"][0] == "unicodeChar"
    assert sorted(values["code"]) == ["A", "C", "Zoë"]


async def test_geometry_columns_are_pg_sphere_values(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    parts = write_parts(tmp_path, s=SHAPES.encode())
    async with load_uploads(
        conn, parse_uploads("s,param:s"), parts, catalog, max_bytes=MB
    ) as full:
        sql_name = full.sql_name("tap_upload.s")  # type: ignore[attr-defined]
        types = await conn.fetch(
            "SELECT attname, format_type(atttypid, atttypmod) AS t FROM pg_attribute"
            " WHERE attrelid = $1::regclass AND attnum > 0 ORDER BY attnum",
            sql_name,
        )
        crossmatch = await run_adql(
            conn,
            full,
            "SELECT t.tid, s.id, DISTANCE(t.pos, POINT('ICRS', s.ra, s.dec)) AS d"
            " FROM tap_upload.s AS t JOIN tst.src AS s"
            " ON 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE(t.pos, 0.5))"
            " ORDER BY t.tid, s.id",
        )
        inside = await run_adql(
            conn,
            full,
            "SELECT t.tid, s.id FROM tap_upload.s AS t, tst.src AS s"
            # AREA is an ADQL function name: as a column it is quoted.
            ' WHERE CONTAINS(POINT(s.ra, s.dec), t."area") = 1'
            " AND INTERSECTS(POINT(s.ra, s.dec), t.poly) = 1",
        )
        shapes = await run_adql(
            conn, full, 'SELECT tid, pos, "area", poly FROM tap_upload.s ORDER BY tid'
        )
        fields = await _fields(conn, full, 'SELECT pos, "area", poly FROM tap_upload.s')
    assert [(r["attname"], r["t"]) for r in types][2:] == [
        ("pos", "spoint"),
        ("area", "scircle"),
        ("poly", "spoly"),
    ]
    got = [(int(r["tid"]), int(r["id"]), float(r["d"])) for r in crossmatch]
    assert [g[:2] for g in got] == [(1, 1), (1, 2), (2, 4), (2, 5)]
    # Great-circle distances, computed independently (haversine).
    for tid, sid, d in got:
        t = {1: (10.2, 20.0), 2: (200.1, -45.05)}[tid]
        s = {1: (10, 20), 2: (10.5, 20), 4: (200, -45), 5: (200.2, -45.1)}[sid]
        assert math.isclose(d, _haversine(t, s), rel_tol=1e-9), (tid, sid)
    assert [tuple(map(int, r)) for r in inside] == [(1, 3)]
    assert list(shapes["pos"][0]) == pytest.approx([10.2, 20.0])
    assert list(shapes["area"][0]) == pytest.approx([12.0, 20.0, 0.5])
    assert list(shapes["area"][2]) == pytest.approx([0.0, 0.0, 1e-05])
    assert list(shapes["poly"][0]) == pytest.approx(
        [11.5, 19.5, 12.5, 19.5, 12.5, 20.5, 11.5, 20.5]
    )
    assert fields == {
        "pos": ("double", "2", "point"),
        "area": ("double", "3", "circle"),
        "poly": ("double", "*", "polygon"),
    }


def _haversine(a: tuple[float, float], b: tuple[float, float]) -> float:
    ra1, dec1, ra2, dec2 = map(math.radians, (*a, *b))
    h = (
        math.sin((dec2 - dec1) / 2) ** 2
        + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2
    )
    return math.degrees(2 * math.asin(math.sqrt(h)))


async def test_a_point_of_the_wrong_size_is_a_usage_error(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    document = SHAPES.replace(
        'arraysize="*" xtype="polygon"', 'arraysize="*" xtype="polygon"'
    ).replace("11.5 19.5 12.5 19.5 12.5 20.5 11.5 20.5", "1 2 3")
    parts = write_parts(tmp_path, s=document.encode())
    with pytest.raises(TapUsageError, match="a polygon of 3 values"):
        async with load_uploads(
            conn, parse_uploads("s,param:s"), parts, catalog, max_bytes=MB
        ):
            pass


async def test_an_empty_upload_with_fixed_size_arrays_is_an_empty_table(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    """An upload of no rows (a client's empty selection) whose FIELDs include a
    fixed-size array, a point or a circle: an empty table of those columns.
    Before: numpy could not reshape the empty array (a 500 over HTTP)."""
    start, end = SHAPES.index("<TR>"), SHAPES.index("</TABLEDATA>")
    parts = write_parts(tmp_path, s=(SHAPES[:start] + SHAPES[end:]).encode())
    async with load_uploads(
        conn, parse_uploads("s,param:s"), parts, catalog, max_bytes=MB
    ) as full:
        fields = await _fields(conn, full, "SELECT * FROM tap_upload.s")
        values = await run_adql(
            conn,
            full,
            "SELECT COUNT(*) AS n FROM tap_upload.s, tst.src"
            " WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(pos, 1))",
        )
    assert fields["pos"] == ("double", "2", "point")
    assert fields["area"] == ("double", "3", "circle")
    assert list(values["n"]) == [0]


@pytest.mark.parametrize(
    ("xtype", "value"),
    [
        ("polygon", "1 2 1 2 1 2"),  # one vertex thrice
        ("polygon", "0 0 180 0 90 0"),  # on one great circle
    ],
)
async def test_a_geometry_pg_sphere_refuses_is_a_400(
    client: Client, xtype: str, value: str
) -> None:
    """pg_sphere refuses these values with its internal-error SQLSTATE (XX000),
    not a data error: the upload was a 500 ("internal error"). (Values out of
    range are refused before: the next test.)"""
    size = {"polygon": "*", "circle": "3"}[xtype]
    document = SHAPES.replace(
        '<FIELD name="poly" datatype="double" arraysize="*" xtype="polygon"/>',
        f'<FIELD name="poly" datatype="double" arraysize="{size}" xtype="{xtype}"/>',
    ).replace("11.5 19.5 12.5 19.5 12.5 20.5 11.5 20.5", value)
    data = FormData()
    data.add_field("LANG", "ADQL")
    data.add_field("QUERY", "SELECT tid, poly FROM TAP_UPLOAD.s")
    data.add_field("RESPONSEFORMAT", "csv")
    data.add_field("UPLOAD", "s,param:s")
    data.add_field("s", document.encode(), filename="s.vot")
    resp = await client.post("/tap/sync", data=data)
    text = await resp.text()
    assert resp.status == 400, (resp.status, text)
    assert "upload 's': a geometry could not be loaded: " in text, text


ROW_2 = "<TR><TD>2</TD><TD>B</TD><TD>200.1 -45.05</TD><TD></TD><TD></TD></TR>"
OUT_OF_RANGE = pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        ("pos", "1 100", "a point's latitude must be -90 to 90 degrees, not 100"),
        ("pos", "1 -90.5", "a point's latitude must be -90 to 90 degrees, not -90.5"),
        ("pos", "Inf 20", "a point of a value not finite (inf)"),
        ("area", "1 95 1", "a circle's latitude must be -90 to 90 degrees, not 95"),
        ("area", "1 2 120", "a circle's radius must be 0 to 90 degrees, not 120"),
        ("area", "1 2 -1", "a circle's radius must be 0 to 90 degrees, not -1"),
        ("area", "1 2 +Inf", "a circle of a value not finite (inf)"),
        (
            "poly",
            "1 2 3 4 5 91",
            "a polygon's latitude must be -90 to 90 degrees, not 91",
        ),
        ("poly", "1 2 3 4 5 6 7 -Inf", "a polygon of a value not finite (-inf)"),
    ],
)


def _with_row_2(column: str, value: str) -> bytes:
    """SHAPES with ``value`` in ``column`` of its row 2."""
    cells = {"pos": "200.1 -45.05", "area": "", "poly": ""} | {column: value}
    row = "".join(f"<TD>{cells[c]}</TD>" for c in ("pos", "area", "poly"))
    return SHAPES.replace(ROW_2, f"<TR><TD>2</TD><TD>B</TD>{row}</TR>").encode()


@OUT_OF_RANGE
async def test_a_geometry_out_of_range_is_a_400_naming_column_and_row(
    client: Client, column: str, value: str, says: str
) -> None:
    """A latitude beyond the poles, a circle's radius out of 0 to 90, an
    infinity: refused, naming the upload, column and row. Before, a point
    "1 100" was loaded as pg_sphere made it, (181, 80), without a word, and
    the others were pg_sphere's messages (no column, no row)."""
    data = FormData()
    data.add_field("LANG", "ADQL")
    data.add_field("QUERY", "SELECT tid FROM TAP_UPLOAD.s")
    data.add_field("RESPONSEFORMAT", "csv")
    data.add_field("UPLOAD", "s,param:s")
    data.add_field("s", _with_row_2(column, value), filename="s.vot")
    resp = await client.post("/tap/sync", data=data)
    text = await resp.text()
    assert resp.status == 400, (resp.status, text)
    assert f"upload 's': column '{column}': row 2: {says}" in text, text


@OUT_OF_RANGE
def test_the_whole_table_parse_refuses_the_same(
    column: str, value: str, says: str
) -> None:
    """The whole-table parse (a VOTable serialised as FITS goes there) checks
    the same, with the same message."""
    with pytest.raises(TapUsageError) as caught:
        parse_votable("s", _with_row_2(column, value), max_rows=10)
    assert f"upload 's': column '{column}': row 2: {says}" in str(caught.value)
