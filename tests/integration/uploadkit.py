"""Shared pieces of the upload tests: VOTable builders, helpers, a TAP database."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from astropy.io.votable import from_table, parse  # type: ignore[import-untyped]
from astropy.table import Table  # type: ignore[import-untyped]
from testkit import DbSetup

from taprunner.query.execute import run_query
from taprunner.query.uploads import UploadCatalog
from taprunner.request import FORMATS, TapRequest
from taprunner.schema.metadata import ColumnMetadata, TableMetadata

MB = 1024 * 1024


ODD = """<?xml version="1.0" encoding="utf-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE type="results"><TABLE>
<FIELD name="Id" datatype="int"/>
<FIELD name="Ra Deg" datatype="double"/>
<FIELD name="MixedCase" datatype="char" arraysize="*"/>
<FIELD name="näme" datatype="unicodeChar" arraysize="*"/>
<FIELD name="flag" datatype="boolean"/>
<FIELD name="big" datatype="long"/>
<FIELD name="small" datatype="short"/>
<FIELD name="f" datatype="float"/>
<FIELD name="vals" datatype="double" arraysize="*"/>
<FIELD name="triple" datatype="int" arraysize="3"/>
<FIELD name="when" datatype="char" arraysize="*" xtype="timestamp"/>
<DATA><TABLEDATA>
<TR><TD>1</TD><TD>10.5</TD><TD>abc</TD><TD>Zoë ☃ 東京</TD><TD>T</TD><TD>12345678901</TD>
<TD>7</TD><TD>1.5</TD><TD>1 2 3.5</TD><TD>4 5 6</TD><TD>2020-01-02T03:04:05Z</TD></TR>
<TR><TD>2</TD><TD></TD><TD></TD><TD></TD><TD></TD><TD></TD>
<TD></TD><TD>NaN</TD><TD></TD><TD></TD><TD></TD></TR>
<TR><TD></TD><TD>-1</TD><TD>it's "q" \\</TD><TD>x</TD><TD>F</TD><TD>-1</TD>
<TD>-2</TD><TD>-0.25</TD><TD>7</TD><TD>1 2 3</TD><TD>2021-06-01T12:00:00</TD></TR>
</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>
"""


def votable(table: Table, serialization: str = "binary2") -> bytes:
    """``table`` written as a VOTable document."""
    out = io.BytesIO()
    from_table(table).to_xml(out, tabledata_format=serialization)
    return out.getvalue()


def ids_table(ids: list[int], label: str = "l", column: str = "id") -> bytes:
    return votable(
        Table(
            {
                column: np.array(ids, dtype=np.int32),
                "label": [f"{label}{i}" for i in ids],
            }
        )
    )


def write_parts(tmp_path: Path, **documents: bytes) -> dict[str, Path]:
    parts = {}
    for name, data in documents.items():
        path = tmp_path / f"part-{name}"
        path.write_bytes(data)
        parts[name] = path
    return parts


async def run_adql(conn: asyncpg.Connection, catalog: Any, adql: str) -> Table:
    """Run ``adql`` as the service does and return the result as a Table."""
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    request = TapRequest(query=adql, maxrec=1000, format=FORMATS["votable"])
    await run_query(conn, request, catalog, sink, timeout=30)
    document = parse(io.BytesIO(b"".join(chunks)))
    result: Table = document.get_first_table().to_table(use_names_over_ids=True)
    return result


def physical(catalog: Any, name: str) -> str:
    """The SQL name of upload ``name`` in a catalogue from load_uploads."""
    assert isinstance(catalog, UploadCatalog)
    sql_name = catalog.sql_name(f"tap_upload.{name}")
    assert sql_name is not None
    return sql_name


async def temp_tables(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT relname FROM pg_class WHERE relpersistence = 't'"
        " AND relname LIKE 'tap_upload%'"
    )
    return [r["relname"] for r in rows]


#: Three stars, ``tst.stars (id PRIMARY KEY, mag)``, published in TAP_SCHEMA with
#: a unit and a description for ``mag`` (a module's ``db_setup``).
TAP_STARS = DbSetup(
    tap_schema=True,
    sql="""
        CREATE SCHEMA tst;
        CREATE TABLE tst.stars (id integer PRIMARY KEY, mag real);
        INSERT INTO tst.stars VALUES (1, 11.5), (2, 12.5), (3, 13.5);
    """,
    published={
        "tst.stars": TableMetadata(
            columns=(ColumnMetadata(name="mag", description="magnitude", unit="mag"),)
        )
    },
)
