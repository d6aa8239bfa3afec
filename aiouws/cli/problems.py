"""What the ``aiouws`` command says when it cannot start: a cause and a remedy.

Expected problems (the database unreachable or refusing the login, the port
taken, a bad setting) end the command with a message and exit status 1 (2 for
usage and configuration), never with a traceback. :class:`StartupError` carries
both parts; :func:`connect` and :func:`check_database` raise it for the database,
:func:`listen_problem` explains why the server could not listen.
"""

from __future__ import annotations

import errno
import re
import socket
import urllib.parse

import asyncpg

from aiouws.storage.database import Database

__all__ = ["StartupError", "check_database", "connect", "listen_problem", "safe_dsn"]

_WHERE_DSN = "--dsn, AIOUWS_DSN or dsn in the configuration file"
#: The secret parameters of a DSN.
_SECRET_KEYS = ("password", "sslpassword")
#: A secret ``key=value`` of a libpq connection string, with the blanks before it.
_KV_SECRET = re.compile(r"(\s*)\b((?:ssl)?password)(\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


class StartupError(Exception):
    """A problem the operator can fix: what went wrong and what to do about it."""

    def __init__(self, cause: str, remedy: str) -> None:
        super().__init__(f"{cause}\n  remedy: {remedy}")
        self.cause = cause
        self.remedy = remedy


async def connect(database: Database) -> asyncpg.Connection:
    """One connection to ``database`` (the caller closes it).

    Raises
    ------
    StartupError
        If the server cannot be reached or refuses the connection.
    """
    try:
        return await database.connect(timeout=15.0)
    except (
        OSError,
        TimeoutError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
    ) as exc:
        raise database_problem(exc, database.dsn) from None


async def check_database(database: Database) -> None:
    """Connect once and close: the database answers before the server starts.

    Raises
    ------
    StartupError
        As :func:`connect`.
    """
    conn = await connect(database)
    await conn.close()


def database_problem(exc: BaseException, dsn: str) -> StartupError:
    """Why connecting to ``dsn`` failed with ``exc``, and the remedy."""
    where = f"the database {safe_dsn(dsn)}"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return StartupError(
            f"{where}: {exc}",
            "create it (e.g. createdb NAME) or name an existing database in the "
            f"DSN ({_WHERE_DSN})",
        )
    if isinstance(
        exc,
        asyncpg.InvalidAuthorizationSpecificationError | asyncpg.InvalidPasswordError,
    ):
        return StartupError(
            f"{where} refused the login: {exc}",
            f"check the user name and password in the DSN ({_WHERE_DSN}) and the "
            "server's pg_hba.conf",
        )
    if isinstance(exc, asyncpg.CannotConnectNowError):
        return StartupError(f"{where} is not ready: {exc}", "try again in a moment")
    if isinstance(exc, asyncpg.TooManyConnectionsError):
        return StartupError(
            f"{where}: {exc}",
            "raise the server's max_connections or stop other clients",
        )
    if isinstance(exc, asyncpg.PostgresError):
        return StartupError(f"{where}: {exc}", "see the PostgreSQL server's log")
    if isinstance(exc, asyncpg.InterfaceError):  # e.g. a malformed DSN
        return StartupError(f"{where}: {exc}", f"correct the DSN ({_WHERE_DSN})")
    return StartupError(
        f"cannot reach {where}: {_os_reason(exc)}",
        "start PostgreSQL there, or correct host and port in the DSN "
        f"({_WHERE_DSN}); without a DSN aiouws runs its own embedded database",
    )


def listen_problem(exc: OSError, host: str, port: int) -> StartupError | None:
    """Why the server could not listen on ``host:port`` (None: not a bind error)."""
    address = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return StartupError(
            f"cannot listen on {address}: unknown host name {host!r}",
            "set host (--host, AIOUWS_HOST) to an address of this machine",
        )
    if exc.filename is not None:  # a file, not a socket
        return None
    if exc.errno == errno.EADDRINUSE:
        return StartupError(
            f"cannot listen on {address}: the port is already in use",
            "stop the program that uses it, or choose another port "
            "(--port, AIOUWS_PORT or port in the configuration file)",
        )
    if exc.errno == errno.EACCES:
        return StartupError(
            f"cannot listen on {address}: permission denied",
            "ports below 1024 need privileges: choose a port of 1024 or more "
            "(--port) and put a reverse proxy in front",
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return StartupError(
            f"cannot listen on {address}: {host} is not an address of this machine",
            "set host (--host, AIOUWS_HOST) to one of its addresses, "
            "e.g. 127.0.0.1 or 0.0.0.0",
        )
    return None


def safe_dsn(dsn: str, mask: str | None = "***") -> str:
    """``dsn`` (a URI or ``key=value`` string) with its ``password`` and
    ``sslpassword`` values replaced by ``mask``, or removed when ``mask`` is None
    (what ``aiouws db start`` prints)."""
    if "://" not in dsn:
        if mask is None:
            return _KV_SECRET.sub("", dsn)
        return _KV_SECRET.sub(lambda m: f"{m[1]}{m[2]}{m[3]}{mask}", dsn)
    parts = urllib.parse.urlsplit(dsn)
    if parts.password is not None:
        userinfo, _, host = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}@{host}" if mask is None else f"{user}:{mask}@{host}"
        parts = parts._replace(netloc=netloc)
    query = []
    for pair in parts.query.split("&"):
        name, eq, _value = pair.partition("=")
        if eq and name in _SECRET_KEYS:
            if mask is None:
                continue
            pair = f"{name}={mask}"
        query.append(pair)
    return urllib.parse.urlunsplit(parts._replace(query="&".join(query)))


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer (timed out)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running and listening there?)"
    if isinstance(exc, FileNotFoundError):
        return "no server socket there (is PostgreSQL running?)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
