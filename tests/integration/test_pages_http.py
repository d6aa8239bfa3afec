"""The HTML pages for browsers, over real HTTP on the TAP service.

Content negotiation (a browser's Accept gets HTML; pyvo's ``*/*``, ``text/xml``
and no Accept get the same schema-valid XML as before), the query page and its
form without JavaScript, file names of downloads, the result preview and the
actions each phase allows, the page weight. Safety: test_pages_safety.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import FormData
from pagekit import API_ACCEPTS, HOSTILE, HTML, actions, finished, new_job, page, parse
from testkit import Client

from taprunner.formats.registry import OUTPUT_FORMATS

# -- content negotiation --------------------------------------------------------


def varies(response: Any) -> set[str]:
    """The request headers a response's ``Vary`` names (lower case)."""
    return {
        name.strip().lower()
        for value in response.headers.getall("Vary", [])
        for name in value.split(",")
    }


@pytest.mark.parametrize(
    "path",
    [
        "/tap/tables",
        "/tap/tables/demo.stars",
        "/tap/capabilities",
        "/tap/availability",
        "/tap/async",
        "JOB",
    ],
)
async def test_api_clients_keep_the_xml_and_browsers_get_a_page(
    client: Client, assert_valid: Callable[[bytes], Any], path: str
) -> None:
    if path == "JOB":
        path = "/tap/async/" + await new_job(client, QUERY="SELECT 1")
    bodies = set()
    for headers in API_ACCEPTS:
        response = await client.get(path, headers=headers)
        assert response.status == 200
        assert response.content_type == "text/xml"
        assert "Content-Security-Policy" not in response.headers
        assert "accept" in varies(response)  # caches tell them apart
        body = await response.read()
        if path != "/tap/availability":  # its note may change
            bodies.add(body)
        assert_valid(body)
        assert b"xml-stylesheet" not in body  # opt-in now
    assert len(bodies) <= 1  # byte for byte the same for every API client
    text = await page(client, path)
    assert text.startswith("<!DOCTYPE html>")
    assert "Accept" in (await client.get(path, headers=HTML)).headers["Vary"]


async def test_examples_stay_xhtml_for_clients_and_link_the_query_page(
    client: Client,
) -> None:
    for headers in API_ACCEPTS:
        response = await client.get("/tap/examples", headers=headers)
        assert response.content_type == "application/xhtml+xml"
        assert "accept" in varies(response)  # caches tell them apart
    text = await page(client, "/tap/examples")
    links = [
        a["href"] for t, a in parse(text).tags if "example-link" in a.get("class", "")
    ]
    assert links and all(link.startswith("/?query=") for link in links)
    assert 'typeof="example"' in text and 'property="query"' in text
    filled = await page(client, links[0])
    assert "demo.stars" in filled


# -- the query page ----------------------------------------------------------------


async def test_query_page_offers_editor_formats_examples_and_tables(
    client: Client,
) -> None:
    text = await page(client, "/")
    found = parse(text)
    # Paths, not absolute URLs: the browser stays on the host it came to.
    assert all(
        not a.get(k, "/").startswith("http")
        for t, a in found.tags
        for k in ("action", "formaction", "src")
    )
    for ident in (
        "query-form",
        "query",
        "maxrec",
        "format",
        "submit-async",
        "submit-sync",
        "example-list",
        "schema-browser",
    ):
        assert found.by_id(ident) is not None, ident
    values = [
        a["value"] for t, a in found.tags if t == "option" and "data-extension" in a
    ]
    assert values == [f.accepts[0] for f in OUTPUT_FORMATS]
    assert found.by_id("submit-async")["formaction"].endswith("/tap/async")
    columns = [a for t, a in found.tags if "column" in a.get("class", "").split()]
    ra = next(
        a
        for a in columns
        if a["data-table"] == "demo.stars" and a["data-column"] == "ra"
    )
    assert ra["data-ucd"].startswith("pos.eq.ra") and ra["data-unit"] == "deg"
    filled = await page(client, "/?query=SELECT+TOP+3+*+FROM+demo.stars")
    assert ">SELECT TOP 3 * FROM demo.stars</textarea>" in filled


async def test_the_form_posts_without_javascript(client: Client) -> None:
    origin = str(client.make_url("/")).rstrip("/")
    form = {
        "LANG": "ADQL",
        "QUERY": "SELECT TOP 5 id, ra, dec FROM demo.stars",
        "MAXREC": "100",
        "RESPONSEFORMAT": "csv",
    }
    headers = {**HTML, "Origin": origin}
    sync = await client.post("/tap/sync", data=form, headers=headers)
    assert sync.status == 200 and sync.content_type == "text/csv"
    assert (
        sync.headers["Content-Disposition"] == 'attachment; filename="tap-result.csv"'
    )
    assert len((await sync.text()).splitlines()) == 6
    created = await client.post(
        "/tap/async",
        data={**form, "PHASE": "RUN"},
        headers=headers,
        allow_redirects=False,
    )
    assert created.status == 303
    job_id = created.headers["Location"].rsplit("/", 1)[1]
    assert await finished(client, job_id) == "COMPLETED"
    text = await page(client, f"/tap/async/{job_id}")
    assert parse(text).by_id("job")["data-phase"] == "COMPLETED"


async def test_pyvo_sync_gets_no_content_disposition(client: Client) -> None:
    response = await client.post(
        "/tap/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT 1 AS x"},
        headers={"Accept": "*/*"},
    )
    assert response.status == 200
    assert "Content-Disposition" not in response.headers


# -- job pages -------------------------------------------------------------------


async def test_actions_follow_the_phase(client: Client) -> None:
    pending = await new_job(client, QUERY="SELECT TOP 2 id FROM demo.stars")
    text = await page(client, f"/tap/async/{pending}")
    assert actions(text) == {"action-run", "action-abort", "action-delete"}
    done = await new_job(client, run=True, QUERY="SELECT TOP 2 id FROM demo.stars")
    assert await finished(client, done) == "COMPLETED"
    text = await page(client, f"/tap/async/{done}")
    assert actions(text) == {"action-delete"}  # no Abort on COMPLETED
    assert re.search(r'id="time-end">\d{4}-\d\d-\d\dT[\d:.]+Z<', text)
    aborted = await new_job(client, QUERY="SELECT 1")
    await client.post(f"/tap/async/{aborted}/phase", data={"PHASE": "ABORT"})
    assert actions(await page(client, f"/tap/async/{aborted}")) == {"action-delete"}


async def test_error_job_shows_its_message(client: Client) -> None:
    job_id = await new_job(client, run=True, QUERY="SELECT nonsense FROM nowhere")
    assert await finished(client, job_id) == "ERROR"
    text = await page(client, f"/tap/async/{job_id}")
    assert parse(text).by_id("error-message") is not None
    assert "nowhere" in text


async def test_hostile_parameters_are_escaped(client: Client) -> None:
    job_id = await new_job(client, QUERY=HOSTILE, RUNID=HOSTILE, note=HOSTILE)
    text = await page(client, f"/tap/async/{job_id}")
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in text
    missing = await page(client, "/tap/tables/" + "%3Cscript%3Ex", status=404)
    assert "<script>x" not in missing and "&lt;script&gt;x" in missing


async def test_preview_rows_and_download_names(client: Client) -> None:
    job_id = await new_job(
        client,
        run=True,
        QUERY="SELECT TOP 7 id, ra, dec, mag FROM demo.stars ORDER BY id",
    )
    assert await finished(client, job_id) == "COMPLETED"
    text = await page(client, f"/tap/async/{job_id}")
    found = parse(text)
    count = found.by_id("preview-count")
    assert count is not None and count["data-rows"] == "7"
    assert count["data-partial"] == "false"
    body = text.split('id="preview"', 1)[1].split("</table>", 1)[0]
    assert body.count("<tr>") == 1 + 7  # the header and seven rows
    heads = {
        a["data-name"]: a for t, a in found.tags if "col" in a.get("class", "").split()
    }
    assert heads["ra"]["data-ucd"].startswith("pos.eq.ra")
    downloads = [a for t, a in found.tags if "download" in a.get("class", "").split()]
    assert downloads[0]["download"] == f"{job_id}-result.vot"
    listed = await client.get(
        f"/tap/async/{job_id}/results", headers=HTML, allow_redirects=False
    )
    assert listed.status == 303  # a browser sees the results on the job page
    assert listed.headers["Location"].endswith(f"/tap/async/{job_id}#job-results")
    result = await client.get(f"/tap/async/{job_id}/results/result")
    assert (
        result.headers["Content-Disposition"]
        == f'attachment; filename="{job_id}-result.vot"'
    )
    others = {a["value"] for t, a in found.tags if a.get("name") == "RESPONSEFORMAT"}
    assert others == {f.accepts[0] for f in OUTPUT_FORMATS[1:]}
    csv_job = await new_job(
        client,
        run=True,
        QUERY="SELECT TOP 300 id FROM demo.stars",
        RESPONSEFORMAT="csv",
    )
    assert await finished(client, csv_job) == "COMPLETED"
    result = await client.get(f"/tap/async/{csv_job}/results/result")
    assert (
        result.headers["Content-Disposition"]
        == f'attachment; filename="{csv_job}-result.csv"'
    )
    count = parse(await page(client, f"/tap/async/{csv_job}")).by_id("preview-count")
    assert (
        count is not None
        and count["data-rows"] == "100"
        and count["data-partial"] == "true"
    )


async def test_static_assets_and_page_weight(client: Client) -> None:
    text = await page(client, "/")
    weight = len(text.encode())
    assets = re.findall(r'(?:href|src)="[^"]*(/static/[^"]+)"', text)
    assert assets
    for path in assets:
        response = await client.get(path)
        assert response.status == 200
        weight += len(await response.read())
    print(f"query page weight: {weight} bytes (HTML {len(text.encode())})")
    assert weight < 100_000


async def test_extreme_numbers_and_long_cells_still_make_a_page(
    client: Client,
) -> None:
    """A histogram over the whole range of doubles (its width overflows), and
    a CSV cell longer than the csv module's field limit: the job page shows,
    with what it can (no 500)."""
    wide = await new_job(
        client,
        run=True,
        QUERY="SELECT TOP 2 (id - 1.5) * 2 * 1.7e308 AS x FROM demo.stars ORDER BY id",
    )
    assert await finished(client, wide) == "COMPLETED"
    text = await page(client, f"/tap/async/{wide}")
    assert parse(text).by_id("preview") is not None
    cell = "x" * 140_000
    form = FormData()
    form.add_field("LANG", "ADQL")
    form.add_field("QUERY", "SELECT s FROM TAP_UPLOAD.t")
    form.add_field("RESPONSEFORMAT", "csv")
    form.add_field("PHASE", "RUN")
    form.add_field("UPLOAD", "t,param:t")
    form.add_field(
        "t",
        (
            '<VOTABLE version="1.3" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
            '<RESOURCE><TABLE><FIELD name="s" datatype="char" arraysize="*"/>'
            f"<DATA><TABLEDATA><TR><TD>{cell}</TD></TR></TABLEDATA></DATA>"
            "</TABLE></RESOURCE></VOTABLE>"
        ).encode(),
        filename="t.vot",
        content_type="application/x-votable+xml",
    )
    created = await client.post("/tap/async", data=form, allow_redirects=False)
    assert created.status == 303, await created.text()
    long_id = created.headers["Location"].rsplit("/", 1)[1]
    assert await finished(client, long_id) == "COMPLETED"
    text = await page(client, f"/tap/async/{long_id}")
    assert parse(text).by_id("downloads") is not None


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS, ids=lambda f: f.name)
async def test_a_page_for_a_result_in_each_format_and_an_empty_one(
    client: Client, fmt: Any
) -> None:
    for query, rows in (
        ("SELECT TOP 3 id, ra, dec, mag, name FROM demo.stars ORDER BY id", "3"),
        ("SELECT id, ra, dec FROM demo.stars WHERE id < 0", "0"),
    ):
        job_id = await new_job(
            client, run=True, QUERY=query, RESPONSEFORMAT=fmt.accepts[0]
        )
        assert await finished(client, job_id) == "COMPLETED"
        found = parse(await page(client, f"/tap/async/{job_id}"))
        count = found.by_id("preview-count")
        assert count is not None, (fmt.name, query)
        assert count["data-rows"] == rows, (fmt.name, query)
