"""The database backends of jobs: terminated when their runner or server died.

A runner reports the backend that runs its job's query (``pg_backend_pid()`` and
``pg_stat_activity.backend_start``, see ``JobContext.report_backend``); the
supervisor records it in ``uws.job.backend_pid``/``backend_start``. PostgreSQL
notices a vanished client only when it next reads from or writes to it (or, with
``client_connection_check_interval``, when the client's socket closed on the
same host), so a long statement of a killed runner could run on until its
timeout: the job run terminates it when its runner dies, lease recovery when a
whole server died.
Pid *and* start time must match, so a later backend that reused the pid is safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

__all__ = [
    "IDENTITY_SQL",
    "REPLICA_SECONDS",
    "TERMINATE_BACKENDS",
    "Backend",
    "parse_identity",
    "recorded_backends",
    "terminate_backends",
    "terminate_on_replicas",
]

log = logging.getLogger(__name__)

#: A database backend by pid and ``pg_stat_activity.backend_start``.
Backend = tuple[int, datetime]

#: One text value, ``"<pid> <backend_start, ISO 8601 in UTC>"``: the identity of
#: the session's own backend, as job code reports it (any driver can read text).
IDENTITY_SQL = (
    "SELECT pid::text || ' ' || to_char(backend_start AT TIME ZONE 'UTC',"
    ' \'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\') AS identity'
    " FROM pg_stat_activity WHERE pid = pg_backend_pid()"
)

#: Terminate the backends ``$1[i]`` started at ``$2[i]`` in this database: one
#: row per backend signalled. The call is in the select list, which only the
#: joined rows reach (in WHERE it could run on every row of pg_stat_activity).
TERMINATE_BACKENDS = (
    "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity AS a"
    " JOIN unnest($1::integer[], $2::timestamptz[]) AS b(pid, started)"
    " ON a.pid = b.pid AND a.backend_start = b.started"
    " WHERE a.datname = current_database()"
)


def parse_identity(text: object) -> tuple[int, str] | None:
    """``(pid, started)`` of an :data:`IDENTITY_SQL` value (None if malformed)."""
    pid, _, started = str(text or "").partition(" ")
    return (int(pid), started) if pid.isdigit() and started else None


def recorded_backends(rows: Iterable[Any]) -> list[Backend]:
    """The backends recorded in job rows (``backend_pids``, ``backend_starts``)."""
    return [
        (pid, started)
        for row in rows
        for pid, started in zip(
            row["backend_pids"] or (), row["backend_starts"] or (), strict=False
        )
    ]


async def terminate_backends(pool: Any, backends: Sequence[Backend]) -> int:
    """Terminate ``backends`` through ``pool`` (anything with asyncpg's
    ``fetch``); how many were still there.

    Needs the right to signal them (a superuser, the same role, or a member of
    ``pg_signal_backend``); without it the failure is logged, not raised.
    """
    if not backends:
        return 0
    pids = [pid for pid, _ in backends]
    starts = [started for _, started in backends]
    try:
        rows = await pool.fetch(TERMINATE_BACKENDS, pids, starts)
    except asyncpg.InsufficientPrivilegeError as exc:
        log.warning("cannot terminate the backends of dead jobs: %s", exc)
        return 0
    return sum(1 for row in rows if row[0])


#: How long terminating backends on the catalogue replicas may take in all,
#: however many there are and however they hang (they are asked at once).
REPLICA_SECONDS = 10.0


async def terminate_on_replicas(
    replicas: Sequence[Any], backends: Sequence[Backend]
) -> int:
    """Terminate ``backends`` on each of ``replicas`` (``Database``s, one server
    each), all at once; how many were still there.

    Returns within :data:`REPLICA_SECONDS`: a replica that is down, or hangs
    (accepts and never answers, or stops midway), is given up then, its
    connection dropped, and logged; what it ran cannot be helped from here.
    """
    if not backends or not replicas:
        return 0
    tasks = [asyncio.ensure_future(_on_replica(r, backends)) for r in replicas]
    done, pending = await asyncio.wait(tasks, timeout=REPLICA_SECONDS)
    for task in pending:
        task.cancel()  # their connections are dropped (_on_replica), not awaited
        task.add_done_callback(_retrieve)
    if pending:
        log.warning(
            "cannot terminate backends on %d replica(s): no answer in %g s",
            len(pending),
            REPLICA_SECONDS,
        )
    ended = 0
    for task in done:
        error = task.exception()
        if error is None:
            ended += task.result()
        else:  # a replica that is down ran nothing
            log.warning("cannot terminate backends on a replica: %s", error)
    return ended


async def _on_replica(replica: Any, backends: Sequence[Backend]) -> int:
    conn = await replica.connect(timeout=REPLICA_SECONDS, name="terminate")
    try:
        ended = await terminate_backends(conn, backends)
        await conn.close(timeout=REPLICA_SECONDS)
    except BaseException:  # cancelled too: drop the socket, wait for nothing
        conn.terminate()
        raise
    return ended


def _retrieve(task: asyncio.Future[int]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "never retrieved" warning
