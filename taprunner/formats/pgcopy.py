"""Result encoding inside PostgreSQL: BINARY2 row bytes and CSV/TSV through COPY.

Final interface (``sink`` receives bytes; both functions return the row count):

- ``binary2_row_sql(inner_sql, fields, pg_types) -> str | None``: a query returning one
  text column per result row, the hex of that row's BINARY2 bytes (null mask, then the
  fields big-endian, exactly what ``VOTableEncoder.encode`` writes), or None when a
  column cannot be encoded in SQL (arrays, geometry, fixed-size strings, ...).
- ``copy_binary2(conn, row_sql, sink)``: streams ``row_sql`` with ``COPY TO STDOUT``
  and hands the decoded row bytes to ``sink`` in large chunks; feed them to
  ``VOTableEncoder.encode_raw``.
- ``copy_csv(conn, inner_sql, sink, delimiter=",")``: PostgreSQL's own CSV (RFC 4180,
  header line, NULL as an empty unquoted field) or, for ``"\\t"``, text-format TSV
  with a header and NULL as an empty field.

Hex travels as COPY text because ``bytes.fromhex`` skips the newlines between rows, so
Python never looks at single rows. Measured on 1M rows (see benchmarks/), the SQL row
encoding is slower than fetching rows and packing them with numpy (UTF-16 has to be
built with regexp_replace), so the runner should prefer the generic path for BINARY2;
``copy_csv`` is the fastest CSV writer.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import asyncpg

from taprunner.formats.votable import FieldSpec

Sink = Callable[[bytes], Coroutine[Any, Any, None]]
#: A plain connection or one borrowed from a pool.
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_FIXED: dict[tuple[str, str], str] = {
    ("int2", "short"): "COALESCE(int2send({c}), '\\x0000'::bytea)",
    ("int4", "int"): "COALESCE(int4send({c}), '\\x00000000'::bytea)",
    ("int8", "long"): "COALESCE(int8send({c}), '\\x0000000000000000'::bytea)",
    ("float4", "float"): "COALESCE(float4send({c}), '\\x7fc00000'::bytea)",
    ("float8", "double"): "COALESCE(float8send({c}), '\\x7ff8000000000000'::bytea)",
    (
        "numeric",
        "double",
    ): "COALESCE(float8send({c}::float8), '\\x7ff8000000000000'::bytea)",
    ("bool", "boolean"): "(CASE {c} WHEN true THEN '\\x54'::bytea"
    " WHEN false THEN '\\x46'::bytea ELSE '\\x3f'::bytea END)",
}
_SECONDS = "to_char({t}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
_MICROS = (
    "CASE WHEN extract(microseconds FROM {t})::bigint % 1000000 = 0"
    " THEN '' ELSE to_char({t}, '.US') END"
)
_CHAR_TEXT: dict[str, str] = {
    "timestamp": f"{_SECONDS} || {_MICROS}".replace("{t}", "{c}"),
    "timestamptz": f"{_SECONDS} || {_MICROS}".replace(
        "{t}", "({c} AT TIME ZONE 'UTC')"
    ),
    "date": "to_char({c}, 'YYYY-MM-DD')",
    "uuid": "{c}::text",
}
_TEXT_TYPES = {"text", "varchar", "bpchar", "name", "citext"}
_VAR_BYTES = "COALESCE(int4send(octet_length({b})) || {b}, '\\x00000000'::bytea)"
# UTF-16BE of a text value: hex surgery for pure ASCII, code points otherwise.
_UTF16 = (
    "CASE WHEN {c} IS NULL THEN NULL WHEN octet_length({c}) = char_length({c})"
    " THEN decode(regexp_replace(encode(convert_to({c}, 'UTF8'), 'hex'),"
    " '(..)', '00\\1', 'g'), 'hex')"
    " ELSE (SELECT string_agg(CASE WHEN cp < 65536"
    " THEN substring(int4send(cp) FROM 3 FOR 2)"
    " ELSE substring(int4send(((cp - 65536) >> 10) + 55296) FROM 3 FOR 2)"
    " || substring(int4send(((cp - 65536) & 1023) + 56320) FROM 3 FOR 2) END,"
    " ''::bytea ORDER BY i)"
    " FROM regexp_split_to_table({c}, '') WITH ORDINALITY AS s(ch, i),"
    " LATERAL ascii(ch) AS cp) END"
)


def _column_sql(column: str, field: FieldSpec, pg_type: str) -> tuple[str, str | None]:
    """(row bytes expression, optional LATERAL helper expression) for one column."""
    if field.arraysize is None:
        template = _FIXED.get((pg_type, field.datatype))
        if template is None:
            raise LookupError(pg_type)
        return template.format(c=column), None
    if field.arraysize != "*":
        raise LookupError(pg_type)
    if field.datatype == "unicodeChar" and pg_type in _TEXT_TYPES:
        helper = f"u_{column}"
        count = f"int4send(octet_length({helper}) / 2) || {helper}"
        return f"COALESCE({count}, '\\x00000000'::bytea)", _UTF16.format(c=column)
    if field.datatype == "char" and (pg_type in _CHAR_TEXT or pg_type in _TEXT_TYPES):
        text = _CHAR_TEXT.get(pg_type, "{c}").format(c=column)
        return _VAR_BYTES.format(b=f"convert_to({text}, 'UTF8')"), None
    if field.datatype == "unsignedByte" and pg_type == "bytea":
        return _VAR_BYTES.format(b=column), None
    raise LookupError(pg_type)


def _mask_sql(columns: Sequence[str]) -> str:
    """Expression for the BINARY2 null mask (first column = most significant bit)."""
    parts = []
    for start in range(0, len(columns), 8):
        bits = " | ".join(
            f"(CASE WHEN {c} IS NULL THEN {128 >> k} ELSE 0 END)"
            for k, c in enumerate(columns[start : start + 8])
        )
        parts.append(f"set_byte('\\x00'::bytea, 0, {bits})")
    return " || ".join(parts)


def binary2_row_sql(
    inner_sql: str, fields: Sequence[FieldSpec], pg_types: Sequence[str]
) -> str | None:
    """SQL giving the hex of each row's BINARY2 bytes, or None if a type is unsupported.

    ``inner_sql`` is the user's (translated) query; its columns must be in ``fields``
    order. The result is meant for :func:`copy_binary2`.
    """
    columns = [f"c{i}" for i in range(len(fields))]
    exprs = [_mask_sql(columns)]
    helpers: list[str] = []
    try:
        for column, field, pg_type in zip(columns, fields, pg_types, strict=True):
            expr, helper = _column_sql(column, field, pg_type)
            exprs.append(expr)
            if helper is not None:
                helpers.append(f"LATERAL (SELECT {helper} AS u_{column}) AS l_{column}")
    except LookupError:
        return None
    inner = f"({inner_sql.strip().rstrip(';')}) AS q({', '.join(columns)})"
    sources = ", ".join([inner, *helpers])
    return f"SELECT encode({' || '.join(exprs)}, 'hex') FROM {sources}"


async def copy_binary2(conn: Connection, row_sql: str, sink: Sink) -> int:
    """Stream the rows of ``row_sql`` (from :func:`binary2_row_sql`) into ``sink``."""
    carry = b""
    rows = 0

    async def receive(chunk: bytes) -> None:
        nonlocal carry, rows
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n") + 1
        carry = data[cut:]
        if cut:
            rows += data.count(b"\n", 0, cut)
            await sink(bytes.fromhex(data[:cut].decode("ascii")))

    await conn.copy_from_query(row_sql, output=receive)
    if carry.strip():
        raise ValueError("COPY output ended in the middle of a row")
    return rows


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
