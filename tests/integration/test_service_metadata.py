"""Service metadata for operators: title, description, publisher, contact and
IVOID as settings, shown on the home page and in the VOResource record at
/tap/resource (schema-valid); the examples from the operator's file or
generated from the published tables, never the demo's without the demo."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from lxml import etree
from testkit import Client, MakeClient

from aiouws.config import ConfigError, Settings
from taprunner.settings import TapSettings
from taprunner.web.app import create_tap_app
from taprunner.web.examples import load_examples

RI = "{http://www.ivoa.net/xml/RegistryInterface/v1.0}"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
XHTML = "{http://www.w3.org/1999/xhtml}"
META = {
    "title": "Example Sky Archive TAP",
    "description": "Positions & magnitudes of the example survey.",
    "publisher": "Example Observatory",
    "contact_name": "Ada Archivist",
    "contact_email": "ada@example.org",
    "ivoid": "ivo://example.org/archive/tap",
}


@pytest.fixture
def app_tap(app_settings: Settings) -> TapSettings:
    return TapSettings.for_service(app_settings, **META)


async def _client(
    settings: Settings, make: MakeClient, demo_rows: int, **tap: Any
) -> Client:
    config = TapSettings.for_service(settings, **tap)
    app: web.Application = create_tap_app(settings, config, demo_rows=demo_rows)
    return await make(app)


def _queries(document: bytes) -> list[str]:
    tree = etree.fromstring(document)
    return [
        "".join(e.itertext())
        for e in tree.iter(f"{XHTML}pre")
        if e.get("property") == "query"
    ]


async def test_resource_record_is_valid_and_says_the_settings(
    client: Client, assert_valid: Callable[[bytes], Any]
) -> None:
    response = await client.get("/tap/resource")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    tree = assert_valid(await response.read())
    assert tree.tag == f"{RI}Resource"
    assert tree.get(f"{XSI}type") == "vs:CatalogService"
    assert tree.findtext("title") == META["title"]
    assert tree.findtext("identifier") == META["ivoid"]
    assert tree.findtext("curation/publisher") == META["publisher"]
    assert tree.findtext("curation/contact/name") == META["contact_name"]
    assert tree.findtext("curation/contact/email") == META["contact_email"]
    assert tree.findtext("content/description") == META["description"]
    assert tree.findtext("content/referenceURL").endswith("/tap")
    standards = [c.get("standardID") for c in tree.findall("capability")]
    assert standards[0] == "ivo://ivoa.net/std/TAP"
    assert "ivo://ivoa.net/std/VOSI#tables-1.1" in standards
    tables = [t.findtext("name") for t in tree.iterfind("tableset/schema/table")]
    assert "demo.stars" in tables and "tap_schema.columns" in tables


async def test_home_page_shows_the_metadata(client: Client) -> None:
    page = await (await client.get("/")).text()
    assert "<title>Example Sky Archive TAP</title>" in page
    assert "Positions &amp; magnitudes" in page
    assert "Example Observatory" in page and "mailto:ada@example.org" in page
    assert "ivo://example.org/archive/tap" in page and "/tap/resource" in page


async def test_without_ivoid_the_record_says_it_is_unregistered(
    settings: Settings,
    aiohttp_client: MakeClient,
    assert_valid: Callable[[bytes], Any],
) -> None:
    client = await _client(settings, aiohttp_client, 0)
    tree = assert_valid(await (await client.get("/tap/resource")).read())
    assert tree.findtext("identifier").startswith("ivo://x-unregistered/")
    assert tree.findtext("title") == "aiouws TAP service"


@pytest.mark.parametrize("demo_rows", [0, 500])
async def test_generated_examples_follow_the_published_tables(
    settings: Settings, aiohttp_client: MakeClient, demo_rows: int
) -> None:
    client = await _client(settings, aiohttp_client, demo_rows)
    response = await client.get("/tap/examples")
    assert response.headers["Content-Type"].startswith("application/xhtml+xml")
    queries = _queries(await response.read())
    uses_demo = [q for q in queries if "demo.stars" in q]
    assert bool(uses_demo) == (demo_rows > 0)
    assert any("TAP_SCHEMA.tables" in q for q in queries)
    for query in queries:  # every example runs (taplint's W-EXA-QERR)
        result = await client.get(
            "/tap/sync", params={"LANG": "ADQL", "QUERY": query, "MAXREC": "5"}
        )
        assert result.status == 200, (query, await result.text())


async def test_operator_examples_from_toml_and_xhtml(
    settings: Settings, aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    listed = tmp_path / "examples.toml"
    listed.write_text(
        '[[example]]\nname = "Count"\ndescription = "How many."\n'
        'query = "SELECT COUNT(*) FROM TAP_SCHEMA.tables"\n'
    )
    client = await _client(settings, aiohttp_client, 100, examples=str(listed))
    body = await (await client.get("/tap/examples")).read()
    assert _queries(body) == ["SELECT COUNT(*) FROM TAP_SCHEMA.tables"]
    page = tmp_path / "examples.html"
    page.write_bytes(body.replace(b"How many.", b"Our own page."))
    client = await _client(settings, aiohttp_client, 0, examples=str(page))
    assert await (await client.get("/tap/examples")).read() == page.read_bytes()


def test_bad_metadata_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an IVOA identifier"):
        TapSettings(ivoid="http://example.org/tap")
    with pytest.raises(ConfigError, match="has no @"):
        TapSettings(contact_email="nobody")
    with pytest.raises(ConfigError, match=r"\.toml list or an XHTML"):
        TapSettings(examples="examples.txt")
    broken = tmp_path / "bad.toml"
    broken.write_text("[[example]]\nname = 1\n")
    with pytest.raises(ConfigError, match="needs name and query"):
        load_examples(str(broken))
    with pytest.raises(ConfigError, match="cannot read"):
        load_examples(str(tmp_path / "missing.html"))


async def test_with_require_auth_the_public_record_keeps_the_tables_private(
    settings: Settings,
    aiohttp_client: MakeClient,
    assert_valid: Callable[[bytes], Any],
) -> None:
    """/tap/resource is public (registries harvest it without credentials), but
    with require_auth /tap/tables is not: the record must not hand anonymous
    callers the tableset (tables, columns, descriptions) that /tap/tables
    refuses them; an authenticated caller gets it. Before: all of it, to anyone."""
    from dataclasses import replace

    client = await _client(
        replace(settings, auth="header", require_auth=True), aiohttp_client, 10
    )
    assert (await client.get("/tap/tables")).status == 401
    anonymous = await client.get("/tap/resource")
    assert anonymous.status == 200
    tree = assert_valid(await anonymous.read())
    assert tree.find("tableset") is None
    assert b"demo.stars" not in etree.tostring(tree)
    alice = await client.get("/tap/resource", headers={"X-Remote-User": "alice"})
    tree = assert_valid(await alice.read())
    tables = [t.findtext("name") for t in tree.iterfind("tableset/schema/table")]
    assert "demo.stars" in tables


async def test_resource_created_is_the_first_setup_and_survives_restarts(
    settings: Settings, aiohttp_client: MakeClient, db_dsn: str
) -> None:
    """``created`` is when the database was first set up (its first migration),
    the same from a restarted service; ``updated`` is not before it."""
    stamps = []
    for _start in range(2):
        client = await _client(settings, aiohttp_client, 0)
        tree = etree.fromstring(await (await client.get("/tap/resource")).read())
        stamps.append((tree.get("created"), tree.get("updated")))
        await client.close()
    conn = await asyncpg.connect(db_dsn)
    try:
        first = await conn.fetchval("SELECT min(applied) FROM uws.schema_migration")
    finally:
        await conn.close()
    expected = first.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    assert stamps[0][0] == stamps[1][0]
    assert stamps[0][0].startswith(expected), (stamps, first)
    assert stamps[1][1] >= stamps[1][0] and stamps[1][1] >= stamps[0][1]
