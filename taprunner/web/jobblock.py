"""TAP's block on a job page (a hook of the generic UWS pages,
:func:`aiouws.http.pages.register_job_block`): for a completed query, a preview
of its first rows and its downloads.

The stored result downloads as ``JOBID-result.EXT`` (its format's extension,
``Content-Disposition``); each other output format of the registry is offered
as the same query run again through /tap/sync in that format (a plain form
POST: no script needed). Template: ``taprunner/web/templates/tapjob.html``.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from markupsafe import Markup

from aiouws.errors import UWSError
from aiouws.http.jobpages import download_name
from aiouws.http.keys import SERVICE
from aiouws.http.pages import page_root, render_fragment
from aiouws.models import Job
from aiouws.phases import Phase
from taprunner.formats.registry import OUTPUT_FORMATS, OutputFormat
from taprunner.request import FORMATS
from taprunner.web.pages import format_choices
from taprunner.web.pictures import pictures_block
from taprunner.web.preview import PREVIEW_BYTES, Preview, preview_of, read_preview

__all__ = ["tap_job_block"]

log = logging.getLogger(__name__)


def _stored_format(job: Job, file_name: str) -> OutputFormat:
    """The format the job's result was written in (its RESPONSEFORMAT)."""
    given = job.parameter("responseformat") or job.parameter("format")
    if given:
        found = FORMATS.get(given.strip().lower().replace(" ", ""))
        if found is not None:
            return found
    suffix = file_name.rpartition(".")[2]
    return next((f for f in OUTPUT_FORMATS if f.extension == suffix), OUTPUT_FORMATS[0])


async def tap_job_block(
    request: web.Request, job: Job, *, jobs_path: str = "/tap/async"
) -> Markup | None:
    """The preview and downloads of a COMPLETED TAP job (nothing otherwise)."""
    if job.phase is not Phase.COMPLETED or not job.results:
        return None
    result = job.results[0]
    files = request.config_dict[SERVICE].files
    preview: Preview | None = None
    problem = None
    stored = None
    fmt = OUTPUT_FORMATS[0]
    try:
        head = await files.result_head(job, result.id, PREVIEW_BYTES)
    except UWSError as exc:
        head, problem = None, exc.message
    if head is not None:
        fmt = _stored_format(job, head.file_name)
        try:
            if head.path is not None:
                preview = await asyncio.to_thread(
                    read_preview, head.path, head.media_type
                )
            else:
                preview = await asyncio.to_thread(
                    preview_of, head.data, head.size, head.media_type
                )
        except (OSError, ValueError) as exc:
            problem = f"no preview: {exc}"
        job_url = f"{page_root(request)}{jobs_path}/{job.job_id}"
        stored = {
            "format": fmt.name,
            "url": f"{job_url}/results/{result.id}",
            "filename": download_name(job, head.file_name),
            "label": next(
                c["label"] for c in format_choices() if c["name"] == fmt.name
            ),
        }
    # Other formats: the query run again (not for a query of uploaded tables,
    # whose files a form cannot send again).
    uploads = job.parameter("upload")
    others = [c for c in format_choices() if c["name"] != fmt.name and not uploads]
    return render_fragment(
        request,
        "tapjob.html",
        preview=preview,
        # The sky plot and histograms of the preview's rows (pictures.py).
        pictures=(
            pictures_block(request, preview.columns, preview.rows) if preview else None
        ),
        problem=problem,
        stored=stored,
        others=others,
        query=job.parameter("query") or "",
        maxrec=job.parameter("maxrec") or "",
        tap=page_root(request) + "/tap",
    )
