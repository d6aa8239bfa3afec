"""``/metrics`` of the TAP service: scraped after some work, parsed with
prometheus_client's parser, and the counters have moved; off and restricted."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from testkit import Client, MakeClient

from aiouws.config import Settings
from aiouws.http.metrics import METRICS
from taprunner.settings import TapSettings
from taprunner.web.app import create_tap_app


async def _scrape(
    client: Client,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def _run_job(client: Client, query: str, **params: str) -> str:
    response = await client.post(
        "/tap/async",
        data={"LANG": "ADQL", "QUERY": query, "PHASE": "RUN", **params},
        allow_redirects=False,
    )
    assert response.status == 303
    job_id = response.headers["Location"].rsplit("/", 1)[1]
    for _ in range(600):
        phase = await (await client.get(f"/tap/async/{job_id}/phase")).text()
        if phase in ("COMPLETED", "ERROR"):
            return phase
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} stayed {phase}")


async def test_counters_move_after_queries_and_jobs(client: Client) -> None:
    client.app[METRICS].jobs_ttl = 0  # counted afresh at every scrape
    before = await _scrape(client)
    sync = await client.get(
        "/tap/sync",
        params={"LANG": "ADQL", "QUERY": "SELECT TOP 5 id FROM demo.stars"},
    )
    body = await sync.read()
    assert sync.status == 200
    assert (await client.get("/no/such/thing")).status == 404
    assert await _run_job(client, "SELECT TOP 3 id FROM demo.stars") == "COMPLETED"
    assert (
        await _run_job(client, "SELECT id FROM demo.stars", MAXREC="1500")
        == "COMPLETED"
    )
    await asyncio.sleep(0.1)  # the supervisor observes a job after its phase
    after = await _scrape(client)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("aiouws_http_requests_total", status="200") >= 2
    assert moved("aiouws_http_requests_total", status="404") == 1
    assert moved("aiouws_http_requests_total", status="303") == 2
    assert moved("tap_queries_total", mode="sync", outcome="ok") == 1
    assert moved("tap_rows_total", mode="sync") == 5
    assert moved("tap_bytes_total", mode="sync", format="binary2") == len(body)
    assert moved("tap_queries_total", mode="async", outcome="ok") == 1  # fast lane
    assert moved("tap_rows_total", mode="async") == 3
    assert moved("aiouws_job_queue_wait_seconds_count", kind="tap") == 2
    assert moved("aiouws_job_run_seconds_count", kind="tap") == 2
    assert moved("aiouws_job_run_seconds_sum", kind="tap") > 0
    assert _value(after, "aiouws_jobs", kind="tap", phase="COMPLETED") >= 2
    assert _value(after, "aiouws_db_pool_max", pool="tap") == 10
    assert _value(after, "aiouws_db_pool_connections", pool="uws") >= 1
    assert "aiouws_db_pool_in_use" in {name for name, _ in after}
    client.app[METRICS].jobs_ttl = 60
    await _run_job(client, "SELECT TOP 1 id FROM demo.stars")
    cached = await _scrape(client)  # within the TTL: the counts of the last read
    assert _value(cached, "aiouws_jobs", kind="tap", phase="COMPLETED") == _value(
        after, "aiouws_jobs", kind="tap", phase="COMPLETED"
    )


@pytest.mark.parametrize(
    ("changes", "status"),
    [({"metrics": False}, 404), ({"metrics_networks": "10.0.0.0/8"}, 403)],
)
async def test_metrics_off_or_restricted(
    settings: Settings, aiohttp_client: MakeClient, changes: dict, status: int
) -> None:
    changed = replace(settings, **changes)
    app: web.Application = create_tap_app(
        changed, TapSettings.for_service(changed), demo_rows=0
    )
    client = await aiohttp_client(app)
    assert (await client.get("/metrics")).status == status
    assert (await client.get("/tap/availability")).status == 200


async def test_metrics_served_to_listed_networks(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    changed = replace(settings, metrics_networks="10.0.0.0/8, 127.0.0.0/8, ::1")
    app = create_tap_app(changed, TapSettings.for_service(changed), demo_rows=0)
    client = await aiohttp_client(app)
    assert (await client.get("/metrics")).status == 200
