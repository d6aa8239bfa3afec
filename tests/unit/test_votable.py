"""Round trips of the VOTable and CSV/TSV writers through astropy and the XSDs."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import math
import re
import warnings
from typing import Any

import numpy as np
import pytest
from astropy.io.votable import parse
from ivoa_xsd import load_schema
from lxml import etree

from taprunner.formats.fields import FieldSpec, field_for_pg_type
from taprunner.formats.text import DelimitedEncoder
from taprunner.formats.votable import VOTableEncoder, error_document

UTC = dt.UTC

FIELDS = [
    field_for_pg_type("id", "int8"),
    field_for_pg_type("small", "int2"),
    field_for_pg_type("n", "int4"),
    field_for_pg_type("ra", "float8", unit="deg", ucd="pos.eq.ra"),
    field_for_pg_type("mag", "float4"),
    field_for_pg_type("name", "text", description="a <name> & more"),
    field_for_pg_type("flag", "bool"),
    field_for_pg_type("t", "timestamptz"),
    field_for_pg_type("vals", "_float8"),
    FieldSpec("pos", "double", "2", xtype="point"),
    field_for_pg_type("blob", "bytea"),
]
ROWS: list[tuple[Any, ...]] = [
    (
        2**63 - 1,
        32767,
        7,
        10.5,
        1.25,
        "héllo wörld 😀 ☃",
        True,
        dt.datetime(2021, 3, 4, 5, 6, 7, 500000, tzinfo=UTC),
        [1.0, 2.5],
        (10.0, -20.0),
        b"\x00\xff",
    ),
    (None, None, None, None, None, None, None, None, None, None, None),
    (
        -(2**63) + 1,
        -32767,
        -7,
        math.nan,
        math.inf,
        "",
        False,
        dt.datetime(2000, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        [],
        (0.0, 90.0),
        b"",
    ),
    (
        123,
        0,
        0,
        -math.inf,
        -0.5,
        'a<b>&"c"\r\n\td\'',
        None,
        dt.datetime(1999, 12, 31, 23, 59, 59, 1),
        [math.nan, -1e300],
        None,
        None,
    ),
]
EXPECTED_T = [
    "2021-03-04T05:06:07.500000",
    None,
    "1999-12-31T22:00:00",
    "1999-12-31T23:59:59.000001",
]


def _document(serialization: str, rows: list[tuple[Any, ...]], **kw: Any) -> bytes:
    overflow = kw.pop("overflow", False)
    encoder = VOTableEncoder(
        FIELDS,
        serialization=serialization,  # type: ignore[arg-type]
        infos=[("QUERY", "SELECT 1 < 2", None)],
        **kw,
    )
    parts = [encoder.header()]
    parts += [encoder.encode(rows[i : i + 2]) for i in range(0, len(rows), 2)]
    parts.append(encoder.footer(overflow=overflow))
    return b"".join(parts)


def _read(doc: bytes) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # astropy must not complain about anything
        return parse(io.BytesIO(doc)).get_first_table().array


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and math.isnan(want):
        return bool(np.isnan(got))
    return bool(got == want)


@pytest.mark.parametrize("serialization", ["binary2", "binary", "tabledata"])
def test_round_trip_through_astropy(serialization: str) -> None:
    array = _read(_document(serialization, ROWS))
    assert len(array) == len(ROWS)
    for i, row in enumerate(ROWS):
        for j, name in enumerate(["id", "small", "n", "ra", "mag", "flag"]):
            value = row[[0, 1, 2, 3, 4, 6][j]]
            if value is None:
                assert array[name].mask[i], (name, i)
            else:
                assert _same(array[name].data[i], value), (name, i)
        assert array["name"].data[i] == (row[5] or "")
        assert (array["t"].data[i] or None) == EXPECTED_T[i]
        vals = np.ma.getdata(array["vals"].data[i])
        want = row[8] or []
        assert len(vals) == len(want)
        assert all(_same(g, w) for g, w in zip(vals, want, strict=True))
        pos = array["pos"]
        if row[9] is None:
            assert pos.mask[i].all()
        else:
            assert list(pos.data[i]) == list(row[9])
        assert [int(b) for b in array["blob"].data[i]] == list(row[10] or b"")


def _stream_bytes(doc: bytes) -> bytes:
    text = re.search(rb"<STREAM encoding=\"base64\">(.*)</STREAM>", doc, re.S)
    assert text is not None
    return base64.b64decode(text.group(1))


def test_binary2_null_mask_distinguishes_null_from_empty() -> None:
    # astropy ignores the BINARY2 flags of string columns, so read them directly.
    fields = [field_for_pg_type("s", "text"), field_for_pg_type("x", "float8")]
    encoder = VOTableEncoder(fields)
    doc = encoder.header() + encoder.encode([(None, 1.0)]) + encoder.footer()
    raw = _stream_bytes(doc)
    assert raw == b"\x80" + b"\x00\x00\x00\x00" + b"\x3f\xf0" + b"\x00" * 6
    encoder = VOTableEncoder(fields)
    raw = _stream_bytes(
        encoder.header() + encoder.encode([("", None)]) + encoder.footer()
    )
    assert raw == b"\x40" + b"\x00\x00\x00\x00" + b"\x7f\xf8" + b"\x00" * 6


def test_mask_spans_several_bytes() -> None:
    fields = [field_for_pg_type(f"c{i}", "int2") for i in range(9)]
    encoder = VOTableEncoder(fields)
    row = (None, 1, 1, 1, 1, 1, 1, 1, None)
    raw = _stream_bytes(encoder.header() + encoder.encode([row]) + encoder.footer())
    assert raw[:2] == b"\x80\x80"
    assert len(raw) == 2 + 9 * 2


def test_encode_raw_carries_base64_remainder() -> None:
    whole = VOTableEncoder(FIELDS)
    reference = whole.header() + whole.encode(ROWS) + whole.footer()
    raw = _stream_bytes(reference)
    for step in (1, 2, 5, 7, 64):
        encoder = VOTableEncoder(FIELDS)
        pieces = [
            encoder.encode_raw(raw[i : i + step]) for i in range(0, len(raw), step)
        ]
        doc = encoder.header() + b"".join(pieces) + encoder.footer()
        assert _stream_bytes(doc) == raw


def test_binary_declares_integer_nulls() -> None:
    doc = _document("binary", ROWS)
    assert b'<VALUES null="-9223372036854775808"/>' in doc
    assert b"<BINARY>" in doc and b"<BINARY2>" not in doc


def test_tabledata_escaping_and_specials() -> None:
    doc = _document("tabledata", ROWS).decode()
    assert '<TD>a&lt;b&gt;&amp;"c"&#13;\n\td\'</TD>' in doc
    assert "<TD>NaN</TD>" in doc and "<TD>+Inf</TD>" in doc and "<TD>-Inf</TD>" in doc
    assert "<TD>NaN -1e+300</TD>" in doc
    assert "<TD>10.0 -20.0</TD>" in doc
    assert _read(doc.encode())["name"].data[3] == 'a<b>&"c"\r\n\td\''


def _schema(version: str) -> etree.XMLSchema:
    return load_schema(f"VOTable-v{version}.xsd")


@pytest.mark.parametrize("version", ["1.4", "1.5"])
@pytest.mark.parametrize("serialization", ["binary2", "tabledata", "binary"])
def test_documents_validate(serialization: str, version: str) -> None:
    schema = _schema(version)
    for overflow in (False, True):
        doc = _document(
            serialization,
            ROWS,
            overflow=overflow,
            version=version,
            description="results & <stuff>",
        )
        tree = etree.fromstring(doc)
        assert schema.validate(tree), schema.error_log
    error = etree.fromstring(error_document("bad <query> & worse", version=version))
    assert schema.validate(error), schema.error_log


def test_query_status_placement() -> None:
    ns = {"v": "http://www.ivoa.net/xml/VOTable/v1.3"}
    tree = etree.fromstring(_document("binary2", ROWS, overflow=True))
    resource = tree.find("v:RESOURCE", ns)
    assert resource is not None and resource.get("type") == "results"
    children = [c.tag.split("}")[1] + ":" + (c.get("value") or "") for c in resource]
    assert children[0] == "INFO:OK"
    assert children.index("TABLE:") < children.index("INFO:OVERFLOW")
    tree = etree.fromstring(_document("binary2", ROWS))
    assert b"OVERFLOW" not in etree.tostring(tree)


def test_error_document() -> None:
    doc = error_document("syntax error at <TOP> & co")
    info = etree.fromstring(doc).find(".//{*}INFO")
    assert info is not None
    assert (info.get("name"), info.get("value")) == ("QUERY_STATUS", "ERROR")
    assert info.text == "syntax error at <TOP> & co"
    table = parse(io.BytesIO(doc))
    assert table.resources[0].infos[0].value == "ERROR"


def test_empty_result() -> None:
    for serialization in ("binary2", "tabledata"):
        assert len(_read(_document(serialization, []))) == 0


@pytest.mark.parametrize(
    ("pg_type", "datatype", "arraysize", "xtype"),
    [
        ("int2", "short", None, None),
        ("int4", "int", None, None),
        ("int8", "long", None, None),
        ("float4", "float", None, None),
        ("float8", "double", None, None),
        ("numeric", "double", None, None),
        ("bool", "boolean", None, None),
        ("text", "unicodeChar", "*", None),
        ("varchar", "unicodeChar", "*", None),
        ("bpchar", "unicodeChar", "*", None),
        ("timestamp", "char", "*", "timestamp"),
        ("timestamptz", "char", "*", "timestamp"),
        ("date", "char", "*", "timestamp"),
        ("_float8", "double", "*", None),
        ("_int4", "int", "*", None),
        ("bytea", "unsignedByte", "*", None),
        ("uuid", "char", "*", None),
        ("spoint", "unicodeChar", "*", None),
    ],
)
def test_field_for_pg_type(
    pg_type: str, datatype: str, arraysize: str | None, xtype: str | None
) -> None:
    field = field_for_pg_type("c", pg_type, ucd="meta.id")
    assert (field.datatype, field.arraysize, field.xtype, field.ucd) == (
        datatype,
        arraysize,
        xtype,
        "meta.id",
    )
    assert field_for_pg_type("c", pg_type, xtype="point").xtype == "point"


def test_csv_rfc4180_round_trip() -> None:
    fields = [
        field_for_pg_type("s", "text"),
        field_for_pg_type("x", "float8"),
        field_for_pg_type("b", "bool"),
    ]
    rows = [('a,"b"\r\nc', 1.5, True), (None, None, None), ("", math.inf, False)]
    encoder = DelimitedEncoder(fields)
    doc = (encoder.header() + encoder.encode(rows) + encoder.footer()).decode()
    assert doc.endswith("\r\n") and '""' in doc.splitlines()[-1]
    parsed = list(csv.reader(io.StringIO(doc, newline="")))
    assert parsed == [
        ["s", "x", "b"],
        ['a,"b"\r\nc', "1.5", "T"],
        ["", "", ""],
        ["", "Infinity", "F"],
    ]


def test_tsv_escapes() -> None:
    fields = [field_for_pg_type("s", "text"), field_for_pg_type("n", "int4")]
    encoder = DelimitedEncoder(fields, delimiter="\t")
    doc = encoder.header() + encoder.encode([("a\tb\nc\\", 1), (None, None)])
    assert doc == b"s\tn\na\\tb\\nc\\\\\t1\n\t\n"
