"""How an upload's rows reach its temporary table: one COPY, fed as it is read.

Each :data:`Fill` sends a table's rows with one COPY: the binary COPY data of an
:class:`~.uploadstream.UploadStream` of numeric scalars, the record batches of
any other stream, or the records of a document parsed whole. Every block or
batch is made in a worker thread (:func:`_threaded`), so the event loop keeps
running while the document is decoded, and memory holds about one block.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

from taprunner.query.uploadparse import ParsedUpload
from taprunner.query.uploadstream import UploadStream
from taprunner.schema.catalog import Connection

__all__ = ["RECORDS_PER_TURN", "Fill", "batches_fill", "copy_fill", "records_fill"]

#: Upload rows decoded, then encoded for COPY, per turn of the event loop.
RECORDS_PER_TURN = 2000
T = TypeVar("T")
_END = object()

#: Fills table ``schema.name`` (its columns given) by COPY; returns the rows.
Fill = Callable[[Connection, str, str, list[str]], Awaitable[int]]


def copy_fill(stream: UploadStream) -> Fill:
    """Binary COPY data made by :meth:`UploadStream.copy_data`."""

    async def fill(conn: Connection, schema: str, name: str, columns: list[str]) -> int:
        await conn.copy_to_table(
            name,
            source=_threaded(stream.copy_data()),
            columns=columns,
            schema_name=schema,
            format="binary",
        )
        return stream.rows

    return fill


def batches_fill(stream: UploadStream) -> Fill:
    """Records of :meth:`UploadStream.records`, encoded by asyncpg."""

    async def fill(conn: Connection, schema: str, name: str, columns: list[str]) -> int:
        await conn.copy_records_to_table(
            name,
            records=_flattened(_threaded(stream.records(RECORDS_PER_TURN))),
            columns=columns,
            schema_name=schema,
        )
        return stream.rows

    return fill


def records_fill(parsed: ParsedUpload) -> Fill:
    """The records of a document parsed whole."""

    async def fill(conn: Connection, schema: str, name: str, columns: list[str]) -> int:
        batches = (
            parsed.records[start : start + RECORDS_PER_TURN]
            for start in range(0, len(parsed.records), RECORDS_PER_TURN)
        )
        await conn.copy_records_to_table(
            name,
            records=_flattened(_threaded(batches)),
            columns=columns,
            schema_name=schema,
        )
        return len(parsed.records)

    return fill


async def _threaded(items: Iterator[T]) -> AsyncIterator[T]:
    """``items``, each made in a worker thread (the event loop runs meanwhile)."""
    try:
        while True:
            item = await asyncio.to_thread(next, items, _END)
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        close = getattr(items, "close", None)
        # still running in its thread when cancelled: closed once collected
        with contextlib.suppress(ValueError):
            if close is not None:
                close()


async def _flattened(
    batches: AsyncIterator[list[tuple[object, ...]]],
) -> AsyncIterator[tuple[object, ...]]:
    async for batch in batches:
        for record in batch:
            yield record
