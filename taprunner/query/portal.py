"""A cursor opened together with its first batch: one round trip, not two.

asyncpg's ``await statement.cursor()`` binds the portal (Bind, Sync: a round
trip) and ``cursor.fetch(n)`` then executes it (Execute, Sync: another). Its
``Cursor._bind_exec`` sends Bind and Execute with one Sync, as its cursor
iterator does for the first prefetch; the iterator, though, fetches fixed
batches and closes an exhausted portal with a round trip of its own. A sync
query's result (a cone search: a few rows) then takes Parse, Bind+Execute and
nothing more inside its transaction. The cursor returned is asyncpg's own: its
later ``fetch`` calls, the portal's end with the transaction and its
cancellation are asyncpg's.

``_bind_exec`` is asyncpg's private method (in every release since 0.18, with
this signature); :func:`open_cursor` falls back to the two public round trips
when the installed asyncpg lacks it, and tests/unit/test_portal.py fails if it
does (the round trips are counted there).
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import asyncpg
from asyncpg.cursor import Cursor

__all__ = ["Batches", "open_cursor"]


class Batches(Protocol):
    """What the streaming code takes batches from (a cursor, or rows fetched)."""

    async def fetch(self, n: int, /) -> list[asyncpg.Record]: ...


def _merged(cursor: object) -> bool:
    return callable(getattr(cursor, "_bind_exec", None))


async def open_cursor(
    statement: asyncpg.prepared_stmt.PreparedStatement, n: int
) -> tuple[Batches, list[asyncpg.Record]]:
    """A cursor of ``statement`` (in the connection's open transaction) and its
    first ``n`` rows, in one round trip where asyncpg allows it."""
    # The factory asyncpg's own statement.cursor() returns, unawaited: its
    # fields are those a Cursor is made of (and it attaches the statement).
    factory: Any = statement.cursor()
    cursor: Any = Cursor(
        factory._connection,
        factory._query,
        factory._state,
        factory._args,
        factory._record_class,
    )
    if not _merged(cursor):  # pragma: no cover - an asyncpg without it
        opened = await statement.cursor()
        return opened, await opened.fetch(n)
    rows = await cursor._bind_exec(n, None)
    return cast(Batches, cursor), cast(list[asyncpg.Record], list(rows))
