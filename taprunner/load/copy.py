"""The COPY writer: a :class:`~taprunner.load.readers.Source` into a table.

Record batches go through asyncpg's binary ``COPY`` (the next batch is read in a
thread while the current one is copied: two batches in memory at most); text
sources go to ``COPY ... (FORMAT csv, HEADER)`` straight from the file in
asyncpg's chunks. Every failure becomes a :class:`LoadError` naming the file.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

import asyncpg

from taprunner.load.columns import LoadError
from taprunner.load.source import Batches, Source, TextCopy
from taprunner.schema.catalog import Connection

__all__ = ["copy_source"]

_LINE = re.compile(r"\bline (\d+)")


async def copy_source(
    conn: Connection,
    source: Source,
    schema: str,
    table: str,
    columns: Sequence[tuple[str, str]],
    *,
    batch_rows: int,
    freeze: bool = False,
) -> int:
    """Copy the rows of ``source`` into ``schema.table`` (``columns``: names and
    PostgreSQL types, in the file's order); returns the rows copied.

    ``freeze``: the table was created in this transaction, so text copies may
    write their rows frozen (``COPY ... FREEZE``: no hint-bit writes and no
    freezing vacuum later).

    Raises
    ------
    LoadError
        A value PostgreSQL refuses (wrong type, out of range, a short line), or
        the file cannot be read on (truncated), naming the file (and the line).
    """
    names = [name for name, _ in columns]
    try:
        if source.text is not None:
            return await _copy_text(
                conn, source, source.text, schema, table, columns, freeze
            )
        assert source.batches is not None
        return await _copy_batches(
            conn, source.batches(batch_rows), schema, table, names
        )
    except asyncpg.PostgresError as exc:
        raise LoadError(f"{source.path}: {_message(exc, source.text)}") from exc
    except LoadError as exc:
        raise LoadError(f"{source.path}: {exc}") from exc
    # Reading on may fail as astropy or pyarrow see fit (see readers.open_source);
    # asyncpg's encoders raise ValueError, TypeError, OverflowError for values
    # its column's type cannot take.
    except Exception as exc:  # noqa: BLE001
        raise LoadError(f"{source.path}: cannot load: {exc}") from exc


async def _copy_batches(
    conn: Connection, batches: Batches, schema: str, table: str, names: list[str]
) -> int:
    copied = 0
    pending = asyncio.create_task(asyncio.to_thread(next, batches, None))
    try:
        while (batch := await pending) is not None:
            pending = asyncio.create_task(asyncio.to_thread(next, batches, None))
            await conn.copy_records_to_table(
                table, schema_name=schema, columns=names, records=batch
            )
            copied += len(batch)
    finally:
        if not pending.done():
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
    return copied


async def _copy_text(
    conn: Connection,
    source: Source,
    text: TextCopy,
    schema: str,
    table: str,
    columns: Sequence[tuple[str, str]],
    freeze: bool,
) -> int:
    names = [name for name, _ in columns]
    nullable = [
        name
        for name, kind in columns
        if text.quoted_empty_text_is_null or kind != "text"
    ]
    # asyncpg reads the file in chunks in its executor (not on the event loop).
    with open(source.path, "rb") as stream:  # noqa: ASYNC230
        stream.seek(text.offset)
        status = await conn.copy_to_table(
            table,
            schema_name=schema,
            columns=names,
            source=stream,
            format="csv",
            header=True,
            delimiter=text.delimiter,
            force_null=nullable or None,
            encoding="utf-8",
            freeze=freeze or None,
        )
    return int(status.split()[-1])


def _message(exc: asyncpg.PostgresError, text: TextCopy | None) -> str:
    """PostgreSQL's message and where (a CSV line counted in the whole file)."""
    message = str(exc)
    where = getattr(exc, "context", None)
    if where:
        if text is not None:
            where = _LINE.sub(
                lambda m: f"line {int(m.group(1)) + text.skipped_lines}", where
            )
        # COPY names the staging table; the file and line are what matter.
        message += f" ({where.partition(', ')[2] or where})"
    return message
