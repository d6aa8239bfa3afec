"""TAP uploads: VOTables as temporary tables TAP_UPLOAD.name, loaded and queried."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest
from astropy.table import Table  # type: ignore[import-untyped]
from testkit import DbSetup
from uploadkit import (
    MB,
    ODD,
    TAP_STARS,
    ids_table,
    physical,
    run_adql,
    temp_tables,
    votable,
    write_parts,
)

from aiouws.results.local import LocalOutputs
from taprunner.adql.model import AdqlError, StaticCatalog
from taprunner.adql.translate import translate
from taprunner.errors import TapUsageError
from taprunner.query import uploadparse, uploads
from taprunner.query.uploads import UploadCatalog, job_parts, load_uploads
from taprunner.request import Upload, parse_uploads
from taprunner.schema.catalog import TapCatalog
from taprunner.schema.tapschema import QUERY_ROLE


@pytest.fixture
def db_setup() -> DbSetup:
    return TAP_STARS


# --------------------------------------------------------------------------------
# Translator: the TAP_UPLOAD mapping


class _Naming(StaticCatalog):
    def sql_name(self, table: str) -> str | None:
        return "pg_temp.tap_upload_x" if table == "tap_upload.t1" else None


NAMING = _Naming({"tap_upload.t1": ["Ra Deg", "Id"], "tst.stars": ["id", "mag"]})


@pytest.mark.parametrize(
    ("adql", "sql"),
    [
        (
            "SELECT * FROM TAP_UPLOAD.t1",
            'SELECT t1."Ra Deg" AS "Ra Deg", t1."Id" AS "Id" '
            "FROM pg_temp.tap_upload_x AS t1",
        ),
        (
            'SELECT id, tap_upload.T1."Ra Deg", t1.ID FROM Tap_Upload.T1',
            'SELECT "Id" AS "Id", t1."Ra Deg" AS "Ra Deg", t1."Id" AS "Id_2" '
            "FROM pg_temp.tap_upload_x AS t1",
        ),
        (
            "SELECT u.id, s.mag FROM TAP_UPLOAD.t1 AS u "
            "JOIN tst.stars AS s ON u.id = s.id",
            'SELECT u."Id" AS "Id", s.mag AS mag FROM pg_temp.tap_upload_x AS u '
            'JOIN tst.stars AS s ON (u."Id" = s.id)',
        ),
        (
            "SELECT id FROM tst.stars WHERE id IN (SELECT id FROM TAP_UPLOAD.t1)",
            "SELECT id AS id FROM tst.stars WHERE (id IN "
            '(SELECT "Id" AS "Id" FROM pg_temp.tap_upload_x AS t1))',
        ),
    ],
)
def test_translator_maps_tap_upload_names(adql: str, sql: str) -> None:
    translation = translate(adql, NAMING)
    assert translation.sql == sql
    assert "tap_upload.t1" in translation.tables


def test_translator_without_sql_name_keeps_names() -> None:
    plain = StaticCatalog({"tap_upload.t1": ["id"]})
    assert (
        translate("SELECT id FROM TAP_UPLOAD.t1", plain).sql
        == "SELECT id AS id FROM tap_upload.t1"
    )


def test_upload_catalog_delegates(catalog: TapCatalog) -> None:
    table = uploads.UploadTable("t1", "pg_temp.tap_upload_y", ("A",), 0)
    wrapped = UploadCatalog(catalog, [table])
    assert wrapped.columns_of("TAP_UPLOAD.T1") == ("A",)
    assert wrapped.sql_name("tap_upload.t1") == "pg_temp.tap_upload_y"
    assert wrapped.columns_of("tst.stars") == ("id", "mag")
    assert wrapped.sql_name("tst.stars") == "tst.stars"
    assert wrapped.table("tst.stars") is catalog.table("tst.stars")
    info = wrapped.column_info("tst.stars", "mag")
    assert info is not None and info.unit == "mag"  # type: ignore[attr-defined]
    assert wrapped.column_info("tap_upload.t1", "A") is None
    with pytest.raises(AdqlError, match="unknown table"):
        translate("SELECT * FROM TAP_UPLOAD.t2", wrapped)
    bare = UploadCatalog(StaticCatalog({}), [table])
    assert bare.table("x.y") is None and bare.column_info("x.y", "z") is None


# --------------------------------------------------------------------------------
# Loading and querying


async def test_nulls_odd_names_and_non_ascii(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    parts = write_parts(tmp_path, odd=ODD.encode())
    async with load_uploads(
        conn, parse_uploads("Odd,param:odd"), parts, catalog, max_bytes=MB
    ) as full:
        types: dict[str, str] = dict(
            await conn.fetch(  # type: ignore[arg-type]
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = $1::regclass AND attnum > 0",
                physical(full, "odd"),
            )
        )
        result = await run_adql(
            conn, full, 'SELECT * FROM TAP_UPLOAD.odd ORDER BY "Id"'
        )
        arrays = await conn.fetch(
            f'SELECT vals, triple FROM {physical(full, "odd")} ORDER BY "Id"'
        )
        picked = await run_adql(
            conn,
            full,
            'SELECT "Ra Deg", mixedcase, "näme" FROM tap_upload.ODD WHERE id = 1',
        )
    assert types == {
        "Id": "integer",
        "Ra Deg": "double precision",
        "MixedCase": "text",
        "näme": "text",
        "flag": "boolean",
        "big": "bigint",
        "small": "smallint",
        "f": "real",
        "vals": "double precision[]",
        "triple": "integer[]",
        "when": "timestamp with time zone",
    }
    assert result.colnames == list(types)
    one, two, null_id = result  # ORDER BY puts the NULL id last
    assert (one["Id"], one["Ra Deg"], one["MixedCase"], one["näme"]) == (
        1,
        10.5,
        "abc",
        "Zoë ☃ 東京",
    )
    assert (bool(one["flag"]), one["big"], one["small"], one["f"]) == (
        True,
        12345678901,
        7,
        1.5,
    )
    assert one["when"].startswith("2020-01-02T03:04:05")
    for name in types:
        if name != "Id" and name != "MixedCase" and name != "näme":
            assert np.ma.is_masked(two[name]) or not len(two[name]), name
    assert np.ma.is_masked(null_id["Id"])
    assert null_id["MixedCase"] == 'it\'s "q" \\'
    assert null_id["when"].startswith("2021-06-01T12:00:00")
    assert list(picked[0]) == [10.5, "abc", "Zoë ☃ 東京"]
    assert [tuple(r) for r in arrays] == [
        ([1.0, 2.0, 3.5], [4, 5, 6]),
        (None, None),
        ([7.0], [1, 2, 3]),
    ]
    assert await temp_tables(conn) == []


async def test_join_with_published_table_and_two_uploads(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    parts = write_parts(
        tmp_path,
        a=ids_table([1, 3, 5], "a"),
        b=votable(
            Table({"ID": np.array([3, 5], dtype=np.int64), "Note": ["three", "five"]}),
            "tabledata",
        ),
    )
    async with load_uploads(
        conn, parse_uploads("a,param:a;B,param:b"), parts, catalog, max_bytes=MB
    ) as full:
        joined = await run_adql(
            conn,
            full,
            "SELECT s.id, s.mag, a.label FROM tst.stars AS s "
            "JOIN TAP_UPLOAD.a AS a ON a.id = s.id ORDER BY s.id",
        )
        both = await run_adql(
            conn,
            full,
            "SELECT a.label, b.note FROM tap_upload.a JOIN tap_upload.b "
            "ON a.id = b.id ORDER BY a.id",
        )
        assert len(await temp_tables(conn)) == 2
    assert [tuple(r) for r in joined] == [(1, 11.5, "a1"), (3, 13.5, "a3")]
    assert [tuple(r) for r in both] == [("a3", "three"), ("a5", "five")]
    assert await temp_tables(conn) == []


async def test_limits_and_bad_input(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    big = ids_table(list(range(5000)))
    parts = write_parts(
        tmp_path,
        big=big,
        bad=b"<VOTABLE><RESOURCE><TABLE>",
        html=b"<html><body>not a table</body></html>",
        good=ids_table([1]),
    )
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("t,param:big", {"max_bytes": len(big) - 1}, "larger than the limit"),
        (
            "t,param:big",
            {"max_bytes": MB, "max_rows": 10},
            "5000 rows, more than the limit of 10",
        ),
        ("t,param:bad", {"max_bytes": MB}, "upload 't' is not a valid VOTable"),
        ("t,param:html", {"max_bytes": MB}, "upload 't' is not a valid VOTable"),
        ("t,param:nosuch", {"max_bytes": MB}, "no part named 'nosuch'"),
        ("t,ftp://example.org/x.vot", {"max_bytes": MB}, "unsupported source"),
        # the first upload is loaded, then the second fails: the first is dropped
        ("ok,param:good;t,param:bad", {"max_bytes": MB}, "not a valid VOTable"),
    ]
    for upload, limits, message in cases:
        with pytest.raises(TapUsageError, match=message):
            async with load_uploads(
                conn, parse_uploads(upload), parts, catalog, **limits
            ):
                raise AssertionError("not reached")
        assert await temp_tables(conn) == []


async def test_unloadable_values_are_usage_errors(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    doc = ODD.replace("2021-06-01T12:00:00", "yesterday").encode()
    dup = ODD.replace('name="big"', 'name="flag"').encode()
    long = ODD.replace('name="big"', f'name="{"é" * 32}"').encode()
    cplx = votable(Table({"z": np.array([1 + 2j])}))
    parts = write_parts(tmp_path, doc=doc, dup=dup, long=long, cplx=cplx)
    for source, message in [
        ("doc", "not an ISO 8601 timestamp"),
        ("dup", "appears twice"),
        ("long", "longer than 63 bytes"),
        ("cplx", "unsupported datatype doubleComplex"),
    ]:
        with pytest.raises(TapUsageError, match=message):
            async with load_uploads(
                conn, [Upload("t", f"param:{source}")], parts, catalog, max_bytes=MB
            ):
                pass
    assert await temp_tables(conn) == []


async def test_tables_are_dropped_on_error_and_cancel(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    parts = write_parts(tmp_path, a=ids_table([1, 2]))
    with pytest.raises(ZeroDivisionError):
        async with load_uploads(
            conn, parse_uploads("a,param:a"), parts, catalog, max_bytes=MB
        ):
            assert len(await temp_tables(conn)) == 1
            1 / 0  # noqa: B018
    assert await temp_tables(conn) == []

    started = asyncio.Event()

    async def slow() -> None:
        async with load_uploads(
            conn, parse_uploads("a,param:a"), parts, catalog, max_bytes=MB
        ):
            started.set()
            await conn.execute("SELECT pg_sleep(30)")

    task = asyncio.create_task(slow())
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not conn.is_closed()
    assert await temp_tables(conn) == []


async def test_query_role_reads_but_cannot_write(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    # Without TEMPORARY on the database a role has no USAGE on pg_temp:
    # load_uploads must grant what the query role needs.
    database = await conn.fetchval("SELECT current_database()")
    await conn.execute(f'REVOKE TEMPORARY ON DATABASE "{database}" FROM PUBLIC')
    parts = write_parts(tmp_path, a=ids_table([1, 2]))
    async with load_uploads(
        conn, parse_uploads("a,param:a"), parts, catalog, max_bytes=MB
    ) as full:
        table = physical(full, "a")
        assert await conn.fetchval(
            "SELECT has_schema_privilege($1, pg_my_temp_schema(), 'USAGE')", QUERY_ROLE
        )
        assert len(await run_adql(conn, full, "SELECT * FROM TAP_UPLOAD.a")) == 2
        for statement in (
            f"INSERT INTO {table} (id) VALUES (3)",
            f"DELETE FROM {table}",
            f"UPDATE {table} SET id = 0",
            f"TRUNCATE {table}",
            f"DROP TABLE {table}",
            f"ALTER TABLE {table} ADD COLUMN x int",
        ):
            for readonly in (True, False):
                # Temporary tables are writable even in a READ ONLY transaction:
                # the privileges are what stops the query role.
                with pytest.raises(
                    (
                        asyncpg.InsufficientPrivilegeError,
                        asyncpg.ReadOnlySQLTransactionError,
                    )
                ):
                    async with conn.transaction(readonly=readonly):
                        await conn.execute(f'SET LOCAL ROLE "{QUERY_ROLE}"')
                        await conn.execute(statement)
        with pytest.raises(AdqlError):
            translate("DELETE FROM TAP_UPLOAD.a", full)
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 2
    assert await temp_tables(conn) == []


async def test_job_dir_parts(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    (tmp_path / "upload-Cat").write_bytes(ids_table([4]))
    find = job_parts(LocalOutputs(tmp_path).fetch)
    assert find("Cat") == tmp_path / "upload-Cat"
    assert find("../upload-Cat") is None and find("nothing") is None
    async with load_uploads(
        conn, parse_uploads("c,param:Cat"), find, catalog, max_bytes=MB
    ) as full:
        assert [
            tuple(r) for r in await run_adql(conn, full, "SELECT * FROM TAP_UPLOAD.c")
        ] == [(4, "l4")]


def test_timestamp_helper() -> None:
    assert uploadparse.timestamp("t", "c", "2020-01-02T03:04:05") == datetime(
        2020, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    assert uploadparse.timestamp("t", "c", " ") is None


async def test_published_metadata_next_to_an_upload(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    parts = write_parts(tmp_path, a=ids_table([1]))
    async with load_uploads(
        conn, parse_uploads("a,param:a"), parts, catalog, max_bytes=MB
    ) as full:
        joined = await run_adql(
            conn,
            full,
            "SELECT s.mag FROM tst.stars AS s JOIN TAP_UPLOAD.a AS a ON a.id = s.id",
        )
    assert joined["mag"].unit == "mag"


async def test_array_columns_come_out_as_arrays(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path
) -> None:
    parts = write_parts(tmp_path, odd=ODD.encode())
    async with load_uploads(
        conn, parse_uploads("odd,param:odd"), parts, catalog, max_bytes=MB
    ) as full:
        result = await run_adql(
            conn, full, 'SELECT vals FROM TAP_UPLOAD.odd WHERE "Id" = 1'
        )
    assert list(result[0]["vals"]) == [1.0, 2.0, 3.5]
