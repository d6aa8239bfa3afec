"""The pages' safety, over real HTTP: cross-site form posts refused, errors as
pages for browsers (and unchanged for API clients), authentication as for the
API, escaping; pages of a service of another job kind; an operator's examples.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pagekit import HOSTILE, HTML, actions, new_job, page, parse
from testkit import Client, MakeClient
from uwskit import ECHO

from aiouws.config import Settings
from aiouws.http.app import create_app
from aiouws.storage.store import JobStore
from taprunner.settings import TapSettings
from taprunner.web.app import create_tap_app

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
    assert actions(text) == {"action-run", "action-abort", "action-delete"}
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


async def test_implicit_credentials_are_no_anonymous_cross_site_request(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    """With ``cors_any_origin``, a request without credentials may come from any
    page; but a user named by a trusted proxy (a client certificate, an SSO
    cookie the proxy keeps) carries no Authorization or Cookie header and is
    no anonymous user: another site's form must not act as them."""
    client = await aiohttp_client(
        create_tap_app(
            replace(settings, auth="header", cors_any_origin=True), demo_rows=10
        )
    )
    alice = {"X-Remote-User": "alice"}
    evil = {**HTML, **alice, "Origin": "https://evil.example"}
    form = {"LANG": "ADQL", "QUERY": "SELECT 1", "PHASE": "RUN"}
    refused = await client.post(
        "/tap/async", data=form, headers=evil, allow_redirects=False
    )
    assert refused.status == 403, await refused.text()
    assert "<job" not in await (await client.get("/tap/async", headers=alice)).text()
    job_id = await new_job(client, QUERY="SELECT 1")  # anonymous, no Origin
    anonymous = await client.post(
        f"/tap/async/{job_id}/phase",
        data={"PHASE": "ABORT"},
        headers={"Origin": "https://other.example"},
        allow_redirects=False,
    )
    assert anonymous.status == 303  # what cors_any_origin is for


async def test_the_job_list_page_reads_the_summaries_at_once(
    settings: Settings, aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list page shows the query of the newest jobs without reading each
    job in turn (one database round trip per job: 50 for a page)."""
    client = await aiohttp_client(
        create_tap_app(replace(settings, auth="header"), demo_rows=10)
    )
    alice = {"X-Remote-User": "alice"}
    for n in range(55):
        form = {"LANG": "ADQL", "QUERY": f"SELECT {n} AS  n{n}"}
        created = await client.post(
            "/tap/async", data=form, headers=alice, allow_redirects=False
        )
        assert created.status == 303
    reads = 0
    real_get = JobStore.get

    async def counted(self: JobStore, job_id: str) -> Any:
        nonlocal reads
        reads += 1
        return await real_get(self, job_id)

    monkeypatch.setattr(JobStore, "get", counted)
    text = await (await client.get("/tap/async", headers={**HTML, **alice})).text()
    summaries = re.findall(r'<code class="summary wrap">([^<]*)</code>', text)
    assert len(summaries) == 55
    assert summaries[0] == "SELECT 54 AS n54"  # newest first, spaces collapsed
    assert summaries[49] == "SELECT 5 AS n5" and summaries[50] == ""
    assert reads <= 1, reads
