"""A sync response is held up to HOLD_BYTES before it goes out: a small
result (header, rows, footer) leaves as one chunk with the response's end,
not a chunk (a write) per piece; a large one still streams in many chunks,
and both parse as the same rows."""

from __future__ import annotations

import asyncio
import io
from urllib.parse import urlencode

from astropy.io.votable import parse_single_table
from testkit import Client

from taprunner.web.endpoints import HOLD_BYTES


async def chunks_of(client: Client, params: dict[str, str]) -> list[bytes]:
    """The chunks of a chunked GET /tap/sync response, as the server framed them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(
            f"GET /tap/sync?{urlencode(params)} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"transfer-encoding: chunked" in head.lower(), head
        chunks = []
        while True:
            size = int((await asyncio.wait_for(reader.readline(), 30)).strip(), 16)
            if size == 0:
                assert await reader.readline() == b"\r\n"
                return chunks
            chunk = await asyncio.wait_for(reader.readexactly(size + 2), 30)
            chunks.append(chunk[:-2])
    finally:
        writer.close()


def _query(adql: str) -> dict[str, str]:
    return {"LANG": "ADQL", "QUERY": adql, "RESPONSEFORMAT": "votable"}


async def test_a_small_result_leaves_in_one_chunk(client: Client) -> None:
    chunks = await chunks_of(
        client, _query("SELECT TOP 3 id, ra, dec FROM demo.stars ORDER BY id")
    )
    assert len(chunks) == 1  # header, rows and footer: one write
    table = parse_single_table(io.BytesIO(chunks[0]))
    assert len(table.array) == 3


async def test_a_large_result_streams_in_many_chunks(client: Client) -> None:
    chunks = await chunks_of(
        client,
        _query(
            "SELECT TOP 20000 a.id, a.ra, b.dec FROM demo.stars AS a, demo.stars AS b"
        ),
    )
    body = b"".join(chunks)
    assert len(body) > 3 * HOLD_BYTES
    assert len(chunks) >= 3  # not held to the end
    assert all(len(c) >= HOLD_BYTES for c in chunks[:-1])
    table = parse_single_table(io.BytesIO(body))
    assert len(table.array) == 20000
