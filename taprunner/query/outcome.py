"""What running a query yields and how it fails, shared by the data paths.

The :data:`Sink` receives the encoded bytes, :class:`QueryOutcome` says how many
rows went out, :func:`query_error` and :func:`failure` turn a database error of
the user's query into the TAP error the client reads, :func:`end_with_error`
ends a document whose rows went out when the query fails after them.
:class:`HeldSink` is the output of the COPY paths, and
:func:`cancel_statement` stops a COPY whose result was cut short.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import asyncpg

from aiouws.storage.database import Database
from taprunner.errors import TapError, TapQueryError, TapUsageError
from taprunner.formats.registry import RowEncoder
from taprunner.schema.catalog import Connection

__all__ = [
    "INSUFFICIENT_PRIVILEGE",
    "QUERY_CANCELED",
    "ColumnarUnavailable",
    "HeldSink",
    "QueryOutcome",
    "Sink",
    "Stop",
    "cancel_statement",
    "end_with_error",
    "failure",
    "query_error",
]

Sink = Callable[[bytes], Coroutine[Any, Any, None]]
#: Stops the statement of the query's connection from another session
#: (:func:`cancel_statement`); returns once the backend was signalled.
Stop = Callable[[], Coroutine[Any, Any, None]]

log = logging.getLogger(__name__)

#: Seconds a cancel's own connection may take (then the COPY runs to its end).
CANCEL_TIMEOUT = 10.0


class HeldSink:
    """The output of an asyncpg COPY that never raises into asyncpg, and stops
    the COPY once its result is cut short.

    asyncpg ends a COPY whose output raises with a cancel request and gives the
    error back at once, the connection still inside the COPY: the ROLLBACK
    after it then fails or, racing a COPY that has ended meanwhile, waits for
    ever (a fast-lane job writing to a full disk hung so, under load). Here the
    first error is held and further bytes dropped; :meth:`check` raises it.

    With ``stop``, once ``ended()`` (the result was cut) or the output failed,
    the statement is cancelled from another session (:func:`cancel_statement`)
    and the bytes still in flight are dropped: PostgreSQL ends the COPY with a
    QueryCanceledError through the protocol's ordinary error path, the
    connection stays usable, and the caller takes that error as the cut's
    (rows past a cut are never the result's). ``stop`` returns only once the
    backend was signalled, before the COPY's end is read: the signal cannot
    reach a later statement on the connection (PostgreSQL ignores a cancel
    that arrives while its backend waits for the next command). Without
    ``stop``, or when it fails, the COPY runs to its end (at most MAXREC + 1
    rows, within the statement timeout).
    """

    def __init__(
        self,
        write: Sink,
        *,
        stop: Stop | None = None,
        ended: Callable[[], bool] = lambda: False,
    ) -> None:
        self._write = write
        self._stop = stop
        self._ended = ended
        self.error: Exception | None = None
        self.stopped = False
        """Whether the statement was cancelled here."""

    async def __call__(self, data: bytes) -> None:
        if self.error is None:
            try:
                await self._write(data)
            except Exception as exc:  # held, raised by check()
                self.error = exc
        if self._stop is not None and (self.error is not None or self._ended()):
            stop, self._stop = self._stop, None
            try:
                await stop()
            except Exception as exc:  # the COPY runs to its end, as without
                log.warning("cannot stop a COPY cut short: %s", exc)
            else:
                self.stopped = True

    def check(self) -> None:
        """Raise the error the output met, if it met one."""
        if self.error is not None:
            raise self.error


async def cancel_statement(database: Database, conn: Connection) -> None:
    """Cancel the statement ``conn`` runs: ``pg_cancel_backend`` from a session
    of its own, as ``database``'s login (``conn``'s, which may signal its own
    backends) on the server ``conn`` went to; returns once the backend was
    signalled. Raises what connecting or the call raised, or TimeoutError when
    no session was made within :data:`CANCEL_TIMEOUT` seconds.

    Only connecting is bounded: once the call was sent it is waited for, since
    a call run after the caller gave up would cancel whatever ``conn`` runs
    next (a COMMIT, or another request's statement on a pooled connection).
    """
    pid = conn.get_server_pid()
    server = database.server_of(conn)
    async with asyncio.timeout(CANCEL_TIMEOUT):
        admin = await server.connect(timeout=CANCEL_TIMEOUT, name="cancel")
    try:
        await admin.fetchval("SELECT pg_cancel_backend($1)", pid)
    finally:
        await admin.close()


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    """Rows written; whether more than MAXREC were there; why the result was cut
    short by a byte limit (:mod:`.bytelimits`), if it was."""

    rows: int
    overflow: bool
    cut: str | None = None


class ColumnarUnavailable(Exception):
    """The columnar session cannot serve this query and wrote nothing (no
    connection, or it was lost before any row came): asyncpg runs it instead."""


#: SQLSTATEs of a cancelled statement (e.g. its timeout) and of a missing privilege.
QUERY_CANCELED = "57014"
INSUFFICIENT_PRIVILEGE = "42501"


def query_error(sqlstate: str | None, message: str, timeout: float) -> TapError:
    """The TAP error for a database error (``sqlstate``, ``message``) raised by
    the user's query, which ran with the statement timeout ``timeout``."""
    if sqlstate == QUERY_CANCELED:
        return TapQueryError(f"query cancelled: {message} (limit {timeout:g} s)")
    if sqlstate == INSUFFICIENT_PRIVILEGE:
        return TapUsageError(f"not allowed: {message}")
    return TapQueryError(f"query failed: {message}")


def failure(exc: asyncpg.PostgresError, timeout: float) -> TapError:
    """The TAP error for ``exc`` raised by the user's query (:func:`query_error`)."""
    return query_error(exc.sqlstate, _clean(exc), timeout)


async def end_with_error(
    sink: Sink, encoder: RowEncoder, error: Exception, timeout: float
) -> None:
    """End a document whose header (and maybe rows) went out with ``error``'s
    status in its footer: a database error as :func:`failure` words it for the
    statement timeout ``timeout``, another error its text. A lost database
    connection writes nothing (the caller raises it, and the job is reported
    unavailable). Every data path (cursor, text COPY, binary COPY, columnar)
    ends so."""
    if isinstance(error, asyncpg.PostgresConnectionError):
        return
    if isinstance(error, asyncpg.PostgresError):
        error = failure(error, timeout)
    await sink(encoder.footer(error=str(error)))


_CONTEXT = re.compile(r"\s+")


def _clean(exc: BaseException) -> str:
    return _CONTEXT.sub(" ", str(exc)).strip()
