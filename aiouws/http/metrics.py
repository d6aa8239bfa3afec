"""Prometheus metrics at ``/metrics`` (prometheus-client), one registry per app.

Generic metrics: HTTP requests by status (middleware), jobs per kind and phase
(read from the database, cached for :data:`JOBS_TTL` seconds), queue wait and
run time of the jobs this process ran (histograms), database pool use. An
application adds its own metrics to :attr:`ServiceMetrics.registry` (TAP's rows
and bytes served). With several server workers each worker answers from its own
registry (see the README's Operations section).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aiouws.config import Settings
from aiouws.errors import UWSError
from aiouws.models import Job
from aiouws.phases import Phase
from aiouws.storage.store import JobStore

__all__ = ["METRICS", "ServiceMetrics", "install_metrics", "metrics_middleware"]

log = logging.getLogger(__name__)
#: Seconds the job counts read from the database are reused.
JOBS_TTL = 5.0
WAIT_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600)
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600, 14400)


class ServiceMetrics(Collector):
    """The service's metrics; also the collector of the database-backed ones."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "aiouws_http_requests",
            "HTTP requests answered, by status",
            ["status"],
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "aiouws_job_queue_wait_seconds",
            "Seconds from queued to started, of jobs this process ran",
            ["kind"],
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.run_time = Histogram(
            "aiouws_job_run_seconds",
            "Seconds from started to finished, of jobs this process ran",
            ["kind"],
            buckets=RUN_BUCKETS,
            registry=self.registry,
        )
        self._store: JobStore | None = None
        self._pools: dict[str, asyncpg.Pool] = {}
        self._jobs: dict[tuple[str, Phase], int] = {}
        self._jobs_time = 0.0
        #: Seconds the job counts are reused (:data:`JOBS_TTL`).
        self.jobs_ttl = JOBS_TTL
        self.registry.register(self)

    def watch_store(self, store: JobStore) -> None:
        """Count jobs per kind and phase from ``store``."""
        self._store = store

    def watch_pool(self, name: str, pool: asyncpg.Pool) -> None:
        """Report the use of the connection pool ``name``."""
        self._pools[name] = pool

    def job_finished(self, job: Job) -> None:
        """Observe a job (as claimed) that this process has just run."""
        if job.start_time is None:
            return
        queued = job.queued_time or job.creation_time
        wait = (job.start_time - queued).total_seconds()
        self.queue_wait.labels(job.kind).observe(max(0.0, wait))
        ran = (datetime.now(UTC) - job.start_time).total_seconds()
        self.run_time.labels(job.kind).observe(max(0.0, ran))

    async def refresh(self) -> None:
        """Read the job counts again if they are older than :attr:`jobs_ttl`."""
        now = time.monotonic()
        if self._store is None or now - self._jobs_time < self.jobs_ttl:
            return
        try:
            self._jobs = await self._store.count_by_kind()
            self._jobs_time = now
        except UWSError as exc:  # the old counts stay; the scrape still answers
            log.warning("cannot count jobs for metrics: %s", exc)

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "aiouws_jobs",
            "Jobs in the database, by kind and phase",
            None,
            ["kind", "phase"],
        )
        for (kind, phase), count in sorted(self._jobs.items()):
            jobs.add_metric([kind, phase.value], count)
        yield jobs
        size = GaugeMetricFamily(
            "aiouws_db_pool_connections", "Open connections of a pool", None, ["pool"]
        )
        busy = GaugeMetricFamily(
            "aiouws_db_pool_in_use", "Connections of a pool in use", None, ["pool"]
        )
        limit = GaugeMetricFamily(
            "aiouws_db_pool_max", "Most connections a pool opens", None, ["pool"]
        )
        for name, pool in sorted(self._pools.items()):
            size.add_metric([name], pool.get_size())
            busy.add_metric([name], pool.get_size() - pool.get_idle_size())
            limit.add_metric([name], pool.get_max_size())
        yield from (size, busy, limit)
        worker = GaugeMetricFamily(
            "aiouws_process", "The server process that answered", None, ["pid"]
        )
        worker.add_metric([str(os.getpid())], 1)
        yield worker


METRICS = web.AppKey("aiouws_metrics", ServiceMetrics)


@web.middleware
async def metrics_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Count the request by the status it is answered with."""
    metrics = request.config_dict.get(METRICS)
    if metrics is None:
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        metrics.requests.labels(str(exc.status)).inc()
        raise
    except Exception:
        metrics.requests.labels("500").inc()
        raise
    metrics.requests.labels(str(response.status)).inc()
    return response


def install_metrics(app: web.Application, settings: Settings) -> None:
    """Serve ``/metrics`` from ``app`` unless ``settings.metrics`` is off."""
    if not settings.metrics:
        return
    app[METRICS] = ServiceMetrics()
    networks = [
        ipaddress.ip_network(n.strip(), strict=False)
        for n in settings.metrics_networks.split(",")
        if n.strip()
    ]

    async def serve_metrics(request: web.Request) -> web.Response:
        if networks and not _from(request.remote, networks):
            raise web.HTTPForbidden(text="metrics are not served to this address")
        metrics = request.app[METRICS]
        await metrics.refresh()
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/metrics", serve_metrics, name="metrics")


def _from(
    remote: str | None,
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> bool:
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return False  # e.g. a Unix socket
    return any(address in network for network in networks)
