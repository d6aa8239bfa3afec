"""pyvo end to end, queries: sync, async, job lifecycle, MAXREC, geometry, errors.

Values are checked against what PostgreSQL returns for the same rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
import pyvo
import requests
from liveserver import LiveServer
from pyvo.dal.exceptions import DALOverflowWarning, DALQueryError
from pyvokit import (
    MAXREC_DEFAULT,
    STARS_QUERY,
    cells,
    fetch,
    run,
    same_float,
    sync_query,
)


# --------------------------------------------------------------------- basic queries
def test_run_sync_matches_postgresql(
    tap: pyvo.dal.TAPService, pyvo_server: LiveServer
) -> None:
    result = tap.run_sync(STARS_QUERY).to_table()
    rows = run(
        fetch(
            pyvo_server.dsn,
            "SELECT id, ra, dec, mag, name FROM demo.stars ORDER BY id LIMIT 200",
        )
    )
    assert len(result) == 200
    assert cells(result, "id") == [r["id"] for r in rows]
    assert cells(result, "ra") == [r["ra"] for r in rows]
    assert cells(result, "dec") == [r["dec"] for r in rows]
    assert cells(result, "name") == [r["name"] for r in rows]
    assert all(
        same_float(g, r["mag"], single=True)
        for g, r in zip(cells(result, "mag"), rows, strict=True)
    )
    assert str(result["ra"].unit) == "deg"


def test_run_async(tap: pyvo.dal.TAPService) -> None:
    result = tap.run_async("SELECT COUNT(*) AS n FROM demo.stars")
    assert result.to_table()["n"][0] == 5000


def test_job_lifecycle(pyvo_server: LiveServer) -> None:
    session = requests.Session()
    session.headers["X-Remote-User"] = "lifecycle"  # job lists are per user
    tap = pyvo.dal.TAPService(pyvo_server.tap_url, session=session)
    job = tap.submit_job(
        "SELECT TOP 7 id FROM demo.stars ORDER BY id DESC", runid="e2e-lifecycle"
    )
    assert job.phase == "PENDING"
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert job.phase == "COMPLETED", job.errorsummary
    result = job.fetch_result().to_table()
    assert cells(result, "id") == list(range(5000, 4993, -1))
    listed = tap.get_job_list(phases=["COMPLETED"])
    assert job.job_id in {j.jobid for j in listed}
    assert any(j.runid == "e2e-lifecycle" for j in listed if j.jobid == job.job_id)
    url = job.url
    job.delete()
    gone = requests.get(url, timeout=10, allow_redirects=False)
    assert gone.status_code == 404
    assert job.job_id not in {j.jobid for j in tap.get_job_list()}


def test_anonymous_job_list_is_empty_but_the_job_url_works(
    tap: pyvo.dal.TAPService,
) -> None:
    job = tap.submit_job("SELECT TOP 1 id FROM demo.stars")
    assert tap.get_job_list() == []
    assert job.phase == "PENDING"  # reached by its URL
    job.delete()


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
    pyvo_server: LiveServer,
    assert_valid: Callable[[bytes], Any],
) -> None:
    response = sync_query(
        pyvo_server, "SELECT id, ra, name FROM demo.stars", MAXREC="0"
    )
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


# -------------------------------------------------------------------------- geometry
def test_cone_search_matches_pg_sphere(
    tap: pyvo.dal.TAPService, pyvo_server: LiveServer
) -> None:
    adql = (
        "SELECT id FROM demo.stars WHERE "
        "1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 40, 20, 8))"
    )
    got = sorted(cells(tap.run_sync(adql).to_table(), "id"))
    rows = run(
        fetch(
            pyvo_server.dsn,
            "SELECT id FROM demo.stars"
            " WHERE spoint(radians(ra), radians(dec))"
            " <@ scircle(spoint(radians(40), radians(20)), radians(8))"
            " ORDER BY id",
        )
    )
    assert got == [r["id"] for r in rows]
    assert len(got) > 10


def test_distance_matches_pg_sphere(
    tap: pyvo.dal.TAPService, pyvo_server: LiveServer
) -> None:
    adql = (
        "SELECT TOP 5 id, DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 100, -30))"
        " AS d FROM demo.stars ORDER BY d"
    )
    table = tap.run_sync(adql).to_table()
    rows = run(
        fetch(
            pyvo_server.dsn,
            "SELECT id, degrees(spoint(radians(ra), radians(dec)) <->"
            " spoint(radians(100), radians(-30))) AS d FROM demo.stars"
            " ORDER BY d LIMIT 5",
        )
    )
    assert cells(table, "id") == [r["id"] for r in rows]
    assert cells(table, "d") == pytest.approx([r["d"] for r in rows], rel=1e-12)


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
    pyvo_server: LiveServer,
    assert_valid: Callable[[bytes], Any],
) -> None:
    params = dict(params)
    query = params.pop("QUERY")
    response = sync_query(pyvo_server, query, **params)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/x-votable+xml")
    tree = assert_valid(response.content)
    ns = {"v": "http://www.ivoa.net/xml/VOTable/v1.3"}
    status = tree.find(
        ".//v:RESOURCE[@type='results']/v:INFO[@name='QUERY_STATUS']", ns
    )
    assert status is not None and status.get("value") == "ERROR"
    assert mentions.lower() in (status.text or "").lower()
    assert sync_query(pyvo_server, "SELECT TOP 1 id FROM demo.stars").status_code == 200


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
    pyvo_server: LiveServer,
    assert_valid: Callable[[bytes], Any],
) -> None:
    """A query that fails in PostgreSQL after some rows still ends in an error."""
    early = "SELECT id, 1 / (id - 100) AS x FROM demo.stars"
    response = sync_query(pyvo_server, early)
    assert response.status_code == 400 and b"division by zero" in response.content
    # 20,000 rows: the zero comes after the first batch whatever the join order.
    late = (
        "SELECT a.id, 1 / (a.id + 5000 * b.id - 19000) AS x"
        " FROM demo.stars AS a, demo.stars AS b WHERE b.id <= 4"
    )
    for fmt in ("votable", "votable/td"):
        response = sync_query(pyvo_server, late, RESPONSEFORMAT=fmt, MAXREC="100000")
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
