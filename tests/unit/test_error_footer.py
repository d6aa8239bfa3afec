"""The one ending of a document whose query failed after its header went out
(:func:`taprunner.query.outcome.end_with_error`), which the cursor, text COPY,
binary COPY and columnar paths all call: the footer's error status words a
database error as the error document would, another error by its text, and a
lost database connection ends nothing."""

from __future__ import annotations

import asyncpg
import pytest

from taprunner.errors import TapQueryError
from taprunner.formats.fields import FieldSpec
from taprunner.formats.votable import VOTableEncoder
from taprunner.query.outcome import end_with_error


async def _ended(error: Exception) -> bytes:
    parts: list[bytes] = []

    async def sink(data: bytes) -> None:
        parts.append(data)

    encoder = VOTableEncoder([FieldSpec("x", "int")])
    await end_with_error(sink, encoder, error, timeout=2.5)
    return b"".join(parts)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (
            asyncpg.DivisionByZeroError("division by zero"),
            "query failed: division by zero",
        ),
        (
            asyncpg.QueryCanceledError("statement timeout"),
            "query cancelled: statement timeout (limit 2.5 s)",
        ),
        (
            TapQueryError("query failed: a value cannot be written"),
            "query failed: a value cannot be written",
        ),
    ],
)
async def test_the_footer_carries_the_error(error: Exception, status: str) -> None:
    footer = (await _ended(error)).decode()
    assert f'name="QUERY_STATUS" value="ERROR">{status}<' in footer, footer
    assert footer.rstrip().endswith("</VOTABLE>")


async def test_a_lost_connection_ends_nothing() -> None:
    assert await _ended(asyncpg.ConnectionDoesNotExistError("closed")) == b""
