"""Uploads read as they stream give what the whole-table parse gave: the same
column types, values, NULLs, strings and char columns for TABLEDATA, BINARY and
BINARY2 (numeric tables as binary COPY, others as records); truncated or broken
documents are usage errors; the size limits hold with the same messages; and a
crossmatch of an upload with DISTANCE uses the table's spatial index."""

from __future__ import annotations

import base64
import io
import math
import re
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest
from astropy.io.votable import from_table, parse  # type: ignore[import-untyped]
from astropy.table import MaskedColumn, Table  # type: ignore[import-untyped]
from testkit import DbSetup
from uploadkit import MB, ODD, physical, run_adql, temp_tables, votable, write_parts

from taprunner.adql.translate import translate
from taprunner.errors import TapUsageError
from taprunner.query.uploadlimits import UploadLimits, check_upload
from taprunner.query.uploadparse import parse_votable
from taprunner.query.uploads import UploadCatalog, _check_expanded, load_uploads
from taprunner.query.uploadstream import open_upload
from taprunner.request import Upload, parse_uploads
from taprunner.schema.catalog import TapCatalog
from taprunner.settings import TapSettings

DEFAULTS = UploadLimits.of(TapSettings())
#: 3,000 stars spread over the sky, their positions indexed as demo.stars' are.
CATALOGUE = DbSetup(
    tap_schema=True,
    sql="""
        CREATE SCHEMA tst;
        CREATE TABLE tst.cat AS SELECT i::bigint AS id,
            (i * 137.50776405) % 360 AS ra,
            degrees(asin(2 * ((i * 0.6180339887) % 1) - 1)) AS dec
            FROM generate_series(1, 3000) AS i;
        CREATE INDEX cat_pos_idx ON tst.cat USING gist
            (spoint(radians(ra), radians(dec)));
        ANALYZE tst.cat;
    """,
    published={"tst.cat": None},
)
SERIALISATIONS = ("tabledata", "binary", "binary2")


@pytest.fixture
def db_setup() -> DbSetup:
    return CATALOGUE


def numbers(rows: int = 50) -> Table:
    """Every numeric scalar type, with NULLs (masked values, NaN)."""
    i = np.arange(rows)
    masked = i % 7 == 3
    return Table(
        {
            "id": MaskedColumn(i.astype(np.int64), mask=masked),
            "ra": np.where(i % 5 == 2, np.nan, i * 1.25),
            "dec": MaskedColumn(i * -0.5, mask=i % 11 == 4),
            "small": MaskedColumn(i.astype(np.int16), mask=masked),
            "tiny": i.astype(np.uint8),
            "int": MaskedColumn((i * 1000).astype(np.int32), mask=i % 3 == 0),
            "f": np.where(i % 4 == 1, np.nan, i / 3).astype(np.float32),
        }
    )


def numbers_document(serialisation: str) -> bytes:
    """:func:`numbers` as a VOTable, its integers given VALUES null (BINARY
    needs one for a masked integer)."""
    document = from_table(numbers())
    for field in document.get_first_table().fields:
        if field.datatype in ("short", "int", "long"):
            field.values.null = -99
    out = io.BytesIO()
    document.to_xml(out, tabledata_format=serialisation)
    return out.getvalue()


def odd(serialisation: str) -> bytes:
    """The upload tests' ODD document (strings, booleans, arrays, timestamps),
    its integers given VALUES null (which BINARY needs)."""
    text = ODD
    for name in ("Id", "big", "small", "triple"):
        text = re.sub(
            f'(<FIELD name="{name}"[^/]*)/>', r'\1><VALUES null="-99"/></FIELD>', text
        )
    table = parse(io.BytesIO(text.encode()))
    out = io.BytesIO()
    table.to_xml(out, tabledata_format=serialisation)
    return out.getvalue()


def _same(value: Any) -> Any:
    """A value as compared: NaN marked (NaN != NaN), arrays as lists."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, list):
        return [_same(v) for v in value]
    return value


async def _loaded(
    conn: asyncpg.Connection, catalog: TapCatalog, path: Path, **limits: Any
) -> tuple[list[tuple[Any, ...]], list[str], dict[str, Any]]:
    """Rows, column types and column infos of ``path`` uploaded as ``t``."""
    async with load_uploads(
        conn, [Upload("t", "param:t")], {"t": path}, catalog, max_bytes=64 * MB
    ) as full:
        assert isinstance(full, UploadCatalog)
        table = physical(full, "t")
        rows = [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table}")]
        types = [
            r[0]
            for r in await conn.fetch(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = $1::regclass AND attnum > 0 ORDER BY attnum",
                table,
            )
        ]
        infos = {
            c: full.column_info("tap_upload.t", c)
            for c in full.uploads["tap_upload.t"].columns
        }
    return rows, types, infos


@pytest.mark.parametrize("serialisation", SERIALISATIONS)
@pytest.mark.parametrize("document", ["numbers", "odd"])
async def test_streamed_uploads_load_what_the_whole_table_parse_gave(
    conn: asyncpg.Connection,
    catalog: TapCatalog,
    tmp_path: Path,
    document: str,
    serialisation: str,
) -> None:
    data = (
        numbers_document(serialisation) if document == "numbers" else odd(serialisation)
    )
    path = write_parts(tmp_path, t=data)["t"]
    stream = open_upload("t", path, 10**6, DEFAULTS)
    assert stream is not None
    # numeric BINARY and BINARY2 go as binary COPY (numpy), the rest as records
    assert stream.binary_copy == (
        document == "numbers" and serialisation != "tabledata"
    )
    reference = parse_votable("t", data, 10**6)
    rows, types, infos = await _loaded(conn, catalog, path)
    assert types == [
        t.replace("timestamptz", "timestamp with time zone")
        for t in reference.sql_types
    ]
    assert [tuple(map(_same, r)) for r in rows] == [
        tuple(map(_same, r)) for r in reference.records
    ]
    kept = {c for c, k in zip(reference.columns, reference.kept_char, strict=True) if k}
    assert {c for c, info in infos.items() if info is not None} == kept
    assert rows and await temp_tables(conn) == []


async def test_a_large_numeric_upload_round_trips(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    """Several COPY blocks (1 MiB of rows each), NULLs in some blocks only."""
    rows = 120_000
    ids = np.arange(rows, dtype=np.int64)
    table = Table(
        {
            "id": MaskedColumn(ids, mask=ids % 50_000 == 7),
            "ra": ids * 1e-3,
            "dec": np.where(ids > 100_000, np.nan, -ids * 1e-4),
        }
    )
    path = write_parts(tmp_path, t=votable(table, "binary2"))["t"]
    async with load_uploads(
        conn, [Upload("t", "param:t")], {"t": path}, catalog, max_bytes=64 * MB
    ) as full:
        name = physical(full, "t")
        summary = await conn.fetchrow(
            f"SELECT count(*), count(id), sum(id), count(dec), max(ra) FROM {name}"
        )
    assert tuple(summary) == (rows, rows - 3, int(ids.sum()) - (7 + 50_007 + 100_007),
                              100_001, (rows - 1) * 1e-3)  # fmt: skip


BROKEN = (
    "ends inside the STREAM",
    "ends inside the row",
    "not base64",
    "markup inside",
    "no XML",
    "ends in the FIELDs",
)


def _truncations(data: bytes) -> dict[str, bytes]:
    """Ways a BINARY2 document can be broken."""
    text = data.decode()
    start = text.index("<STREAM")
    start = text.index(">", start) + 1
    end = text.index("</STREAM>")
    stream = base64.b64decode(text[start:end])
    cut_row = base64.b64encode(stream[:-5]).decode()
    return {
        "ends inside the STREAM": data[: len(data) // 2],
        "ends inside the row": (text[:start] + cut_row + text[end:]).encode(),
        "not base64": (text[:start] + "@@@@" + text[start:]).encode(),
        "markup inside": (text[:start] + "<!-- x -->" + text[start:]).encode(),
        "no XML": b"\x00\x01 not a VOTable at all",
        "ends in the FIELDs": data[: text.index("<DATA")],
    }


@pytest.mark.parametrize("case", BROKEN)
@pytest.mark.parametrize("serialisation", ["binary2", "odd"])
async def test_broken_documents_are_usage_errors(
    conn: asyncpg.Connection,
    catalog: TapCatalog,
    tmp_path: Path,
    case: str,
    serialisation: str,
) -> None:
    data = odd("binary2") if serialisation == "odd" else numbers_document("binary2")
    parts = write_parts(tmp_path, t=_truncations(data)[case])
    with pytest.raises(TapUsageError, match="upload 't' is not a valid VOTable"):
        async with load_uploads(
            conn, parse_uploads("t,param:t"), parts, catalog, max_bytes=MB
        ):
            raise AssertionError("not reached")
    assert await temp_tables(conn) == []
    assert await conn.fetchval("SELECT 1") == 1  # the connection still works


async def test_truncated_tabledata_is_a_usage_error(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    data = votable(numbers(), "tabledata")
    parts = write_parts(tmp_path, t=data[: data.index(b"<TR>", len(data) // 2) + 9])
    with pytest.raises(TapUsageError, match="upload 't' is not a valid VOTable"):
        async with load_uploads(
            conn, parse_uploads("t,param:t"), parts, catalog, max_bytes=MB
        ):
            raise AssertionError("not reached")
    assert await temp_tables(conn) == []


@pytest.mark.parametrize("serialisation", SERIALISATIONS)
async def test_limits_hold_with_the_messages_of_the_check_before_parsing(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path, serialisation: str
) -> None:
    table = Table({"a": np.arange(500, dtype=np.int32), "b": np.ones(500)})
    data = votable(table, serialisation)
    parts = write_parts(tmp_path, t=data)
    for limits in (UploadLimits(1000, 999, 10**6), UploadLimits(1000, 10**6, 5999)):
        with pytest.raises(TapUsageError) as before:
            check_upload("t", data, limits)
        with pytest.raises(TapUsageError) as streamed:
            async with load_uploads(
                conn, parse_uploads("t,param:t"), parts, catalog,
                max_bytes=MB, limits=limits,
            ):  # fmt: skip
                raise AssertionError("not reached")
        assert str(streamed.value) == str(before.value)
        assert re.search(r"\(tap_upload_(cells|data_bytes)\)$", str(streamed.value))
    with pytest.raises(TapUsageError, match="has 500 rows, more than the limit of 10$"):
        async with load_uploads(
            conn, parse_uploads("t,param:t"), parts, catalog, max_bytes=MB, max_rows=10
        ):
            raise AssertionError("not reached")
    with pytest.raises(TapUsageError, match="larger than the limit of 100 bytes"):
        async with load_uploads(
            conn, parse_uploads("t,param:t"), parts, catalog, max_bytes=100
        ):
            raise AssertionError("not reached")
    async with load_uploads(
        conn, parse_uploads("t,param:t"), parts, catalog, max_bytes=MB,
        limits=UploadLimits(1000, 1000, 6000), max_rows=500,
    ) as full:  # fmt: skip
        assert await conn.fetchval(f"SELECT count(*) FROM {physical(full, 't')}") == 500
    assert await temp_tables(conn) == []


async def test_a_declared_value_too_large_is_refused_before_any_row(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    hostile = (
        b'<?xml version="1.0"?><VOTABLE version="1.4" '
        b'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
        b'<FIELD name="a" datatype="double" arraysize="5000000"/>'
        b"<DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE>"
        b"</RESOURCE></VOTABLE>"
    )
    path = write_parts(tmp_path, t=hostile)["t"]
    with pytest.raises(TapUsageError) as caught:
        open_upload("t", path, 10, DEFAULTS)
    assert str(caught.value) == (
        "upload 't': FIELD 'a' declares values of 40000000 bytes, more than the"
        " limit of 4194304 (tap_value_bytes)"
    )


def _targets(rows: int) -> bytes:
    """Upload rows near catalogue stars 1..rows (0.2 arcsec off), BINARY2."""
    i = np.arange(1, rows + 1)
    ra = (i * 137.50776405) % 360
    dec = np.degrees(np.arcsin(2 * ((i * 0.6180339887) % 1) - 1))
    offset = 0.2 / 3600
    return votable(
        Table({"uid": i.astype(np.int64), "ra": ra, "dec": dec + offset}), "binary2"
    )


async def test_a_crossmatch_with_an_upload_uses_the_spatial_index(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    parts = write_parts(tmp_path, u=_targets(500))
    crossmatch = (
        "SELECT u.uid, s.id FROM TAP_UPLOAD.u AS u JOIN tst.cat AS s"
        " ON DISTANCE(POINT(u.ra, u.dec), POINT(s.ra, s.dec)) < 1.0 / 3600"
    )
    async with load_uploads(
        conn, parse_uploads("u,param:u"), parts, catalog, max_bytes=MB
    ) as full:
        sql = translate(crossmatch, full).sql
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}"))
        matched = await run_adql(
            conn, full, crossmatch.replace("SELECT", "SELECT TOP 1000")
        )
        by_id = await run_adql(
            conn,
            full,
            "SELECT COUNT(*) AS n FROM TAP_UPLOAD.u AS u"
            " JOIN tst.cat AS s ON s.id = u.uid",
        )
    assert "cat_pos_idx" in plan, plan
    assert sorted((int(a), int(b)) for a, b in matched) == [
        (i, i) for i in range(1, 501)
    ]
    assert int(by_id["n"][0]) == 500


#: Fixed-size chars and unicodeChars, a single char, bytes, geometry xtypes.
FIXED = """<?xml version="1.0" encoding="utf-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE type="results"><TABLE>
<FIELD name="code" datatype="char" arraysize="6"/>
<FIELD name="letter" datatype="char"/>
<FIELD name="wide" datatype="unicodeChar" arraysize="4"/>
<FIELD name="b" datatype="unsignedByte"><VALUES null="255"/></FIELD>
<FIELD name="pos" datatype="double" arraysize="2" xtype="point"/>
<FIELD name="cone" datatype="double" arraysize="3" xtype="circle"/>
<FIELD name="area" datatype="double" arraysize="*" xtype="polygon"/>
<DATA><TABLEDATA>
{rows}</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>
"""
FIXED_ROWS = """<TR><TD>ab</TD><TD>x</TD><TD>Zoë</TD><TD>7</TD><TD>10 20</TD>
<TD>10 20 0.5</TD><TD>1 1 2 1 2 2</TD></TR>
<TR><TD></TD><TD></TD><TD></TD><TD>255</TD><TD></TD><TD></TD><TD></TD></TR>
<TR><TD>abcdef</TD><TD>y</TD><TD>東京</TD><TD>0</TD><TD>359.5 -89.5</TD>
<TD>0 0 1</TD><TD>10 10 11 10 11 11 10 11</TD></TR>
"""


def fixed(serialisation: str, rows: str) -> bytes:
    table = parse(io.BytesIO(FIXED.format(rows=rows).encode()))
    out = io.BytesIO()
    table.to_xml(out, tabledata_format=serialisation)
    return out.getvalue()


@pytest.mark.parametrize("serialisation", SERIALISATIONS)
@pytest.mark.parametrize("rows", ["some", "none"])
async def test_fixed_chars_geometry_and_no_rows_as_the_whole_table_parse(
    conn: asyncpg.Connection,
    catalog: TapCatalog,
    tmp_path: Path,
    serialisation: str,
    rows: str,
) -> None:
    data = fixed(serialisation, FIXED_ROWS if rows == "some" else "")
    path = write_parts(tmp_path, t=data)["t"]
    reference = parse_votable("t", data, 10**6)
    loaded, types, infos = await _loaded(conn, catalog, path)
    assert types[4:] == ["spoint", "scircle", "spoly"]
    assert types[:4] == [
        t.replace("timestamptz", "timestamp with time zone")
        for t in reference.sql_types[:4]
    ]
    assert len(loaded) == len(reference.records) == (3 if rows == "some" else 0)
    kept = {c for c, k in zip(reference.columns, reference.kept_char, strict=True) if k}
    assert {
        c for c, i in infos.items() if i is not None and i.datatype == "char"
    } >= kept
    if rows == "some":
        assert [tuple(map(_same, r[:4])) for r in loaded] == [
            tuple(map(_same, r[:4])) for r in reference.records
        ]
        assert loaded[1][4:] == (None, None, None)
    assert await temp_tables(conn) == []


@pytest.mark.parametrize("compress", ["gzip", "bz2", "lzma"])
async def test_a_compressed_upload_is_held_to_the_byte_limit_once_expanded(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path, compress: str
) -> None:
    # The readers (astropy's) expand gzip, bzip2 and xz documents: a few KB on
    # the wire would otherwise be any number of bytes in memory (one "*" value).
    import bz2
    import gzip
    import lzma

    value = "x" * (2 * MB)
    data = (
        '<?xml version="1.0"?><VOTABLE version="1.4"'
        ' xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
        '<FIELD name="s" datatype="char" arraysize="*"/><DATA><TABLEDATA>'
        f"<TR><TD>{value}</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
    ).encode()
    packed = {"gzip": gzip, "bz2": bz2, "lzma": lzma}[compress].compress(data)
    assert len(packed) < MB // 8
    parts = write_parts(tmp_path, t=packed)
    with pytest.raises(TapUsageError, match=f"larger than the limit of {MB} bytes"):
        async with load_uploads(
            conn, parse_uploads("t,param:t"), parts, catalog, max_bytes=MB
        ):
            raise AssertionError("not reached")
    # within the limit once expanded, it loads as before
    async with load_uploads(
        conn, parse_uploads("t,param:t"), parts, catalog, max_bytes=4 * MB
    ) as full:
        table = physical(full, "t")
        assert await conn.fetchval(f"SELECT length(s) FROM {table}") == 2 * MB
    assert await temp_tables(conn) == []


@pytest.mark.parametrize(
    "start",
    [b"<?xml", b"BZh not bzip2"],
    ids=["plain", "false-bzip2"],
)
def test_what_the_readers_read_as_it_is_is_not_counted_again(
    tmp_path: Path, start: bytes
) -> None:
    # astropy's get_readable_fileobj says what is compressed (a start that
    # only looks so is read as it is); such a document was bounded on arrival.
    path = tmp_path / "t"
    path.write_bytes(start + b" " * (2 * MB))
    _check_expanded("t", path, MB)  # over the limit, and not refused here
