"""A sync query that fails after its response started: the stream ends with the
DALI error trailer where the format has one (VOTable), or is cut off (CSV/TSV),
and the connection closes; never a second HTTP response inside the body."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from testkit import Client

#: Division by zero at the pair (50, 50) of a cross join of the demo table: in
#: any scan order about the 100,000th row, long after the first batch (10,000
#: rows) and the first buffers of COPY went out.
FAILS_LATE = (
    "SELECT TOP 200000 a.id,"
    " 1 / ((a.id - 50) * (a.id - 50) + (b.id - 50) * (b.id - 50)) AS x"
    " FROM demo.stars AS a, demo.stars AS b"
)


@dataclass
class RawResponse:
    head: bytes
    body: bytes
    complete: bool
    """The chunked body ended with its last chunk (not cut off)."""
    closed: bool
    """The server closed the connection after it."""


async def raw_get(client: Client, params: dict[str, str]) -> RawResponse:
    """A GET on a socket of its own, the chunked body taken apart by hand."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(
            f"GET /tap/sync?{urlencode(params)} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert b"transfer-encoding: chunked" in head.lower(), head
        body, complete = b"", False
        while True:
            size_line = await asyncio.wait_for(reader.readline(), 30)
            if not size_line.endswith(b"\r\n"):
                break  # cut off
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                complete = await reader.readline() == b"\r\n"
                break
            try:
                chunk = await asyncio.wait_for(reader.readexactly(size + 2), 30)
            except asyncio.IncompleteReadError:
                break
            assert chunk.endswith(b"\r\n"), "a chunk not ended by CRLF: framing broken"
            body += chunk[:-2]
        try:
            closed = await asyncio.wait_for(reader.read(1), 5) == b""
        except TimeoutError:
            closed = False  # kept alive
        return RawResponse(head, body, complete, closed)
    finally:
        writer.close()


def query(q: str, fmt: str) -> dict[str, str]:
    return {"LANG": "ADQL", "QUERY": q, "RESPONSEFORMAT": fmt, "MAXREC": "200000"}


async def test_votable_failing_mid_stream_ends_with_error_trailer(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    got = await raw_get(client, query(FAILS_LATE, "votable"))
    assert got.head.startswith(b"HTTP/1.1 200"), got.head
    assert got.body.count(b"<TR>") >= 10_000 or b"<STREAM" in got.body
    text = got.body.decode()
    # The trailing status after the TABLE (DALI), and the document is closed.
    table_end = text.rindex("</TABLE>")
    tail = text[table_end:]
    assert 'name="QUERY_STATUS" value="ERROR"' in tail and "division by zero" in tail
    assert text.rstrip().endswith("</VOTABLE>")
    assert "HTTP/1.1" not in text  # no second response inside the body
    assert got.complete and got.closed
    assert "failed after its response started" in caplog.text
    # The service goes on.
    resp = await client.get(
        "/tap/sync", params={"LANG": "ADQL", "QUERY": "SELECT TOP 1 id FROM demo.stars"}
    )
    assert resp.status == 200


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
async def test_text_failing_mid_stream_is_cut_off(
    client: Client, fmt: str, caplog: pytest.LogCaptureFixture
) -> None:
    got = await raw_get(client, query(FAILS_LATE, fmt))
    assert got.head.startswith(b"HTTP/1.1 200"), got.head
    assert got.body.count(b"\n") > 1000  # rows went out before the failure
    assert b"HTTP/1.1" not in got.body
    # Nothing can be appended to CSV: the client sees an incomplete body.
    assert not got.complete and got.closed
    assert "failed after its response started" in caplog.text


#: Geometry of two types in one column: the BINARY2 encoder finds out while it
#: encodes the first rows, after the header went out.
MIXED_GEOMETRY = (
    "SELECT TOP 5 POINT('ICRS', ra, dec) AS g FROM demo.stars UNION"
    " SELECT TOP 5 CIRCLE('ICRS', ra, dec, 1) AS g FROM demo.stars"
)


async def test_mixed_geometry_union_is_refused_before_anything_streams(
    client: Client,
) -> None:
    """It used to fail while encoding, after the 200 went out; the translator
    now refuses it (set operations of POINT and CIRCLE), a plain 400."""
    got = await client.get("/tap/sync", params=query(MIXED_GEOMETRY, "votable"))
    assert got.status == 400
    assert "QUERY_STATUS" in await got.text()
