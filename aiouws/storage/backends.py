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

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

__all__ = [
    "IDENTITY_SQL",
    "TERMINATE_BACKENDS",
    "Backend",
    "parse_identity",
    "recorded_backends",
    "terminate_backends",
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
