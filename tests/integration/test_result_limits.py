"""Bytes per value and per result (tap_value_bytes, tap_sync_bytes,
tap_result_bytes): a result they cut is marked as cut (QUERY_STATUS OVERFLOW with
the limit's name; a job's ``truncated`` note), never served as complete; the
COPY path (CSV, TSV) reports MAXREC overflow too."""

from __future__ import annotations

import io
import logging
import re

import aiohttp
import pytest
from astropy.io.votable import parse  # type: ignore[import-untyped]
from testkit import Client

from aiouws.config import Settings
from taprunner.settings import TapSettings

#: Values of 10 x 10 x 10 x len('DEMO n') characters (60-90 KB).
BIG = (
    "WITH a0 AS (SELECT TOP {rows} id, {n10} AS s FROM demo.stars ORDER BY id),"
    " a1 AS (SELECT id, {s10} AS s FROM a0),"
    " a2 AS (SELECT id, {s10} AS s FROM a1),"
    " a3 AS (SELECT id, {s10} AS s FROM a2) SELECT id, s FROM a3 ORDER BY id"
).format(rows="{rows}", n10="||".join(["name"] * 10), s10="||".join(["s"] * 10))
ALL = "SELECT id, ra, dec, mag, name FROM demo.stars ORDER BY id"


@pytest.fixture
def app_tap(settings: Settings) -> TapSettings:
    return TapSettings.for_service(
        settings, value_bytes=50_000, sync_bytes=30_000, result_bytes=30_000
    )


def _status(document: bytes) -> tuple[str, str]:
    """The last QUERY_STATUS INFO: its value and its text."""
    found = re.findall(
        rb'<INFO name="QUERY_STATUS" value="(\w+)"(?:/>|>(.*?)</INFO>)', document
    )
    value, text = found[-1]
    return value.decode(), text.decode()


def _rows(document: bytes) -> int:
    return len(parse(io.BytesIO(document)).get_first_table().array)


async def test_a_value_over_the_limit_cuts_the_result_before_its_row(
    client: Client,
) -> None:
    query = BIG.format(rows=3)
    resp = await client.post("/tap/sync", data={"LANG": "ADQL", "QUERY": query})
    body = await resp.read()
    assert resp.status == 200
    assert _rows(body) == 0
    assert _status(body) == (
        "OVERFLOW",
        "result cut before a value larger than 50000 bytes (tap_value_bytes)",
    )


async def test_a_sync_result_over_its_bytes_is_cut_and_marked(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "taprunner.query.querylog")
    for fmt in ("votable", "votable/td"):
        resp = await client.post(
            "/tap/sync",
            data={"LANG": "ADQL", "QUERY": ALL, "RESPONSEFORMAT": fmt},
        )
        body = await resp.read()
        assert resp.status == 200
        rows = _rows(body)  # still a valid VOTable
        assert 0 < rows < 2000
        value, text = _status(body)
        assert value == "OVERFLOW"
        assert "tap_sync_bytes (30000 bytes)" in text
        # Cut after the batch that reached the limit: a few batches at most.
        assert len(body) < 30_000 + 300_000
    outcomes = [getattr(r, "outcome", None) for r in caplog.records]
    assert outcomes == ["truncated", "truncated"]


async def test_a_small_result_is_neither_cut_nor_marked(client: Client) -> None:
    query = "SELECT TOP 5 id, name FROM demo.stars ORDER BY id"
    resp = await client.post("/tap/sync", data={"LANG": "ADQL", "QUERY": query})
    body = await resp.read()
    assert _status(body) == ("OK", "")
    assert _rows(body) == 5


async def test_a_cut_csv_response_never_ends_as_complete(client: Client) -> None:
    for fmt in ("csv", "tsv"):
        resp = await client.post(
            "/tap/sync",
            data={"LANG": "ADQL", "QUERY": ALL, "RESPONSEFORMAT": fmt},
            timeout=aiohttp.ClientTimeout(total=30),
        )
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def _job(client: Client, **params: str) -> tuple[str, str]:
    resp = await client.post(
        "/tap/async", data={"LANG": "ADQL", "PHASE": "RUN", **params}
    )
    url = resp.url.path
    for _ in range(30):
        document = await (await client.get(url + "?WAIT=5")).text()
        if "COMPLETED" in document or "ERROR" in document:
            break
    assert "<uws:phase>COMPLETED</uws:phase>" in document, document
    return url, document


async def test_an_async_result_over_its_bytes_is_cut_and_noted(client: Client) -> None:
    url, document = await _job(client, QUERY=ALL, MAXREC="1000")  # the fast lane
    assert '<note key="overflow">true</note>' in document
    assert re.search(r'<note key="truncated">result cut at \d+ bytes by', document)
    assert "tap_result_bytes (30000 bytes)" in document
    body = await (await client.get(url + "/results/result")).read()
    assert _status(body)[0] == "OVERFLOW"
    assert 0 < _rows(body) < 1000


async def test_the_copy_path_reports_maxrec_overflow(client: Client) -> None:
    query = "SELECT id, name FROM demo.stars ORDER BY id"
    for fmt in ("csv", "tsv"):
        url, document = await _job(client, QUERY=query, MAXREC="7", RESPONSEFORMAT=fmt)
        assert '<note key="overflow">true</note>' in document
        assert '<note key="rows">7</note>' in document
        assert "truncated" not in document
        body = await (await client.get(url + "/results/result")).read()
        assert body.count(b"\n") == 8  # the header and MAXREC rows, whole
        assert body.endswith(b"\n")
        url, document = await _job(
            client, QUERY="SELECT TOP 7 id FROM demo.stars", RESPONSEFORMAT=fmt
        )
        assert "overflow" not in document
        assert '<note key="rows">7</note>' in document


async def test_a_runner_cuts_before_a_value_over_the_limit(client: Client) -> None:
    # Not the fast lane (MAXREC over tap_inline_rows, no TOP outside): a runner,
    # which fetches this BINARY2 result of integers and text by the columnar path.
    url, document = await _job(client, QUERY=BIG.format(rows=3), MAXREC="5000")
    assert '<note key="rows">0</note>' in document
    assert (
        '<note key="truncated">result cut before a value larger than 50000 bytes'
        " (tap_value_bytes)</note>"
    ) in document
    body = await (await client.get(url + "/results/result")).read()
    assert _rows(body) == 0
    assert _status(body)[0] == "OVERFLOW"
