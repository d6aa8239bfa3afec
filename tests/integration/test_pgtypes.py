"""The table of plain PostgreSQL types (taprunner.formats.pgtypes) agrees with
the server's catalogue: a binary COPY value's width is the type's length, the
text types are those of the string category, and each fact's list (binary COPY,
Arrow, text COPY) reads it."""

from __future__ import annotations

import asyncpg

from taprunner.formats import arrow, pgbinary, tdcopy
from taprunner.formats.pgtypes import PLAIN_TYPES, TEXT_TYPES


async def test_the_facts_are_the_servers(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "SELECT typname, typlen, typcategory FROM pg_type WHERE typname = ANY($1)",
        list(PLAIN_TYPES),
    )
    assert {row["typname"] for row in rows} == set(PLAIN_TYPES)
    for row in rows:
        facts = PLAIN_TYPES[row["typname"]]
        assert facts.width == (row["typlen"] if row["typlen"] > 0 else None), row
        assert (row["typname"] in TEXT_TYPES) is (row["typcategory"] == b"S"), row


def test_each_path_reads_the_table() -> None:
    assert (
        pgbinary.COPY_WIDTHS.keys() == arrow.ARROW_FORMATS.keys() == PLAIN_TYPES.keys()
    )
    assert set(tdcopy._TYPES) == {
        "int2",
        "int4",
        "int8",
        "float4",
        "float8",
        "bool",
        "text",
        "varchar",
    }
