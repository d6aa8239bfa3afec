"""A NULL geometry is an empty cell in every format (DALI, VOTable 1.4 section
6): astropy reads it back masked, never as the point "NaN NaN"."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from astropy.io.votable import parse
from testkit import Client

#: Star 1 keeps its position; star 2 has a NULL ra, so a NULL point and circle
#: (the point built from coordinates, the circle a pg_sphere value of a subquery).
QUERY = (
    "SELECT q.id, POINT(q.ra, q.dec) AS p, q.c FROM (SELECT id, CASE WHEN id = 1"
    " THEN ra END AS ra, dec, CIRCLE(CASE WHEN id = 1 THEN ra END, dec, 1) AS c"
    " FROM demo.stars WHERE id < 3) AS q ORDER BY q.id"
)


async def _result(client: Client, fmt: str) -> bytes:
    response = await client.get(
        "/tap/sync", params={"LANG": "ADQL", "QUERY": QUERY, "RESPONSEFORMAT": fmt}
    )
    assert response.status == 200, await response.text()
    return await response.read()


@pytest.mark.parametrize("fmt", ["votable/td", "votable/b2", "votable/b"])
async def test_votable_null_geometry_is_masked(client: Client, fmt: str) -> None:
    body = await _result(client, fmt)
    if fmt == "votable/td":
        assert b"NaN" not in body and b"<TR><TD>2</TD><TD/><TD/></TR>" in body
    table = parse(io.BytesIO(body)).get_first_table()
    assert table.get_field_by_id("p").xtype == "point"
    rows = table.array
    assert list(rows["id"]) == [1, 2]
    assert not np.ma.getmaskarray(rows["p"][0]).any()
    assert np.ma.getmaskarray(rows["p"][1]).all()
    assert np.ma.getmaskarray(rows["c"][1]).all()
    assert float(rows["c"][0][2]) == pytest.approx(1.0)


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
async def test_delimited_null_geometry_is_empty(client: Client, fmt: str) -> None:
    text = (await _result(client, fmt)).decode()
    assert "NaN" not in text
    delimiter = "," if fmt == "csv" else "\t"
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    assert rows[0] == ["id", "p", "c"]
    assert rows[2] == ["2", "", ""]
    ra, dec = (float(v) for v in rows[1][1].split())
    assert rows[1][2].split()[:2] == rows[1][1].split() and float(
        rows[1][2].split()[2]
    ) == pytest.approx(1.0)
    assert -90 <= dec <= 90 and 0 <= ra < 360
