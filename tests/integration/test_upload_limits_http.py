"""Upload limits through HTTP: a hostile upload is a 400 naming the limit (sync)
or a job error (async), checked before it is parsed; legit uploads still work."""

from __future__ import annotations

import io
import time

import pytest
from aiohttp import FormData
from astropy.io.votable import parse  # type: ignore[import-untyped]
from testkit import Client
from uploadkit import ids_table

from aiouws.config import Settings
from taprunner.settings import TapSettings

HOSTILE = (
    b'<?xml version="1.0"?><VOTABLE version="1.4" '
    b'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
    b'<FIELD name="a" datatype="double" arraysize="5000000"/>'
    b"<DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE>"
    b"</RESOURCE></VOTABLE>"
)


@pytest.fixture
def app_tap(settings: Settings) -> TapSettings:
    return TapSettings.for_service(settings, upload_cells=100)


def form(upload: bytes, **extra: str) -> FormData:
    data = FormData()
    data.add_field("LANG", "ADQL")
    data.add_field("QUERY", "SELECT * FROM TAP_UPLOAD.t")
    data.add_field("UPLOAD", "t,param:t")
    for name, value in extra.items():
        data.add_field(name, value)
    data.add_field("t", upload, filename="t.vot", content_type="text/xml")
    return data


async def test_a_hostile_sync_upload_is_a_quick_400_naming_the_limit(
    client: Client,
) -> None:
    start = time.perf_counter()
    resp = await client.post("/tap/sync", data=form(HOSTILE))
    assert resp.status == 400
    assert time.perf_counter() - start < 5.0
    body = await resp.text()
    assert 'value="ERROR"' in body and "(tap_value_bytes)" in body
    resp = await client.post("/tap/sync", data=form(ids_table(list(range(51)))))
    assert resp.status == 400  # 51 rows x 2 FIELDs
    assert "102 values (51 rows x 2 FIELDs)" in await resp.text()
    assert "(tap_upload_cells)" in await resp.text()


async def test_a_legit_upload_still_works_sync_and_async(client: Client) -> None:
    upload = ids_table(list(range(50)))  # 100 values: the limit
    resp = await client.post("/tap/sync", data=form(upload))
    body = await resp.read()
    assert resp.status == 200, body
    assert len(parse(io.BytesIO(body)).get_first_table().array) == 50
    resp = await client.post("/tap/async", data=form(upload, PHASE="RUN"))
    url = resp.url.path
    document = ""
    for _ in range(20):
        document = await (await client.get(url + "?WAIT=5")).text()
        if "COMPLETED" in document or "ERROR" in document:
            break
    assert "<uws:phase>COMPLETED</uws:phase>" in document, document
    assert '<note key="rows">50</note>' in document


async def test_a_hostile_async_upload_ends_its_job_naming_the_limit(
    client: Client,
) -> None:
    resp = await client.post("/tap/async", data=form(HOSTILE, PHASE="RUN"))
    url = resp.url.path
    document = ""
    for _ in range(20):
        document = await (await client.get(url + "?WAIT=5")).text()
        if "COMPLETED" in document or "ERROR" in document:
            break
    assert "<uws:phase>ERROR</uws:phase>" in document, document
    error = await (await client.get(url + "/error")).text()
    assert "(tap_value_bytes)" in error
