"""Shared pieces of the pyvo end-to-end tests: the oddities table, helpers.

The server they run against is ``pyvo_server`` (tests/e2e/conftest.py), one for
the whole session: its database holds ``e2e.oddities``, a small table of NULLs,
odd strings and extreme numbers published through ``aiouws tap publish``.
"""

from __future__ import annotations

import asyncio
import io
import math
import warnings
from collections.abc import Sequence
from typing import Any

import asyncpg
import numpy as np
import requests
from liveserver import LiveServer

ODDITIES_SQL = r"""
CREATE SCHEMA e2e;
CREATE TABLE e2e.oddities (
    id    integer PRIMARY KEY,
    label text,
    flux  double precision,
    small smallint,
    big   bigint,
    flag  boolean,
    mag   real,
    seen  timestamp
);
INSERT INTO e2e.oddities VALUES
 (1, 'plain', 1.5, 1, 10, true, 1.25, '2024-02-29 12:34:56'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, '', 0.1, 0, 0, false, 0.1, '2000-01-01 00:00:00.5'),
 (4, 'comma, "quote"; semi', -0.0, 32767, 9223372036854775807, true, -1e-30,
  '1999-12-31 23:59:59'),
 (5, E'tab\there\nnewline\r\nCRLF \\ backslash', 1e300, -32767, -9223372036854775807,
  false, 3.4e38, NULL),
 (6, 'Ångström ☃ 😀 <&> ]]>', 2.2250738585072014e-308, 7, 7, NULL, 6.5, NULL),
 (7, '  leading and trailing  ', 123456789.123456789, NULL, 1, true, NULL, NULL),
 (8, 'NULL', 1.0000000000000002, 8, 8, false, 8, NULL);
"""
ODDITY_COLUMNS = ("id", "label", "flux", "small", "big", "flag", "mag", "seen")
ODDITY_QUERY = "SELECT " + ", ".join(ODDITY_COLUMNS) + " FROM e2e.oddities ORDER BY id"
#: The service's default MAXREC for these tests (below the 5,000 demo rows).
MAXREC_DEFAULT = 2000
STARS_QUERY = "SELECT TOP 200 id, ra, dec, mag, name FROM demo.stars ORDER BY id"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def sync_query(server: LiveServer, query: str, **params: str) -> requests.Response:
    data = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, **params}
    return requests.post(server.tap_url + "/sync", data=data, timeout=60)


def cells(table: Any, name: str) -> list[Any]:
    """The values of one astropy column, masked entries as None, bytes decoded."""
    column = table[name]
    mask = np.ma.getmaskarray(column)
    values = []
    for value, masked in zip(list(np.ma.getdata(column)), mask, strict=True):
        if masked:
            values.append(None)
        elif isinstance(value, bytes):
            values.append(value.decode())
        elif isinstance(value, np.generic):
            values.append(value.item())
        else:
            values.append(value)
    return values


def same_float(got: Any, want: float | None, *, single: bool = False) -> bool:
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got is None or (isinstance(got, float) and math.isnan(got))
    if got is None:
        return False
    if single:
        return float(np.float32(got)) == float(np.float32(want))
    return float(got) == want


def check_oddities_votable(
    table: Any, expected: Sequence[asyncpg.Record], *, stripped: bool = False
) -> None:
    assert cells(table, "id") == [r["id"] for r in expected]
    # A VOTable cannot tell NULL from '' in TABLEDATA, astropy masks neither, and
    # astropy strips the whitespace around TD contents.
    labels = [r["label"] or "" for r in expected]
    assert cells(table, "label") == [t.strip() if stripped else t for t in labels]
    for name in ("small", "big"):
        assert cells(table, name) == [r[name] for r in expected], name
    assert cells(table, "flag") == [r["flag"] for r in expected]
    for got, row in zip(cells(table, "flux"), expected, strict=True):
        assert same_float(got, row["flux"]), (got, row["flux"])
    for got, row in zip(cells(table, "mag"), expected, strict=True):
        assert same_float(got, row["mag"], single=True), (got, row["mag"])
    assert cells(table, "seen") == [
        "" if r["seen"] is None else r["seen"].isoformat() for r in expected
    ]


def parse_votable(content: bytes) -> Any:
    from astropy.io.votable import parse_single_table

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # astropy's VOTable warnings are defects here
        return parse_single_table(io.BytesIO(content)).to_table()
