"""The resolved database: one ``Database`` value, the one place connections are made.

The configured DSN may be unset (the embedded cluster then provides one); the
command line resolves it once (``Settings.with_dsn``) and the composition roots
turn it into a :class:`Database` with :meth:`Database.of`. Everything below takes
that value: pools, single connections, the phase listener's connection, TAP's
fast-lane and runner connections, and the ADBC session's database handle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from aiouws.config import ConfigError, Settings

__all__ = ["SESSION_SETTINGS", "Database"]

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
        return cls(settings.dsn)

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
