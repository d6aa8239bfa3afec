"""TABLEDATA of the COPY_TEXT path through the service: the sync endpoint and a
real runner (async, not the fast lane) give the rows BINARY2 gives, MAXREC
overflow and a value over ``tap_value_bytes`` reported as before."""

from __future__ import annotations

import gzip
import io
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from astropy.io.votable import parse  # type: ignore[import-untyped]
from test_result_limits import BIG, _job, _status
from test_sync_broken_streams import FAILS_LATE
from testkit import Client, MakeClient

from aiouws.config import Settings
from taprunner.settings import TapSettings

ALL = "SELECT id, ra, dec, mag, name FROM demo.stars ORDER BY id"


@pytest.fixture
def app_tap(settings: Settings) -> TapSettings:
    return TapSettings.for_service(settings, value_bytes=50_000)


def _table(document: bytes) -> Any:
    return parse(io.BytesIO(document)).get_first_table().array


def _same_rows(td: bytes, binary2: bytes) -> None:
    a, b = _table(td), _table(binary2)
    assert len(a) == len(b) > 0
    for name in b.dtype.names:
        assert np.array_equal(a[name].data, b[name].data), name


async def _sync(client: Client, query: str, fmt: str, **params: str) -> bytes:
    data = {"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": fmt, **params}
    resp = await client.post("/tap/sync", data=data)
    assert resp.status == 200
    return await resp.read()


async def test_sync_tabledata_has_the_binary2_rows(client: Client) -> None:
    td = await _sync(client, ALL, "votable/td")
    assert b"<TABLEDATA>" in td and _status(td) == ("OK", "")
    _same_rows(td, await _sync(client, ALL, "votable"))
    td = await _sync(client, ALL, "votable/td", MAXREC="7")
    assert _status(td) == ("OVERFLOW", "") and len(_table(td)) == 7


async def test_a_runner_writes_tabledata_with_the_binary2_rows(client: Client) -> None:
    # MAXREC over tap_inline_rows and no TOP: a runner, not the fast lane.
    documents = []
    for fmt in ("votable/td", "votable"):
        url, job = await _job(client, QUERY=ALL, MAXREC="5000", RESPONSEFORMAT=fmt)
        assert '<note key="rows">2000</note>' in job
        documents.append(await (await client.get(url + "/results/result")).read())
    _same_rows(*documents)
    url, job = await _job(client, QUERY=ALL, MAXREC="1500", RESPONSEFORMAT="votable/td")
    assert '<note key="overflow">true</note>' in job
    body = await (await client.get(url + "/results/result")).read()
    assert _status(body) == ("OVERFLOW", "") and len(_table(body)) == 1500


async def test_a_runner_cuts_tabledata_before_a_value_over_the_limit(
    client: Client,
) -> None:
    url, job = await _job(
        client, QUERY=BIG.format(rows=3), MAXREC="5000", RESPONSEFORMAT="votable/td"
    )
    assert '<note key="rows">0</note>' in job
    text = "result cut before a value larger than 50000 bytes (tap_value_bytes)"
    assert f'<note key="truncated">{text}</note>' in job
    body = await (await client.get(url + "/results/result")).read()
    assert _status(body) == ("OVERFLOW", text) and len(_table(body)) == 0


async def test_gzipped_tabledata_failing_late_ends_with_its_error(
    app: web.Application, aiohttp_client: MakeClient
) -> None:
    # The compressed stream is finished before the response ends (streamzip).
    raw = await aiohttp_client(app, auto_decompress=False)
    resp = await raw.get(
        "/tap/sync",
        params={"LANG": "ADQL", "QUERY": FAILS_LATE, "RESPONSEFORMAT": "votable/td"},
        headers={"Accept-Encoding": "gzip"},
    )
    assert resp.status == 200 and resp.headers["Content-Encoding"] == "gzip"
    document = gzip.decompress(await resp.read())
    value, text = _status(document)
    assert value == "ERROR" and "division by zero" in text
    assert document.count(b"<TR>") > 1000 and document.endswith(b"</VOTABLE>\n")
