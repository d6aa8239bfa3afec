"""What the ``rows`` curves of ``scripts/bench --curves`` read from
(benchmarks/curves_rows.py): for each size the smallest published table of
demo.stars' columns that holds that many rows; and the peak-memory reset they
take each job's runner peak with."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
from testkit import DbSetup

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from curves_rows import reset_peaks, source_tables  # noqa: E402
from live import proc_status  # noqa: E402

COLUMNS = "id bigint, ra double precision, dec double precision, mag real, name text"


def _stars(table: str, rows: int) -> str:
    return (
        f"CREATE TABLE {table} ({COLUMNS});"
        f" INSERT INTO {table} SELECT i, 1, 2, 3, 'S' || i"
        f" FROM generate_series(1, {rows}) AS i; ANALYZE {table};"
    )


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup(
        tap_schema=True,
        sql="CREATE SCHEMA sci;"
        + _stars("sci.small", 30)
        + _stars("sci.large", 100)
        + _stars("sci.unpublished", 1000)
        # Many rows, but not demo.stars' columns.
        + "CREATE TABLE sci.other AS SELECT i AS id FROM generate_series(1, 1000) i;",
        published={"sci.small": None, "sci.large": None, "sci.other": None},
    )


async def test_each_size_reads_the_smallest_table_large_enough(
    conn: asyncpg.Connection, db_dsn: str
) -> None:
    found = await source_tables(db_dsn, (10, 30, 31, 100, 101))
    assert found == {
        10: "sci.small",
        30: "sci.small",
        31: "sci.large",
        100: "sci.large",
    }


async def test_an_estimate_that_lies_is_checked_by_counting(
    conn: asyncpg.Connection, db_dsn: str
) -> None:
    await conn.execute("DELETE FROM sci.small WHERE id > 10")  # reltuples still 30
    assert await source_tables(db_dsn, (20,)) == {20: "sci.large"}


def test_the_peak_reset_forgets_an_earlier_peak() -> None:
    script = "a = bytearray(150 << 20); del a; import time; time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 20
        while True:  # allocated, then freed
            status = proc_status(child.pid)
            if status.get("VmHWM", 0) > 150 << 20 and status["VmRSS"] < 100 << 20:
                break
            assert time.monotonic() < deadline, f"the child never did: {status}"
            time.sleep(0.05)
        assert reset_peaks([child.pid]) is True
        status = proc_status(child.pid)
        assert status["VmHWM"] < 100 << 20
        assert status["VmHWM"] <= status["VmRSS"] + (4 << 20)
        assert reset_peaks([2**22 + 12345]) is True  # a process gone: ignored
    finally:
        child.kill()
        child.wait()
