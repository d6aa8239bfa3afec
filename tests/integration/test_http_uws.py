"""The UWS REST API on real HTTP and a real database; jobs are not executed.

Job resources, phase changes, parameters, job lists, deletion, concurrent
requests, and the API mounted in a host application. WAIT is in
test_http_wait.py, uploads and bad input in test_http_input.py, owners in
test_http_auth.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from testkit import Client, MakeClient
from uwskit import ECHO, UWS, XSI_NIL, create, echo_app, job_xml

from aiouws.config import Settings
from aiouws.http.app import uws_context, uws_subapp


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return echo_app(settings)


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


async def test_job_list_filters(
    settings: Settings, aiohttp_client: MakeClient, assert_valid: Any
) -> None:
    from dataclasses import replace

    # Job lists are per owner: an anonymous request lists none (test_http_auth).
    client = await aiohttp_client(
        echo_app(replace(settings, auth="header")), headers={"X-Remote-User": "al"}
    )
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
    # No list is longer than max_list_jobs (the newest), with or without LAST.
    capped = await aiohttp_client(
        echo_app(replace(settings, auth="header", max_list_jobs=3)),
        headers={"X-Remote-User": "al"},
    )
    newest = [ids[3], ids[2], ids[1]]
    for query, expected in (
        ("", newest),
        ("?LAST=100", newest),
        ("?LAST=2", newest[:2]),
    ):
        tree = assert_valid(await (await capped.get(f"/jobs/echo{query}")).read())
        assert [r.get("id") for r in tree] == expected, query


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


async def test_stylesheet_preamble_and_xsl(client: Client) -> None:
    job_id = await create(client, needed="1")
    text = await (await client.get(f"/jobs/echo/{job_id}")).text()
    assert "xml-stylesheet" not in text  # opt-in (settings.stylesheet)
    resp = await client.get("/jobs/echo/stylesheet.xsl")
    assert resp.status == 200 and b"xsl:stylesheet" in await resp.read()


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
