"""``tap load --position`` refuses rows pg_sphere would misplace (a dec outside
-90..90, a NaN or infinite coordinate) with the previous table kept, and loads
the valid edges (dec = ±90, NULL positions, an RA past 360) as the same points
ADQL finds."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import pytest
from loadkit import write
from testkit import DbSetup

from taprunner.load import LoadError, LoadOptions, load_files

ROOT = Path(__file__).resolve().parents[2]
HEADER = "id,ra,dec,mag,name\n"


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup(tap_schema=True)


async def _state(conn: asyncpg.Connection) -> tuple[list[tuple], list[str]]:
    rows = await conn.fetch("SELECT id, ra, dec FROM cat.stars ORDER BY id")
    published = await conn.fetch(
        "SELECT column_name FROM tap_schema.columns WHERE table_name = 'cat.stars'"
        " ORDER BY column_index"
    )
    return [tuple(r) for r in rows], [r[0] for r in published]


async def _no_staging(conn: asyncpg.Connection) -> None:
    leftovers = await conn.fetch(
        "SELECT relname FROM pg_class WHERE relname LIKE 'stars_load_%'"
    )
    assert leftovers == []


async def _cli_load(dsn: str, *argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "taprunner", "--dsn", dsn, "tap", "load", *argv),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_a_dec_of_100_is_refused_by_the_cli_and_the_old_table_kept(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    good = write(tmp_path / "good.ecsv")
    options = LoadOptions(primary_key="id", position=("ra", "dec"))
    await load_files(conn, [good], "cat.stars", options)
    before = await _state(conn)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER + "1,5.0,20.0,1,a\n2,10.0,100.0,1,b\n3,20.0,-91.5,1,c\n4,,95.0,1,d\n"
    )
    code, out = await _cli_load(
        db_dsn, str(bad), "cat.stars", "--replace", "--position", "ra,dec"
    )
    assert code != 0, out
    assert (
        "cat.stars: 3 rows with dec outside -90..90 or ra/dec not finite"
        " (first: ra=10.0, dec=100.0)"
    ) in out, out
    assert "Traceback" not in out
    assert await _state(conn) == before
    await _no_staging(conn)


@pytest.mark.parametrize(
    "line, first",
    [
        ("2,10.0,nan,1,b\n", "ra=10.0, dec=nan"),
        ("2,NaN,10.0,1,b\n", "ra=nan, dec=10.0"),
        ("2,inf,10.0,1,b\n", "ra=inf, dec=10.0"),
        ("2,-Infinity,10.0,1,b\n", "ra=-inf, dec=10.0"),
        ("2,10.0,-inf,1,b\n", "ra=10.0, dec=-inf"),
    ],
)
async def test_a_position_not_finite_is_refused(
    conn: asyncpg.Connection, tmp_path: Path, line: str, first: str
) -> None:
    path = tmp_path / "nan.csv"
    path.write_text(HEADER + "1,5.0,20.0,1,a\n" + line)
    options = LoadOptions(position=("ra", "dec"))
    with pytest.raises(LoadError, match=f"cat.stars: 1 row .*first: {first}"):
        await load_files(conn, [path], "cat.stars", options)
    assert await conn.fetchval("SELECT to_regclass('cat.stars')") is None
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM tap_schema.tables WHERE table_name = 'cat.stars'"
        )
        == 0
    )
    await _no_staging(conn)


async def test_the_valid_edges_load_and_are_found(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "edges.csv"
    path.write_text(
        HEADER
        + "1,0.0,90.0,1,north\n2,123.0,-90.0,1,south\n3,,,1,nowhere\n4,10.0,,1,half\n"
        + "5,400.0,10.0,1,wrapped\n6,-10.0,0.0,1,negative\n7,359.999,89.999,1,near\n"
    )
    options = LoadOptions(primary_key="id", position=("ra", "dec"))
    report = await load_files(conn, [path], "cat.stars", options)
    assert report.total == 7

    async def cone(ra: float, dec: float, radius: float) -> list[int]:
        rows = await conn.fetch(
            "SELECT id FROM cat.stars WHERE spoint(radians(ra), radians(dec))"
            " <@ scircle(spoint(radians($1), radians($2)), radians($3)) ORDER BY id",
            ra,
            dec,
            radius,
        )
        return [r[0] for r in rows]

    assert await cone(0, 90, 0.01) == [1, 7]
    assert await cone(0, -90, 0.01) == [2]
    # pg_sphere normalises a longitude: ra 400 is the point at ra 40, -10 at 350.
    assert await cone(40, 10, 0.01) == [5]
    assert await cone(350, 0, 0.01) == [6]
    nowhere = await conn.fetch(
        "SELECT id FROM cat.stars WHERE spoint(radians(ra), radians(dec)) IS NULL"
    )
    assert [r[0] for r in nowhere] == [3, 4]  # NULL positions: in no cone
