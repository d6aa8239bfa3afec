"""CSV and TSV written by PostgreSQL itself, through ``COPY ... TO STDOUT``.

``copy_csv(conn, inner_sql, sink, delimiter=",")`` streams PostgreSQL's own CSV
(RFC 4180, header line, NULL as an empty unquoted field) or, for ``"\\t"``,
text-format TSV with a header and NULL as an empty field, and returns the row
count. It is the fastest CSV writer (see benchmarks/bench_encoders.py).
``copy_matches(fields)`` says whether COPY's text of the columns is the one the
:class:`~taprunner.formats.text.DelimitedEncoder` writes (only then may COPY be used).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import asyncpg

from taprunner.formats.fields import FieldSpec

Sink = Callable[[bytes], Coroutine[Any, Any, None]]
#: A plain connection or one borrowed from a pool.
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


async def copy_csv(
    conn: Connection, inner_sql: str, sink: Sink, *, delimiter: str = ","
) -> int:
    """Stream ``inner_sql`` as CSV (or TSV for a tab delimiter) with a header line."""
    query = inner_sql.strip().rstrip(";")
    if delimiter == "\t":
        status = await conn.copy_from_query(
            query, output=sink, format="text", header=True, null=""
        )
    else:
        status = await conn.copy_from_query(
            query, output=sink, format="csv", header=True, delimiter=delimiter
        )
    return int(status.split()[-1])


def copy_matches(fields: Sequence[FieldSpec]) -> bool:
    """Whether COPY writes these columns as the delimited encoder does.

    COPY spells booleans t/f and timestamps with a space; only types whose
    PostgreSQL text is the encoder's text may take the COPY path.
    """
    return all(
        (f.arraysize is None or f.datatype in ("char", "unicodeChar"))
        and f.datatype != "boolean"
        and f.xtype is None
        for f in fields
    )
