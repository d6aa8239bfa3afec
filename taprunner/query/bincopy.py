"""The binary COPY path: binary results from PostgreSQL's binary COPY, on asyncpg.

A runner's BINARY, BINARY2 or VOParquet result whose columns are integers,
floats, booleans or text (:func:`taprunner.formats.arrow.columnar_fields`) is
read with ``COPY (query) TO STDOUT (FORMAT binary)`` on the runner's own asyncpg
connection, inside the query's read-only transaction as the query role with its
statement timeout (the one that described the columns: the tables cannot change
in between). asyncpg hands over the raw COPY bytes in chunks of a few KB to a
few hundred KB (one C loop per chunk; small ones are gathered to :data:`GATHER`
bytes); :mod:`taprunner.formats.pgbinary` cuts them into rows and columns with
numpy (runs of one layout in place, :mod:`taprunner.formats.copyruns`) and the
encoder packs them (:meth:`encode_copy`) as they come, so PostgreSQL produces
the next rows while the last ones are packed.

Profiled on 1,000,000 rows of demo.stars (runner CPU): ADBC's decoding of the
same COPY into Arrow took 0.43 s, this path's receiving and decoding about 0.15 s
before runs; with them the whole BINARY2 job's runner CPU is about 0.2 s
(2026-12-08), below PostgreSQL's 0.25 s for the COPY itself.

MAXREC and the byte limits are those of the other paths: at most MAXREC rows
(the query asks for one more: overflow), rows before the first text over
``tap_value_bytes``, and the result ends after the batch that reaches its byte
limit (marked as cut). A COPY cut by a limit is stopped as the other COPY paths'
are (:class:`~.outcome.HeldSink`); the rows still in flight are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import asyncpg

from taprunner.errors import TapError, TapQueryError
from taprunner.formats.pgbinary import (
    COPY_WIDTHS,
    BinaryCopyDecoder,
    BrokenCopy,
    CopyBatch,
)
from taprunner.formats.registry import RowEncoder
from taprunner.query.bytelimits import ResultLimits, result_cut, value_cut
from taprunner.query.heap import keep_heap_pad
from taprunner.query.outcome import (
    HeldSink,
    QueryOutcome,
    Sink,
    Stop,
    end_with_error,
)
from taprunner.schema.catalog import Connection

__all__ = [
    "CopyEncoder",
    "copy_types",
    "stream_binary_copy",
]


@runtime_checkable
class CopyEncoder(RowEncoder, Protocol):
    """A :class:`RowEncoder` that also takes decoded binary COPY batches
    (binary VOTable, Parquet)."""

    def encode_copy(self, batch: CopyBatch) -> bytes: ...


#: Bytes of COPY stream gathered before they are decoded.
GATHER = 128 * 1024


def copy_types(pg_types: Sequence[str]) -> bool:
    """Whether binary COPY rows of these types can be decoded here."""
    return all(t in COPY_WIDTHS for t in pg_types)


class _Stream:
    """The sink asyncpg's COPY writes into: decode, limit, encode, pass on."""

    def __init__(
        self,
        encoder: CopyEncoder,
        pg_types: list[str],
        maxrec: int,
        sink: Sink,
        limits: ResultLimits,
    ) -> None:
        self.encoder = encoder
        self.decoder = BinaryCopyDecoder(pg_types)
        self.maxrec = maxrec
        self.sink = sink
        self.limits = limits
        self.rows = 0
        self.written = 0
        self.overflow = False
        self.cut: str | None = None
        self.header_sent = False
        self.done = False  # MAXREC or a limit reached: the rest is dropped
        #: Bytes after the byte limit was reached (None: not reached, or cut).
        self._tail: bytes | None = None
        #: Small chunks held until they make :data:`GATHER` bytes.
        self._held: list[bytes] = []
        self._held_bytes = 0

    async def write(self, chunk: bytes) -> None:
        """Take a chunk of the COPY stream; small ones are gathered first (when
        the runner keeps up with PostgreSQL, asyncpg hands over a few KB at a
        time, and each batch has a fixed cost)."""
        if not self.done and self._held_bytes + len(chunk) < GATHER:
            self._held.append(chunk)
            self._held_bytes += len(chunk)
            return
        if self._held:
            chunk = b"".join([*self._held, chunk])
            self._held, self._held_bytes = [], 0
        await self._write(chunk)

    async def flush(self) -> None:
        """The COPY ended: take the chunks still held."""
        if self._held:
            chunk = b"".join(self._held)
            self._held, self._held_bytes = [], 0
            await self._write(chunk)

    async def _write(self, chunk: bytes) -> None:
        if self.done:
            if self._tail is not None:  # at the byte limit: were rows left?
                self._tail += chunk
                if (
                    self._tail[:2] != b"\xff\xff"[: len(self._tail)]
                    or len(self._tail) > 2
                ):
                    self._tail = None
                    self.cut = self._result_cut()
            return
        for batch in self.decoder.feed(chunk):
            if self.done:  # rows left after a limit
                if self._tail is not None:
                    self._tail = None
                    self.cut = self._result_cut()
                return
            await self._take(batch)

    async def _take(self, batch: CopyBatch) -> None:
        if not batch.rows:
            return
        if batch.rows >= 10_000:  # a large result: stop the heap's page churn
            keep_heap_pad()
        room = self.maxrec - self.rows
        count = min(batch.rows, room, self._fitting(batch))
        if batch.rows > room and self.cut is None:
            self.overflow = self.done = True
        await self.start()
        if count:
            data = self.encoder.encode_copy(batch.head(count))
            await self.sink(data)
            self.rows += count
            self.written += len(data)
        if self.cut is not None:
            self.done = True
        elif self.written >= self.limits.result_bytes and not self.done:
            self.done = True
            self._tail = b""
            if not self.decoder.ended:
                await self._write(self.decoder.pending)

    def _result_cut(self) -> str:
        return result_cut(self.limits, self.written)

    def past_cut(self) -> bool:
        """Whether the result was cut already, when the COPY failed: the rows
        past a cut are read and dropped, and their failure is not the result's
        (the cursor path stops reading at the cut). At the byte limit, the row
        that failed was one left: the result is cut."""
        if self._tail is not None:
            self._tail = None
            self.cut = self._result_cut()
        return self.cut is not None

    def _fitting(self, batch: CopyBatch) -> int:
        """Rows of ``batch`` before the first text over the value limit."""
        first = batch.rows
        for lengths in batch.text_lengths():
            over = (lengths > self.limits.value_bytes).nonzero()[0]
            if over.size:
                first = min(first, int(over[0]))
        if first < batch.rows:
            self.cut = value_cut(self.limits)
        return first

    async def start(self) -> None:
        if not self.header_sent:
            self.header_sent = True
            await self.sink(self.encoder.header())

    def finish(self) -> None:
        """After the COPY ended: the stream was whole (unless cut short)."""
        if not self.done:
            self.decoder.finish()


async def stream_binary_copy(
    conn: Connection,
    sql: str,
    encoder: RowEncoder,
    pg_types: list[str],
    maxrec: int,
    timeout: float,
    sink: Sink,
    limits: ResultLimits,
    stop: Stop | None = None,
) -> QueryOutcome:
    """``sql`` (run inside the caller's read-only transaction) into ``sink`` as
    ``encoder``'s document, at most ``maxrec`` rows, within ``limits``; the
    result's rows by binary COPY (see the module's notes). ``stop``: cancels
    the COPY once the result is cut (see :func:`.copycut.copy_limited`).

    Raises
    ------
    TapQueryError
        The database failed the query (timeout, data error); if rows went out
        already, the document ends with the error status.
    """
    if not isinstance(encoder, CopyEncoder):
        raise TypeError(f"{type(encoder).__name__} takes no binary COPY batches")
    stream = _Stream(encoder, pg_types, maxrec, sink, limits)
    query = sql.strip().rstrip(";")
    held = HeldSink(stream.write, stop=stop, ended=lambda: stream.cut is not None)
    try:
        try:
            await conn.copy_from_query(query, output=held, format="binary")
        except asyncpg.PostgresError:
            if held.error is None:
                # The rows that came before the error, still gathered, are
                # the result's (up to a cut) or go out before the error.
                await stream.flush()
                raise  # else a consequence of the output's error, raised below
        held.check()
        await stream.flush()
        stream.finish()
    except asyncpg.PostgresError as exc:
        lost = isinstance(exc, asyncpg.PostgresConnectionError)
        if lost or not stream.past_cut():
            if stream.header_sent:
                await end_with_error(sink, encoder, exc, timeout)
            raise
    except BrokenCopy as exc:
        error = TapQueryError(f"query failed: {exc}")
        if stream.header_sent:
            await end_with_error(sink, encoder, error, timeout)
        raise error from exc
    except TapError as exc:
        if stream.header_sent:
            await end_with_error(sink, encoder, exc, timeout)
        raise
    await stream.start()
    cut = stream.cut
    await sink(encoder.footer(overflow=stream.overflow or cut is not None, cut=cut))
    return QueryOutcome(stream.rows, stream.overflow, cut)
