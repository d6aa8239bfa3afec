"""What clients send the UWS API: uploads, size limits, odd and malformed input."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import FormData, web
from testkit import Client, MakeClient
from uwskit import ECHO, create, echo_app

from aiouws.config import Settings
from aiouws.http.app import create_app


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return echo_app(settings)


async def test_upload_stored_in_job_dir_and_by_reference(
    client: Client, settings: Settings, assert_valid: Any
) -> None:
    form = FormData()
    form.add_field("needed", "1")
    form.add_field(
        "table1",
        b"<VOTABLE/>",
        filename="../../evil.xml",
        content_type="application/x-votable+xml",
    )
    resp = await client.post("/jobs/echo", data=form, allow_redirects=False)
    assert resp.status == 303
    job_id = resp.headers["Location"].rsplit("/", 1)[1]
    stored = settings.resolved_jobs_dir / job_id / "upload-table1"
    assert stored.read_bytes() == b"<VOTABLE/>"
    tree = assert_valid(
        await (await client.get(f"/jobs/echo/{job_id}/parameters")).read()
    )
    upload = next(p for p in tree if p.get("id") == "table1")
    assert upload.get("byReference") == "true"
    assert upload.text.endswith(f"/jobs/echo/{job_id}/uploads/table1")
    resp = await client.get(f"/jobs/echo/{job_id}/uploads/table1")
    assert await resp.read() == b"<VOTABLE/>"


async def test_upload_with_traversal_name_is_rejected(
    client: Client, settings: Settings
) -> None:
    form = FormData()
    form.add_field("../escape", b"x", filename="x.txt")
    resp = await client.post("/jobs/echo", data=form)
    assert resp.status == 400
    assert not (settings.resolved_jobs_dir.parent / "escape").exists()
    assert (await client.get("/jobs/echo")).status == 200


async def test_oversize_upload_gives_413(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    from dataclasses import replace

    small = replace(settings, max_upload_bytes=1000)
    client = await aiohttp_client(create_app(small, [ECHO], execute=False))
    form = FormData()
    form.add_field("t", b"x" * 5000, filename="t.vot")
    resp = await client.post("/jobs/echo", data=form)
    assert resp.status == 413
    assert (await client.get("/jobs/echo")).status == 200


async def test_oversize_url_gives_414(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    from aiohttp.test_utils import TestServer

    server = TestServer(create_app(settings, [ECHO], execute=False))
    await server.start_server(max_line_size=2 * settings.max_url_bytes)
    client = await aiohttp_client(server)
    long_value = "a" * (settings.max_url_bytes + 1)
    resp = await client.get("/jobs/echo", params={"x": long_value})
    assert resp.status == 414
    assert "POST" in await resp.text()
    assert (await client.get("/jobs/echo")).status == 200


async def test_uploads_are_limited_in_total(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    from dataclasses import replace

    client = await aiohttp_client(
        create_app(replace(settings, max_upload_bytes=3000), [ECHO], execute=False)
    )
    form = FormData()
    for i in range(3):
        form.add_field(f"t{i}", b"x" * 1500, filename=f"t{i}.vot")
    resp = await client.post("/jobs/echo", data=form)
    assert resp.status == 413
    leftovers = list((settings.resolved_jobs_dir / ".spool").glob("*"))
    assert leftovers == []


async def test_control_characters_never_break_documents(
    client: Client, assert_valid: Any
) -> None:
    job_id = await create(client, needed="a\x01b", RUNID="run\x02", other="\x1f")
    for url in (
        f"/jobs/echo/{job_id}",
        f"/jobs/echo/{job_id}/parameters",
        "/jobs/echo",
    ):
        resp = await client.get(url)
        assert resp.status == 200, url
        assert_valid(await resp.read())


async def test_malformed_input_gives_4xx_not_500(client: Client) -> None:
    job_id = await create(client, needed="1")
    bad_form = b"needed=x"
    cases = [
        client.post("/jobs/echo", data={"needed": "a\x00b"}),
        client.post("/jobs/echo", data={"RUNID": "\x00"}),
        client.post(
            f"/jobs/echo/{job_id}/destruction",
            data={"DESTRUCTION": "9999-12-31T23:59:59-05:00"},
        ),
        client.get("/jobs/echo", params={"AFTER": "0001-01-01T00:00:00+05:00"}),
        client.post(
            "/jobs/echo",
            data=bad_form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=bogus"
            },
        ),
    ]
    for part_headers, body in (
        ({"Content-Type": "text/plain; charset=utf-8"}, b"\xff\xfe\xfa"),
        ({"Content-Type": "text/plain; charset=nonsense"}, b"x"),
    ):
        form = (
            b'--XX\r\nContent-Disposition: form-data; name="needed"\r\n'
            + b"".join(f"{k}: {v}\r\n".encode() for k, v in part_headers.items())
            + b"\r\n"
            + body
            + b"\r\n--XX--\r\n"
        )
        cases.append(
            client.post(
                "/jobs/echo",
                data=form,
                headers={"Content-Type": "multipart/form-data; boundary=XX"},
            )
        )
    truncated = b'--XX\r\nContent-Disposition: form-data; name="needed"\r\n\r\nabc'
    cases.append(
        client.post(
            "/jobs/echo",
            data=truncated,
            headers={"Content-Type": "multipart/form-data; boundary=XX"},
        )
    )
    for request in cases:
        resp = await request
        assert 400 <= resp.status < 500, (resp.status, await resp.text())
    assert (await client.get("/jobs/echo")).status == 200
