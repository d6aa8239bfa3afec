"""Which failures mean "the database is unavailable": the one classification.

A refused or lost connection, a server starting up or shutting down, a closed
pool: none of it is the client's fault or a bug, and all of it passes. The job
store, the HTTP error middleware, TAP's sync pool and the supervisor ask
:func:`unavailable_cause` and answer with
:class:`~aiouws.errors.DatabaseUnavailable` (503 with ``Retry-After``); job code
(a runner) asks it to tell a lost database from a failed query.
"""

from __future__ import annotations

import errno
import socket

import asyncpg

__all__ = [
    "DRIVER_ERRORS",
    "UNAVAILABLE_SQLSTATES",
    "unavailable_cause",
    "unavailable_message",
]

#: What talking to the database may raise (classify with :func:`unavailable_cause`).
DRIVER_ERRORS = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)

#: SQLSTATEs of a server that cannot serve now (class 08 counts as a whole):
#: admin shutdown, crash shutdown, cannot connect now (starting up, shutting
#: down, recovering), too many connections.
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
#: errnos of a socket that could not reach the server or lost it.
_SOCKET_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
    }
)


def _is_unavailable(exc: BaseException, *, connecting: bool) -> bool:
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        return state.startswith("08") or state in UNAVAILABLE_SQLSTATES
    if isinstance(exc, asyncpg.InternalClientError):
        # A pooled connection that received the server's FATAL (57P01) while
        # idle is stuck consuming that error until its socket closes.
        return "cannot switch to state" in str(exc)
    if isinstance(exc, asyncpg.InterfaceError):
        text = str(exc)  # a closed connection or pool ("connection is closed")
        return connecting or "closed" in text or "closing" in text
    if isinstance(exc, OSError):
        # Talking to the database, any OSError is its absence (a missing Unix
        # socket is FileNotFoundError); elsewhere only socket failures are.
        return connecting or (
            isinstance(exc, ConnectionError | socket.gaierror)
            or exc.errno in _SOCKET_ERRNOS
        )
    return False


def unavailable_cause(
    exc: BaseException, *, connecting: bool = False
) -> BaseException | None:
    """The failure in ``exc``'s chain (itself, its causes and contexts) that means
    the database is unavailable, or None.

    ``connecting``: ``exc`` came from connecting to or talking with the database,
    so that any ``OSError`` (timeouts included) and any asyncpg interface error
    counts; otherwise only socket errors and closed connections do (a full disk
    is not an outage).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_unavailable(current, connecting=connecting):
            return current
        current = current.__cause__ or current.__context__
    return None


def unavailable_message(cause: BaseException) -> str:
    """What a client reads: ``database unavailable: <the server's words>``; a
    failure of the connection itself (an ``OSError``: refused, no socket, reset)
    is said without its text, which names the database's host, port or socket
    path (the log has it)."""
    if isinstance(cause, OSError):
        return "database unavailable: cannot reach the database server"
    text = str(cause).strip() or type(cause).__name__
    return f"database unavailable: {text}"
