"""TAP's own Prometheus metrics, added to the service's registry
(:mod:`aiouws.http.metrics`): queries, rows and bytes served.

Counted for the queries this server process runs: /tap/sync and the async fast
lane. Async jobs run by runner processes are in the query log (and in the
generic job metrics), not in these counters.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from taprunner.query.querylog import QueryRecord

__all__ = ["TAP_METRICS", "TapMetrics"]


class TapMetrics:
    """Counters fed by the query log's records (:class:`QueryRecord`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.queries = Counter(
            "tap_queries",
            "TAP queries run in this process, by mode and outcome",
            ["mode", "outcome"],
            registry=registry,
        )
        self.rows = Counter(
            "tap_rows",
            "Result rows served by TAP queries run in this process",
            ["mode"],
            registry=registry,
        )
        self.bytes = Counter(
            "tap_bytes",
            "Result bytes served by TAP queries run in this process",
            ["mode", "format"],
            registry=registry,
        )

    def observe(self, record: QueryRecord) -> None:
        """Count one finished query (sync, or an async job in the fast lane)."""
        mode = "sync" if record.job_id == "sync" else "async"
        outcome = record.outcome.partition(":")[0]  # error classes stay in the log
        self.queries.labels(mode, outcome).inc()
        self.rows.labels(mode).inc(record.rows)
        self.bytes.labels(mode, record.format).inc(record.bytes)


TAP_METRICS = web.AppKey("taprunner_metrics", TapMetrics)
