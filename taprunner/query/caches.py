"""Caches saving a repeated query its fixed costs: statements and translations.

:class:`StatementCache` keeps one connection's prepared statements by SQL text;
:class:`TranslationCache` keeps recent ADQL translations per catalogue object.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import asyncpg
from sqlglot import exp

from taprunner.adql.limits import DEFAULT_LIMITS, QueryLimits, check_length
from taprunner.adql.model import Catalog, Translation
from taprunner.adql.translate import translate
from taprunner.query.shapes import Shape, ShapeCache, shape_of
from taprunner.schema.catalog import Connection

__all__ = [
    "TRANSLATORS",
    "StatementCache",
    "TranslationCache",
    "Translators",
    "digest",
    "prepare",
]

T = TypeVar("T")


class StatementCache:
    """The prepared statements of one connection, by SQL text (the most recent).

    ``Connection.prepare`` parses and describes anew on every call: a round trip
    plus PostgreSQL's parse and plan work for every query, which is most of a tiny
    query's cost. A long-lived connection (a warm runner's) keeps its statements
    here instead. PostgreSQL re-plans a statement itself when a table it uses
    changes; when the result's columns changed, the statement is dropped and
    prepared again (see :func:`run_query`). Bounded in count and in bytes of
    SQL text: a statement holds its text, a big query's is not worth keeping.
    """

    def __init__(self, size: int = 64, max_bytes: int = 4 * 1024 * 1024) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[str, asyncpg.prepared_stmt.PreparedStatement] = (
            OrderedDict()
        )

    @property
    def retained_bytes(self) -> int:
        """The bytes of SQL text the kept statements hold."""
        return self._bytes

    async def prepare(
        self, conn: Connection, sql: str
    ) -> asyncpg.prepared_stmt.PreparedStatement:
        """``sql`` prepared on ``conn``: the kept statement, or a new one (kept
        unless its text is over a quarter of ``max_bytes``; the oldest go
        beyond ``size`` statements or ``max_bytes`` of text)."""
        statement = self._entries.get(sql)
        if statement is not None:
            self._entries.move_to_end(sql)
            return statement
        statement = await conn.prepare(sql)
        if len(sql) > self._max_bytes // 4:
            return statement
        self._entries[sql] = statement
        self._bytes += len(sql)
        while len(self._entries) > self._size or self._bytes > self._max_bytes:
            dropped, _ = self._entries.popitem(last=False)
            self._bytes -= len(dropped)
        return statement

    def discard(self, sql: str) -> None:
        if self._entries.pop(sql, None) is not None:
            self._bytes -= len(sql)

    def __len__(self) -> int:
        return len(self._entries)


async def prepare(
    conn: Connection, sql: str, statements: StatementCache | None
) -> asyncpg.prepared_stmt.PreparedStatement:
    """``sql`` prepared on ``conn``, through ``statements`` (its cache) if given.

    Without a cache, as PostgreSQL's unnamed statement: it serves the one query
    of the transaction and is replaced by the next Parse, where a named one
    would cost a round trip of its own to close (asyncpg closes a dropped named
    statement, waiting for the reply, before it prepares the next one).
    """
    if statements is None:
        return await conn.prepare(sql, name="")
    return await statements.prepare(conn, sql)


#: Queries longer than this (characters) are parsed on the one thread of the
#: big-query executor, so that many big ones never hold up small ones.
SMALL_QUERY = 64 * 1024
#: Queries up to this many characters are digested on the event loop (a few
#: microseconds); longer ones on a translator thread.
DIGEST_ON_LOOP = 4096


class Translators:
    """The threads that parse and translate ADQL off the event loop.

    Two threads take queries of up to :data:`SMALL_QUERY` characters, a third
    the longer ones: a flood of big queries queues behind itself, while small
    ones keep theirs. With the GIL's switch interval (5 ms) the event loop
    keeps running meanwhile. Threads start on first use.
    """

    def __init__(self) -> None:
        self._small = ThreadPoolExecutor(2, thread_name_prefix="adql-small")
        self._big = ThreadPoolExecutor(1, thread_name_prefix="adql-big")

    async def run(self, adql: str, work: Callable[..., T], *args: object) -> T:
        """``work(*args)`` on the thread for queries as long as ``adql``."""
        executor = self._small if len(adql) <= SMALL_QUERY else self._big
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, functools.partial(work, *args))


#: The translator threads of this process (the server's or a runner's).
TRANSLATORS = Translators()


def digest(text: str, *more: str) -> bytes:
    """A digest of ``text`` (and of ``more``): what caches key queries by.

    Each part goes in with its length, so that no two lists of parts collide.
    """
    hashed = hashlib.blake2b(digest_size=20)
    for part in (text, *more):
        data = part.encode("utf-8", "surrogatepass")
        hashed.update(len(data).to_bytes(8, "big"))
        hashed.update(data)
    return hashed.digest()


def _extra(limit: int, limits: QueryLimits) -> str:
    """What decides a query's SQL besides its text: the row cap and the limits."""
    return f"{limit}\0{limits!r}"


def _translation_bytes(translation: Translation) -> int:
    """About what an entry holds: its SQL text and column descriptions."""
    columns = sum(
        96 + len(c.name) + len(c.table or "") + len(c.column or "")
        for c in translation.columns
    )
    return 256 + len(translation.sql) + columns + 64 * len(translation.tables)


class TranslationCache:
    """Recent translations, reused while the catalogue object is the same one.

    Parsing dominates a tiny query's translation (about a millisecond); clients
    often repeat the same query. A caller that parsed the query already (the
    fast lane, for its row bound) hands the statement over for a new one. A
    reloaded catalogue or one with uploads is a new object, so nothing stale is
    ever returned.

    Entries are keyed by a digest of the query text, the row cap and the limits,
    never by the text itself, and bounded by count (``size``) and by the bytes
    of what they hold (``max_bytes``; a translation bigger than a quarter of it
    is not kept). :meth:`translate` does the work off the event loop, on the
    :class:`Translators` threads, so that the loop (the server's, with its other
    clients) keeps running while a big query is parsed.
    """

    def __init__(
        self,
        size: int = 256,
        max_bytes: int = 8 * 1024 * 1024,
        threads: Translators | None = None,
    ) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[bytes, tuple[Catalog, Translation, int]] = (
            OrderedDict()
        )
        self._threads = threads or TRANSLATORS
        #: Templates of queries that differ only in numbers (:mod:`.shapes`).
        self.shapes = ShapeCache(size)

    @property
    def retained_bytes(self) -> int:
        """The bytes the entries hold (by :func:`_translation_bytes`)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(adql: str, limit: int, limits: QueryLimits) -> bytes:
        """The digest ``adql`` is cached under, with what else decides its SQL."""
        return digest(adql, _extra(limit, limits))

    def get(
        self,
        adql: str,
        catalog: Catalog,
        limit: int,
        statement: exp.Expr | None = None,
        limits: QueryLimits = DEFAULT_LIMITS,
    ) -> Translation:
        """The translation of ``adql`` for ``catalog`` (see :func:`translate`;
        ``statement``: ``adql`` already parsed, used if it must be translated),
        translated on the calling thread."""
        check_length(adql, limits)
        key = self.key(adql, limit, limits)
        found = self._lookup(key, catalog)
        if found is not None:
            return found
        translation = translate(
            adql, catalog, limit=limit, statement=statement, limits=limits
        )
        self._store(key, catalog, translation)
        return translation

    async def translate(
        self,
        adql: str,
        catalog: Catalog,
        limit: int,
        statement: exp.Expr | None = None,
        limits: QueryLimits = DEFAULT_LIMITS,
    ) -> Translation:
        """:meth:`get`, with the digest and any translation off the event loop.

        Raises
        ------
        AdqlError
            As :func:`translate`; a too long text before anything else.
        """
        check_length(adql, limits)
        key = self.key(adql, limit, limits) if len(adql) <= DIGEST_ON_LOOP else None
        shape = None
        if key is not None:
            found = self._lookup(key, catalog)
            if found is not None:
                return found
            shape = shape_of(adql)
            if shape is not None:
                found = self.shapes.lookup(shape, catalog, _extra(limit, limits))
                if found is not None:
                    return found
        found_key, translation, hit = await self._threads.run(
            adql,
            self._translate_keyed,
            adql,
            catalog,
            limit,
            statement,
            limits,
            key,
            shape,
        )
        if not hit:
            self._store(found_key, catalog, translation)
        return translation

    def _translate_keyed(
        self,
        adql: str,
        catalog: Catalog,
        limit: int,
        statement: exp.Expr | None,
        limits: QueryLimits,
        key: bytes | None,
        shape: Shape | None = None,
    ) -> tuple[bytes, Translation, bool]:
        """(On an executor's thread.) The key, the translation and whether it
        was found in the cache (looked up here only for a text too long to
        digest on the loop). ``shape``: the query's (:mod:`.shapes`), learnt
        from (probed at its second sight)."""
        if key is None:
            key = self.key(adql, limit, limits)
            found = self._entries.get(key)
            if found is not None and found[0] is catalog:
                return key, found[1], True
        translation = translate(
            adql, catalog, limit=limit, statement=statement, limits=limits
        )
        if shape is not None:
            self.shapes.learn(
                shape,
                catalog,
                _extra(limit, limits),
                translation,
                lambda text: translate(text, catalog, limit=limit, limits=limits),
            )
        return key, translation, False

    def _lookup(self, key: bytes, catalog: Catalog) -> Translation | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] is not catalog:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def _store(self, key: bytes, catalog: Catalog, translation: Translation) -> None:
        """Keep ``translation`` (unless too big), dropping the oldest entries
        beyond the count and byte bounds."""
        size = _translation_bytes(translation)
        if size > self._max_bytes // 4:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old[2]
        self._entries[key] = (catalog, translation, size)
        self._bytes += size
        while len(self._entries) > self._size or self._bytes > self._max_bytes:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped
