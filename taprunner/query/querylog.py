"""The query log: one ``query`` line per TAP query, wherever it runs.

:func:`logged` wraps every query of :func:`taprunner.query.execute.run_query`
(sync, async in a runner, async in the server's fast lane): owner, job id (or
``sync``), an ADQL digest, rows, bytes, seconds, format and outcome (``ok``,
``overflow``, ``truncated`` (cut by a byte limit), ``error:<class>``,
``cancelled``). A :class:`QueryTag` says whose
query it is and may pass the :class:`QueryRecord` on (e.g. to metrics).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from taprunner.query.outcome import QueryOutcome, Sink
from taprunner.request import TapRequest

__all__ = ["QueryRecord", "QueryTag", "adql_digest", "logged"]

log = logging.getLogger(__name__)
#: Characters of the ADQL text shown in the log (on one line).
ADQL_SHOWN = 80


@dataclass(frozen=True, slots=True)
class QueryRecord:
    """What the query log says of one query."""

    owner: str | None
    job_id: str
    adql_sha256: str
    adql: str
    rows: int
    bytes: int
    seconds: float
    format: str
    outcome: str


@dataclass(frozen=True, slots=True)
class QueryTag:
    """Whose query it is; ``observe`` gets its record once it is done."""

    owner: str | None = None
    job_id: str = "sync"
    observe: Callable[[QueryRecord], None] | None = None


def adql_digest(text: str) -> tuple[str, str]:
    """A 16-hex-digit sha256 prefix of ``text``, and its first characters on one
    line."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return digest, " ".join(text.split())[:ADQL_SHOWN]


async def logged(
    tag: QueryTag,
    request: TapRequest,
    sink: Sink,
    run: Callable[[Sink], Awaitable[QueryOutcome]],
) -> QueryOutcome:
    """``run(sink)``, counting the bytes it writes, then its ``query`` line."""
    written = 0

    async def counted(data: bytes) -> None:
        nonlocal written
        written += len(data)
        await sink(data)

    start = time.perf_counter()
    outcome: QueryOutcome | None = None
    result = "cancelled"
    try:
        outcome = await run(counted)
        result = (
            "truncated"
            if outcome.cut is not None
            else "overflow"
            if outcome.overflow
            else "ok"
        )
        return outcome
    except Exception as exc:
        result = f"error:{type(exc).__name__}"
        raise
    finally:
        digest, shown = adql_digest(request.query)
        record = QueryRecord(
            owner=tag.owner,
            job_id=tag.job_id,
            adql_sha256=digest,
            adql=shown,
            rows=0 if outcome is None else outcome.rows,
            bytes=written,
            seconds=round(time.perf_counter() - start, 6),
            format=request.format.name,
            outcome=result,
        )
        log.info(
            "query",
            extra={
                "owner": record.owner or "-",
                "job_id": record.job_id,
                "adql_sha256": record.adql_sha256,
                "adql": record.adql,
                "rows": record.rows,
                "bytes": record.bytes,
                "seconds": record.seconds,
                "format": record.format,
                "outcome": record.outcome,
            },
        )
        if tag.observe is not None:
            tag.observe(record)
