"""The COPY path (CSV, TSV written by PostgreSQL) with MAXREC and byte limits.

PostgreSQL writes the rows itself, so the limits are applied to its bytes: the
query is capped at MAXREC + 1 rows and :class:`RowCutter` passes the bytes on up
to the end of row MAXREC (a further row means overflow), and stops the COPY at
the last row that fits ``tap_sync_bytes``/``tap_result_bytes`` or before a row
longer than ``tap_value_bytes`` plus one (a delimiter, the newline) times its
columns (a value over the limit: COPY's rows are not split into values
here). Rows end at a newline; in CSV a newline inside a quoted field does not
end a row (quotes are counted: ``""`` inside a field counts twice, so the
parity tells).

Delimited formats have no trailer: a cut result is reported in the query's
outcome (the query log, the job's ``truncated`` note) and a sync response that
was cut ends without its last chunk (see :mod:`taprunner.web.endpoints`).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from taprunner.formats.fields import FieldSpec
from taprunner.formats.registry import CopyWriter
from taprunner.query.bytelimits import ResultLimits
from taprunner.query.outcome import HeldSink, QueryOutcome, Sink, Stop
from taprunner.request import TapRequest
from taprunner.schema.catalog import Connection

__all__ = ["RowCutter", "copy_limited"]


class RowCutter:
    """A sink in front of ``sink`` that passes whole rows within the limits.

    ``rows``: data rows to pass (MAXREC); ``max_bytes``: bytes to pass at most;
    ``max_row``: bytes of one row at most; ``csv``: newlines in quoted fields
    do not end rows. The first line is the header.
    """

    def __init__(
        self, sink: Sink, *, rows: int, max_bytes: int, max_row: int, csv: bool
    ) -> None:
        self._sink = sink
        self._lines_left = rows + 1  # the header line too
        self._max_bytes = max_bytes
        self._max_row = max_row
        self._csv = csv
        self._quoted = False  # inside a quoted CSV field at the end of the last chunk
        self._pending = b""  # the start of a row not yet complete
        self.lines = 0
        """Lines passed on (the header and the rows)."""
        self.written = 0
        self.overflow = False
        self.cut: str | None = None

    async def write(self, chunk: bytes) -> None:
        """Pass the whole rows of ``chunk`` that fit (nothing once cut)."""
        if self.cut is not None:
            return
        if self._lines_left <= 0:
            self.overflow = self.overflow or bool(chunk)  # a row past MAXREC
            return
        offset = len(self._pending)
        data = self._pending + chunk if offset else chunk
        if await self._pass_whole(data, chunk):
            return
        ends = [offset + end for end in self._row_ends(chunk)][: self._lines_left]
        keep = ends[-1] + 1 if ends else 0
        if len(ends) == self._lines_left:
            self.overflow = keep < len(data)
        start = 0
        for end in ends:
            if end + 1 - start > self._max_row:
                keep = start
                break
            start = end + 1
        if keep == start and not self.overflow and len(data) - keep > self._max_row:
            self.cut = f"result cut before a row longer than {self._max_row} bytes"
        if self.written + keep > self._max_bytes:
            fitting = [e + 1 for e in ends if self.written + e + 1 <= self._max_bytes]
            keep = fitting[-1] if fitting else 0
            self.cut = f"result cut at {self.written + keep} bytes"
        passed = sum(1 for end in ends if end < keep)
        self._lines_left -= passed
        self.lines += passed
        if keep:
            await self._sink(data[:keep] if keep < len(data) else data)
            self.written += keep
        self._pending = b"" if self.cut is not None else data[keep:]
        if self.overflow:
            self._lines_left = 0

    async def _pass_whole(self, data: bytes, chunk: bytes) -> bool:
        """The common case, without looking at each row: no quoted newline can
        be in ``data``, it is shorter than a row may be, and its rows are fewer
        than MAXREC leaves and fit the bytes left. Then every complete row
        passes (counted with ``bytes.count``, not a Python loop per row: a
        fifth of a 1,000,000-row CSV result's CPU). False if it does not apply
        (the caller looks at each row)."""
        if self._csv and (self._quoted or b'"' in chunk):
            return False
        if len(data) > self._max_row:
            return False
        # Only the chunk's newlines: the pending start of a row may hold
        # quoted ones (CSV).
        last = chunk.rfind(b"\n")
        end = 0 if last < 0 else len(data) - len(chunk) + last + 1
        count = chunk.count(b"\n")
        if count >= self._lines_left or self.written + end > self._max_bytes:
            return False
        if end:
            await self._sink(data[:end] if end < len(data) else data)
            self.written += end
            self._lines_left -= count
            self.lines += count
        self._pending = data[end:]
        return True

    async def finish(self) -> None:
        """After the COPY: pass a last row that had no newline (if it fits)."""
        if self._pending and self._lines_left > 0 and self.cut is None:
            await self._sink(self._pending)
            self.written += len(self._pending)
            self.lines += 1
        self._pending = b""

    def _row_ends(self, chunk: bytes) -> list[int]:
        """Offsets of the newlines that end rows in ``chunk``."""
        if not self._csv or (not self._quoted and b'"' not in chunk):
            return _newlines(chunk)
        ends = []
        quoted = self._quoted
        last = 0
        for position in _newlines(chunk):
            quoted ^= chunk.count(b'"', last, position) % 2 == 1
            last = position
            if not quoted:
                ends.append(position)
        self._quoted = quoted ^ (chunk.count(b'"', last) % 2 == 1)
        return ends


def _newlines(chunk: bytes) -> list[int]:
    ends = []
    at = chunk.find(b"\n")
    while at != -1:
        ends.append(at)
        at = chunk.find(b"\n", at + 1)
    return ends


async def copy_limited(
    conn: Connection,
    sql: str,
    copy: CopyWriter,
    request: TapRequest,
    fields: Sequence[FieldSpec],
    sink: Sink,
    limits: ResultLimits,
    stop: Stop | None = None,
) -> QueryOutcome:
    """``sql`` written by ``copy`` into ``sink``, within MAXREC and ``limits``.

    A COPY cut by a limit (or whose ``sink`` failed) is stopped by ``stop``
    (:class:`~.outcome.HeldSink`), its further bytes dropped; without it, it
    runs to its end (at most MAXREC + 1 rows, within the statement timeout).
    """
    capped = f"SELECT * FROM ({sql}) AS q LIMIT {request.maxrec + 1}"
    cutter = RowCutter(
        sink,
        rows=request.maxrec,
        max_bytes=limits.result_bytes,
        max_row=(limits.value_bytes + 1) * max(1, len(fields)),
        csv=request.format.name == "csv",
    )
    held = HeldSink(cutter.write, stop=stop, ended=lambda: cutter.cut is not None)
    try:
        try:
            await copy(conn, capped, held)
        except asyncpg.PostgresError:
            if held.error is None:
                raise  # else a consequence of the output's error, raised below
        held.check()
    except asyncpg.PostgresError as exc:
        # A row read past the cut (and dropped) failed, or the COPY was stopped
        # at the cut: not the result's failure.
        if cutter.cut is None or isinstance(exc, asyncpg.PostgresConnectionError):
            raise
    await cutter.finish()
    cut = None
    if cutter.cut is not None:
        setting = "tap_value_bytes" if "row" in cutter.cut else limits.setting
        cut = f"{cutter.cut} ({setting})"
    return QueryOutcome(max(0, cutter.lines - 1), cutter.overflow, cut)
