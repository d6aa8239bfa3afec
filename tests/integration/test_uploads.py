"""TAP uploads: VOTables as temporary tables TAP_UPLOAD.name, in the runner and HTTP."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient
from astropy.io.votable import from_table, parse  # type: ignore[import-untyped]
from astropy.table import Table  # type: ignore[import-untyped]

from aiouws.config import Settings
from taprunner import tapschema, uploads
from taprunner.adql import AdqlError, StaticCatalog, translate
from taprunner.errors import TapUsageError
from taprunner.params import FORMATS, TapRequest, Upload, parse_uploads
from taprunner.query import QUERY_ROLE, run_query
from taprunner.server import create_tap_app
from taprunner.tapschema import TapCatalog
from taprunner.uploads import UploadCatalog, job_parts, load_uploads

MB = 1024 * 1024
Client = TestClient[Any, Any]

ODD = """<?xml version="1.0" encoding="utf-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE type="results"><TABLE>
<FIELD name="Id" datatype="int"/>
<FIELD name="Ra Deg" datatype="double"/>
<FIELD name="MixedCase" datatype="char" arraysize="*"/>
<FIELD name="näme" datatype="unicodeChar" arraysize="*"/>
<FIELD name="flag" datatype="boolean"/>
<FIELD name="big" datatype="long"/>
<FIELD name="small" datatype="short"/>
<FIELD name="f" datatype="float"/>
<FIELD name="vals" datatype="double" arraysize="*"/>
<FIELD name="triple" datatype="int" arraysize="3"/>
<FIELD name="when" datatype="char" arraysize="*" xtype="timestamp"/>
<DATA><TABLEDATA>
<TR><TD>1</TD><TD>10.5</TD><TD>abc</TD><TD>Zoë ☃ 東京</TD><TD>T</TD><TD>12345678901</TD>
<TD>7</TD><TD>1.5</TD><TD>1 2 3.5</TD><TD>4 5 6</TD><TD>2020-01-02T03:04:05Z</TD></TR>
<TR><TD>2</TD><TD></TD><TD></TD><TD></TD><TD></TD><TD></TD>
<TD></TD><TD>NaN</TD><TD></TD><TD></TD><TD></TD></TR>
<TR><TD></TD><TD>-1</TD><TD>it's "q" \\</TD><TD>x</TD><TD>F</TD><TD>-1</TD>
<TD>-2</TD><TD>-0.25</TD><TD>7</TD><TD>1 2 3</TD><TD>2021-06-01T12:00:00</TD></TR>
</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>
"""


def votable(table: Table, serialization: str = "binary2") -> bytes:
    """``table`` written as a VOTable document."""
    out = io.BytesIO()
    from_table(table).to_xml(out, tabledata_format=serialization)
    return out.getvalue()


def ids_table(ids: list[int], label: str = "l", column: str = "id") -> bytes:
    return votable(
        Table(
            {
                column: np.array(ids, dtype=np.int32),
                "label": [f"{label}{i}" for i in ids],
            }
        )
    )


def write_parts(tmp_path: Path, **documents: bytes) -> dict[str, Path]:
    parts = {}
    for name, data in documents.items():
        path = tmp_path / f"part-{name}"
        path.write_bytes(data)
        parts[name] = path
    return parts


async def run_adql(conn: asyncpg.Connection, catalog: Any, adql: str) -> Table:
    """Run ``adql`` as the service does and return the result as a Table."""
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    request = TapRequest(query=adql, maxrec=1000, format=FORMATS["votable"])
    await run_query(conn, request, catalog, sink, timeout=30)
    document = parse(io.BytesIO(b"".join(chunks)))
    result: Table = document.get_first_table().to_table(use_names_over_ids=True)
    return result


def physical(catalog: Any, name: str) -> str:
    """The SQL name of upload ``name`` in a catalogue from load_uploads."""
    assert isinstance(catalog, UploadCatalog)
    sql_name = catalog.sql_name(f"tap_upload.{name}")
    assert sql_name is not None
    return sql_name


async def temp_tables(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT relname FROM pg_class WHERE relpersistence = 't'"
        " AND relname LIKE 'tap_upload%'"
    )
    return [r["relname"] for r in rows]


@pytest.fixture
async def conn(db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(db_dsn)
    await tapschema.install(c)
    await c.execute("""
        CREATE SCHEMA tst;
        CREATE TABLE tst.stars (id integer PRIMARY KEY, mag real);
        INSERT INTO tst.stars VALUES (1, 11.5), (2, 12.5), (3, 13.5);
    """)
    await tapschema.publish(
        c,
        "tst.stars",
        tapschema.TableMetadata(
            columns=(
                tapschema.ColumnMetadata(
                    name="mag", description="magnitude", unit="mag"
                ),
            )
        ),
    )
    yield c
    await c.close()


@pytest.fixture
async def catalog(conn: asyncpg.Connection) -> TapCatalog:
    return await TapCatalog.load(conn)


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
    find = job_parts(tmp_path)
    assert find("Cat") == tmp_path / "upload-Cat"
    assert find("../upload-Cat") is None and find("nothing") is None
    async with load_uploads(
        conn, parse_uploads("c,param:Cat"), find, catalog, max_bytes=MB
    ) as full:
        assert [
            tuple(r) for r in await run_adql(conn, full, "SELECT * FROM TAP_UPLOAD.c")
        ] == [(4, "l4")]


# --------------------------------------------------------------------------------
# Uploads by URL


@pytest.fixture
async def vot_server(aiohttp_server: Callable[..., Awaitable[Any]]) -> Any:
    async def table(request: web.Request) -> web.Response:
        request.app[HITS].append(request.path)
        return web.Response(
            body=ids_table([7, 8], "u"), content_type="application/x-votable+xml"
        )

    async def missing(request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(body=b"")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/t.vot")

    app = web.Application()
    app[HITS] = []
    app.router.add_get("/t.vot", table)
    app.router.add_get("/missing", missing)
    app.router.add_get("/slow", slow)
    app.router.add_get("/moved", moved)
    return await aiohttp_server(app)


HITS = web.AppKey("hits", list[str])


async def fetch_error(
    conn: asyncpg.Connection, catalog: TapCatalog, url: str, **kwargs: Any
) -> str:
    with pytest.raises(TapUsageError) as info:
        async with load_uploads(
            conn, parse_uploads(f"r,{url}"), {}, catalog, **{"max_bytes": MB, **kwargs}
        ):
            pass
    return str(info.value)


async def test_upload_by_url(
    conn: asyncpg.Connection,
    catalog: TapCatalog,
    vot_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = str(vot_server.make_url("/t.vot"))
    async with load_uploads(
        conn,
        parse_uploads(f"remote,{url}"),
        {},
        catalog,
        max_bytes=MB,
        allow_private_urls=True,
    ) as full:
        rows = await run_adql(
            conn, full, "SELECT label FROM TAP_UPLOAD.remote ORDER BY id"
        )
    assert list(rows["label"]) == ["u7", "u8"]
    monkeypatch.setattr(uploads, "FETCH_TIMEOUT", 0.3)
    message = await fetch_error(
        conn, catalog, url, max_bytes=100, allow_private_urls=True
    )
    assert "larger than the limit of 100" in message
    # Refused connection, HTTP error and timeout read the same (no port scanner).
    for target in (
        str(vot_server.make_url("/missing")),
        str(vot_server.make_url("/slow")),
        "http://127.0.0.1:1/x",
    ):
        message = await fetch_error(conn, catalog, target, allow_private_urls=True)
        assert message == f"upload 'r': cannot fetch {target}"


async def test_upload_urls_must_be_public(
    conn: asyncpg.Connection,
    catalog: TapCatalog,
    vot_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(uploads, "FETCH_TIMEOUT", 2.0)
    port = vot_server.port
    for url in (
        f"http://127.0.0.1:{port}/t.vot",
        f"http://localhost:{port}/t.vot",
        f"http://[::1]:{port}/t.vot",
        f"http://[::ffff:127.0.0.1]:{port}/t.vot",
        f"http://2130706433:{port}/t.vot",
        "http://10.1.2.3/t.vot",
        "http://192.168.0.1/t.vot",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/t.vot",
        "http://224.0.0.1/t.vot",
    ):
        assert await fetch_error(conn, catalog, url) == (
            f"upload 'r': cannot fetch {url}"
        )
    assert vot_server.app[HITS] == []


async def test_upload_urls_are_not_redirected(
    conn: asyncpg.Connection, catalog: TapCatalog, vot_server: Any
) -> None:
    url = str(vot_server.make_url("/moved"))
    message = await fetch_error(conn, catalog, url, allow_private_urls=True)
    assert message == f"upload 'r': cannot fetch {url} (redirects are not followed)"
    assert vot_server.app[HITS] == []


def test_public_addresses() -> None:
    from taprunner.urlfetch import is_public

    assert is_public("8.8.8.8") and is_public("2001:4860:4860::8888")
    for address in ("127.0.0.1", "::1", "10.0.0.1", "172.16.0.1", "169.254.1.1",
                    "fe80::1%eth0", "fc00::1", "100.64.0.1", "0.0.0.0", "::",
                    "255.255.255.255", "240.0.0.1", "::ffff:10.0.0.1"):  # fmt: skip
        assert not is_public(address), address


# --------------------------------------------------------------------------------
# Through HTTP: sync and async


@pytest.fixture
async def tap_client(
    aiohttp_client: Callable[..., Awaitable[Client]], settings: Settings, db_dsn: str
) -> Client:
    c = await asyncpg.connect(db_dsn)
    try:
        await c.execute("CREATE EXTENSION IF NOT EXISTS pg_sphere")
        await tapschema.install(c)
        await c.execute(
            "CREATE SCHEMA tst;"
            "CREATE TABLE tst.stars (id integer, mag real);"
            "INSERT INTO tst.stars VALUES (1, 11.5), (2, 12.5)"
        )
        await tapschema.publish(c, "tst.stars")
    finally:
        await c.close()
    return await aiohttp_client(create_tap_app(replace(settings, max_upload_bytes=MB)))


def query_form(adql: str, **files: bytes) -> FormData:
    form = FormData()
    form.add_field("LANG", "ADQL")
    form.add_field("QUERY", adql)
    form.add_field("UPLOAD", ";".join(f"{n},param:{n}" for n in files))
    for name, data in files.items():
        form.add_field(
            name, data, filename=f"{name}.vot", content_type="application/x-votable+xml"
        )
    return form


async def test_sync_query_with_upload(tap_client: Client) -> None:
    form = query_form(
        "SELECT s.id, s.mag, t.label FROM tst.stars AS s "
        "JOIN TAP_UPLOAD.t AS t ON t.id = s.id",
        t=ids_table([2, 3], "x"),
    )
    resp = await tap_client.post("/tap/sync", data=form)
    body = await resp.read()
    assert resp.status == 200, body
    rows = parse(io.BytesIO(body)).get_first_table().to_table(use_names_over_ids=True)
    assert [tuple(r) for r in rows] == [(2, 12.5, "x2")]

    resp = await tap_client.post(
        "/tap/sync", data=query_form("SELECT * FROM TAP_UPLOAD.t", t=b"<VOTABLE>")
    )
    assert resp.status == 400
    assert "upload 't' is not a valid VOTable" in await resp.text()


async def test_async_job_with_upload(tap_client: Client) -> None:
    form = query_form(
        'SELECT "Ra Deg" FROM TAP_UPLOAD.odd WHERE "Id" = 1', odd=ODD.encode()
    )
    form.add_field("PHASE", "RUN")
    resp = await tap_client.post("/tap/async", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    job = resp.headers["Location"].split("://", 1)[-1].partition("/")[2]
    phase = ""
    for _ in range(20):
        phase = await (await tap_client.get(f"/{job}/phase")).text()
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            break
        await tap_client.get(f"/{job}?WAIT=5&PHASE={phase}")
    if phase != "COMPLETED":
        error = await (await tap_client.get(f"/{job}/error")).text()
        raise AssertionError(f"job ended {phase}: {error}")
    body = await (await tap_client.get(f"/{job}/results/result")).read()
    rows = parse(io.BytesIO(body)).get_first_table().to_table(use_names_over_ids=True)
    assert list(rows["Ra Deg"]) == [10.5]


def test_timestamp_helper() -> None:
    assert uploads._timestamp("t", "c", "2020-01-02T03:04:05") == datetime(
        2020, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    assert uploads._timestamp("t", "c", " ") is None


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
