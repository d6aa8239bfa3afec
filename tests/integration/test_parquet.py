"""VOParquet results: read back with astropy (``format="parquet.votable"``) and
pyarrow, values and NULLs compared with PostgreSQL's; sync, async through a
runner's cursor path and its columnar (Arrow) path; MAXREC overflow in the
VOTable header's INFO.

astropy's Parquet reader has no masks: a NULL integer comes back as NaN, a
NULL string as "None", and a boolean column with NULLs cannot be read at all
(pyarrow gives objects, which astropy cannot stack with the header's bool
column). So astropy reads a query whose booleans have no NULL; pyarrow checks
every NULL of the same file exactly.
"""

from __future__ import annotations

import asyncio
import io
import math
from pathlib import Path

import asyncpg
import pyarrow.parquet as pq
import pytest
from astropy.io.votable import parse  # type: ignore[import-untyped]
from astropy.table import Table  # type: ignore[import-untyped]
from querywatch import final, submit
from testkit import Client, DbSetup

from taprunner.formats.registry import OUTPUT_FORMATS
from taprunner.query.columnar import APPLICATION_NAME
from taprunner.schema.metadata import ColumnMetadata, TableMetadata

PARQUET = "application/vnd.apache.parquet"
TABLE = """
CREATE SCHEMA tst;
CREATE TABLE tst.odd (
    id integer, big bigint, small smallint, flux double precision, mag real,
    label text, flag boolean, seen timestamp, ra double precision,
    dec double precision
);
INSERT INTO tst.odd VALUES
 (1, 9223372036854775807, 32767, 1.5, 2.25, 'héllo ☃', true,
  '2024-02-29 12:34:56.5', 10, 20),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 11, -30),
 (3, -5, -32768, 'NaN', 'Infinity', '', false, '1999-12-31 23:59:59', 0, 0),
 (4, 42, 0, -1e-300, -1e-30, 'a<b>&"c"', true, NULL, 359.5, 89.5);
"""
COLUMNS = "id, big, small, flux, mag, label, flag, seen"
#: Every type: NULL booleans included (pyarrow reads it).
ALL = f"SELECT {COLUMNS}, POINT('ICRS', ra, dec) AS pos FROM tst.odd ORDER BY id"
#: Booleans without NULL (astropy reads it).
NO_NULL_FLAG = ALL.replace("ORDER BY", "WHERE flag IS NOT NULL ORDER BY")
#: Only types of the columnar path (numbers, booleans, text).
COLUMNAR = "SELECT id, big, small, flux, mag, label, flag FROM tst.odd ORDER BY id"


@pytest.fixture
def db_setup() -> DbSetup:
    meta = TableMetadata(
        description="odd values",
        columns=(ColumnMetadata(name="flux", unit="Jy", ucd="phot.flux"),),
    )
    return DbSetup(tap_schema=True, sql=TABLE, published={"tst.odd": meta})


@pytest.fixture
async def rows(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch(f"SELECT {COLUMNS}, ra, dec FROM tst.odd ORDER BY id"))


def _check_pyarrow(path: Path, rows: list[asyncpg.Record], names: list[str]) -> None:
    """Every value and NULL, exactly, as pyarrow reads them."""
    table = pq.read_table(path).to_pylist()
    assert len(table) == len(rows)
    for got, want in zip(table, rows, strict=True):
        for name in names:
            if name == "pos":
                assert got["pos"] == [want["ra"], want["dec"]]
            elif name == "seen":
                seen = want["seen"]
                assert got["seen"] == (None if seen is None else seen.isoformat())
            elif name in ("flux", "mag") and want[name] is not None:
                assert _same(got[name], want[name]), (name, got, want)
            else:
                assert got[name] == want[name], (name, got[name], want[name])


def _same(got: float, want: float) -> bool:
    """Equal, NaN included (a REAL comes from asyncpg as the float32's double)."""
    return math.isnan(got) if math.isnan(want) else got == want


def _votable_header(path: Path) -> bytes:
    metadata = pq.ParquetFile(path).metadata.metadata
    assert metadata[b"IVOA.VOTable-Parquet.version"] == b"1.0"
    return bytes(metadata[b"IVOA.VOTable-Parquet.content"])


def _check_astropy(path: Path, rows: list[asyncpg.Record]) -> None:
    """The VOParquet reading of astropy: values, NULLs as it gives them, and
    the FIELD metadata."""
    table = Table.read(path, format="parquet.votable")
    wanted = [r for r in rows if r["flag"] is not None]
    assert list(table["id"]) == [r["id"] for r in wanted]
    assert table["flux"].unit == "Jy"
    for got, want in zip(table, wanted, strict=True):
        assert bool(got["flag"]) == want["flag"]
        if want["big"] is None:
            assert math.isnan(got["big"]) and math.isnan(got["small"])
        else:
            assert got["big"] == float(want["big"]) and got["small"] == want["small"]
        assert got["label"] == want["label"]
        seen = want["seen"]
        assert got["seen"] == ("None" if seen is None else seen.isoformat())
        assert list(got["pos"]) == [want["ra"], want["dec"]]
    assert table["pos"].meta["xtype"] == "point"


async def _sync(client: Client, query: str, **params: str) -> bytes:
    response = await client.get(
        "/tap/sync",
        params={"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "parquet", **params},
    )
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == PARQUET
    return await response.read()


async def test_parquet_is_in_the_registry_and_the_capabilities(client: Client) -> None:
    assert "parquet" in {f.name for f in OUTPUT_FORMATS}
    capabilities = await (await client.get("/tap/capabilities")).text()
    assert f"<mime>{PARQUET}</mime>" in capabilities
    assert "<alias>parquet</alias>" in capabilities


async def test_sync_parquet_matches_postgresql(
    rows: list[asyncpg.Record], client: Client, tmp_path: Path
) -> None:
    path = tmp_path / "all.parquet"
    path.write_bytes(await _sync(client, ALL))
    _check_pyarrow(path, rows, [*COLUMNS.split(", "), "pos"])
    header = parse(io.BytesIO(_votable_header(path))).get_first_table()
    assert [f.name for f in header.fields] == [*COLUMNS.split(", "), "pos"]
    assert header.fields[3].unit == "Jy" and header.fields[3].ucd == "phot.flux"
    assert header.fields[8].xtype == "point"
    path.write_bytes(await _sync(client, NO_NULL_FLAG))
    _check_astropy(path, rows)


async def test_maxrec_overflow_is_said_in_the_header(
    rows: list[asyncpg.Record], client: Client, tmp_path: Path
) -> None:
    path = tmp_path / "capped.parquet"
    path.write_bytes(await _sync(client, ALL, MAXREC="2"))
    assert pq.read_table(path).num_rows == 2
    header = _votable_header(path)
    assert header.rstrip().endswith(
        b'</TABLE>\n<INFO name="QUERY_STATUS" value="OVERFLOW"/>\n</RESOURCE>\n'
        b"</VOTABLE>"
    )
    path.write_bytes(await _sync(client, ALL))
    assert b"OVERFLOW" not in _votable_header(path)


@pytest.mark.parametrize("query", [ALL, COLUMNAR], ids=["cursor", "columnar"])
async def test_async_parquet_from_a_runner(
    rows: list[asyncpg.Record],
    conn: asyncpg.Connection,
    client: Client,
    tmp_path: Path,
    query: str,
) -> None:
    job = await submit(client, QUERY=query, RESPONSEFORMAT="parquet")
    assert await final(client, job) == "COMPLETED"
    result = await client.get(f"/tap/async/{job}/results/result")
    assert result.headers["Content-Type"] == PARQUET
    path = tmp_path / "async.parquet"
    path.write_bytes(await result.read())
    names = [n for n in [*COLUMNS.split(", "), "pos"] if n in query]
    _check_pyarrow(path, rows, names)
    columnar = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
        " AND datname = current_database()",
        APPLICATION_NAME,
    )
    # The columnar path reads binary COPY on the runner's asyncpg connection
    # (tap_columnar_source = "copy"): no ADBC session.
    assert columnar == 0
    if query == ALL:
        path.write_bytes(await _sync(client, NO_NULL_FLAG))
        _check_astropy(path, rows)


async def test_many_rows_in_several_row_groups(client: Client, tmp_path: Path) -> None:
    query = (
        "SELECT TOP 300000 a.id * 1000 + b.id AS n, a.ra AS x FROM demo.stars AS a,"
        " demo.stars AS b WHERE b.id <= 200 ORDER BY n"
    )
    path = tmp_path / "big.parquet"
    path.write_bytes(await _sync(client, query, MAXREC="250000"))
    parquet = pq.ParquetFile(path)
    assert parquet.metadata.num_rows == 250_000
    assert parquet.metadata.num_row_groups >= 2
    first = parquet.read_row_group(0).column("n").to_pylist()[:2]
    assert first == [1001, 1002]
    assert b'value="OVERFLOW"' in _votable_header(path)


async def test_a_runner_that_wrote_parquet_is_replaced(
    client: Client, conn: asyncpg.Connection
) -> None:
    """pyarrow stays in a runner that wrote VOParquet, past ``runner_max_rss``
    (80 MiB by default): that runner exits, later jobs run in fresh ones."""
    runner = "SELECT runner_pid FROM uws.job WHERE job_id = $1"
    job = await submit(client, QUERY=COLUMNAR, RESPONSEFORMAT="parquet")
    assert await final(client, job) == "COMPLETED"
    pid = await conn.fetchval(runner, job)
    assert pid is not None
    async with asyncio.timeout(60):
        while Path(f"/proc/{pid}").exists():  # noqa: ASYNC110 (exited, reaped)
            await asyncio.sleep(0.05)
    later = set()
    for _ in range(3):  # more jobs than the kind's runners
        job = await submit(client, QUERY=COLUMNAR, RESPONSEFORMAT="votable")
        assert await final(client, job) == "COMPLETED"
        later.add(await conn.fetchval(runner, job))
    assert pid not in later and None not in later
