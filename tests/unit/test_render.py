"""UWS documents in every phase: valid against the UWS 1.1 schema, readable by pyvo."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pyvo.io.uws import parse_job, parse_job_list

from aiouws.http import render
from aiouws.models import Job, JobError, JobParameter, JobRef, JobResult
from aiouws.phases import ErrorType, Phase

T0 = datetime(2026, 11, 25, 12, 0, 0, 250000, tzinfo=UTC)


def make_job(phase: Phase) -> Job:
    started = phase not in (Phase.PENDING, Phase.QUEUED, Phase.HELD)
    ended = phase in (Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED)
    return Job(
        job_id="AbCdEfGhIjKlMnOpQrStUv",
        kind="tap",
        phase=phase,
        owner=None,
        run_id="run <&> 1" if phase is Phase.PENDING else None,
        creation_time=T0,
        start_time=T0 + timedelta(seconds=1) if started else None,
        end_time=T0 + timedelta(seconds=2) if ended else None,
        execution_duration=600,
        destruction_time=T0 + timedelta(days=7),
        parameters=(
            JobParameter(name="query", value="SELECT a < b FROM t"),
            JobParameter(name="t1", value="http://x/up/t1", by_reference=True),
        ),
        results=(
            JobResult(
                id="result",
                file_name="result.vot",
                size=123,
                media_type="application/x-votable+xml",
            ),
        )
        if phase is Phase.COMPLETED
        else (),
        error=JobError(type=ErrorType.FATAL, message="it broke", has_detail=True)
        if phase is Phase.ERROR
        else None,
        job_info=(("rows", "10"),) if phase is Phase.COMPLETED else (),
    )


@pytest.mark.parametrize("phase", list(Phase))
def test_job_document(phase: Phase, assert_valid: Any) -> None:
    job = make_job(phase)
    body = render.job_document(
        job, "http://h/tap/async/" + job.job_id, stylesheet="http://h/s.xsl"
    )
    tree = assert_valid(body)
    assert tree.get("version") == "1.1"
    parsed = parse_job(io.BytesIO(body))
    assert parsed.jobid == job.job_id
    assert parsed.phase == phase.value
    assert parsed.executionduration.to_value("s") == pytest.approx(600)
    assert parsed.creationtime is not None
    if phase is Phase.COMPLETED:
        assert (
            parsed.results[0].href == f"http://h/tap/async/{job.job_id}/results/result"
        )
    if phase is Phase.ERROR:
        assert parsed.errorsummary.message.content == "it broke"
    assert render.parameters_document(job)
    assert_valid(render.parameters_document(job))
    assert_valid(render.results_document(job, "http://h/j"))


def test_owner_and_quote_rendered(assert_valid: Any) -> None:
    job = make_job(Phase.QUEUED)
    body = render.job_document(job, "http://h/j", quote=T0)
    assert b"<uws:quote>2026-11-25T12:00:00.250Z</uws:quote>" in body
    assert_valid(body)


def test_job_list(assert_valid: Any) -> None:
    refs = [
        JobRef(
            job_id=f"job{i:019d}",
            kind="tap",
            phase=Phase.PENDING,
            run_id=None,
            owner="alice" if i else None,
            creation_time=T0,
        )
        for i in range(3)
    ]
    body = render.jobs_document(refs, "http://h/tap/async")
    assert_valid(body)
    parsed = parse_job_list(io.BytesIO(body))
    assert [j.jobid for j in parsed] == [r.job_id for r in refs]
    assert_valid(render.jobs_document([], "http://h/tap/async"))


def test_shipped_stylesheet_renders_job_and_list_as_html() -> None:
    from importlib import resources

    from lxml import etree

    xsl = resources.files("aiouws").joinpath("static", "uws.xsl").read_bytes()
    transform = etree.XSLT(etree.fromstring(xsl))
    job = make_job(Phase.COMPLETED)
    page = str(transform(etree.fromstring(render.job_document(job, "http://h/j"))))
    assert "<h1>Job AbCdEfGhIjKlMnOpQrStUv</h1>" in page
    assert "COMPLETED" in page and "SELECT a &lt; b FROM t" in page
    refs = [
        JobRef(
            job_id="x" * 22,
            kind="tap",
            phase=Phase.QUEUED,
            run_id="r",
            owner=None,
            creation_time=T0,
        )
    ]
    listing = str(transform(etree.fromstring(render.jobs_document(refs, "http://h"))))
    assert 'href="http://h/xxxxxxxxxxxxxxxxxxxxxx"' in listing and "QUEUED" in listing
