"""pyvo end to end, output formats: every VOTable serialization, CSV and TSV,
compared with PostgreSQL's values for ``e2e.oddities`` (NULLs included).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import numpy as np
import pytest
import pyvo
import requests
from liveserver import LiveServer
from pyvokit import (
    ODDITY_COLUMNS,
    ODDITY_QUERY,
    check_oddities_votable,
    parse_votable,
    sync_query,
)


# ------------------------------------------------------------------ output formats
@pytest.mark.parametrize("fmt", ["votable", "votable/td", "votable/b", "votable/b2"])
def test_votable_formats_match_postgresql(
    fmt: str,
    pyvo_server: LiveServer,
    pg_oddities: list[asyncpg.Record],
    assert_valid: Callable[[bytes], Any],
) -> None:
    response = sync_query(pyvo_server, ODDITY_QUERY, RESPONSEFORMAT=fmt)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/x-votable+xml")
    assert_valid(response.content)
    table = parse_votable(response.content)
    check_oddities_votable(table, pg_oddities, stripped=fmt == "votable/td")


def _csv_expected(rows: Sequence[asyncpg.Record]) -> list[list[str | None]]:
    def text(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool):
            return "T" if value else "F"  # as in TABLEDATA
        if hasattr(value, "isoformat"):
            return str(value.isoformat())
        return str(value)

    return [[text(r[c]) for c in ODDITY_COLUMNS] for r in rows]


def _numeric_equal(got: str | None, want: str | None, name: str) -> bool:
    if name in ("flux", "mag") and got and want:
        kind = np.float32 if name == "mag" else np.float64
        return bool(kind(float(got)) == kind(float(want)))
    return got == want


@pytest.mark.parametrize("fmt", ["csv", "tsv", "text/csv", "text/tab-separated-values"])
def test_delimited_formats_match_postgresql(
    fmt: str, pyvo_server: LiveServer, pg_oddities: list[asyncpg.Record]
) -> None:
    response = sync_query(pyvo_server, ODDITY_QUERY, RESPONSEFORMAT=fmt)
    assert response.status_code == 200, response.text
    tsv = "tab" in fmt or fmt == "tsv"
    assert response.headers["Content-Type"].startswith(
        "text/tab-separated-values" if tsv else "text/csv"
    )
    text = response.content.decode("utf-8")
    if tsv:
        lines = text.split("\n")
        assert lines[-1] == ""
        parsed = [[_tsv_unescape(c) for c in line.split("\t")] for line in lines[:-1]]
    else:
        parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[0] == list(ODDITY_COLUMNS)
    expected = _csv_expected(pg_oddities)
    assert len(parsed) - 1 == len(expected)
    for got_row, want_row in zip(parsed[1:], expected, strict=True):
        for name, got, want in zip(ODDITY_COLUMNS, got_row, want_row, strict=True):
            if want is None:
                assert got == "", (name, got_row)
            elif want == "" and tsv:
                assert got == "", (name, got_row)  # TSV cannot tell '' from NULL
            else:
                assert _numeric_equal(got, want, name), (name, got, want)
    if not tsv:
        assert '""' in text.splitlines()[3], "CSV keeps '' apart from NULL"


def _tsv_unescape(cell: str) -> str:
    out, chars = [], iter(cell)
    for char in chars:
        if char == "\\":
            nxt = next(chars)
            out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}.get(nxt, nxt))
        else:
            out.append(char)
    return "".join(out)


def test_async_result_in_csv(
    tap: pyvo.dal.TAPService, pg_oddities: list[asyncpg.Record]
) -> None:
    job = tap.submit_job(ODDITY_QUERY, responseformat="csv")
    job.run().wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert job.phase == "COMPLETED", job.errorsummary
    response = requests.get(job.result_uri, timeout=30)
    assert response.headers["Content-Type"].startswith("text/csv")
    parsed = list(csv.reader(io.StringIO(response.content.decode(), newline="")))
    assert [row[0] for row in parsed[1:]] == [str(r["id"]) for r in pg_oddities]
    assert [row[1] for row in parsed[1:]] == [r["label"] or "" for r in pg_oddities]
    job.delete()
