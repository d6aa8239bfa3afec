"""The HTML pages for browsers, over real HTTP on the TAP service.

Content negotiation (a browser's Accept gets HTML; pyvo's ``*/*``, ``text/xml``
and no Accept get the same schema-valid XML as before), escaping of hostile
parameters, cross-site form posts refused, the Content-Security-Policy, file
names of downloads, the result preview and the actions each phase allows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from testkit import Client, MakeClient
from uwskit import ECHO

from aiouws.config import Settings
from aiouws.http.app import create_app
from taprunner.formats.registry import OUTPUT_FORMATS
from taprunner.settings import TapSettings
from taprunner.web.app import create_tap_app

#: What Chromium sends for a page.
BROWSER = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
    "image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
HTML = {"Accept": BROWSER}
#: Accept headers of API clients: pyvo (*/*), a plain XML client, none at all.
API_ACCEPTS: list[dict[str, str]] = [
    {"Accept": "*/*"},
    {"Accept": "text/xml"},
    {},
    {"Accept": "text/html;q=0.5, text/xml"},
]
HOSTILE = "<script>alert('x')</script>"


class _Elements(HTMLParser):
    """Elements by id and class, and every start tag (for structure checks)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def by_id(self, ident: str) -> dict[str, str] | None:
        return next((a for _, a in self.tags if a.get("id") == ident), None)

    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.tags if "id" in a}


def parse(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    return parser


async def page(client: Client, path: str, status: int = 200) -> str:
    response = await client.get(path, headers=HTML)
    assert response.status == status, await response.text()
    assert response.content_type == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "form-action 'self'" in response.headers["Content-Security-Policy"]
    return await response.text()


async def new_job(client: Client, *, run: bool = False, **params: str) -> str:
    data = {"LANG": "ADQL", **params}
    if run:
        data["PHASE"] = "RUN"
    response = await client.post("/tap/async", data=data, allow_redirects=False)
    assert response.status == 303, await response.text()
    return response.headers["Location"].rsplit("/", 1)[1]


async def finished(client: Client, job_id: str) -> str:
    for _ in range(60):
        response = await client.get(f"/tap/async/{job_id}/phase")
        phase = await response.text()
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            return phase
        await client.get(f"/tap/async/{job_id}?WAIT=5&PHASE={phase}")
    raise AssertionError(f"job {job_id} did not finish")


# -- content negotiation --------------------------------------------------------


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


def _actions(text: str) -> set[str]:
    return {
        a["id"]
        for t, a in parse(text).tags
        if t == "form" and "job-action" in a.get("class", "")
    }


async def test_actions_follow_the_phase(client: Client) -> None:
    pending = await new_job(client, QUERY="SELECT TOP 2 id FROM demo.stars")
    text = await page(client, f"/tap/async/{pending}")
    assert _actions(text) == {"action-run", "action-abort", "action-delete"}
    done = await new_job(client, run=True, QUERY="SELECT TOP 2 id FROM demo.stars")
    assert await finished(client, done) == "COMPLETED"
    text = await page(client, f"/tap/async/{done}")
    assert _actions(text) == {"action-delete"}  # no Abort on COMPLETED
    assert re.search(r'id="time-end">\d{4}-\d\d-\d\dT[\d:.]+Z<', text)
    aborted = await new_job(client, QUERY="SELECT 1")
    await client.post(f"/tap/async/{aborted}/phase", data={"PHASE": "ABORT"})
    assert _actions(await page(client, f"/tap/async/{aborted}")) == {"action-delete"}


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


# -- cross-site requests, errors ---------------------------------------------------


async def test_a_cross_site_form_post_is_refused(client: Client) -> None:
    evil = {**HTML, "Origin": "https://evil.example"}
    form = {"LANG": "ADQL", "QUERY": "SELECT 1", "PHASE": "RUN"}
    refused = await client.post(
        "/tap/async", data=form, headers=evil, allow_redirects=False
    )
    assert refused.status == 403 and refused.content_type == "text/html"
    text = await refused.text()
    assert "refused" in text and "https://evil.example" in text
    assert "Content-Security-Policy" in refused.headers
    job_id = await new_job(client, QUERY="SELECT 1")  # an API client: no Origin
    abort = await client.post(
        f"/tap/async/{job_id}/phase",
        data={"PHASE": "ABORT"},
        headers=evil,
        allow_redirects=False,
    )
    assert abort.status == 403
    sneaky = await client.post(
        f"/tap/async/{job_id}",
        data={"ACTION": "DELETE"},
        headers={"Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
    )
    assert sneaky.status == 403 and sneaky.content_type == "text/plain"
    assert await (await client.get(f"/tap/async/{job_id}/phase")).text() == "PENDING"
    own = str(client.make_url("/")).rstrip("/")
    allowed = await client.post(
        f"/tap/async/{job_id}/phase",
        data={"PHASE": "ABORT"},
        headers={**HTML, "Origin": own},
        allow_redirects=False,
    )
    assert allowed.status == 303
    # The page reached under another name of the host (not the public origin).
    other_name = f"localhost:{client.port}"
    job_id = await new_job(client, QUERY="SELECT 1")
    allowed = await client.post(
        f"/tap/async/{job_id}/phase",
        data={"PHASE": "ABORT"},
        headers={**HTML, "Origin": f"http://{other_name}", "Host": other_name},
        allow_redirects=False,
    )
    assert allowed.status == 303, await allowed.text()


async def test_dali_errors_are_pages_for_browsers(client: Client) -> None:
    bad = {"LANG": "ADQL", "QUERY": "SELECT FROM WHERE"}
    for_browser = await client.post("/tap/sync", data=bad, headers=HTML)
    assert for_browser.status == 400 and for_browser.content_type == "text/html"
    assert 'id="error-message"' in await for_browser.text()
    for_pyvo = await client.post("/tap/sync", data=bad, headers={"Accept": "*/*"})
    assert for_pyvo.status == 400
    assert for_pyvo.content_type == "application/x-votable+xml"


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


# -- authentication ------------------------------------------------------------


async def test_pages_respect_authentication(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    client = await aiohttp_client(
        create_tap_app(
            replace(settings, auth="header", require_auth=True), demo_rows=10
        )
    )
    for path in ("/", "/tap/async", "/tap/tables", "/tap/examples"):
        refused = await client.get(path, headers=HTML)
        assert refused.status == 401 and refused.content_type == "text/html", path
        assert "Content-Security-Policy" in refused.headers
    assert (await client.get("/static/uws.css")).status == 200  # public assets
    alice = {**HTML, "X-Remote-User": "alice"}
    bob = {**HTML, "X-Remote-User": "bob"}
    created = await client.post(
        "/tap/async",
        data={"LANG": "ADQL", "QUERY": "SELECT 1"},
        headers={"X-Remote-User": "alice"},
        allow_redirects=False,
    )
    job_id = created.headers["Location"].rsplit("/", 1)[1]
    mine = await client.get("/tap/async", headers=alice)
    assert job_id in await mine.text()
    assert "SELECT 1" in await mine.text()  # the list shows each job's query
    links = [
        a["href"]
        for t, a in parse(await mine.text()).tags
        if t == "a" and "PHASE=" in a.get("href", "")
    ]
    assert links  # the phase filter: plain links
    pending = await client.get(links[0], headers=alice)
    assert pending.status == 200 and job_id in await pending.text()
    theirs = await client.get(f"/tap/async/{job_id}", headers=bob)
    api = await client.get(f"/tap/async/{job_id}", headers={"X-Remote-User": "bob"})
    assert theirs.status == api.status and theirs.status in (403, 404)
    assert job_id not in await (await client.get("/tap/async", headers=bob)).text()


async def test_generic_uws_pages_need_no_tap(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    """A service of another job kind (aiouws alone) gets the same pages."""
    client = await aiohttp_client(create_app(settings, [ECHO], execute=False))
    created = await client.post(
        "/jobs/echo", data={"needed": HOSTILE}, allow_redirects=False
    )
    job_id = created.headers["Location"].rsplit("/", 1)[1]
    text = await page(client, f"/jobs/echo/{job_id}")
    found = parse(text)
    assert found.by_id("job")["data-phase"] == "PENDING"
    assert found.by_id("tap-result") is None and "<script>alert" not in text
    assert _actions(text) == {"action-run", "action-abort", "action-delete"}
    css = await client.get("/static/uws.css")
    assert css.status == 200 and css.content_type == "text/css"
    again = await client.get(
        "/static/uws.css", headers={"If-None-Match": css.headers["ETag"]}
    )
    assert again.status == 304
    xml = await client.get(f"/jobs/echo/{job_id}", headers={"Accept": "*/*"})
    assert xml.content_type == "text/xml"


async def test_the_operators_examples_document_feeds_the_query_page(
    settings: Settings, aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    document = tmp_path / "examples.xhtml"
    document.write_text(
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title></head>'
        '<body vocab="http://www.ivoa.net/rdf/examples#">'
        '<div typeof="example" id="bright" resource="#bright">'
        '<h2 property="name">Bright &lt;b&gt; stars</h2>'
        '<pre property="query">SELECT TOP 3 * FROM demo.stars WHERE mag &lt; 2</pre>'
        "</div></body></html>"
    )
    tap = TapSettings.for_service(settings, examples=str(document))
    client = await aiohttp_client(create_tap_app(settings, tap, demo_rows=10))
    served = await client.get("/tap/examples", headers={"Accept": "*/*"})
    assert await served.read() == document.read_bytes()  # the operator's, as is
    text = await page(client, "/")
    assert "Bright &lt;b&gt; stars" in text
    assert ">SELECT TOP 3 * FROM demo.stars WHERE mag &lt; 2</textarea>" in text
