"""The HTML faces of UWS resources: job list, job page, error page.

Generic (any job kind): a kind adds its own block to its job pages through
:func:`aiouws.http.pages.register_job_block` (TAP: the result's preview and
downloads). Templates: ``aiouws/templates/`` (see :mod:`aiouws.http.pages`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus

from aiohttp import web

from aiouws.http.keys import SERVICE
from aiouws.http.pages import JOB_BLOCKS, local, render_page, script_urls
from aiouws.models import Job, JobRef
from aiouws.phases import FINAL_PHASES, Action, Phase, effective_actions
from aiouws.timefmt import format_iso

__all__ = [
    "download_name",
    "error_page",
    "job_page",
    "jobs_page",
]

log = logging.getLogger(__name__)
#: Jobs of a list page whose parameters are read for their summary.
SUMMARIZED = 50
#: Characters of a job's summary (its query) on the list page.
SUMMARY_CHARS = 300
#: Phases the list page filters by (the others are rare).
_LISTED = (
    Phase.PENDING,
    Phase.QUEUED,
    Phase.EXECUTING,
    Phase.COMPLETED,
    Phase.ERROR,
    Phase.ABORTED,
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_LABELS = {Action.RUN: "Run", Action.ABORT: "Abort", Action.ARCHIVE: "Archive"}


@dataclass(frozen=True, slots=True)
class PageAction:
    """One button of a job page: a plain form POST."""

    name: str
    label: str
    url: str
    field: str
    value: str


def _time(value: datetime | None) -> str:
    return format_iso(value) if value is not None else ""


def _summary(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


async def jobs_page(
    request: web.Request,
    refs: Sequence[JobRef],
    jobs_url: str,
    *,
    owner: str | None,
    kind: str,
    chosen: Sequence[str] = (),
) -> web.Response:
    """The job list as a page: each job's phase, creation time and summary
    (its QUERY, for the newest :data:`SUMMARIZED`)."""
    jobs_url = local(jobs_url)
    # One read for all (a job deleted meanwhile has none); whitespace is
    # collapsed here, so a few times the characters shown are read.
    summaries = await request.config_dict[SERVICE].summaries(
        refs[:SUMMARIZED], owner, 4 * SUMMARY_CHARS
    )
    rows = []
    for ref in refs:
        rows.append(
            {
                "job_id": ref.job_id,
                "run_id": ref.run_id,
                "phase": ref.phase.value,
                "created": _time(ref.creation_time),
                "url": f"{jobs_url}/{ref.job_id}",
                "summary": _summary(summaries.get(ref.job_id, "")),
            }
        )
    return render_page(
        request,
        "jobs.html",
        page="jobs",
        title=f"Jobs ({kind})",
        rows=rows,
        jobs_url=jobs_url,
        anonymous=owner is None,
        phases=[p.value for p in _LISTED],
        chosen=list(chosen),
        extra_scripts=script_urls(request, "uws.js"),
    )


def download_name(job: Job, file_name: str) -> str:
    """The file name a result is saved under: ``JOBID-NAME`` (its extension
    kept, e.g. ``result.vot``)."""
    return _UNSAFE.sub("_", f"{job.job_id}-{file_name}")


def _actions(job: Job, job_url: str, jobs_url: str) -> list[PageAction]:
    actions = [
        PageAction(a.value.lower(), _LABELS[a], f"{job_url}/phase", "PHASE", a.value)
        for a in effective_actions(job.phase)
        if a in (Action.RUN, Action.ABORT)
    ]
    actions.append(PageAction("delete", "Delete", job_url, "ACTION", "DELETE"))
    return actions


async def job_page(
    request: web.Request,
    job: Job,
    job_url: str,
    jobs_url: str,
    *,
    quote: datetime | None,
) -> web.Response:
    """One job as a page: its phase, the actions the phase allows, query,
    parameters, times, jobInfo, error, results and its kind's block."""
    job_url, jobs_url = local(job_url), local(jobs_url)
    hook = request.config_dict.get(JOB_BLOCKS, {}).get(job.kind)
    block = None
    if hook is not None:
        block = await hook(request, job)
    results = [
        {
            "url": r.href or f"{job_url}/results/{r.id}",
            "filename": download_name(job, r.file_name) if r.file_name else r.id,
            "media_type": r.media_type,
            "size": r.size,
            "rows": r.rows,
        }
        for r in job.results
    ]
    return render_page(
        request,
        "job.html",
        page="job",
        title=f"Job {job.job_id} ({job.phase.value})",
        job=job,
        job_url=job_url,
        jobs_url=jobs_url,
        final=job.phase in FINAL_PHASES,
        actions=_actions(job, job_url, jobs_url),
        query=job.parameter("query"),
        times={
            "creation": _time(job.creation_time),
            "start": _time(job.start_time),
            "end": _time(job.end_time),
            "quote": _time(quote),
            "destruction": _time(job.destruction_time),
        },
        results=results,
        block=block,
        extra_scripts=script_urls(request, "uws.js"),
    )


def error_page(
    request: web.Request,
    status: int,
    code: str,
    message: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An error as a page for a browser: its status, code and message."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    response = render_page(
        request,
        "error.html",
        status=status,
        page="error",
        title=f"{status} {reason}",
        status_code=status,
        reason=reason,
        code=code,
        message=message,
        detail=detail,
        hint=_HINTS.get(code),
    )
    response.headers.update(headers or {})
    return response


_HINTS = {
    "InvalidPhase": "The job's phase does not allow this; reload its page to see "
    "what it allows now.",
}
