"""``aiouws tap load`` on a real PostgreSQL: files written by astropy in every
format, loaded, published with their headers' metadata; bad files refused with
the previous table and its publication intact; a cone search on the position
index."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import asyncpg
import numpy as np
import pytest
from astropy.io import fits
from loadkit import (
    DESCRIPTIONS,
    STARS,
    TABLE_DESCRIPTION,
    UCDS,
    UNITS,
    big_csv,
    truncate,
    write,
)
from testkit import DbSetup

from taprunner.adql.translate import translate
from taprunner.load import LoadError, LoadOptions, load_files
from taprunner.schema.catalog import TapCatalog
from taprunner.schema.metadata import ColumnMetadata, TableMetadata


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup(tap_schema=True)


async def _rows(conn: asyncpg.Connection, table: str = "cat.stars") -> list[tuple]:
    records = await conn.fetch(
        f"SELECT id, ra, dec, mag, name FROM {table} ORDER BY id"
    )
    return [tuple(r) for r in records]


async def _published(conn: asyncpg.Connection, table: str = "cat.stars") -> dict:
    rows = await conn.fetch(
        "SELECT column_name, datatype, unit, ucd, description FROM tap_schema.columns"
        " WHERE table_name = $1 ORDER BY column_index",
        table,
    )
    return {r["column_name"]: tuple(r)[1:] for r in rows}


def _expected_metadata(mag_type: str, *, with_ucds: bool = True) -> dict:
    return {
        name: (
            datatype,
            UNITS.get(name),
            UCDS.get(name) if with_ucds else None,
            DESCRIPTIONS[name],
        )
        for name, datatype in [
            ("id", "long"),
            ("ra", "double"),
            ("dec", "double"),
            ("mag", mag_type),
            ("name", "unicodeChar"),
        ]
    }


@pytest.mark.parametrize(
    "suffix", [".fits", ".vot", ".b1.vot", ".b2.vot", ".ecsv", ".parquet"]
)
async def test_each_format_loads_values_and_metadata(
    conn: asyncpg.Connection, tmp_path: Path, suffix: str
) -> None:
    path = write(tmp_path / f"stars{suffix}")
    report = await load_files(conn, [path], "cat.stars", LoadOptions())
    assert (report.loaded, report.total, report.files) == (3, 3, 1)
    rows = await _rows(conn)
    if suffix == ".fits":  # FITS has no NULL float: NaN stays NaN
        assert rows[2][3] != rows[2][3]
        rows[2] = (*rows[2][:3], None, rows[2][4])
    assert rows == [(i, ra, dec, mag, n) for i, ra, dec, mag, n in STARS]
    assert await _published(conn) == _expected_metadata("float")
    description = await conn.fetchval(
        "SELECT description FROM tap_schema.tables WHERE table_name = 'cat.stars'"
    )
    assert description == (TABLE_DESCRIPTION if suffix != ".fits" else None)


async def test_csv_types_are_inferred(conn: asyncpg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "stars.csv"
    path.write_text(
        "# a comment line\nid,ra,dec,mag,name,flag\n"
        '1,10.0,20.0,5.5,alpha,true\n2,10.5,20,6.25,"beta, b",false\n'
        "3,200,-45,,gamma,\n"
    )
    await load_files(conn, [path], "cat.stars", LoadOptions())
    assert await _rows(conn) == [
        (1, 10.0, 20.0, 5.5, "alpha"),
        (2, 10.5, 20.0, 6.25, "beta, b"),
        (3, 200.0, -45.0, None, "gamma"),
    ]
    types = await conn.fetch(
        "SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid ="
        " 'cat.stars'::regclass AND attnum > 0 ORDER BY attnum"
    )
    assert [r[0] for r in types] == [
        "bigint", "double precision", "double precision", "double precision",
        "text", "boolean",
    ]  # fmt: skip


async def test_several_files_make_one_table_and_toml_overrides(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    first = write(tmp_path / "a.fits", STARS[:2])
    second = write(tmp_path / "b.fits", STARS[2:])
    curated = TableMetadata(
        description="Curated",
        columns=(
            ColumnMetadata(name="mag", description="V magnitude", principal=False),
        ),
    )
    options = LoadOptions(primary_key="id", metadata=curated)
    report = await load_files(conn, [first, second], "cat.stars", options)
    assert (report.loaded, report.total, report.files) == (3, 3, 2)
    meta = await conn.fetchrow(
        "SELECT c.description, c.unit, c.principal, t.description AS td"
        " FROM tap_schema.columns c JOIN tap_schema.tables t USING (table_name)"
        " WHERE c.column_name = 'mag'"
    )
    assert tuple(meta) == ("V magnitude", "mag", 0, "Curated")
    indexed = await conn.fetchval(
        "SELECT indexed FROM tap_schema.columns WHERE column_name = 'id'"
    )
    assert indexed == 1


async def test_mixed_schemas_are_refused(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    stars = write(tmp_path / "stars.fits")
    other = tmp_path / "other.csv"
    other.write_text("id,ra\n1,2.0\n")
    with pytest.raises(LoadError, match="same columns"):
        await load_files(conn, [stars, other], "cat.stars", LoadOptions())
    assert await conn.fetchval("SELECT to_regclass('cat.stars')") is None


async def _load_good(conn: asyncpg.Connection, tmp_path: Path) -> tuple[list, dict]:
    path = write(tmp_path / "good.ecsv")
    await load_files(conn, [path], "cat.stars", LoadOptions(primary_key="id"))
    return await _rows(conn), await _published(conn)


async def _assert_intact(conn: asyncpg.Connection, before: tuple[list, dict]) -> None:
    assert (await _rows(conn), await _published(conn)) == before
    leftovers = await conn.fetch(
        "SELECT relname FROM pg_class WHERE relname LIKE 'stars_load_%'"
    )
    assert leftovers == []


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("late.csv", "id,ra,dec,mag,name\n1,1,2,3,a\n2,1,2,oops,b\n", "oops"),
        ("short.csv", "id,ra,dec,mag,name\n1,1,2,3,a\n2,1,2\n", "line 3"),
        ("dup.csv", "id,ra,dec,mag,name\n1,1,2,3,a\n1,1,2,3,b\n", "primary key"),
        ("mixed.csv", "id,ra,dec,mag\n1,1,2,3\n", "same columns"),
    ],
)
async def test_bad_csv_leaves_the_table_intact(
    conn: asyncpg.Connection, tmp_path: Path, name: str, content: str, message: str
) -> None:
    before = await _load_good(conn, tmp_path)
    path = tmp_path / name
    # infer_rows=1: "oops" comes after the rows the types are inferred from
    path.write_text(content)
    options = LoadOptions(replace=True, primary_key="id", infer_rows=1)
    if name == "mixed.csv":
        options = LoadOptions(append=True)
    with pytest.raises(LoadError, match=message) as caught:
        await load_files(conn, [path], "cat.stars", options)
    if name != "dup.csv":  # a duplicate key may span files: no file named
        assert str(path) in str(caught.value)
    await _assert_intact(conn, before)


@pytest.mark.parametrize("suffix", [".fits", ".vot", ".b1.vot", ".b2.vot", ".parquet"])
async def test_truncated_file_leaves_the_table_intact(
    conn: asyncpg.Connection, tmp_path: Path, suffix: str
) -> None:
    before = await _load_good(conn, tmp_path)
    path = truncate(write(tmp_path / f"cut{suffix}", STARS * 200))
    with pytest.raises(LoadError, match="cut"):
        await load_files(conn, [path], "cat.stars", LoadOptions(replace=True))
    await _assert_intact(conn, before)


async def test_existing_table_needs_append_or_replace(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    before = await _load_good(conn, tmp_path)
    with pytest.raises(LoadError, match="--append .* --replace"):
        await load_files(conn, [tmp_path / "good.ecsv"], "cat.stars", LoadOptions())
    await _assert_intact(conn, before)


async def test_append_and_replace(conn: asyncpg.Connection, tmp_path: Path) -> None:
    await _load_good(conn, tmp_path)
    more = write(tmp_path / "more.ecsv", [(4, 1.0, 2.0, 3.0, "delta")])
    report = await load_files(conn, [more], "cat.stars", LoadOptions(append=True))
    assert (report.loaded, report.total) == (1, 4)
    assert await _published(conn) == _expected_metadata("float")
    plain = tmp_path / "plain.csv"
    plain.write_text("id,ra,dec,mag,name\n9,1.5,2.5,3.5,x\n")
    report = await load_files(conn, [plain], "cat.stars", LoadOptions(replace=True))
    assert (report.loaded, report.total) == (1, 1)
    # A reload keeps the curated metadata of the earlier publication.
    assert await _published(conn) == _expected_metadata("double")
    key = await conn.fetchval(
        "SELECT count(*) FROM pg_index WHERE indrelid = 'cat.stars'::regclass"
    )
    assert key == 0  # replaced without --primary-key: no key


async def test_cone_search_uses_the_position_index(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    path = big_csv(tmp_path / "sky.csv", 20_000)
    options = LoadOptions(primary_key="id", position=("ra", "dec"))
    await load_files(conn, [path], "cat.sky", options)
    indexes = await conn.fetch(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'sky' ORDER BY 1"
    )
    assert [r[0] for r in indexes] == ["sky_pkey", "sky_pos_idx"]
    catalog = await TapCatalog.load(conn)
    for adql in (
        "SELECT id FROM cat.sky WHERE 1 = CONTAINS(POINT('ICRS', ra, dec),"
        " CIRCLE('ICRS', 10, 20, 0.5))",
        "SELECT id FROM cat.sky WHERE CONTAINS(POINT(ra, dec),"
        " CIRCLE(POINT(10, 20), 0.5)) = 1 AND mag < 15",
    ):
        sql = translate(adql, catalog).sql
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql))
        assert "sky_pos_idx" in plan, plan
        assert "Seq Scan" not in plan, plan
    count = await conn.fetchval(
        "SELECT count(*) FROM cat.sky WHERE spoint(radians(ra), radians(dec))"
        " <@ scircle(spoint(radians(10), radians(20)), radians(5))"
    )
    assert 0 < count < 200  # about 20,000 * 0.0019 = 38


async def test_bad_options_are_refused(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    path = write(tmp_path / "stars.ecsv")
    for options, message in [
        (LoadOptions(primary_key="nope"), "no column 'nope'"),
        (LoadOptions(position=("ra", "decl")), "no column 'decl'"),
        (LoadOptions(append=True, replace=True), "exclude"),
        (LoadOptions(position=("ra", "name")), "'name' is text, not a number"),
    ]:
        with pytest.raises(LoadError, match=message):
            await load_files(conn, [path], "cat.stars", options)
    with pytest.raises(LoadError, match="schema.table"):
        await load_files(conn, [path], "stars", LoadOptions())
    with pytest.raises(LoadError, match="service's or PostgreSQL's own"):
        await load_files(conn, [path], "tap_schema.stars", LoadOptions())
    with pytest.raises(LoadError, match="unknown file type"):
        await load_files(conn, [tmp_path / "x.txt"], "cat.stars", LoadOptions())
    assert await conn.fetchval("SELECT to_regclass('cat.stars')") is None


async def test_fits_conventions(conn: asyncpg.Connection, tmp_path: Path) -> None:
    """Logicals (0 is NULL), unsigned integers (TZERO), TNULL, TSCAL, arrays."""
    columns = [
        fits.Column(name="flag", format="L", array=np.array([True, False, True])),
        fits.Column(
            name="u", format="I", bzero=32768, array=np.array([1, 65000, 7], "u2")
        ),
        fits.Column(name="n", format="J", null=-1, array=np.array([5, -1, 6])),
        fits.Column(name="x", format="E", bscale=2.0, bzero=1.0, array=[3.0, 5.0, 7.0]),
        fits.Column(name="pos", format="2D", array=np.arange(6.0).reshape(3, 2)),
    ]
    hdu = fits.BinTableHDU.from_columns(columns)
    hdu.data["flag"][2] = False
    path = tmp_path / "conv.fits"
    hdu.writeto(path)
    raw = bytearray(path.read_bytes())  # the third logical: 0 (NULL)
    with fits.open(path) as hdus:
        start = hdus[1].fileinfo()["datLoc"]
    raw[start + 2 * hdu.header["NAXIS1"]] = 0
    path.write_bytes(bytes(raw))
    await load_files(conn, [path], "cat.conv", LoadOptions())
    rows = await conn.fetch("SELECT * FROM cat.conv ORDER BY u")
    assert [tuple(r) for r in rows] == [
        (True, 1, 5, 3.0, [0.0, 1.0]),
        (None, 7, 6, 7.0, [4.0, 5.0]),
        (False, 65000, None, 5.0, [2.0, 3.0]),
    ]
    types = await _published(conn, "cat.conv")
    assert [t[0] for t in types.values()] == [
        "boolean",
        "int",
        "int",
        "double",
        "double",
    ]


async def test_parquet_timestamps_are_utc(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    zone = dt.timezone(dt.timedelta(hours=2))
    table = pa.table(
        {
            "t": pa.array(
                [dt.datetime(2020, 1, 1, 12, tzinfo=zone), None],
                pa.timestamp("us", tz="+02:00"),
            ),
            "day": pa.array([dt.date(2020, 1, 2), None]),
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    await load_files(conn, [tmp_path / "t.parquet"], "cat.times", LoadOptions())
    rows = await conn.fetch("SELECT t, day FROM cat.times ORDER BY t")
    assert [tuple(r) for r in rows] == [
        (dt.datetime(2020, 1, 1, 10), dt.datetime(2020, 1, 2)),
        (None, None),
    ]
    published = await _published(conn, "cat.times")
    assert [v[0] for v in published.values()] == ["char", "char"]


async def test_a_reload_keeps_declared_types_and_order(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    """Types and an order declared by curated metadata (tap publish --metadata,
    or a load's) are part of the earlier publication a reload keeps, as its
    descriptions are, where the column's PostgreSQL type is unchanged."""
    plain = tmp_path / "plain.csv"
    plain.write_text("id,ra,dec,mag,name\n9,1.5,2.5,3.5,x\n")
    curated = TableMetadata(
        columns=(
            ColumnMetadata(name="id", xtype="custom-id", column_index=50),
            ColumnMetadata(name="mag", xtype="custom-x"),
        )
    )
    await load_files(conn, [plain], "cat.stars", LoadOptions(metadata=curated))
    published = (
        "SELECT column_name, datatype, xtype, column_index FROM tap_schema.columns"
        " WHERE table_name = 'cat.stars' AND column_name IN ('id', 'mag')"
        " ORDER BY column_name"
    )
    before = [tuple(r) for r in await conn.fetch(published)]
    assert before == [("id", "long", "custom-id", 50), ("mag", "double", "custom-x", 4)]
    await load_files(conn, [plain], "cat.stars", LoadOptions(replace=True))
    assert [tuple(r) for r in await conn.fetch(published)] == before
    await load_files(conn, [plain], "cat.stars", LoadOptions(append=True))
    assert [tuple(r) for r in await conn.fetch(published)] == before
    # A column whose type changed is published as it is now.
    plain.write_text("id,ra,dec,mag,name\n9,1.5,2.5,3.5,x\n10.5,1,2,3,y\n")
    await load_files(conn, [plain], "cat.stars", LoadOptions(replace=True))
    after = [tuple(r) for r in await conn.fetch(published)]
    assert after == [("id", "double", None, 50), ("mag", "double", "custom-x", 4)]
