"""pyvo end to end, service metadata: tables, capabilities, VOSI documents,
availability, examples, and long requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import pyvo
import requests
from liveserver import LiveServer
from pyvo.dal.exceptions import DALQueryError
from pyvokit import (
    MAXREC_DEFAULT,
    sync_query,
)


# ------------------------------------------------------------------------ VOSI, pyvo
def test_tables(tap: pyvo.dal.TAPService) -> None:
    tables = tap.tables
    names = set(tables.keys())
    assert {
        "demo.stars",
        "e2e.oddities",
        "tap_schema.tables",
        "tap_schema.columns",
    } <= names
    stars = {c.name: c for c in tables["demo.stars"].columns}
    assert list(stars) == ["id", "ra", "dec", "mag", "name"]
    assert stars["ra"].unit == "deg" and stars["mag"].unit == "mag"
    assert stars["ra"].ucd == "pos.eq.ra;meta.main"
    assert stars["id"].datatype.content == "long"
    odd = {c.name: c for c in tables["e2e.oddities"].columns}
    assert odd["flag"].datatype.content == "boolean"


def test_capabilities(tap: pyvo.dal.TAPService, pyvo_server: LiveServer) -> None:
    capability = tap.get_tap_capability()
    mimes = {f.mime for f in capability.outputformats}
    aliases = {a for f in capability.outputformats for a in f.aliases}
    assert {"votable", "votable/td", "votable/b", "csv", "tsv"} <= aliases
    assert "text/csv" in mimes
    for alias in aliases:  # every advertised format is accepted
        response = sync_query(
            pyvo_server, "SELECT TOP 1 id FROM demo.stars", RESPONSEFORMAT=alias
        )
        assert response.status_code == 200, (alias, response.text)
    languages = {language.name for language in capability.languages}
    assert languages == {"ADQL"}
    features = {
        f.form
        for language in capability.languages
        for fl in language.languagefeaturelists
        for f in fl
    }
    assert {"CONTAINS", "CIRCLE", "POINT", "DISTANCE"} <= features
    assert tap.maxrec == MAXREC_DEFAULT and tap.hardlimit == 100_000_000


def test_upload_methods_are_honest(tap: pyvo.dal.TAPService) -> None:
    """Advertised upload methods work; without any, an upload is refused clearly."""
    from astropy.table import Table

    upload = {"t1": Table({"x": [1, 2, 3]})}
    if tap.upload_methods:
        result = tap.run_sync("SELECT x FROM TAP_UPLOAD.t1 ORDER BY x", uploads=upload)
        assert list(result["x"]) == [1, 2, 3]
    else:
        with pytest.raises(DALQueryError, match="(?i)upload"):
            tap.run_async("SELECT x FROM TAP_UPLOAD.t1", uploads=upload)


@pytest.mark.parametrize(
    "path",
    [
        "capabilities",
        "tables",
        "tables?detail=min",
        "availability",
        "tables/demo.stars",
    ],
)
def test_vosi_documents_are_valid(
    path: str, pyvo_server: LiveServer, assert_valid: Callable[[bytes], Any]
) -> None:
    response = requests.get(f"{pyvo_server.tap_url}/{path}", timeout=30)
    assert response.status_code == 200
    assert "xml" in response.headers["Content-Type"]
    assert_valid(response.content)


def test_availability(pyvo_server: LiveServer) -> None:
    from lxml import etree

    page = requests.get(pyvo_server.tap_url + "/availability", timeout=30)
    ns = {"a": "http://www.ivoa.net/xml/VOSIAvailability/v1.0"}
    available = etree.fromstring(page.content).findtext("a:available", namespaces=ns)
    assert available == "true"


def test_examplesrun(tap: pyvo.dal.TAPService, pyvo_server: LiveServer) -> None:
    from lxml import etree

    page = requests.get(pyvo_server.tap_url + "/examples", timeout=30)
    tree = etree.fromstring(page.content)
    queries = tree.xpath("//*[@property='query']/text()")
    assert queries
    for query in queries:
        tap.run_sync(query)


def test_long_get_urls_get_414_and_long_queries_work_by_post(
    pyvo_server: LiveServer,
) -> None:
    ids = ",".join(str(i) for i in range(4000))
    query = f"SELECT TOP 1 id FROM demo.stars WHERE id IN ({ids})"
    resp = requests.get(
        pyvo_server.tap_url + "/sync",
        params={"LANG": "ADQL", "QUERY": query},
        timeout=30,
    )
    assert len(resp.request.url or "") > 16_000  # over aiohttp's default line limit
    assert resp.status_code == 200, resp.text[:300]
    huge = requests.get(
        pyvo_server.tap_url + "/sync",
        params={"LANG": "ADQL", "QUERY": query + " " * 15_000},
        timeout=30,
    )
    assert huge.status_code == 414, huge.text[:300]
    posted = requests.post(
        pyvo_server.tap_url + "/sync",
        data={"LANG": "ADQL", "QUERY": query + " " * 15_000},
        timeout=30,
    )
    assert posted.status_code == 200
