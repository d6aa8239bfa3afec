"""Caches saving a repeated query its fixed costs: statements and translations.

:class:`StatementCache` keeps one connection's prepared statements by SQL text;
:class:`TranslationCache` keeps recent ADQL translations per catalogue object.
"""

from __future__ import annotations

from collections import OrderedDict

import asyncpg
from sqlglot import exp

from taprunner.adql.model import Catalog, Translation
from taprunner.adql.translate import translate
from taprunner.schema.catalog import Connection

__all__ = ["StatementCache", "TranslationCache", "prepare"]


class StatementCache:
    """The prepared statements of one connection, by SQL text (the most recent).

    ``Connection.prepare`` parses and describes anew on every call: a round trip
    plus PostgreSQL's parse and plan work for every query, which is most of a tiny
    query's cost. A long-lived connection (a warm runner's) keeps its statements
    here instead. PostgreSQL re-plans a statement itself when a table it uses
    changes; when the result's columns changed, the statement is dropped and
    prepared again (see :func:`run_query`).
    """

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._entries: OrderedDict[str, asyncpg.prepared_stmt.PreparedStatement] = (
            OrderedDict()
        )

    async def prepare(
        self, conn: Connection, sql: str
    ) -> asyncpg.prepared_stmt.PreparedStatement:
        statement = self._entries.get(sql)
        if statement is not None:
            self._entries.move_to_end(sql)
            return statement
        statement = await conn.prepare(sql)
        self._entries[sql] = statement
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return statement

    def discard(self, sql: str) -> None:
        self._entries.pop(sql, None)

    def __len__(self) -> int:
        return len(self._entries)


async def prepare(
    conn: Connection, sql: str, statements: StatementCache | None
) -> asyncpg.prepared_stmt.PreparedStatement:
    """``sql`` prepared on ``conn``, through ``statements`` (its cache) if given."""
    if statements is None:
        return await conn.prepare(sql)
    return await statements.prepare(conn, sql)


class TranslationCache:
    """Recent translations, reused while the catalogue object is the same one.

    Parsing dominates a tiny query's translation (about a millisecond); clients
    often repeat the same query. A caller that parsed the query already (the
    fast lane, for its row bound) hands the statement over for a new one. A
    reloaded catalogue or one with uploads is a new object, so nothing stale is
    ever returned.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, int], tuple[Catalog, Translation]] = (
            OrderedDict()
        )

    def get(
        self,
        adql: str,
        catalog: Catalog,
        limit: int,
        statement: exp.Expr | None = None,
    ) -> Translation:
        """The translation of ``adql`` for ``catalog`` (see :func:`translate`;
        ``statement``: ``adql`` already parsed, used if it must be translated)."""
        key = (adql, limit)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is catalog:
            self._entries.move_to_end(key)
            return entry[1]
        translation = translate(adql, catalog, limit=limit, statement=statement)
        self._entries[key] = (catalog, translation)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return translation
