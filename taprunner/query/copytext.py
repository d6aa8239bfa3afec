"""The COPY_TEXT path: TABLEDATA transcoded from PostgreSQL's text COPY.

PostgreSQL writes the rows in its text COPY format; whole chunks of complete
lines become ``<TR>`` elements with bytes operations
(:class:`~taprunner.formats.tdcopy.CopyTranscoder`), between the header and the
footer of the format's own encoder. This is several times cheaper than asyncpg
decoding every value into a Python object and the encoder formatting it back.

The limits are those of the cursor path (:mod:`.bytelimits`), with the same
outcome and the same OVERFLOW texts: MAXREC (the query is capped at MAXREC + 1
rows, a further row means overflow), a value over ``tap_value_bytes`` (the
result is cut before its row; a line can only hold one when it is longer than
the limit, so only such lines are looked into), and the result's bytes (the
result is cut after the chunk that reached the limit, if rows were left).
Memory holds one chunk and at most one incomplete row, itself bounded: a row
longer than its values may be (every text value at the limit, each character
escaped in four bytes) holds a value over the limit.
"""

from __future__ import annotations

import asyncpg

from taprunner.formats.fields import FieldSpec, fixed_count
from taprunner.formats.tdcopy import CopyTranscoder, copy_select, value_lengths
from taprunner.query.bytelimits import (
    ResultLimits,
    element_bytes,
    result_cut,
    value_cut,
)
from taprunner.query.outcome import HeldSink, QueryOutcome, Sink, Stop, end_with_error
from taprunner.query.streaming import encoder_for
from taprunner.request import TapRequest
from taprunner.schema.catalog import Connection

__all__ = ["stream_transcoded"]

#: Bytes of a number (or boolean) in COPY text at most, with its tab.
_NUMBER_BYTES = 32
_TR_END = b"</TR>\n"


class _Transcoding:
    """The sink COPY writes into: complete lines transcoded, within the limits."""

    def __init__(
        self,
        sink: Sink,
        header: bytes,
        transcoder: CopyTranscoder,
        maxrec: int,
        limits: ResultLimits,
    ) -> None:
        self._sink = sink
        self._header: bytes | None = header
        self._transcoder = transcoder
        self._limits = limits
        fields = transcoder.fields
        self._strings = transcoder.texts
        #: (column, bytes per element) of the arrays the value limit counts.
        self._arrays = [(i, element_bytes(fields[i])) for i in transcoder.arrays]
        self._longest = sum(
            8 * limits.value_bytes
            if f.arraysize is not None and "*" in f.arraysize
            else _NUMBER_BYTES * fixed_count(f)
            for f in fields
        )
        # Lines that may hold a value over the limit: longer than it, or
        # (arrays) than an eighth of it (an element is written in 2 bytes or
        # more and counts 8 at most).
        self._inspect = limits.value_bytes // (8 if self._arrays else 1)
        self._rows_left = maxrec
        self._pending = b""
        self._full = False  # the result limit was reached
        self.done = False  # nothing more is written
        self.rows = 0
        self.written = 0
        self.overflow = False
        self.cut: str | None = None

    async def start(self) -> None:
        """Send the header (before the first rows, or of an empty result)."""
        if self._header is not None:
            header, self._header = self._header, None
            await self._sink(header)

    async def write(self, chunk: bytes) -> None:
        """Pass the complete lines of ``chunk`` that are within the limits."""
        if self.done:
            # Past MAXREC rows (not a cut), any further row is the overflow.
            self.overflow = self.overflow or (self.cut is None and bool(chunk))
            return
        data = self._pending + chunk if self._pending else chunk
        end = data.rfind(b"\n") + 1
        lines, self._pending = data[:end], data[end:]
        if self._full:  # rows were left after the result limit was reached
            self._stop(cut=self._result_cut())
            return
        count = lines.count(b"\n")
        if count >= self._rows_left:  # MAXREC rows: what follows is overflow
            self.overflow = count > self._rows_left or bool(self._pending)
            lines = lines[: _nth_newline(lines, self._rows_left) + 1]
            count = self._rows_left
            self.done = True
        elif len(self._pending) > self._longest:  # too long for its values
            self._stop(cut=value_cut(self._limits))
        if len(lines) > self._inspect and (self._strings or self._arrays):
            over = _first_over(
                lines,
                self._strings,
                self._arrays,
                self._limits.value_bytes,
                self._inspect,
            )
            if over is not None:
                lines = lines[: _nth_newline(lines, over) + 1] if over else b""
                count = over
                self._stop(cut=value_cut(self._limits))
        self._rows_left -= count
        if not count:
            return
        await self.start()
        data = self._transcoder.rows(lines)
        room = self._limits.result_bytes - self.written
        cut = len(data) >= room and (end := _row_end(data, room)) < len(data)
        if cut:  # rows of this chunk are left after the limit was reached
            data = data[:end]
            count = data.count(_TR_END)
        await self._sink(data)
        self.rows += count
        self.written += len(data)
        self._full = self.written >= self._limits.result_bytes
        if cut:
            self._stop(cut=self._result_cut())

    def _stop(self, *, cut: str) -> None:
        self.done = True
        self._pending = b""
        if self.cut is None:
            self.cut = cut

    def _result_cut(self) -> str:
        return result_cut(self._limits, self.written)


def _row_end(data: bytes, offset: int) -> int:
    """End of the first TR element of ``data`` that ends at or after ``offset``
    (a text value cannot hold ``</TR>``: its ``<`` is escaped)."""
    return data.find(_TR_END, max(0, offset - len(_TR_END))) + len(_TR_END)


def _nth_newline(lines: bytes, count: int) -> int:
    """Offset of the ``count``-th newline of ``lines`` (from 1)."""
    at = -1
    for _ in range(count):
        at = lines.index(b"\n", at + 1)
    return at


def _first_over(
    lines: bytes,
    strings: list[int],
    arrays: list[tuple[int, int]],
    limit: int,
    inspect: int,
) -> int | None:
    """Index of the first line holding a text value over ``limit`` characters
    or an array whose elements count over ``limit`` bytes (only lines longer
    than ``inspect`` are looked into)."""
    for index, line in enumerate(lines.split(b"\n")):
        if len(line) > inspect:
            cells = line.split(b"\t")
            if strings and max(value_lengths([cells[i] for i in strings])) > limit:
                return index
            for i, size in arrays:
                cell = cells[i]
                if cell not in (b"\\N", b"") and (cell.count(b" ") + 1) * size > limit:
                    return index
    return None


async def stream_transcoded(
    conn: Connection,
    sql: str,
    request: TapRequest,
    fields: list[FieldSpec],
    names: list[str],
    pg_types: list[str],
    sink: Sink,
    timeout: float,
    limits: ResultLimits,
    stop: Stop | None = None,
) -> QueryOutcome:
    """``sql``'s result (its columns ``names`` of ``pg_types``) as TABLEDATA
    from COPY text, in the read-only transaction open on ``conn``, within
    MAXREC and ``limits``. That transaction set ``extra_float_digits = 1`` (the
    shortest float text that round-trips; :func:`.execute._read_only` with
    ``text_floats``).

    The header goes out with the first rows: a query failing before them raises
    with nothing written (the sync client gets a plain error document); one
    failing later ends the document with the error status, as the cursor path
    does. A COPY cut by a limit is stopped by ``stop`` (see
    :func:`.copycut.copy_limited`).
    """
    encoder = encoder_for(request, fields)
    transcoding = _Transcoding(
        sink, encoder.header(), CopyTranscoder(fields, pg_types), request.maxrec, limits
    )
    held = HeldSink(
        transcoding.write, stop=stop, ended=lambda: transcoding.cut is not None
    )
    try:
        try:
            await conn.copy_from_query(
                copy_select(sql, fields, names, request.maxrec + 1, pg_types),
                output=held,
                format="text",
            )
        except asyncpg.PostgresError:
            if held.error is None:
                raise  # else a consequence of the output's error, raised below
        held.check()
    except asyncpg.PostgresError as exc:
        lost = isinstance(exc, asyncpg.PostgresConnectionError)
        if transcoding.cut is None or lost:
            if transcoding.rows:
                await end_with_error(sink, encoder, exc, timeout)
            raise
        # The COPY was stopped at the cut, or a row past the cut failed (or
        # the statement timeout ended the rows read and dropped after it): the
        # result is the rows written, cut, as on the cursor path, which stops
        # reading at the cut.
    await transcoding.start()
    cut, overflow = transcoding.cut, transcoding.overflow
    await sink(encoder.footer(overflow=overflow or cut is not None, cut=cut))
    return QueryOutcome(transcoding.rows, overflow, cut)
