"""The COPY path's row cutter: whole rows only, MAXREC overflow, byte limits; CSV
newlines inside quoted fields do not end rows."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from taprunner.query.copycut import RowCutter

CSV = b'id,name\r\n1,"a\r\nb"\r\n2,"say ""hi"""\r\n3,plain\r\n4,""\r\n'


async def _feed(cutter: RowCutter, data: bytes, size: int) -> bool:
    """Feed ``data`` in chunks of ``size``; whether the cutter cut it."""
    for start in range(0, len(data), size):
        await cutter.write(data[start : start + size])
    await cutter.finish()
    return cutter.cut is not None


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
async def test_csv_rows_are_cut_at_maxrec_whatever_the_chunks(size: int) -> None:
    out: list[bytes] = []

    async def sink(data: bytes) -> None:
        out.append(data)

    cutter = RowCutter(sink, rows=2, max_bytes=10**6, max_row=10**6, csv=True)
    assert not await _feed(cutter, CSV, size)
    assert b"".join(out) == b'id,name\r\n1,"a\r\nb"\r\n2,"say ""hi"""\r\n'
    assert cutter.overflow and cutter.lines == 3 and cutter.cut is None


async def test_all_rows_within_maxrec_is_no_overflow() -> None:
    out: list[bytes] = []

    async def sink(data: bytes) -> None:
        out.append(data)

    cutter = RowCutter(sink, rows=4, max_bytes=10**6, max_row=10**6, csv=True)
    assert not await _feed(cutter, CSV, 5)
    assert b"".join(out) == CSV
    assert not cutter.overflow and cutter.lines == 5


async def test_the_byte_limit_stops_at_the_last_whole_row() -> None:
    out: list[bytes] = []

    async def sink(data: bytes) -> None:
        out.append(data)

    tsv = b"id\n" + b"".join(b"%d\n" % i for i in range(1000))
    cutter = RowCutter(sink, rows=10**6, max_bytes=100, max_row=10**6, csv=False)
    assert await _feed(cutter, tsv, 64)
    written = b"".join(out)
    assert len(written) <= 100 and written.endswith(b"\n")
    assert tsv.startswith(written)
    assert cutter.cut is not None and "cut at" in cutter.cut


async def test_a_row_over_the_value_limit_ends_the_result_before_it() -> None:
    out: list[bytes] = []

    async def sink(data: bytes) -> None:
        out.append(data)

    tsv = b"s\nshort\n" + b"x" * 500 + b"\nshort\n"
    cutter = RowCutter(sink, rows=10, max_bytes=10**6, max_row=100, csv=False)
    assert await _feed(cutter, tsv, 1000)
    assert b"".join(out) == b"s\nshort\n"
    assert cutter.cut is not None and "row longer than 100" in cutter.cut


def _csv_rows(count: int) -> list[bytes]:
    """CSV rows, every fifth with a quoted newline, every seventh with quotes."""
    rows = []
    for i in range(count):
        if i % 5 == 0:
            rows.append(b'%d,"multi\r\nline %d"\r\n' % (i, i))
        elif i % 7 == 0:
            rows.append(b'%d,"say ""%d"""\r\n' % (i, i))
        else:
            rows.append(b"%d,plain %d\r\n" % (i, i))
    return rows


@pytest.mark.parametrize("size", [1, 5, 13, 64, 100, 4096])
@pytest.mark.parametrize("csv", [True, False])
async def test_whole_chunks_and_row_by_row_agree(size: int, csv: bool) -> None:
    # Chunks without quotes pass whole (counted, not split into rows): MAXREC,
    # the byte limit and the row limit must cut exactly where row by row would.
    rows = [b"id,name\r\n", *_csv_rows(300)]
    if not csv:
        rows = [b"id\tname\n"] + [b"%d\tplain\n" % i for i in range(300)]
    data = b"".join(rows)
    for maxrec, max_bytes, max_row in (
        (10**6, 10**6, 10**6),
        (150, 10**6, 10**6),
        (300, 10**6, 10**6),
        (10**6, 2000, 10**6),
        (10**6, 10**6, 18),
    ):
        out: list[bytes] = []
        cutter = RowCutter(
            _appender(out), rows=maxrec, max_bytes=max_bytes, max_row=max_row, csv=csv
        )
        await _feed(cutter, data, size)
        expected, total = [], 0
        for row in rows[: maxrec + 1]:
            if len(row) > max_row or total + len(row) > max_bytes:
                break
            expected.append(row)
            total += len(row)
        assert b"".join(out) == b"".join(expected), (maxrec, max_bytes, max_row)
        assert cutter.lines == len(expected)
        assert cutter.overflow == (maxrec < 300 and len(expected) == maxrec + 1)


def _appender(out: list[bytes]) -> Callable[[bytes], Coroutine[Any, Any, None]]:
    async def sink(data: bytes) -> None:
        out.append(data)

    return sink
