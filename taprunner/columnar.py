"""The columnar query path: binary VOTable results fetched as Arrow batches.

Profiled on a 10M-row BINARY2 result, a runner on the asyncpg path spends about
half its time on Python objects: one per value built by asyncpg, then transposed,
converted and freed per batch. Here the ADBC PostgreSQL driver (Apache Arrow's)
reads the result with ``COPY ... TO STDOUT (FORMAT binary)`` and decodes it in C
into Arrow arrays, whose buffers :mod:`taprunner.arrowcols` packs with numpy: no
Python object per value (about 40 % less runner CPU per row, measured).

It serves a query when :func:`taprunner.arrowcols.columnar_fields` accepts its
columns (numbers, booleans, text) and the format is BINARY or BINARY2; everything
else keeps the asyncpg path. The ADBC calls block, so they run in one worker
thread; the event loop stays free for the runner's protocol (heartbeats, ABORT).

Safety is the asyncpg path's: the session is read-only (``default_transaction_
read_only``) as the query role, with the job's statement timeout; a cancelled
task cancels the statement on the server and waits for the thread to let go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import adbc_driver_manager as adbc
import adbc_driver_postgresql
import nanoarrow

from taprunner.arrowcols import ArrowBatch, pack_batch
from taprunner.binpack import BinaryPacker
from taprunner.errors import TapError, TapQueryError, TapUsageError
from taprunner.heap import keep_heap_pad
from taprunner.query import QUERY_ROLE, QueryOutcome, Sink
from taprunner.votable import VOTableEncoder

__all__ = ["ColumnarSession"]

log = logging.getLogger(__name__)

#: Bytes of Arrow data per batch the driver aims at (about 15,000 rows of five
#: columns): bigger batches cost memory and gain nothing measurable.
BATCH_BYTES = 1024 * 1024
#: How the session shows in ``pg_stat_activity``.
APPLICATION_NAME = "aiouws columnar"
T = TypeVar("T")


class ColumnarSession:
    """One ADBC connection of a runner, a read-only session of the query role.

    Used by one job at a time (a runner runs one job); all blocking calls go
    through a single worker thread.
    """

    def __init__(self, dsn: str, *, role: str | None = QUERY_ROLE) -> None:
        self._dsn = dsn
        self._role = role
        self._database: adbc.AdbcDatabase | None = None
        self._conn: adbc.AdbcConnection | None = None
        self._timeout_ms: int | None = None
        self._stale = False  # a statement was cancelled: reconnect before the next
        self._limit = 0.0
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="columnar")

    async def run(
        self,
        sql: str,
        encoder: VOTableEncoder,
        maxrec: int,
        timeout: float,
        sink: Sink,
    ) -> QueryOutcome:
        """Run ``sql`` (read-only, ``timeout`` seconds at most) into ``sink`` as
        ``encoder``'s document, with at most ``maxrec`` rows.

        Raises
        ------
        TapQueryError
            The database failed the query (timeout, data error) or is unreachable.
        TapUsageError
            The query role may not read a table.
        """
        packer = encoder.packer
        if packer is None:
            raise ValueError("the columnar path writes BINARY or BINARY2 only")
        self._limit = timeout
        statement = await self._call(self._prepare, sql, timeout)
        header_sent = finished = False
        try:
            batches = await self._call(self._execute, statement)
            # The first batch before the header: most failures surface there.
            first = await self._call(self._encode, batches, packer, encoder, maxrec)
            await sink(encoder.header())
            header_sent = True
            rows, overflow = await self._stream(
                first, batches, packer, encoder, maxrec, sink
            )
            finished = True
        except TapError as exc:
            if header_sent:  # rows went out: end the document with the error
                await sink(encoder.footer(error=str(exc)))
            raise
        finally:
            if not finished:  # e.g. the sink failed: stop the COPY, start afresh
                self._cancel()
            await self._call(_close, statement)
        await sink(encoder.footer(overflow=overflow))
        return QueryOutcome(rows, overflow)

    async def _stream(
        self,
        first: tuple[bytes, int, bool] | None,
        batches: Iterator[ArrowBatch],
        packer: BinaryPacker,
        encoder: VOTableEncoder,
        maxrec: int,
        sink: Sink,
    ) -> tuple[int, bool]:
        rows = 0
        part = first
        while part is not None:
            data, count, overflow = part
            await sink(data)
            rows += count
            if overflow:  # the rest is the one row over MAXREC (the SQL's LIMIT)
                await self._call(_drain, batches)
                return rows, True
            part = await self._call(
                self._encode, batches, packer, encoder, maxrec - rows
            )
        return rows, False

    def close(self) -> None:
        """Close the connection (in the calling thread) and the worker thread."""
        self._disconnect()
        self._thread.shutdown(wait=False)

    # -- in the worker thread ------------------------------------------------------
    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in the worker thread. A cancelled caller cancels the
        statement on the server and waits until the thread has let go of it."""
        future = asyncio.get_running_loop().run_in_executor(
            self._thread, function, *args
        )
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self._cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait([future])
                future.exception()
            raise

    def _cancel(self) -> None:
        """Cancel the running statement (any thread); the connection is dropped
        after it, so a half-read COPY never meets the next job."""
        conn = self._conn
        if conn is not None:
            self._stale = True
            with contextlib.suppress(adbc.Error):
                conn.cancel()

    def _connection(self, timeout: float) -> adbc.AdbcConnection:
        if self._stale:
            self._disconnect()
        if self._conn is None:
            self._database = adbc_driver_postgresql.connect(self._dsn)
            self._conn = adbc.AdbcConnection(self._database)
            setup = [
                f"SET application_name = '{APPLICATION_NAME}'",
                "SET default_transaction_read_only = on",
            ]
            if self._role is not None:
                setup.append(f'SET ROLE "{self._role}"')
            for sql in setup:
                self._update(sql)
            self._timeout_ms = None
        ms = max(1, int(timeout * 1000))
        if ms != self._timeout_ms:
            self._update(f"SET statement_timeout = {ms}")
            self._timeout_ms = ms
        return self._conn

    def _update(self, sql: str) -> None:
        assert self._conn is not None
        statement = adbc.AdbcStatement(self._conn)
        try:
            statement.set_sql_query(sql)
            statement.execute_update()
        finally:
            statement.close()

    def _disconnect(self) -> None:
        handles = (self._conn, self._database)
        self._conn = self._database = None  # first: _cancel no longer sees it
        for handle in handles:
            if handle is not None:
                with contextlib.suppress(adbc.Error):
                    handle.close()
        self._timeout_ms = None
        self._stale = False

    def _prepare(self, sql: str, timeout: float) -> adbc.AdbcStatement:
        try:
            conn = self._connection(timeout)
        except adbc.Error as exc:
            self._stale = True
            raise TapQueryError(f"database unavailable: {_message(exc)}") from exc
        statement = adbc.AdbcStatement(conn)
        statement.set_sql_query(sql)
        statement.set_options(
            **{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_BYTES)}
        )
        return statement

    def _execute(self, statement: adbc.AdbcStatement) -> Iterator[ArrowBatch]:
        """Start the query; returns once the first rows (or the error) arrived."""
        try:
            handle, _ = statement.execute_query()
        except adbc.Error as exc:
            raise self._failure(exc, getattr(exc, "sqlstate", None)) from exc
        return iter(nanoarrow.c_array_stream(handle))

    def _encode(
        self,
        batches: Iterator[ArrowBatch],
        packer: BinaryPacker,
        encoder: VOTableEncoder,
        room: int,
    ) -> tuple[bytes, int, bool] | None:
        """The next non-empty batch, encoded: (base64 text, rows, overflow) or
        None at the end. Overflow: the batch held more rows than ``room``."""
        try:
            batch = next(batches, None)
            while batch is not None and batch.length == 0:
                batch = next(batches, None)
        except RuntimeError as exc:  # nanoarrow's: the stream reported an error
            raise self._failure(exc, None) from exc
        if batch is None:
            return None
        if batch.length >= 10_000:  # a large result: stop the heap's page churn
            keep_heap_pad()
        count = min(batch.length, room)
        data = encoder.encode_raw(pack_batch(packer, batch, count).data)
        return data, count, batch.length > room

    def _failure(self, exc: Exception, sqlstate: str | None) -> TapError:
        message = _message(exc)
        if sqlstate == "42501" or message.startswith("permission denied"):
            return TapUsageError(f"not allowed: {message}")
        cancelled = sqlstate == "57014" or "canceling statement" in message
        if cancelled or sqlstate is None or sqlstate.startswith("08"):
            self._stale = True  # cancelled, lost or unknown: start afresh
        if cancelled:
            return TapQueryError(
                f"query cancelled: {message} (limit {self._limit:g} s)"
            )
        return TapQueryError(f"query failed: {message}")


def _drain(batches: Iterator[ArrowBatch]) -> None:
    for _ in batches:
        pass


def _close(statement: adbc.AdbcStatement) -> None:
    with contextlib.suppress(adbc.Error):
        statement.close()


_SERVER_ERROR = re.compile(r"ERROR:\s+(.*?)(?:\n|\. SQLSTATE|$)", re.S)


def _message(exc: BaseException) -> str:
    """PostgreSQL's own words from a driver error, else the driver's."""
    text = str(exc)
    found = _SERVER_ERROR.search(text)
    return (found.group(1) if found else text).strip()
