"""What running a query yields and how it fails, shared by the data paths.

The :data:`Sink` receives the encoded bytes, :class:`QueryOutcome` says how many
rows went out, :func:`query_error` and :func:`failure` turn a database error of
the user's query into the TAP error the client reads, and :func:`end_with_error`
ends a document whose rows went out when the query fails after them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import asyncpg

from taprunner.errors import TapError, TapQueryError, TapUsageError
from taprunner.formats.registry import RowEncoder

__all__ = [
    "INSUFFICIENT_PRIVILEGE",
    "QUERY_CANCELED",
    "ColumnarUnavailable",
    "HeldSink",
    "QueryOutcome",
    "Sink",
    "end_with_error",
    "failure",
    "query_error",
]

Sink = Callable[[bytes], Coroutine[Any, Any, None]]


class HeldSink:
    """The output of an asyncpg COPY that never raises into asyncpg.

    asyncpg ends a COPY whose output raises with a cancel request and gives the
    error back at once, the connection still inside the COPY: the ROLLBACK
    after it then fails or, racing a COPY that has ended meanwhile, waits for
    ever (a fast-lane job writing to a full disk hung so, under load). Here the
    first error is held and further bytes dropped (the COPY runs to its end,
    within MAXREC + 1 rows and the statement timeout); :meth:`check` raises it.
    """

    def __init__(self, write: Sink) -> None:
        self._write = write
        self.error: Exception | None = None

    async def __call__(self, data: bytes) -> None:
        if self.error is None:
            try:
                await self._write(data)
            except Exception as exc:  # held, raised by check()
                self.error = exc

    def check(self) -> None:
        """Raise the error the output met, if it met one."""
        if self.error is not None:
            raise self.error


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
