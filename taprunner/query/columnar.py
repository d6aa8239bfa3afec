"""The columnar query path: binary VOTable results fetched as Arrow batches.

Profiled on a 10M-row BINARY2 result, a runner on the asyncpg path spends about
half its time on Python objects: one per value built by asyncpg, then transposed,
converted and freed per batch. Here the ADBC PostgreSQL driver (Apache Arrow's)
reads the result with ``COPY ... TO STDOUT (FORMAT binary)`` and decodes it in C
into Arrow arrays, whose buffers :mod:`taprunner.formats.arrow` packs with numpy: no
Python object per value (about 40 % less runner CPU per row, measured).

It serves a query when :func:`taprunner.formats.arrow.columnar_fields` accepts its
columns (numbers, booleans, text) and the format takes Arrow batches (BINARY,
BINARY2, VOParquet); everything else keeps the asyncpg path. The ADBC calls
block, so they run in one worker thread; the event loop stays free for the
runner's protocol (heartbeats, ABORT).

Safety is the asyncpg path's: the session is read-only (``default_transaction_
read_only``) as the query role, with the job's statement timeout; a cancelled
task cancels the statement on the server and waits for the thread to let go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import adbc_driver_manager as adbc
import nanoarrow
import numpy as np

from aiouws.storage.backends import IDENTITY_SQL, parse_identity
from aiouws.storage.database import SESSION_SETTINGS, Database
from taprunner.errors import TapError, TapQueryError
from taprunner.formats.arrow import (
    ARROW_FORMATS,
    ArrowBatch,
    ColumnsChanged,
    UnsupportedArrow,
)
from taprunner.formats.registry import ArrowEncoder
from taprunner.query.bytelimits import ByteGate, ResultLimits, value_cut
from taprunner.query.execute import timeout_ms
from taprunner.query.heap import keep_heap_pad
from taprunner.query.outcome import (
    INSUFFICIENT_PRIVILEGE,
    QUERY_CANCELED,
    ColumnarUnavailable,
    QueryOutcome,
    Sink,
    end_with_error,
    query_error,
)
from taprunner.schema.tapschema import QUERY_ROLE
from taprunner.settings import TapSettings

__all__ = ["APPLICATION_NAME", "ColumnarSession"]

log = logging.getLogger(__name__)

#: Bytes of Arrow data per batch the driver aims at (about 15,000 rows of five
#: columns): bigger batches cost memory and gain nothing measurable.
BATCH_BYTES = 1024 * 1024
#: How the session shows in ``pg_stat_activity``.
APPLICATION_NAME = "aiouws columnar"
#: Seconds the session stays off after it failed to connect (queries use asyncpg).
RETRY_AFTER = 60.0
T = TypeVar("T")


class ColumnarSession:
    """One ADBC connection of a runner, a read-only session of the query role.

    Used by one job at a time (a runner runs one job); all blocking calls go
    through a single worker thread. The role, read-only default and statement
    timeout are set again before every query, in one round trip.
    """

    def __init__(self, database: Database, *, role: str | None = QUERY_ROLE) -> None:
        self._db = database
        self._role = role
        self._database: adbc.AdbcDatabase | None = None
        self._conn: adbc.AdbcConnection | None = None
        self._statement: adbc.AdbcStatement | None = None
        self._stale = False  # interrupted or failed: reconnect before the next query
        self._off_until = 0.0
        self._limit = 0.0
        self._lock = threading.Lock()  # the connection handle: closing vs cancelling
        #: The backend of the connection, ``(pid, backend_start ISO)``, and who
        #: is told about it (the job's ``report_backend``).
        self._identity: tuple[int, str] | None = None
        self._report: Callable[[int, str], None] | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="columnar")

    def use_role(self, role: str) -> None:
        """Run the next queries as ``role`` (a job's session role; set again
        before every query, so it holds for that job only)."""
        self._role = role

    async def run(
        self,
        sql: str,
        encoder: ArrowEncoder,
        pg_types: Sequence[str],
        maxrec: int,
        timeout: float,
        sink: Sink,
        limits: ResultLimits | None = None,
    ) -> QueryOutcome:
        """Run ``sql`` (read-only, ``timeout`` seconds at most) into ``sink`` as
        ``encoder``'s document, with at most ``maxrec`` rows and within
        ``limits`` (the driver's batches are bounded in bytes already; default:
        an async result file's of the default settings).
        ``pg_types``: the PostgreSQL types of its columns, as described when the
        FIELDs were made.

        Raises
        ------
        ColumnarUnavailable
            Nothing was written: no connection, or it was lost before any row
            came. The caller runs the query on asyncpg instead.
        ColumnsChanged
            Nothing was written: the result's columns are not ``pg_types`` (the
            table changed since it was described).
        TapQueryError
            The database failed the query (timeout, data error).
        TapUsageError
            The query role may not read a table.
        """
        if time.monotonic() < self._off_until:
            raise ColumnarUnavailable("the columnar session could not connect")
        formats = [ARROW_FORMATS[pg_type] for pg_type in pg_types]
        self._limit = timeout
        gate = _Gate(limits or ResultLimits.for_file(TapSettings()))
        interrupted = True
        header_sent = False
        try:
            await self._call(self._prepare, sql, timeout)
            batches = await self._call(self._execute, formats)
            # The first batch before the header: most failures surface there.
            first = await self._call(self._encode, batches, encoder, maxrec, gate)
            await sink(encoder.header())
            header_sent = True
            rows, overflow = await self._stream(
                first, batches, encoder, maxrec, sink, gate
            )
            interrupted = gate.cut is not None  # rows left: stop the COPY
        except TapError as exc:
            interrupted = False  # the server ended the statement itself
            if header_sent:  # rows went out: end the document with the error
                await end_with_error(sink, encoder, exc, timeout)
            raise
        finally:
            if interrupted:  # cancelled, sink failed, ...: stop the COPY
                self._cancel()
            await self._call(self._close_statement)
        cut = gate.cut
        await sink(encoder.footer(overflow=overflow or cut is not None, cut=cut))
        return QueryOutcome(rows, overflow, cut)

    async def _stream(
        self,
        first: tuple[bytes, int, bool] | None,
        batches: Iterator[ArrowBatch],
        encoder: ArrowEncoder,
        maxrec: int,
        sink: Sink,
        gate: _Gate,
    ) -> tuple[int, bool]:
        rows = 0
        part = first
        while part is not None:
            data, count, overflow = part
            await sink(data)
            rows += count
            if overflow:  # the rest is the one row over MAXREC (the SQL's LIMIT)
                await self._call(self._drain, batches)
                return rows, True
            if gate.cut is not None:
                return rows, False
            if gate.wrote(len(data)):
                if await self._call(self._more, batches):
                    gate.stop()  # rows are left beyond the limit
                return rows, False
            part = await self._call(self._encode, batches, encoder, maxrec - rows, gate)
        return rows, False

    def report_backend(self, report: Callable[[int, str], None]) -> None:
        """Tell ``report`` (thread-safe) this session's backend: at once if it is
        connected, else once it connects; the runner's supervisor terminates it
        should the runner die."""
        self._report = report
        if self._identity is not None:
            report(*self._identity)

    def close(self) -> None:
        """Close the connection (in the calling thread) and the worker thread."""
        self._disconnect()
        self._thread.shutdown(wait=False)

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in the worker thread. A cancelled caller cancels the
        statement on the server and waits until the thread has let go of it
        (bounded by the supervisor, which kills a runner that ignores ABORT)."""
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
        """Ask the server to cancel the running statement, from a helper thread
        (libpq's cancel request opens a connection and blocks); the session is
        dropped after it, so a half-read COPY never meets the next query."""
        if self._conn is None:
            return
        self._stale = True
        threading.Thread(target=self._send_cancel, daemon=True).start()

    def _send_cancel(self) -> None:
        with self._lock, contextlib.suppress(adbc.Error, RuntimeError):
            if self._conn is not None:
                self._conn.cancel()

    # -- in the worker thread ------------------------------------------------------
    def _connection(self, timeout: float) -> adbc.AdbcConnection:
        if self._stale:
            self._disconnect()
        if self._conn is None:
            try:
                self._database = self._db.arrow_database()
                conn = adbc.AdbcConnection(self._database)
            except (adbc.Error, RuntimeError) as exc:
                self._disconnect()
                self._off_until = time.monotonic() + RETRY_AFTER
                log.warning(
                    "columnar session cannot connect, asyncpg serves binary"
                    " results for %.0f s: %s",
                    RETRY_AFTER,
                    _message(exc),
                )
                raise
            with self._lock:
                self._conn = conn
            # Before SET ROLE: the query role may not see its session's start.
            self._identity = self._read_identity(conn)
            if self._identity is not None and self._report is not None:
                self._report(*self._identity)
        settings = [
            f"SET application_name = '{APPLICATION_NAME}'",
            "SET default_transaction_read_only = on",
            f"SET statement_timeout = {timeout_ms(timeout)}",
            *(f"SET {name} = '{value}'" for name, value in SESSION_SETTINGS.items()),
        ]
        if self._role is not None:
            settings.append(f'SET ROLE "{self._role}"')
        statement = adbc.AdbcStatement(self._conn)
        try:
            statement.set_sql_query("; ".join(settings))
            statement.execute_update()
        finally:
            statement.close()
        return self._conn

    @staticmethod
    def _read_identity(conn: adbc.AdbcConnection) -> tuple[int, str] | None:
        statement = adbc.AdbcStatement(conn)
        try:
            statement.set_sql_query(IDENTITY_SQL)
            handle, _ = statement.execute_query()
            rows = nanoarrow.Array(nanoarrow.c_array_stream(handle)).to_pylist()
        except (adbc.Error, RuntimeError) as exc:
            log.warning("cannot read the columnar session's backend: %s", exc)
            return None
        finally:
            statement.close()
        return parse_identity(rows[0]["identity"]) if rows else None

    def _disconnect(self) -> None:
        self._close_statement()
        with self._lock:
            handles = (self._conn, self._database)
            self._conn = self._database = None
            self._identity = None
            for handle in handles:
                if handle is not None:
                    with contextlib.suppress(adbc.Error, RuntimeError):
                        handle.close()
        self._stale = False

    def _close_statement(self) -> None:
        statement, self._statement = self._statement, None
        if statement is not None:
            with contextlib.suppress(adbc.Error, RuntimeError):
                statement.close()

    def _prepare(self, sql: str, timeout: float) -> None:
        self._close_statement()  # left by a run cancelled at the wrong moment
        try:
            conn = self._connection(timeout)
            statement = adbc.AdbcStatement(conn)
            self._statement = statement
            statement.set_sql_query(sql)
            statement.set_options(
                **{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_BYTES)}
            )
        except (adbc.Error, RuntimeError) as exc:
            self._stale = True
            raise ColumnarUnavailable(_message(exc)) from exc

    def _execute(self, formats: list[tuple[str, ...]]) -> Iterator[ArrowBatch]:
        """Start the query; returns once the first rows (or the error) arrived."""
        assert self._statement is not None
        try:
            handle, _ = self._statement.execute_query()
        except adbc.Error as exc:
            sqlstate = getattr(exc, "sqlstate", None)
            lost = sqlstate is None or sqlstate[:2] in ("08", "57")
            if lost and sqlstate != QUERY_CANCELED:  # asyncpg may still serve it
                self._stale = True
                raise ColumnarUnavailable(_message(exc)) from exc
            raise self._failure(exc, sqlstate) from exc
        stream = nanoarrow.c_array_stream(handle)
        schema = stream.get_schema()
        found = [schema.child(i).format for i in range(schema.n_children)]
        if len(found) != len(formats) or any(
            f not in wanted for f, wanted in zip(found, formats, strict=False)
        ):
            raise ColumnsChanged(f"result columns are now {found}")
        return iter(stream)

    def _encode(
        self,
        batches: Iterator[ArrowBatch],
        encoder: ArrowEncoder,
        room: int,
        gate: _Gate,
    ) -> tuple[bytes, int, bool] | None:
        """The next non-empty batch, encoded: (base64 text, rows, overflow) or
        None at the end. Overflow: the batch held more rows than ``room``. Rows
        from the first with a value over the gate's limit on are left out.
        The bytes may be empty (an encoder that gathers a row group first)."""
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
        count = min(batch.length, room, gate.fitting(batch))
        if count == 0 and gate.cut is not None:
            return None
        try:
            data = encoder.encode_arrow(batch, count)
        except UnsupportedArrow as exc:
            raise TapQueryError(f"query failed: {exc}") from exc
        return data, count, batch.length > room and gate.cut is None

    def _more(self, batches: Iterator[ArrowBatch]) -> bool:
        """Whether the stream holds more rows (read up to the next batch)."""
        try:
            return any(batch.length for batch in batches)
        except RuntimeError as exc:
            raise self._failure(exc, None) from exc

    def _drain(self, batches: Iterator[ArrowBatch]) -> None:
        """Read the rest of the stream (the row past MAXREC); an error there
        changes nothing that was written, but the session starts afresh."""
        try:
            for _ in batches:
                pass
        except RuntimeError:
            self._stale = True

    def _failure(self, exc: Exception, sqlstate: str | None) -> TapError:
        message = _message(exc)
        if sqlstate is None:  # nanoarrow's stream errors: PostgreSQL's words tell
            if message.startswith("permission denied"):
                sqlstate = INSUFFICIENT_PRIVILEGE
            elif "canceling statement" in message:
                sqlstate = QUERY_CANCELED
        if sqlstate in (None, QUERY_CANCELED) or sqlstate.startswith("08"):
            self._stale = True  # cancelled, lost or unknown: start afresh
        return query_error(sqlstate, message, self._limit)


class _Gate(ByteGate):
    """:class:`ByteGate` for Arrow batches: text lengths from their offsets."""

    def __init__(self, limits: ResultLimits) -> None:
        super().__init__((), limits)

    def fitting(self, batch: ArrowBatch) -> int:
        """Rows of ``batch`` before the first with a text over the value limit
        (then :attr:`cut` says so)."""
        first = batch.length
        for index in range(batch.n_children):
            child = batch.child(index)
            fmt = child.schema.format
            if fmt not in ("u", "U"):
                continue
            start = batch.offset + child.offset
            offsets = np.frombuffer(
                child.view().buffer(1), "<i4" if fmt == "u" else "<i8"
            )[start : start + batch.length + 1]
            over = np.flatnonzero(np.diff(offsets) > self.limits.value_bytes)
            if over.size:
                first = min(first, int(over[0]))
        if first < batch.length:
            self.cut = value_cut(self.limits)
        return first


_SERVER_ERROR = re.compile(
    r"(?:ERROR|FATAL|PANIC):\s+(.*?)\s*(?:\nQuery was:|\n|\. SQLSTATE|$)", re.S
)
_DRIVER_NOISE = re.compile(
    r"^(?:ArrowArrayStream::get_next\(\) failed \(\d+\): )?(?:[A-Z_]+: )?"
    r"(?:\[libpq\] )?|\s*Query was: .*$",
    re.S,
)


def _message(exc: BaseException) -> str:
    """PostgreSQL's own words from a driver error, else the driver's, trimmed."""
    text = str(exc)
    found = _SERVER_ERROR.search(text)
    if found:
        return found.group(1).strip()
    return _DRIVER_NOISE.sub("", text).strip()
