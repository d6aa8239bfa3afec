"""End to end with pyvo: the real server, real runners, real PostgreSQL.

Values are checked against what PostgreSQL itself returns for the same rows: the
demo catalogue, and ``e2e.oddities``, a small table of NULLs, odd strings and
extreme numbers published through ``aiouws tap publish`` before the server starts.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import asyncpg
import numpy as np
import pytest
import pyvo
import requests
from liveserver import REPO_ROOT, LiveServer, create_database, drop_database
from pyvo.dal.exceptions import DALOverflowWarning, DALQueryError

ODDITIES_SQL = r"""
CREATE SCHEMA e2e;
CREATE TABLE e2e.oddities (
    id    integer PRIMARY KEY,
    label text,
    flux  double precision,
    small smallint,
    big   bigint,
    flag  boolean,
    mag   real,
    seen  timestamp
);
INSERT INTO e2e.oddities VALUES
 (1, 'plain', 1.5, 1, 10, true, 1.25, '2024-02-29 12:34:56'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, '', 0.1, 0, 0, false, 0.1, '2000-01-01 00:00:00.5'),
 (4, 'comma, "quote"; semi', -0.0, 32767, 9223372036854775807, true, -1e-30,
  '1999-12-31 23:59:59'),
 (5, E'tab\there\nnewline\r\nCRLF \\ backslash', 1e300, -32767, -9223372036854775807,
  false, 3.4e38, NULL),
 (6, 'Ångström ☃ 😀 <&> ]]>', 2.2250738585072014e-308, 7, 7, NULL, 6.5, NULL),
 (7, '  leading and trailing  ', 123456789.123456789, NULL, 1, true, NULL, NULL),
 (8, 'NULL', 1.0000000000000002, 8, 8, false, 8, NULL);
"""
ODDITY_COLUMNS = ("id", "label", "flux", "small", "big", "flag", "mag", "seen")
ODDITY_QUERY = "SELECT " + ", ".join(ODDITY_COLUMNS) + " FROM e2e.oddities ORDER BY id"
#: The service's default MAXREC in this module (below the 5,000 demo rows).
MAXREC_DEFAULT = 2000
STARS_QUERY = "SELECT TOP 200 id, ra, dec, mag, name FROM demo.stars ORDER BY id"


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def e2e_dsn(pg_admin_dsn: str, template_dsn: str) -> Iterator[str]:
    """The module database, with ``e2e.oddities`` created and published."""
    dsn = create_database(pg_admin_dsn)

    async def create() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(ODDITIES_SQL)
        finally:
            await conn.close()

    _run(create())
    published = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiouws",
            "--dsn",
            dsn,
            "tap",
            "publish",
            "e2e.oddities",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert published.returncode == 0, published.stdout + published.stderr
    yield dsn
    drop_database(pg_admin_dsn, dsn)


@pytest.fixture(scope="module")
def live_server_env() -> dict[str, str]:
    return {"AIOUWS_TAP_MAXREC_DEFAULT": str(MAXREC_DEFAULT)}


@pytest.fixture(scope="module")
def tap(live_server: LiveServer) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(live_server.tap_url)


@pytest.fixture(scope="module")
def pg_oddities(live_server: LiveServer) -> list[asyncpg.Record]:
    return _run(_fetch(live_server.dsn, ODDITY_QUERY))


def _sync(server: LiveServer, query: str, **params: str) -> requests.Response:
    data = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, **params}
    return requests.post(server.tap_url + "/sync", data=data, timeout=60)


def _cells(table: Any, name: str) -> list[Any]:
    """The values of one astropy column, masked entries as None, bytes decoded."""
    column = table[name]
    mask = np.ma.getmaskarray(column)
    values = []
    for value, masked in zip(list(np.ma.getdata(column)), mask, strict=True):
        if masked:
            values.append(None)
        elif isinstance(value, bytes):
            values.append(value.decode())
        elif isinstance(value, np.generic):
            values.append(value.item())
        else:
            values.append(value)
    return values


def _same_float(got: Any, want: float | None, *, single: bool = False) -> bool:
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got is None or (isinstance(got, float) and math.isnan(got))
    if got is None:
        return False
    if single:
        return float(np.float32(got)) == float(np.float32(want))
    return float(got) == want


def _check_oddities_votable(
    table: Any, expected: Sequence[asyncpg.Record], *, stripped: bool = False
) -> None:
    assert _cells(table, "id") == [r["id"] for r in expected]
    # A VOTable cannot tell NULL from '' in TABLEDATA, astropy masks neither, and
    # astropy strips the whitespace around TD contents.
    labels = [r["label"] or "" for r in expected]
    assert _cells(table, "label") == [t.strip() if stripped else t for t in labels]
    for name in ("small", "big"):
        assert _cells(table, name) == [r[name] for r in expected], name
    assert _cells(table, "flag") == [r["flag"] for r in expected]
    for got, row in zip(_cells(table, "flux"), expected, strict=True):
        assert _same_float(got, row["flux"]), (got, row["flux"])
    for got, row in zip(_cells(table, "mag"), expected, strict=True):
        assert _same_float(got, row["mag"], single=True), (got, row["mag"])
    assert _cells(table, "seen") == [
        "" if r["seen"] is None else r["seen"].isoformat() for r in expected
    ]


# --------------------------------------------------------------------- basic queries
def test_run_sync_matches_postgresql(
    tap: pyvo.dal.TAPService, live_server: LiveServer
) -> None:
    result = tap.run_sync(STARS_QUERY).to_table()
    rows = _run(
        _fetch(
            live_server.dsn,
            "SELECT id, ra, dec, mag, name FROM demo.stars ORDER BY id LIMIT 200",
        )
    )
    assert len(result) == 200
    assert _cells(result, "id") == [r["id"] for r in rows]
    assert _cells(result, "ra") == [r["ra"] for r in rows]
    assert _cells(result, "dec") == [r["dec"] for r in rows]
    assert _cells(result, "name") == [r["name"] for r in rows]
    assert all(
        _same_float(g, r["mag"], single=True)
        for g, r in zip(_cells(result, "mag"), rows, strict=True)
    )
    assert str(result["ra"].unit) == "deg"


def test_run_async(tap: pyvo.dal.TAPService) -> None:
    result = tap.run_async("SELECT COUNT(*) AS n FROM demo.stars")
    assert result.to_table()["n"][0] == 5000


def test_job_lifecycle(tap: pyvo.dal.TAPService, live_server: LiveServer) -> None:
    job = tap.submit_job(
        "SELECT TOP 7 id FROM demo.stars ORDER BY id DESC", runid="e2e-lifecycle"
    )
    assert job.phase == "PENDING"
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert job.phase == "COMPLETED", job.errorsummary
    result = job.fetch_result().to_table()
    assert _cells(result, "id") == list(range(5000, 4993, -1))
    listed = tap.get_job_list(phases=["COMPLETED"])
    assert job.job_id in {j.jobid for j in listed}
    assert any(j.runid == "e2e-lifecycle" for j in listed if j.jobid == job.job_id)
    url = job.url
    job.delete()
    gone = requests.get(url, timeout=10, allow_redirects=False)
    assert gone.status_code == 404
    assert job.job_id not in {j.jobid for j in tap.get_job_list()}


def test_async_error_is_reported(tap: pyvo.dal.TAPService) -> None:
    job = tap.submit_job("SELECT nosuchcolumn FROM demo.stars")
    job.run().wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert job.phase == "ERROR"
    with pytest.raises(DALQueryError, match="nosuchcolumn"):
        job.raise_if_error()
    job.delete()


def test_maxrec_overflow_is_flagged(tap: pyvo.dal.TAPService) -> None:
    # pyvo >= 1.7 stays silent when exactly the MAXREC it asked for comes back,
    # so look at the status; it warns when the service's own default cuts.
    result = tap.search("SELECT id FROM demo.stars", maxrec=10)
    assert len(result) == 10 and result.status[0] == "OVERFLOW"
    exact = tap.search("SELECT TOP 10 id FROM demo.stars", maxrec=10)
    assert len(exact) == 10 and exact.status[0] == "OK"
    with pytest.warns(DALOverflowWarning):
        result = tap.search("SELECT id FROM demo.stars")
    assert len(result) == MAXREC_DEFAULT


def test_async_maxrec_overflow(tap: pyvo.dal.TAPService) -> None:
    result = tap.run_async("SELECT id FROM demo.stars", maxrec=3)
    assert len(result) == 3 and result.status[0] == "OVERFLOW"
    with pytest.warns(DALOverflowWarning):
        result = tap.run_async("SELECT id FROM demo.stars")
    assert len(result) == MAXREC_DEFAULT


def test_maxrec_zero_gives_metadata_only(
    tap: pyvo.dal.TAPService,
    live_server: LiveServer,
    assert_valid: Callable[[bytes], Any],
) -> None:
    response = _sync(live_server, "SELECT id, ra, name FROM demo.stars", MAXREC="0")
    assert response.status_code == 200
    tree = assert_valid(response.content)
    ns = {"v": "http://www.ivoa.net/xml/VOTable/v1.3"}
    assert [f.get("name") for f in tree.iterfind(".//v:FIELD", ns)] == [
        "id",
        "ra",
        "name",
    ]
    query = tap.create_query("SELECT id, ra, name FROM demo.stars")
    query["MAXREC"] = 0  # pyvo drops a maxrec=0 argument
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DALOverflowWarning)
        result = query.execute()
    assert len(result) == 0
    assert result.fieldnames == ("id", "ra", "name")


# ------------------------------------------------------------------ output formats
@pytest.mark.parametrize("fmt", ["votable", "votable/td", "votable/b", "votable/b2"])
def test_votable_formats_match_postgresql(
    fmt: str,
    live_server: LiveServer,
    pg_oddities: list[asyncpg.Record],
    assert_valid: Callable[[bytes], Any],
) -> None:
    response = _sync(live_server, ODDITY_QUERY, RESPONSEFORMAT=fmt)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/x-votable+xml")
    assert_valid(response.content)
    table = _parse_votable(response.content)
    _check_oddities_votable(table, pg_oddities, stripped=fmt == "votable/td")


def _parse_votable(content: bytes) -> Any:
    from astropy.io.votable import parse_single_table

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # astropy's VOTable warnings are defects here
        return parse_single_table(io.BytesIO(content)).to_table()


def _csv_expected(rows: Sequence[asyncpg.Record]) -> list[list[str | None]]:
    def text(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool):
            return "T" if value else "F"  # as in TABLEDATA
        if hasattr(value, "isoformat"):
            return str(value.isoformat())
        return str(value)

    return [[text(r[c]) for c in ODDITY_COLUMNS] for r in rows]


def _numeric_equal(got: str | None, want: str | None, name: str) -> bool:
    if name in ("flux", "mag") and got and want:
        kind = np.float32 if name == "mag" else np.float64
        return bool(kind(float(got)) == kind(float(want)))
    return got == want


@pytest.mark.parametrize("fmt", ["csv", "tsv", "text/csv", "text/tab-separated-values"])
def test_delimited_formats_match_postgresql(
    fmt: str, live_server: LiveServer, pg_oddities: list[asyncpg.Record]
) -> None:
    response = _sync(live_server, ODDITY_QUERY, RESPONSEFORMAT=fmt)
    assert response.status_code == 200, response.text
    tsv = "tab" in fmt or fmt == "tsv"
    assert response.headers["Content-Type"].startswith(
        "text/tab-separated-values" if tsv else "text/csv"
    )
    text = response.content.decode("utf-8")
    if tsv:
        lines = text.split("\n")
        assert lines[-1] == ""
        parsed = [[_tsv_unescape(c) for c in line.split("\t")] for line in lines[:-1]]
    else:
        parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[0] == list(ODDITY_COLUMNS)
    expected = _csv_expected(pg_oddities)
    assert len(parsed) - 1 == len(expected)
    for got_row, want_row in zip(parsed[1:], expected, strict=True):
        for name, got, want in zip(ODDITY_COLUMNS, got_row, want_row, strict=True):
            if want is None:
                assert got == "", (name, got_row)
            elif want == "" and tsv:
                assert got == "", (name, got_row)  # TSV cannot tell '' from NULL
            else:
                assert _numeric_equal(got, want, name), (name, got, want)
    if not tsv:
        assert '""' in text.splitlines()[3], "CSV keeps '' apart from NULL"


def _tsv_unescape(cell: str) -> str:
    out, chars = [], iter(cell)
    for char in chars:
        if char == "\\":
            nxt = next(chars)
            out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}.get(nxt, nxt))
        else:
            out.append(char)
    return "".join(out)


def test_async_result_in_csv(
    tap: pyvo.dal.TAPService, pg_oddities: list[asyncpg.Record]
) -> None:
    job = tap.submit_job(ODDITY_QUERY, responseformat="csv")
    job.run().wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert job.phase == "COMPLETED", job.errorsummary
    response = requests.get(job.result_uri, timeout=30)
    assert response.headers["Content-Type"].startswith("text/csv")
    parsed = list(csv.reader(io.StringIO(response.content.decode(), newline="")))
    assert [row[0] for row in parsed[1:]] == [str(r["id"]) for r in pg_oddities]
    assert [row[1] for row in parsed[1:]] == [r["label"] or "" for r in pg_oddities]
    job.delete()


# -------------------------------------------------------------------------- geometry
def test_cone_search_matches_pg_sphere(
    tap: pyvo.dal.TAPService, live_server: LiveServer
) -> None:
    adql = (
        "SELECT id FROM demo.stars WHERE "
        "1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 40, 20, 8))"
    )
    got = sorted(_cells(tap.run_sync(adql).to_table(), "id"))
    rows = _run(
        _fetch(
            live_server.dsn,
            "SELECT id FROM demo.stars"
            " WHERE spoint(radians(ra), radians(dec))"
            " <@ scircle(spoint(radians(40), radians(20)), radians(8))"
            " ORDER BY id",
        )
    )
    assert got == [r["id"] for r in rows]
    assert len(got) > 10


def test_distance_matches_pg_sphere(
    tap: pyvo.dal.TAPService, live_server: LiveServer
) -> None:
    adql = (
        "SELECT TOP 5 id, DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 100, -30))"
        " AS d FROM demo.stars ORDER BY d"
    )
    table = tap.run_sync(adql).to_table()
    rows = _run(
        _fetch(
            live_server.dsn,
            "SELECT id, degrees(spoint(radians(ra), radians(dec)) <->"
            " spoint(radians(100), radians(-30))) AS d FROM demo.stars"
            " ORDER BY d LIMIT 5",
        )
    )
    assert _cells(table, "id") == [r["id"] for r in rows]
    assert _cells(table, "d") == pytest.approx([r["d"] for r in rows], rel=1e-12)


# ----------------------------------------------------------------------------- errors
ERRORS = [
    ({"QUERY": "SELEKT id FROM demo.stars"}, "syntax"),
    ({"QUERY": "SELECT id FROM demo.nosuchtable"}, "nosuchtable"),
    ({"QUERY": "SELECT nosuchcolumn FROM demo.stars"}, "nosuchcolumn"),
    ({"QUERY": "SELECT pg_sleep(10) FROM demo.stars"}, "pg_sleep"),
    ({"QUERY": "SELECT TOP 1 id FROM demo.stars", "LANG": "SQL"}, "LANG"),
    ({"QUERY": "SELECT TOP 1 id FROM demo.stars", "MAXREC": "many"}, "MAXREC"),
    ({"QUERY": "SELECT TOP 1 id FROM demo.stars", "MAXREC": "-1"}, "MAXREC"),
    (
        {"QUERY": "SELECT TOP 1 id FROM demo.stars", "RESPONSEFORMAT": "fits"},
        "RESPONSEFORMAT",
    ),
    ({"QUERY": ""}, "QUERY"),
]


@pytest.mark.parametrize(("params", "mentions"), ERRORS)
def test_sync_error_document(
    params: dict[str, str],
    mentions: str,
    live_server: LiveServer,
    assert_valid: Callable[[bytes], Any],
) -> None:
    params = dict(params)
    query = params.pop("QUERY")
    response = _sync(live_server, query, **params)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/x-votable+xml")
    tree = assert_valid(response.content)
    ns = {"v": "http://www.ivoa.net/xml/VOTable/v1.3"}
    status = tree.find(
        ".//v:RESOURCE[@type='results']/v:INFO[@name='QUERY_STATUS']", ns
    )
    assert status is not None and status.get("value") == "ERROR"
    assert mentions.lower() in (status.text or "").lower()
    assert _sync(live_server, "SELECT TOP 1 id FROM demo.stars").status_code == 200


@pytest.mark.parametrize(("params", "mentions"), ERRORS[:4])
def test_pyvo_query_errors(
    params: dict[str, str], mentions: str, tap: pyvo.dal.TAPService
) -> None:
    query = params["QUERY"]
    with pytest.raises(DALQueryError, match=f"(?i){mentions}"):
        tap.run_sync(query)
    with pytest.raises(DALQueryError, match=f"(?i){mentions}"):
        tap.run_async(query)
    assert len(tap.run_sync("SELECT TOP 2 id FROM demo.stars")) == 2


def test_failure_while_streaming(
    tap: pyvo.dal.TAPService,
    live_server: LiveServer,
    assert_valid: Callable[[bytes], Any],
) -> None:
    """A query that fails in PostgreSQL after some rows still ends in an error."""
    early = "SELECT id, 1 / (id - 100) AS x FROM demo.stars"
    response = _sync(live_server, early)
    assert response.status_code == 400 and b"division by zero" in response.content
    # 20,000 rows: the zero comes after the first batch whatever the join order.
    late = (
        "SELECT a.id, 1 / (a.id + 5000 * b.id - 19000) AS x"
        " FROM demo.stars AS a, demo.stars AS b WHERE b.id <= 4"
    )
    for fmt in ("votable", "votable/td"):
        response = _sync(live_server, late, RESPONSEFORMAT=fmt, MAXREC="100000")
        tree = assert_valid(response.content)
        ns = {"v": "http://www.ivoa.net/xml/VOTable/v1.3"}
        status = tree.findall(".//v:INFO[@name='QUERY_STATUS']", ns)[-1]
        assert status.get("value") == "ERROR", response.content[-500:]
        assert "division by zero" in (status.text or "")
    with pytest.raises(DALQueryError, match="division by zero"):
        tap.run_sync(late, maxrec=100_000)
    with pytest.raises(DALQueryError, match="division by zero"):
        tap.run_async(late, maxrec=100_000)
    assert len(tap.run_sync("SELECT TOP 2 id FROM demo.stars")) == 2


def test_pyvo_bad_language(tap: pyvo.dal.TAPService) -> None:
    with pytest.raises(DALQueryError, match="LANG"):
        tap.run_sync("SELECT TOP 1 id FROM demo.stars", language="SQL")
    with pytest.raises(DALQueryError, match="LANG"):
        tap.run_async("SELECT TOP 1 id FROM demo.stars", language="SQL")


# ------------------------------------------------------------------------ VOSI, pyvo
def test_tables(tap: pyvo.dal.TAPService) -> None:
    tables = tap.tables
    names = set(tables.keys())
    assert {
        "demo.stars",
        "e2e.oddities",
        "tap_schema.tables",
        "tap_schema.columns",
    } <= names
    stars = {c.name: c for c in tables["demo.stars"].columns}
    assert list(stars) == ["id", "ra", "dec", "mag", "name"]
    assert stars["ra"].unit == "deg" and stars["mag"].unit == "mag"
    assert stars["ra"].ucd == "pos.eq.ra;meta.main"
    assert stars["id"].datatype.content == "long"
    odd = {c.name: c for c in tables["e2e.oddities"].columns}
    assert odd["flag"].datatype.content == "boolean"


def test_capabilities(tap: pyvo.dal.TAPService, live_server: LiveServer) -> None:
    capability = tap.get_tap_capability()
    mimes = {f.mime for f in capability.outputformats}
    aliases = {a for f in capability.outputformats for a in f.aliases}
    assert {"votable", "votable/td", "votable/b", "csv", "tsv"} <= aliases
    assert "text/csv" in mimes
    for alias in aliases:  # every advertised format is accepted
        response = _sync(
            live_server, "SELECT TOP 1 id FROM demo.stars", RESPONSEFORMAT=alias
        )
        assert response.status_code == 200, (alias, response.text)
    languages = {language.name for language in capability.languages}
    assert languages == {"ADQL"}
    features = {
        f.form
        for language in capability.languages
        for fl in language.languagefeaturelists
        for f in fl
    }
    assert {"CONTAINS", "CIRCLE", "POINT", "DISTANCE"} <= features
    assert tap.maxrec == MAXREC_DEFAULT and tap.hardlimit == 100_000_000


def test_upload_methods_are_honest(tap: pyvo.dal.TAPService) -> None:
    """Advertised upload methods work; without any, an upload is refused clearly."""
    from astropy.table import Table

    upload = {"t1": Table({"x": [1, 2, 3]})}
    if tap.upload_methods:
        result = tap.run_sync("SELECT x FROM TAP_UPLOAD.t1 ORDER BY x", uploads=upload)
        assert list(result["x"]) == [1, 2, 3]
    else:
        with pytest.raises(DALQueryError, match="(?i)upload"):
            tap.run_async("SELECT x FROM TAP_UPLOAD.t1", uploads=upload)


@pytest.mark.parametrize(
    "path",
    [
        "capabilities",
        "tables",
        "tables?detail=min",
        "availability",
        "tables/demo.stars",
    ],
)
def test_vosi_documents_are_valid(
    path: str, live_server: LiveServer, assert_valid: Callable[[bytes], Any]
) -> None:
    response = requests.get(f"{live_server.tap_url}/{path}", timeout=30)
    assert response.status_code == 200
    assert "xml" in response.headers["Content-Type"]
    assert_valid(response.content)


def test_availability(live_server: LiveServer) -> None:
    from lxml import etree

    page = requests.get(live_server.tap_url + "/availability", timeout=30)
    ns = {"a": "http://www.ivoa.net/xml/VOSIAvailability/v1.0"}
    available = etree.fromstring(page.content).findtext("a:available", namespaces=ns)
    assert available == "true"


def test_examples_run(tap: pyvo.dal.TAPService, live_server: LiveServer) -> None:
    from lxml import etree

    page = requests.get(live_server.tap_url + "/examples", timeout=30)
    tree = etree.fromstring(page.content)
    queries = tree.xpath("//*[@property='query']/text()")
    assert queries
    for query in queries:
        tap.run_sync(query)


def test_long_get_urls_get_414_and_long_queries_work_by_post(
    live_server: LiveServer,
) -> None:
    ids = ",".join(str(i) for i in range(4000))
    query = f"SELECT TOP 1 id FROM demo.stars WHERE id IN ({ids})"
    resp = requests.get(
        live_server.tap_url + "/sync",
        params={"LANG": "ADQL", "QUERY": query},
        timeout=30,
    )
    assert len(resp.request.url or "") > 16_000  # over aiohttp's default line limit
    assert resp.status_code == 200, resp.text[:300]
    huge = requests.get(
        live_server.tap_url + "/sync",
        params={"LANG": "ADQL", "QUERY": query + " " * 15_000},
        timeout=30,
    )
    assert huge.status_code == 414, huge.text[:300]
    posted = requests.post(
        live_server.tap_url + "/sync",
        data={"LANG": "ADQL", "QUERY": query + " " * 15_000},
        timeout=30,
    )
    assert posted.status_code == 200
