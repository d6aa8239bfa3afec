"""tap_value_bytes counts UTF-8 bytes on every data path: a text of 'é's (two
bytes each) at the limit passes, one character more (two bytes over, yet
fewer characters than the limit) cuts the result before its row, alike for
TABLEDATA, BINARY2, CSV and VOParquet, by /tap/sync, the async fast lane and a
runner. Before, the cursor and TABLEDATA (COPY text) paths counted characters
and let the longer text through, where the binary COPY path cut it."""

from __future__ import annotations

import io
import re

import aiohttp
import pyarrow.parquet as pq
import pytest
from astropy.io.votable import parse  # type: ignore[import-untyped]
from testkit import Client

from aiouws.config import Settings
from taprunner.settings import TapSettings

LIMIT = 10
#: 'é' x 5 (10 bytes: at the limit), x 6 (12 bytes, 6 characters), then 'a'.
QUERY = (
    "SELECT TOP 3 CASE WHEN id = 1 THEN 'ééééé' WHEN id = 2 THEN 'éééééé'"
    " ELSE 'a' END AS s FROM demo.stars ORDER BY id"
)
FORMATS = ("votable/td", "votable", "csv", "parquet")


@pytest.fixture
def app_tap(settings: Settings) -> TapSettings:
    return TapSettings.for_service(settings, value_bytes=LIMIT)


def _values(fmt: str, body: bytes) -> list[str]:
    if fmt == "csv":
        return body.decode().splitlines()[1:]
    if fmt == "parquet":
        return [str(v) for v in pq.read_table(io.BytesIO(body)).column("s").to_pylist()]
    table = parse(io.BytesIO(body)).get_first_table().array
    return [str(v) for v in table["s"].tolist()]


async def _sync(client: Client, fmt: str) -> bytes | None:
    """The response's body; None for a CSV response cut off (the sync COPY
    path's way of saying it was cut: it never ends as complete)."""
    resp = await client.post(
        "/tap/sync",
        data={"LANG": "ADQL", "QUERY": QUERY, "RESPONSEFORMAT": fmt},
        timeout=aiohttp.ClientTimeout(total=60),
    )
    assert resp.status == 200, await resp.text()
    try:
        return await resp.read()
    except aiohttp.ClientPayloadError:
        assert fmt == "csv"
        return None


async def _job(client: Client, fmt: str, maxrec: str) -> tuple[str, bytes]:
    resp = await client.post(
        "/tap/async",
        data={
            "LANG": "ADQL",
            "PHASE": "RUN",
            "QUERY": QUERY,
            "RESPONSEFORMAT": fmt,
            "MAXREC": maxrec,
        },
    )
    url = resp.url.path
    for _ in range(30):
        document = await (await client.get(url + "?WAIT=5")).text()
        if "COMPLETED" in document or "ERROR" in document:
            break
    assert "<uws:phase>COMPLETED</uws:phase>" in document, document
    body = await (await client.get(url + "/results/result")).read()
    return document, body


@pytest.mark.parametrize("fmt", FORMATS)
async def test_the_limit_counts_utf8_bytes_on_every_path(
    client: Client, fmt: str
) -> None:
    body = await _sync(client, fmt)
    if fmt == "csv":
        assert body is None  # cut: the longer text is over
    else:
        assert body is not None and _values(fmt, body) == ["é" * 5], fmt
        assert b"tap_value_bytes" in body
    # MAXREC 1000: the fast lane; 5000 (over tap_inline_rows): a runner.
    for lane, maxrec in (("fast lane", "1000"), ("runner", "5000")):
        document, body = await _job(client, fmt, maxrec)
        assert _values(fmt, body) == ["é" * 5], (lane, fmt)
        assert '<note key="rows">1</note>' in document, (lane, fmt, document)
        assert re.search(r'<note key="truncated">[^<]*tap_value_bytes', document), (
            lane,
            fmt,
            document,
        )
