"""TAP uploads through HTTP: multipart sync queries and async jobs."""

from __future__ import annotations

import io
from dataclasses import replace

import asyncpg
import numpy as np
import pytest
from aiohttp import FormData, web
from astropy.io.votable import parse  # type: ignore[import-untyped]
from astropy.table import Table  # type: ignore[import-untyped]
from testkit import STARS, Client, DbSetup
from uploadkit import MB, ODD, ids_table, votable

from aiouws.config import Settings
from taprunner.web.app import create_tap_app

# --------------------------------------------------------------------------------
# Through HTTP: sync and async


@pytest.fixture
def db_setup() -> DbSetup:
    return STARS


@pytest.fixture
def app(settings: Settings, conn: asyncpg.Connection) -> web.Application:
    """The TAP service (no demo table) on the database ``conn`` has set up."""
    return create_tap_app(replace(settings, max_upload_bytes=MB))


def query_form(adql: str, **files: bytes) -> FormData:
    form = FormData()
    form.add_field("LANG", "ADQL")
    form.add_field("QUERY", adql)
    form.add_field("UPLOAD", ";".join(f"{n},param:{n}" for n in files))
    for name, data in files.items():
        form.add_field(
            name, data, filename=f"{name}.vot", content_type="application/x-votable+xml"
        )
    return form


async def test_sync_query_with_upload(client: Client) -> None:
    form = query_form(
        "SELECT s.id, s.mag, t.label FROM tst.stars AS s "
        "JOIN TAP_UPLOAD.t AS t ON t.id = s.id",
        t=ids_table([2, 3], "x"),
    )
    resp = await client.post("/tap/sync", data=form)
    body = await resp.read()
    assert resp.status == 200, body
    rows = parse(io.BytesIO(body)).get_first_table().to_table(use_names_over_ids=True)
    assert [tuple(r) for r in rows] == [(2, 12.5, "x2")]

    resp = await client.post(
        "/tap/sync", data=query_form("SELECT * FROM TAP_UPLOAD.t", t=b"<VOTABLE>")
    )
    assert resp.status == 400
    assert "upload 't' is not a valid VOTable" in await resp.text()


async def test_async_job_with_upload(client: Client) -> None:
    form = query_form(
        'SELECT "Ra Deg" FROM TAP_UPLOAD.odd WHERE "Id" = 1', odd=ODD.encode()
    )
    form.add_field("PHASE", "RUN")
    resp = await client.post("/tap/async", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    job = resp.headers["Location"].split("://", 1)[-1].partition("/")[2]
    phase = ""
    for _ in range(20):
        phase = await (await client.get(f"/{job}/phase")).text()
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            break
        await client.get(f"/{job}?WAIT=5&PHASE={phase}")
    if phase != "COMPLETED":
        error = await (await client.get(f"/{job}/error")).text()
        raise AssertionError(f"job ended {phase}: {error}")
    body = await (await client.get(f"/{job}/results/result")).read()
    rows = parse(io.BytesIO(body)).get_first_table().to_table(use_names_over_ids=True)
    assert list(rows["Ra Deg"]) == [10.5]


async def test_an_upload_with_the_longest_allowed_name_is_stored_and_served(
    client: Client,
) -> None:
    """A part name at the file-name limit (128 characters) is a valid upload:
    the job is created and its upload is served back, never a 500 (the store
    names it ``upload-<name>``, longer than the name itself)."""
    name = "t" + "x" * 127
    form = query_form(f"SELECT * FROM TAP_UPLOAD.{name}", **{name: ODD.encode()})
    resp = await client.post("/tap/async", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    job = resp.headers["Location"].split("://", 1)[-1].partition("/")[2]
    resp = await client.get(f"/{job}/uploads/{name}")
    assert resp.status == 200, await resp.text()
    assert await resp.read() == ODD.encode()


async def test_numeric_binary2_uploads_stream_and_broken_ones_are_400(
    client: Client,
) -> None:
    """A numeric BINARY2 upload (the binary COPY path) joins; cut short it
    is a 400 naming the upload, synchronously and as a job's error."""
    table = votable(Table({"id": np.array([2, 5, 1], dtype=np.int64)}), "binary2")
    adql = (
        "SELECT s.id, s.mag FROM tst.stars AS s JOIN TAP_UPLOAD.t AS t ON t.id = s.id"
    )
    resp = await client.post("/tap/sync", data=query_form(adql, t=table))
    body = await resp.read()
    assert resp.status == 200, body
    rows = parse(io.BytesIO(body)).get_first_table().to_table(use_names_over_ids=True)
    assert sorted(tuple(r) for r in rows) == [(1, 11.5), (2, 12.5)]
    cut = table[: table.index(b"</STREAM>") - 6]
    resp = await client.post("/tap/sync", data=query_form(adql, t=cut))
    assert resp.status == 400
    assert "upload 't' is not a valid VOTable" in await resp.text()
    form = query_form(adql, t=cut)
    form.add_field("PHASE", "RUN")
    resp = await client.post("/tap/async", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    job = resp.headers["Location"].split("://", 1)[-1].partition("/")[2]
    phase = await (await client.get(f"/{job}?WAIT=30&PHASE=QUEUED")).text()
    for _ in range(20):
        phase = await (await client.get(f"/{job}/phase")).text()
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            break
        await client.get(f"/{job}?WAIT=5&PHASE={phase}")
    assert phase == "ERROR"
    error = await (await client.get(f"/{job}/error")).text()
    assert "upload 't' is not a valid VOTable" in error
