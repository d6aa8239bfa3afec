"""DALI: a result's Content-Type follows the RESPONSEFORMAT a client asked for.

Every value of the format registry: one that is itself a media type
(``text/xml``, ``text/csv;header=present``) comes back as the Content-Type; a
short name (``votable/td``, ``csv``) gives the format's own media type. Sync
responses, async results from the fast lane and from a runner alike.
"""

from __future__ import annotations

import pytest
from testkit import Client

from taprunner.formats.registry import OUTPUT_FORMATS, OutputFormat
from taprunner.request import FORMATS, media_type_of, parse_request

ROWS = "SELECT id FROM demo.stars WHERE id < 4 ORDER BY id"
#: Bounded by TOP: the fast lane; unbounded: a runner.
ASYNC_QUERIES = {
    "fastlane": "SELECT TOP 3 id FROM demo.stars ORDER BY id",
    "runner": ROWS,
}
CASES = [(name, fmt) for fmt in OUTPUT_FORMATS for name in fmt.accepts]
MEDIA_ALIASES = [n for n, _ in CASES if n.split("/")[0] in ("application", "text")]


def _expected(name: str, fmt: OutputFormat) -> str:
    media = name if name in MEDIA_ALIASES else fmt.media_type
    # CSV and TSV are text in UTF-8: they say so (RFC 4180's charset parameter).
    return media + ";charset=utf-8" if fmt.name in ("csv", "tsv") else media


def test_media_aliases_are_recognised() -> None:
    assert "text/xml" in MEDIA_ALIASES and "votable/td" not in MEDIA_ALIASES
    assert media_type_of("text/xml", FORMATS["text/xml"]) == "text/xml"
    assert media_type_of("csv", FORMATS["csv"]) == (
        "text/csv;header=present;charset=utf-8"
    )
    assert media_type_of("text/csv", FORMATS["text/csv"]) == "text/csv;charset=utf-8"
    assert media_type_of("tsv", FORMATS["tsv"]) == (
        "text/tab-separated-values;charset=utf-8"
    )
    assert media_type_of("votable/b2", FORMATS["votable/b2"]) == (
        "application/x-votable+xml"
    )
    for name, fmt in CASES:
        request = parse_request(
            {"lang": ["ADQL"], "query": ["SELECT 1"], "responseformat": [name]},
            maxrec_default=10,
            maxrec_hard=10,
        )
        assert request.media_type == _expected(name, fmt)
        assert request.format is fmt
    default = parse_request(
        {"lang": ["ADQL"], "query": ["SELECT 1"]}, maxrec_default=1, maxrec_hard=1
    )
    assert default.media_type == OUTPUT_FORMATS[0].media_type
    assert OUTPUT_FORMATS[0].charset is None  # VOTable: the XML prolog says it


def _check_body(fmt: OutputFormat, body: bytes) -> None:
    if fmt.media_type.startswith("application/x-votable"):
        assert body.startswith(b"<?xml") and b"<VOTABLE" in body
    elif fmt.name in ("csv", "tsv"):
        assert body.splitlines()[:2] == [b"id", b"1"]
    else:
        assert body.startswith(b"PAR1")


@pytest.mark.parametrize(("name", "fmt"), CASES, ids=[n for n, _ in CASES])
async def test_sync_content_type_follows_the_request(
    client: Client, name: str, fmt: OutputFormat
) -> None:
    response = await client.get(
        "/tap/sync",
        params={"LANG": "ADQL", "QUERY": ROWS, "RESPONSEFORMAT": name.upper()},
    )
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == _expected(name, fmt)
    _check_body(fmt, await response.read())


async def _async_result(client: Client, query: str, name: str) -> str:
    created = await client.post(
        "/tap/async",
        data={"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": name, "PHASE": "RUN"},
        allow_redirects=False,
    )
    assert created.status == 303, await created.text()
    job = created.headers["Location"].rsplit("/", 1)[1]
    for _ in range(60):
        phase = await (await client.get(f"/tap/async/{job}/phase")).text()
        if phase == "COMPLETED":
            return f"/tap/async/{job}"
        assert phase in ("QUEUED", "EXECUTING"), phase
        await client.get(f"/tap/async/{job}?WAIT=5&PHASE={phase}")
    raise AssertionError(f"job {job} did not complete")


@pytest.mark.parametrize("lane", sorted(ASYNC_QUERIES))
async def test_async_result_has_the_requested_type(client: Client, lane: str) -> None:
    """Each registry value through one lane of async execution."""
    for name, fmt in CASES:
        job = await _async_result(client, ASYNC_QUERIES[lane], name)
        result = await client.get(f"{job}/results/result")
        assert result.status == 200
        assert result.headers["Content-Type"] == _expected(name, fmt), name
        _check_body(fmt, await result.read())
        listing = await (await client.get(f"{job}/results")).text()
        assert f'mime-type="{_expected(name, fmt)}"' in listing, listing
