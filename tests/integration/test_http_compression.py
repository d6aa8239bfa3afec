"""gzip/deflate over real HTTP: text results (CSV, TSV, TABLEDATA) and XML
documents compressed when the client accepts it, binary VOTable never."""

from __future__ import annotations

import gzip
import zlib

import pytest
from aiohttp import web
from testkit import Client, MakeClient

QUERY = "SELECT TOP 500 id, ra, dec, mag FROM demo.stars ORDER BY id"


@pytest.fixture
async def raw_client(app: web.Application, aiohttp_client: MakeClient) -> Client:
    """A client that leaves bodies as they came (no automatic decompression)."""
    return await aiohttp_client(app, auto_decompress=False)


async def _sync(client: Client, fmt: str, encoding: str) -> tuple[str | None, bytes]:
    response = await client.get(
        "/tap/sync",
        params={"LANG": "ADQL", "QUERY": QUERY, "RESPONSEFORMAT": fmt},
        headers={"Accept-Encoding": encoding},
    )
    assert response.status == 200
    return response.headers.get("Content-Encoding"), await response.read()


@pytest.mark.parametrize("fmt", ["csv", "tsv", "votable/td"])
async def test_text_results_come_gzipped_and_decode_to_the_same_bytes(
    raw_client: Client, fmt: str
) -> None:
    encoding, plain = await _sync(raw_client, fmt, "identity")
    assert encoding is None
    encoding, packed = await _sync(raw_client, fmt, "gzip")
    assert encoding == "gzip"
    assert gzip.decompress(packed) == plain
    assert len(packed) < 0.6 * len(plain)


async def test_deflate_when_only_deflate_is_accepted(raw_client: Client) -> None:
    _, plain = await _sync(raw_client, "csv", "identity")
    encoding, packed = await _sync(raw_client, "csv", "deflate")
    assert encoding == "deflate"
    assert zlib.decompress(packed) == plain


@pytest.mark.parametrize("fmt", ["votable/b2", "votable/b"])
async def test_binary_votable_is_never_compressed(raw_client: Client, fmt: str) -> None:
    encoding, body = await _sync(raw_client, fmt, "gzip, deflate")
    assert encoding is None
    assert body.startswith(b"<?xml")


async def test_xml_documents_are_compressed_when_big(raw_client: Client) -> None:
    tables = await raw_client.get("/tap/tables", headers={"Accept-Encoding": "gzip"})
    assert tables.headers.get("Content-Encoding") == "gzip"
    assert b"<vosi:tableset" in gzip.decompress(await tables.read())
    assert "Accept-Encoding" in tables.headers.getall("Vary")
    small = await raw_client.get(
        "/tap/availability", headers={"Accept-Encoding": "gzip"}
    )
    assert small.headers.get("Content-Encoding") is None  # would not pay


async def _async_csv(client: Client, query: str) -> str:
    created = await client.post(
        "/tap/async",
        data={"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv", "PHASE": "RUN"},
        allow_redirects=False,
    )
    job = created.headers["Location"].rsplit("/", 1)[1]
    for _ in range(100):
        phase = await (await client.get(f"/tap/async/{job}/phase")).text()
        if phase == "COMPLETED":
            return f"/tap/async/{job}/results/result"
        assert phase in ("QUEUED", "EXECUTING"), phase
        await client.get(f"/tap/async/{job}?WAIT=5&PHASE={phase}")
    raise AssertionError(f"job {job} did not complete")


async def test_small_async_results_are_compressed_big_ones_sent_as_files(
    raw_client: Client,
) -> None:
    small = await _async_csv(raw_client, QUERY)  # read into memory: it pays
    plain = await raw_client.get(small, headers={"Accept-Encoding": "identity"})
    packed = await raw_client.get(small, headers={"Accept-Encoding": "gzip"})
    assert packed.headers.get("Content-Encoding") == "gzip"
    assert gzip.decompress(await packed.read()) == await plain.read()
    big = await _async_csv(
        raw_client, "SELECT TOP 30000 a.ra, b.dec FROM demo.stars AS a, demo.stars AS b"
    )
    result = await raw_client.get(big, headers={"Accept-Encoding": "gzip"})
    assert result.status == 200
    assert result.headers.get("Content-Encoding") is None  # sendfile
    body = await result.read()
    assert len(body) > 256 * 1024
    assert body.startswith(b"ra,dec")


async def test_client_wrapper_decompresses(client: Client) -> None:
    """An ordinary client (aiohttp's, like pyvo's requests) sees plain CSV."""
    response = await client.get(
        "/tap/sync", params={"LANG": "ADQL", "QUERY": QUERY, "RESPONSEFORMAT": "csv"}
    )
    assert response.headers.get("Content-Encoding") in ("gzip", "deflate")
    assert (await response.text()).startswith("id,ra,dec,mag")


@pytest.mark.parametrize(
    ("accept", "expected"),
    [("gzip;q=0, deflate", "deflate"), ("gzip;q=0", None), ("deflate;q=0.0", None)],
)
async def test_a_coding_refused_with_q_zero_is_not_used(
    raw_client: Client, accept: str, expected: str | None
) -> None:
    """RFC 9110 12.5.3: ``q=0`` means "not acceptable"."""
    _, plain = await _sync(raw_client, "csv", "identity")
    encoding, body = await _sync(raw_client, "csv", accept)
    assert encoding == expected
    assert (zlib.decompress(body) if expected else body) == plain
