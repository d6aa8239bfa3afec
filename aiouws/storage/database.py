"""The resolved database: one ``Database`` value, the one place connections are made.

The configured DSN may be unset (the embedded cluster then provides one); the
command line resolves it once (``Settings.with_dsn``) and the composition roots
turn it into a :class:`Database` with :meth:`Database.of`. Everything below takes
that value: pools, single connections, the phase listener's connection, TAP's
fast-lane and runner connections, and the ADBC session's database handle.

User queries never run on the service's own login: :meth:`Database.for_queries`
is the same database as the login role :data:`QUERY_ROLE` (a non-superuser that
may read only what is published; :mod:`.queryrole` creates it and its grants).
Its DSN is the ``query_dsn`` setting, else the service DSN with its user
replaced by that role and no password (peer authentication on the embedded
cluster's socket, or a ``~/.pgpass`` entry for an external server).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import asyncpg

from aiouws.config import ConfigError, Settings

__all__ = ["QUERY_ROLE", "SESSION_SETTINGS", "Database", "query_login_dsn"]

#: The login role user queries run as (:mod:`.queryrole`): no superuser, no
#: membership in other roles, SELECT only on what is published.
QUERY_ROLE = "aiouws_query"

#: Settings of every session: a backend whose client vanished (a killed runner
#: or server) stops its statement within 2 s, instead of running on until it
#: next writes to the socket (PostgreSQL 14+; see aiouws.storage.backends).
SESSION_SETTINGS = {"client_connection_check_interval": "2s"}


class InitHook(Protocol):
    """Runs on each new pooled connection (e.g. ``schema.init_connection``)."""

    async def __call__(self, conn: asyncpg.Connection, /) -> None: ...


ResetHook = Callable[[asyncpg.Connection], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Database:
    """A PostgreSQL database by its libpq DSN (kept out of ``repr``: it may hold a
    password)."""

    dsn: str = field(repr=False)
    #: DSN of the query role's login (None: derived, see :meth:`for_queries`).
    query_dsn: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, settings: Settings) -> Database:
        """The database of ``settings``, whose DSN must be resolved by now.

        Raises
        ------
        ConfigError
            The DSN is unset (the command line starts the embedded database and
            resolves it with ``Settings.with_dsn`` before it builds the app).
        """
        if settings.dsn is None:
            raise ConfigError(
                "settings.dsn must be set (the CLI starts the embedded database)"
            )
        return cls(settings.dsn, settings.query_dsn)

    def for_queries(self) -> Database:
        """This database as the query role logs into it: where user queries run.

        The ``query_dsn`` setting, else the service DSN with its user replaced by
        :data:`QUERY_ROLE` and without a password (:func:`query_login_dsn`).
        Calling it again on the result gives the same database.
        """
        dsn = self.query_dsn or query_login_dsn(self.dsn)
        return Database(dsn, dsn)

    @property
    def uri(self) -> str:
        """The DSN as a libpq URI, for drivers other than asyncpg (ADBC)."""
        return self.dsn

    def arrow_database(self) -> Any:
        """A database handle of Apache Arrow's ADBC PostgreSQL driver, for reading
        results as Arrow batches (an ``adbc_driver_manager.AdbcDatabase``; the
        caller opens connections on it and closes it). The driver is imported on
        first use: processes that never read columns never load it.
        """
        import adbc_driver_postgresql

        return adbc_driver_postgresql.connect(self.uri)

    async def connect(self, *, timeout: float = 60.0) -> asyncpg.Connection:
        """One new connection (the caller closes it)."""
        return await asyncpg.connect(
            self.dsn, timeout=timeout, server_settings=SESSION_SETTINGS
        )

    async def create_pool(
        self,
        *,
        min_size: int,
        max_size: int,
        init: InitHook | None = None,
        reset: ResetHook | None = None,
    ) -> asyncpg.Pool:
        """A connection pool (the caller closes it).

        ``init`` runs on each new connection, ``reset`` when one is released.
        """
        pool = await asyncpg.create_pool(
            self.dsn,
            min_size=min_size,
            max_size=max_size,
            init=init,
            reset=reset,
            server_settings=SESSION_SETTINGS,
        )
        if pool is None:  # only for pools created without awaiting
            raise RuntimeError("asyncpg returned no pool")
        return pool


def query_login_dsn(dsn: str, role: str = QUERY_ROLE) -> str:
    """``dsn`` (a libpq URI) logging in as ``role``: its user and any password
    replaced (a password of the service's login is never the query role's).

    Raises
    ------
    ConfigError
        ``dsn`` is not a ``postgresql://`` URI (set ``query_dsn`` then).
    """
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(
            "the DSN is not a postgresql:// URI: set query_dsn (AIOUWS_QUERY_DSN) "
            f"to the DSN of the query role {role!r}"
        )
    host = parts.netloc.rpartition("@")[2]
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key not in ("user", "password")
    ]
    return urlunsplit(
        parts._replace(
            netloc=f"{quote(role, safe='')}@{host}",
            query=urlencode(query, safe="/"),
        )
    )
