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

**Catalogue replicas.** With ``catalog_dsns`` (read replicas of the primary),
the query role's connections (sync pool, fast lane, runners' asyncpg and ADBC
sessions) go to them: each new connection takes the next server in turn
(per process), passing over one that refuses, and the primary when all do
(:meth:`Database.connect`). The job store, LISTEN/NOTIFY, migrations and
TAP_SCHEMA maintenance use the service's :class:`Database` itself, which is
the primary. :meth:`Database.writable` is the query role on the primary, for
queries that create temporary tables (uploads); :meth:`Database.server_of` the
one server a connection went to (a cancel must go there too).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import asyncpg

from aiouws.config import ConfigError, Settings

__all__ = ["QUERY_ROLE", "SESSION_SETTINGS", "Database", "query_login_dsn"]

#: The login role user queries run as (:mod:`.queryrole`): no superuser, no
#: membership in other roles, SELECT only on what is published.
QUERY_ROLE = "aiouws_query"

#: Settings of every session (startup parameters, so ``RESET ALL`` keeps them;
#: the ADBC session sets them itself, taprunner.query.columnar):
#:
#: - a backend whose client vanished (a killed runner or server) stops its
#:   statement within 2 s, instead of running on until it next writes to the
#:   socket (PostgreSQL 14+; see aiouws.storage.backends);
#: - no JIT compilation: pg_sphere estimates a cone (``<@ scircle``) at a
#:   thousandth of the table, so on 100,000,000 rows a cone search returning two
#:   rows was costed above ``jit_above_cost`` and compiled, 15 ms of PostgreSQL
#:   CPU for a query that runs in 0.2 ms (EXPLAIN ANALYZE). Results are the
#:   same; a long scan only loses JIT's speed-up of its expressions. Every user
#:   query runs on one of these sessions (runners, the sync pool, the fast lane,
#:   replicas); the service's own statements are small and never wanted JIT.
SESSION_SETTINGS = {"client_connection_check_interval": "2s", "jit": "off"}

log = logging.getLogger(__name__)

#: The turn of the next catalogue server, shared by the process's connections.
_TURN = itertools.count()

#: Seconds a replica that refused a connection is passed over (unless all are).
DOWN_SECONDS = 10.0
#: Seconds a connection to a replica may take before the next is tried.
REPLICA_CONNECT_TIMEOUT = 5.0
#: When each replica that refused last may be tried again (monotonic clock).
_down_until: dict[str, float] = {}

#: What tells a catalogue server that cannot take a connection (down, starting,
#: refusing): the next one is tried.
_CONNECT_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError)


class ServerConnection(asyncpg.Connection):
    """An asyncpg connection that knows the DSN of the server it went to."""

    __slots__ = ("server_dsn",)
    server_dsn: str


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
    #: Catalogue servers (replicas) that connections go to before ``dsn``
    #: (which is then the primary, the last resort); () : ``dsn`` only.
    replicas: tuple[str, ...] = field(default=(), repr=False)
    #: The catalogue replicas as this login reaches them, for user queries
    #: (:meth:`for_queries`) and the termination of their backends
    #: (:meth:`catalogue`); this login's own connections never go there.
    catalogs: tuple[str, ...] = field(default=(), repr=False)

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
        return cls(settings.dsn, settings.query_dsn, catalogs=settings.catalog_servers)

    def for_queries(self) -> Database:
        """This database as the query role logs into it: where user queries run.

        The ``query_dsn`` setting, else the service DSN with its user replaced by
        :data:`QUERY_ROLE` and without a password (:func:`query_login_dsn`).
        Calling it again on the result gives the same database. The query
        role logs into each catalogue replica the same way (its user replaced).
        """
        dsn = self.query_dsn or query_login_dsn(self.dsn)
        replicas = tuple(query_login_dsn(replica) for replica in self.catalogs)
        return Database(dsn, dsn, replicas, replicas)

    def catalogue(self) -> tuple[Database, ...]:
        """This login on each catalogue replica, one by one (the primary not
        included)."""
        return tuple(Database(dsn) for dsn in self.catalogs)

    def writable(self) -> Database:
        """This login on the primary only (no replicas): for what writes, such
        as the temporary tables of upload queries."""
        return replace(self, replicas=())

    def server_of(self, conn: object) -> Database:
        """This login on the one server ``conn`` (an asyncpg connection, or a
        pool's proxy of one) went to (where its backend's query must be
        cancelled)."""
        dsn = getattr(conn, "server_dsn", None)
        return replace(self, dsn=dsn, replicas=()) if dsn else self.writable()

    @property
    def servers(self) -> tuple[str, ...]:
        """Every server of this login: the replicas, then the primary."""
        return (*self.replicas, self.dsn)

    def _in_turn(self) -> list[str]:
        """The servers in the order a new connection tries them: the replicas
        from the next one's turn on, then the primary."""
        if not self.replicas:
            return [self.dsn]
        now = time.monotonic()
        up = [r for r in self.replicas if _down_until.get(r, 0.0) <= now]
        turn = next(_TURN) % max(len(up), 1)
        return [*up[turn:], *up[:turn], self.dsn]

    @property
    def uri(self) -> str:
        """The DSN of the server whose turn it is, as a libpq URI, for drivers
        other than asyncpg (ADBC); a replica's with libpq's ``connect_timeout``
        (:data:`REPLICA_CONNECT_TIMEOUT`, unless it sets one): a replica that
        hangs must not hold a connection forever."""
        servers = self._in_turn()
        if len(servers) == 1:
            return servers[0]
        return _with_connect_timeout(servers[0], REPLICA_CONNECT_TIMEOUT)

    def arrow_database(self) -> Any:
        """A database handle of Apache Arrow's ADBC PostgreSQL driver, for reading
        results as Arrow batches (an ``adbc_driver_manager.AdbcDatabase``; the
        caller opens connections on it and closes it), on the server whose turn
        it is. The driver is imported on first use: processes that never read
        columns never load it.
        """
        import adbc_driver_postgresql

        return adbc_driver_postgresql.connect(self.uri)

    async def connect(
        self, *, timeout: float = 60.0, name: str | None = None
    ) -> asyncpg.Connection:
        """One new connection (the caller closes it), to the server whose turn
        it is, else the next that takes it (see the module's docstring).
        ``name``: what it is for, in ``pg_stat_activity.application_name``
        with this process's id.

        Raises what connecting to the last server raised.
        """
        settings = dict(SESSION_SETTINGS)
        if name is not None:
            settings["application_name"] = f"aiouws {name} {os.getpid()}"
        servers = self._in_turn()
        for dsn in servers[:-1]:
            try:
                wait = min(timeout, REPLICA_CONNECT_TIMEOUT)
                return await self._connect_to(dsn, wait, settings)
            except _CONNECT_ERRORS as exc:
                _down_until[dsn] = time.monotonic() + DOWN_SECONDS
                log.warning("catalogue server unavailable, trying the next: %s", exc)
        return await self._connect_to(servers[-1], timeout, settings)

    @staticmethod
    async def _connect_to(
        dsn: str, timeout: float, settings: dict[str, str]
    ) -> asyncpg.Connection:
        conn = await asyncpg.connect(
            dsn,
            timeout=timeout,
            server_settings=settings,
            connection_class=ServerConnection,
        )
        conn.server_dsn = dsn
        return conn

    async def create_pool(
        self,
        *,
        min_size: int,
        max_size: int,
        init: InitHook | None = None,
        reset: ResetHook | None = None,
    ) -> asyncpg.Pool:
        """A connection pool (the caller closes it); with replicas, each new
        connection goes to the server whose turn it is (:meth:`connect`).

        ``init`` runs on each new connection, ``reset`` when one is released.
        """

        async def connect(*_args: Any, **_kwargs: Any) -> asyncpg.Connection:
            return await self.connect()

        pool = await asyncpg.create_pool(
            self.dsn,
            min_size=min_size,
            max_size=max_size,
            init=init,
            reset=reset,
            server_settings=SESSION_SETTINGS,
            connect=connect if self.replicas else None,
        )
        if pool is None:  # only for pools created without awaiting
            raise RuntimeError("asyncpg returned no pool")
        return pool


def _with_connect_timeout(dsn: str, seconds: float) -> str:
    """``dsn`` (a libpq URI) with ``connect_timeout`` set, unless it has one
    (libpq's takes whole seconds, at least 2)."""
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if parts.scheme not in ("postgres", "postgresql") or any(
        key == "connect_timeout" for key, _ in query
    ):
        return dsn
    query.append(("connect_timeout", str(max(2, round(seconds)))))
    return urlunsplit(parts._replace(query=urlencode(query, safe="/")))


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
