"""The UWS REST API on real HTTP and a real database; jobs are not executed."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from aiohttp import FormData, web
from testkit import Client, MakeClient

from aiouws.config import Settings
from aiouws.http.app import create_app, uws_context, uws_subapp
from aiouws.kinds import JobKind, ParameterSpec

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"

ECHO = JobKind(
    name="echo",
    entry_point="aiouws.demo:run",
    parameters=(
        ParameterSpec(name="seconds", type="float", default="0"),
        ParameterSpec(name="needed", required=True),
    ),
)


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings, [ECHO], execute=False)


async def create(client: Client, **params: str) -> str:
    resp = await client.post("/jobs/echo", data=params, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    location = resp.headers["Location"]
    assert "//jobs" not in location.split("://", 1)[1]
    return location.rsplit("/", 1)[1]


async def job_xml(client: Client, job_id: str, assert_valid: Any, **query: str) -> Any:
    resp = await client.get(f"/jobs/echo/{job_id}", params=query)
    assert resp.status == 200
    assert resp.content_type == "text/xml"
    return assert_valid(await resp.read())


async def test_create_and_read_job(client: Client, assert_valid: Any) -> None:
    job_id = await create(client, NEEDED="x", RUNID="my-run", Other="kept")
    assert len(job_id) >= 22
    tree = await job_xml(client, job_id, assert_valid)
    assert tree.get("version") == "1.1"
    assert tree.findtext(f"{UWS}jobId") == job_id
    assert tree.findtext(f"{UWS}phase") == "PENDING"
    assert tree.findtext(f"{UWS}runId") == "my-run"
    assert tree.find(f"{UWS}ownerId").get(XSI_NIL) == "true"
    assert tree.findtext(f"{UWS}executionDuration") == "3600"
    assert tree.findtext(f"{UWS}destruction").endswith("Z")
    params = {p.get("id"): p.text for p in tree.iter(f"{UWS}parameter")}
    assert params == {"needed": "x", "other": "kept"}


async def test_single_value_resources(client: Client) -> None:
    job_id = await create(client, needed="1")
    for name, expected in (
        ("phase", "PENDING"),
        ("executionduration", "3600"),
        ("owner", ""),
        ("quote", ""),
    ):
        resp = await client.get(f"/jobs/echo/{job_id}/{name}")
        assert resp.status == 200 and resp.content_type == "text/plain"
        assert await resp.text() == expected
    resp = await client.get(f"/jobs/echo/{job_id}/destruction")
    assert (await resp.text()).endswith("Z")


async def test_run_moves_to_queued_and_run_again_is_ignored(client: Client) -> None:
    job_id = await create(client, needed="1")
    for _ in range(2):
        resp = await client.post(
            f"/jobs/echo/{job_id}/phase", data={"phase": "RUN"}, allow_redirects=False
        )
        assert resp.status == 303
        assert resp.headers["Location"].endswith(f"/jobs/echo/{job_id}")
    assert await (await client.get(f"/jobs/echo/{job_id}/phase")).text() == "QUEUED"


async def test_create_with_phase_run(client: Client) -> None:
    job_id = await create(client, needed="1", PHASE="RUN")
    assert await (await client.get(f"/jobs/echo/{job_id}/phase")).text() == "QUEUED"


async def test_missing_required_parameter_errors_at_run(
    client: Client, assert_valid: Any
) -> None:
    job_id = await create(client)
    await client.post(f"/jobs/echo/{job_id}/phase", data={"PHASE": "RUN"})
    tree = await job_xml(client, job_id, assert_valid)
    assert tree.findtext(f"{UWS}phase") == "ERROR"
    assert "NEEDED" in tree.findtext(f"{UWS}errorSummary/{UWS}message")
    resp = await client.get(f"/jobs/echo/{job_id}/error")
    assert resp.status == 200 and "NEEDED" in await resp.text()


async def test_abort_pending_and_illegal_changes(client: Client) -> None:
    job_id = await create(client, needed="1")
    resp = await client.post(
        f"/jobs/echo/{job_id}/phase", data={"PHASE": "ABORT"}, allow_redirects=False
    )
    assert resp.status == 303
    assert await (await client.get(f"/jobs/echo/{job_id}/phase")).text() == "ABORTED"
    resp = await client.post(f"/jobs/echo/{job_id}/parameters", data={"needed": "2"})
    assert resp.status == 403
    assert "ABORTED" in await resp.text()
    resp = await client.post(
        f"/jobs/echo/{job_id}/executionduration", data={"EXECUTIONDURATION": "10"}
    )
    assert resp.status == 403


async def test_bad_values_give_400(client: Client) -> None:
    job_id = await create(client, needed="1")
    cases = [
        ("post", f"/jobs/echo/{job_id}/phase", {"PHASE": "EXPLODE"}),
        ("post", f"/jobs/echo/{job_id}/phase", {}),
        (
            "post",
            f"/jobs/echo/{job_id}/executionduration",
            {"EXECUTIONDURATION": "soon"},
        ),
        ("post", f"/jobs/echo/{job_id}/destruction", {"DESTRUCTION": "tomorrow"}),
        ("post", f"/jobs/echo/{job_id}", {"ACTION": "EXPLODE"}),
        ("get", f"/jobs/echo/{job_id}?WAIT=abc", None),
        ("get", "/jobs/echo?LAST=-3", None),
        ("get", "/jobs/echo?PHASE=NOPE", None),
        ("get", "/jobs/echo?AFTER=yesterday", None),
        ("post", "/jobs/echo", {"EXECUTIONDURATION": "-5"}),
    ]
    for method, url, data in cases:
        resp = await client.request(method, url, data=data)
        body = await resp.text()
        assert resp.status == 400, (url, data, body)
        assert body.startswith("UsageError: ")


async def test_unknown_job_and_resources(client: Client) -> None:
    job_id = await create(client, needed="1")
    for url in (
        "/jobs/echo/AAAAAAAAAAAAAAAAAAAAAA",
        "/jobs/echo/..%2F..%2Fetc",
        f"/jobs/echo/{job_id}/results/nothing",
        f"/jobs/echo/{job_id}/error",
        f"/jobs/echo/{job_id}/nonsense",
        "/jobs/echo/short",
    ):
        resp = await client.get(url)
        assert resp.status == 404, url
    resp = await client.put(f"/jobs/echo/{job_id}/phase", data="RUN")
    assert resp.status == 405


async def test_execution_duration_and_destruction_are_set_and_clamped(
    client: Client, assert_valid: Any
) -> None:
    job_id = await create(client, needed="1")
    await client.post(
        f"/jobs/echo/{job_id}/executionduration", data={"EXECUTIONDURATION": "120"}
    )
    assert (
        await (await client.get(f"/jobs/echo/{job_id}/executionduration")).text()
        == "120"
    )
    await client.post(
        f"/jobs/echo/{job_id}/executionduration",
        data={"EXECUTIONDURATION": "999999999"},
    )
    assert await (
        await client.get(f"/jobs/echo/{job_id}/executionduration")
    ).text() == str(4 * 3600)
    await client.post(
        f"/jobs/echo/{job_id}/destruction", data={"DESTRUCTION": "2030-01-02T03:04:05Z"}
    )
    text = await (await client.get(f"/jobs/echo/{job_id}/destruction")).text()
    assert text < "2030-01-02" and text.endswith("Z")  # clamped to 30 days
    await client.post(
        f"/jobs/echo/{job_id}/destruction", data={"destruction": "2026-12-01T00:00:00"}
    )
    assert (
        "2026-12-01T00:00:00"
        in await (await client.get(f"/jobs/echo/{job_id}/destruction")).text()
    )


async def test_update_parameters_while_pending(
    client: Client, assert_valid: Any
) -> None:
    job_id = await create(client, needed="1")
    resp = await client.post(
        f"/jobs/echo/{job_id}/parameters",
        data={"NEEDED": "2", "extra": "e"},
        allow_redirects=False,
    )
    assert resp.status == 303
    resp = await client.get(f"/jobs/echo/{job_id}/parameters")
    tree = assert_valid(await resp.read())
    assert {p.get("id"): p.text for p in tree} == {"needed": "2", "extra": "e"}


async def test_job_list_filters(client: Client, assert_valid: Any) -> None:
    ids = [await create(client, needed="1") for _ in range(4)]
    await client.post(f"/jobs/echo/{ids[0]}/phase", data={"PHASE": "RUN"})
    await client.post(f"/jobs/echo/{ids[1]}/phase", data={"PHASE": "ABORT"})
    tree = assert_valid(await (await client.get("/jobs/echo")).read())
    assert [r.get("id") for r in tree] == list(reversed(ids))
    tree = assert_valid(
        await (await client.get("/jobs/echo?PHASE=QUEUED&phase=ABORTED")).read()
    )
    assert {r.get("id") for r in tree} == {ids[0], ids[1]}
    tree = assert_valid(await (await client.get("/jobs/echo?LAST=2")).read())
    assert [r.get("id") for r in tree] == [ids[3], ids[2]]
    tree = assert_valid(
        await (await client.get("/jobs/echo?LAST=3&PHASE=PENDING")).read()
    )
    assert [r.get("id") for r in tree] == [ids[3], ids[2]]
    tree = assert_valid(
        await (await client.get("/jobs/echo?AFTER=2000-01-01T00:00:00Z")).read()
    )
    assert len(tree) == 4


async def test_delete_and_post_action_delete(
    client: Client, settings: Settings
) -> None:
    first, second = await create(client, needed="1"), await create(client, needed="1")
    (settings.resolved_jobs_dir / first).mkdir(parents=True)  # as a run would
    resp = await client.delete(f"/jobs/echo/{first}", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].endswith("/jobs/echo")
    assert not (settings.resolved_jobs_dir / first).exists()
    resp = await client.post(
        f"/jobs/echo/{second}", data={"ACTION": "DELETE"}, allow_redirects=False
    )
    assert resp.status == 303
    for job_id in (first, second):
        assert (await client.get(f"/jobs/echo/{job_id}")).status == 404


async def test_wait_returns_on_change_timeout_and_guard(client: Client) -> None:
    job_id = await create(client, needed="1")
    loop = asyncio.get_running_loop()

    started = loop.time()
    resp = await client.get(f"/jobs/echo/{job_id}?WAIT=0.3")
    assert resp.status == 200
    assert loop.time() - started >= 0.25  # waited: still PENDING

    resp = await client.get(f"/jobs/echo/{job_id}?WAIT=30&PHASE=QUEUED")
    assert "PENDING" in await resp.text()  # guard differs: immediate

    waiter = asyncio.create_task(client.get(f"/jobs/echo/{job_id}?WAIT=30"))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    await client.post(f"/jobs/echo/{job_id}/phase", data={"PHASE": "RUN"})
    resp = await asyncio.wait_for(waiter, 10)
    assert "<uws:phase>QUEUED</uws:phase>" in await resp.text()


async def test_wait_across_two_app_instances(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    one = await aiohttp_client(create_app(settings, [ECHO], execute=False))
    two = await aiohttp_client(create_app(settings, [ECHO], execute=False))
    job_id = await create(one, needed="1")
    waiter = asyncio.create_task(two.get(f"/jobs/echo/{job_id}?WAIT=30"))
    await asyncio.sleep(0.2)
    await one.post(f"/jobs/echo/{job_id}/phase", data={"PHASE": "ABORT"})
    resp = await asyncio.wait_for(waiter, 10)
    assert "<uws:phase>ABORTED</uws:phase>" in await resp.text()


async def test_concurrent_creations_get_distinct_ids(client: Client) -> None:
    ids = await asyncio.gather(*(create(client, needed=str(i)) for i in range(200)))
    assert len(set(ids)) == 200


async def test_concurrent_phase_changes_no_lost_update(client: Client) -> None:
    job_id = await create(client, needed="1")
    actions = ["RUN", "ABORT"] * 10
    responses = await asyncio.gather(
        *(
            client.post(
                f"/jobs/echo/{job_id}/phase", data={"PHASE": a}, allow_redirects=False
            )
            for a in actions
        )
    )
    assert all(r.status in (303, 403) for r in responses)
    assert await (await client.get(f"/jobs/echo/{job_id}/phase")).text() == "ABORTED"


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


async def test_stylesheet_preamble_and_xsl(client: Client) -> None:
    job_id = await create(client, needed="1")
    text = await (await client.get(f"/jobs/echo/{job_id}")).text()
    assert '<?xml-stylesheet type="text/xsl"' in text
    resp = await client.get("/jobs/echo/stylesheet.xsl")
    assert resp.status == 200 and b"xsl:stylesheet" in await resp.read()


async def test_owner_isolation_with_header_auth(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    from dataclasses import replace

    client = await aiohttp_client(
        create_app(replace(settings, auth="header"), [ECHO], execute=False)
    )
    alice = {"X-Remote-User": "alice"}
    resp = await client.post(
        "/jobs/echo", data={"needed": "1"}, headers=alice, allow_redirects=False
    )
    job_id = resp.headers["Location"].rsplit("/", 1)[1]
    assert (
        await (await client.get(f"/jobs/echo/{job_id}/owner", headers=alice)).text()
        == "alice"
    )
    for headers in ({"X-Remote-User": "bob"}, {}):
        assert (await client.get(f"/jobs/echo/{job_id}", headers=headers)).status == 403
        assert (
            await client.delete(f"/jobs/echo/{job_id}", headers=headers)
        ).status == 403
        listing = await (await client.get("/jobs/echo", headers=headers)).text()
        assert job_id not in listing
    assert job_id in await (await client.get("/jobs/echo", headers=alice)).text()


async def test_basic_auth(
    settings: Settings, aiohttp_client: MakeClient, tmp_path: Any
) -> None:
    from dataclasses import replace

    from aiouws.http.auth import hash_password

    passwd = tmp_path / "passwd"
    passwd.write_text(f"carol:{hash_password('s3cret')}\n")
    client = await aiohttp_client(
        create_app(
            replace(settings, auth="basic", passwd_file=passwd), [ECHO], execute=False
        )
    )
    good = {"Authorization": "Basic " + base64.b64encode(b"carol:s3cret").decode()}
    bad = {"Authorization": "Basic " + base64.b64encode(b"carol:nope").decode()}
    resp = await client.post(
        "/jobs/echo", data={"needed": "1"}, headers=good, allow_redirects=False
    )
    assert resp.status == 303
    job_id = resp.headers["Location"].rsplit("/", 1)[1]
    assert (
        await (await client.get(f"/jobs/echo/{job_id}/owner", headers=good)).text()
        == "carol"
    )
    resp = await client.get("/jobs/echo", headers=bad)
    assert resp.status == 401 and "WWW-Authenticate" in resp.headers
    assert (await client.get(f"/jobs/echo/{job_id}")).status == 403


async def test_mounted_under_prefix_in_host_app(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    host = web.Application()

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="host")

    host.router.add_get("/", hello)
    host.cleanup_ctx.append(uws_context(settings, [ECHO], execute=False))
    host.add_subapp("/deep/prefix/jobs", uws_subapp("echo"))
    client = await aiohttp_client(host)
    assert await (await client.get("/")).text() == "host"
    resp = await client.post(
        "/deep/prefix/jobs", data={"needed": "1"}, allow_redirects=False
    )
    assert resp.status == 303
    location = resp.headers["Location"]
    assert "/deep/prefix/jobs/" in location
    resp = await client.get(
        location.split("://", 1)[1].split("/", 1)[1].join(["/", ""])
    )
    assert resp.status == 200


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
