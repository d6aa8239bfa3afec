"""Thin UWS handlers: parse, one JobService call, render. Nothing else."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from aiouws.errors import NotFound, UsageError
from aiouws.http import jobpages, render
from aiouws.http.keys import KIND, RESOLVER, SERVICE, SETTINGS
from aiouws.http.negotiate import prefers_html
from aiouws.http.params import (
    Params,
    parse_action,
    parse_after,
    parse_destruction,
    parse_duration,
    parse_last,
    parse_phases,
    parse_wait,
    read_params,
)
from aiouws.http.urls import public_origin
from aiouws.models import Job, JobFilter, JobParameter
from aiouws.phases import Action
from aiouws.results.store import Served

__all__ = ["routes"]

XML = "text/xml"
routes = web.RouteTableDef()


# -- helpers ---------------------------------------------------------------------------


async def _owner(request: web.Request) -> str | None:
    resolver = request.config_dict[RESOLVER]
    return await resolver(request)


async def _params(request: web.Request) -> Params:
    settings = request.config_dict[SETTINGS]
    return await read_params(
        request,
        max_upload_bytes=settings.max_upload_bytes,
        spool_dir=settings.resolved_jobs_dir / ".spool",
        max_text_bytes=settings.max_request_bytes,
    )


def _jobs_url(request: web.Request) -> str:
    jobs_path = str(request.app.router["jobs"].url_for()).rstrip("/")
    return public_origin(request) + jobs_path


def _job_url(request: web.Request, job_id: str) -> str:
    return f"{_jobs_url(request)}/{job_id}"


def _xml(body: bytes, *, negotiated: bool = False) -> web.Response:
    response = web.Response(body=body, content_type=XML, charset="utf-8")
    if negotiated:  # a browser gets HTML at this URL: caches must tell them apart
        response.headers["Vary"] = "Accept"
    return response


def _text(value: str) -> web.Response:
    return web.Response(text=value, content_type="text/plain", charset="utf-8")


def _stylesheet(request: web.Request) -> str | None:
    if not request.config_dict[SETTINGS].stylesheet:
        return None
    return _jobs_url(request) + "/stylesheet.xsl"


#: Files up to this size are answered from memory: a small result then costs no
#: thread-pool hops (stat, open and sendfile run in executors in FileResponse).
_SMALL_FILE = 256 * 1024


def _file(path: Path, media_type: str, gone: str) -> web.StreamResponse:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise NotFound(gone) from None
    if size > _SMALL_FILE:
        return web.FileResponse(path, headers={"Content-Type": media_type})
    try:
        body = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(gone) from None
    response = web.Response(body=body)
    response.headers["Content-Type"] = media_type
    return response


async def _send(
    request: web.Request, served: Served, gone: str, download: str | None = None
) -> web.StreamResponse:
    """Answer with a stored file: a redirect to where it is (a presigned URL),
    the local file, or its bytes streamed from the results store; ``download``
    is the file name browsers save it under (Content-Disposition)."""
    if served.url is not None:
        raise web.HTTPSeeOther(served.url)
    disposition = (
        {}
        if download is None
        else {"Content-Disposition": f'attachment; filename="{download}"'}
    )
    if served.path is not None:
        response = _file(served.path, served.media_type, gone)
        response.headers.update(disposition)
        return response
    response = web.StreamResponse(
        headers={"Content-Type": served.media_type, **disposition}
    )
    if served.size is not None:
        response.content_length = served.size
    await response.prepare(request)
    if served.chunks is not None:
        if request.method == "HEAD":  # headers only: nothing read from the store
            closing = getattr(served.chunks, "aclose", None)
            if closing is not None:
                await closing()
        else:
            async for chunk in served.chunks:
                await response.write(chunk)
    await response.write_eof()
    return response


async def _job(request: web.Request) -> Job:
    return await request.config_dict[SERVICE].get_of_kind(
        request.match_info["job_id"], await _owner(request), request.app[KIND]
    )


def _see_job(request: web.Request, job_id: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(_job_url(request, job_id))


# -- job list ----------------------------------------------------------------------


@routes.get("", name="jobs")
async def list_jobs(request: web.Request) -> web.Response:
    params = await _params(request)
    flt = JobFilter(
        owner=await _owner(request),
        phases=parse_phases(params.getall("phase")),
        after=parse_after(params.get("after")),
        last=parse_last(params.get("last")),
        kind=request.app[KIND],
    )
    refs = await request.config_dict[SERVICE].list_jobs(flt)
    if prefers_html(request):
        return await jobpages.jobs_page(
            request,
            refs,
            _jobs_url(request),
            owner=flt.owner,
            kind=request.app[KIND],
            chosen=[p.value for p in flt.phases],
        )
    return _xml(
        render.jobs_document(refs, _jobs_url(request), stylesheet=_stylesheet(request)),
        negotiated=True,
    )


@routes.post("")
async def create_job(request: web.Request) -> web.Response:
    params = await _params(request)
    try:
        phase = params.get("phase")
        run = phase is not None and parse_action(phase) is Action.RUN
        job = await request.config_dict[SERVICE].create(
            request.app[KIND],
            await _owner(request),
            [JobParameter(name=k, value=v) for k, v in params.job_parameters()],
            run_id=params.get("runid"),
            execution_duration=parse_duration(params.get("executionduration")),
            destruction=parse_destruction(params.get("destruction")),
            uploads=params.uploads,
            upload_url=_jobs_url(request),
            run=run,
        )
    finally:
        params.discard_uploads()
    raise _see_job(request, job.job_id)


@routes.get("/stylesheet.xsl")
async def stylesheet(_request: web.Request) -> web.Response:
    from importlib import resources

    body = resources.files("aiouws").joinpath("static", "uws.xsl").read_bytes()
    return web.Response(body=body, content_type="text/xsl")


# -- one job -------------------------------------------------------------------------


@routes.get("/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    params = await _params(request)
    wait = parse_wait(params.get("wait"), request.config_dict[SETTINGS].wait_cap)
    phases = parse_phases(params.getall("phase"))
    if wait:
        guard = next(iter(phases)) if len(phases) == 1 else None
        job = await service.wait(
            request.match_info["job_id"],
            await _owner(request),
            request.app[KIND],
            wait,
            guard,
        )
    else:
        job = await service.get_of_kind(
            request.match_info["job_id"], await _owner(request), request.app[KIND]
        )
    quote = await service.quote(job)
    if prefers_html(request):
        return await jobpages.job_page(
            request, job, _job_url(request, job.job_id), _jobs_url(request), quote=quote
        )
    return _xml(
        render.job_document(
            job,
            _job_url(request, job.job_id),
            quote=quote,
            stylesheet=_stylesheet(request),
        ),
        negotiated=True,
    )


@routes.delete("/{job_id}")
async def delete_job(request: web.Request) -> web.StreamResponse:
    job = await _job(request)
    await request.config_dict[SERVICE].delete(job.job_id, job.owner)
    raise web.HTTPSeeOther(_jobs_url(request))


@routes.post("/{job_id}")
async def post_job(request: web.Request) -> web.StreamResponse:
    params = await _params(request)
    action = (params.get("action") or "").upper()
    if action != "DELETE":
        raise UsageError("POST to a job needs ACTION=DELETE")
    return await delete_job(request)


@routes.get("/{job_id}/phase")
async def get_phase(request: web.Request) -> web.Response:
    return _text((await _job(request)).phase.value)


@routes.post("/{job_id}/phase")
async def post_phase(request: web.Request) -> web.Response:
    action = parse_action((await _params(request)).get("phase"))
    job = await _job(request)
    await request.config_dict[SERVICE].act(job.job_id, job.owner, action)
    raise _see_job(request, job.job_id)


@routes.get("/{job_id}/executionduration")
async def get_duration(request: web.Request) -> web.Response:
    return _text(str((await _job(request)).execution_duration))


@routes.post("/{job_id}/executionduration")
async def post_duration(request: web.Request) -> web.Response:
    seconds = parse_duration((await _params(request)).get("executionduration"))
    if seconds is None:
        raise UsageError("EXECUTIONDURATION parameter missing")
    job = await _job(request)
    await request.config_dict[SERVICE].set_execution_duration(
        job.job_id, job.owner, seconds
    )
    raise _see_job(request, job.job_id)


@routes.get("/{job_id}/destruction")
async def get_destruction(request: web.Request) -> web.Response:
    job = await _job(request)
    return _text(render.format_time(job.destruction_time))


@routes.post("/{job_id}/destruction")
async def post_destruction(request: web.Request) -> web.Response:
    when = parse_destruction((await _params(request)).get("destruction"))
    if when is None:
        raise UsageError("DESTRUCTION parameter missing")
    job = await _job(request)
    await request.config_dict[SERVICE].set_destruction(job.job_id, job.owner, when)
    raise _see_job(request, job.job_id)


@routes.get("/{job_id}/quote")
async def get_quote(request: web.Request) -> web.Response:
    job = await _job(request)
    return _text(render.format_time(await request.config_dict[SERVICE].quote(job)))


@routes.get("/{job_id}/owner")
async def get_owner(request: web.Request) -> web.Response:
    return _text((await _job(request)).owner or "")


@routes.get("/{job_id}/error")
async def get_error(request: web.Request) -> web.StreamResponse:
    job = await _job(request)
    if job.error is None:
        raise NotFound(f"job {job.job_id} has no error ({job.phase.value})")
    service = request.config_dict[SERVICE]
    detail = await service.files.error_detail(job)
    if detail is None:
        summary = service.files.error_summary(job)
        if summary is None:
            return _text(job.error.message)
        body, media_type = summary
        return web.Response(body=body, headers={"Content-Type": media_type})
    return await _send(request, detail, f"error document of job {job.job_id} is gone")


@routes.get("/{job_id}/parameters")
async def get_parameters(request: web.Request) -> web.Response:
    return _xml(render.parameters_document(await _job(request)))


@routes.post("/{job_id}/parameters")
async def post_parameters(request: web.Request) -> web.Response:
    params = await _params(request)
    try:
        job = await _job(request)
        if params.uploads:
            raise UsageError("uploads can only be sent when the job is created")
        new = [JobParameter(name=k, value=v) for k, v in params.job_parameters()]
        await request.config_dict[SERVICE].update_parameters(job.job_id, job.owner, new)
    finally:
        params.discard_uploads()
    raise _see_job(request, job.job_id)


@routes.get("/{job_id}/results")
async def get_results(request: web.Request) -> web.Response:
    job = await _job(request)
    if prefers_html(request):  # the job page lists them (and TAP previews them)
        raise web.HTTPSeeOther(_job_url(request, job.job_id) + "#job-results")
    return _xml(
        render.results_document(job, _job_url(request, job.job_id)), negotiated=True
    )


@routes.get("/{job_id}/results/{result_id}")
async def get_result(request: web.Request) -> web.StreamResponse:
    job = await request.config_dict[SERVICE].get_of_kind(
        request.match_info["job_id"], await _owner(request), request.app[KIND]
    )
    served = await request.config_dict[SERVICE].files.result(
        job, request.match_info["result_id"]
    )
    result = job.result(request.match_info["result_id"])
    # Saved as JOBID-result.vot (the file's own extension), not "result".
    name = (
        jobpages.download_name(job, result.file_name)
        if result is not None and result.file_name
        else None
    )
    return await _send(
        request, served, f"result file of job {job.job_id} is gone", download=name
    )


@routes.get("/{job_id}/uploads/{name}")
async def get_upload(request: web.Request) -> web.StreamResponse:
    job = await _job(request)
    served = await request.config_dict[SERVICE].files.upload(
        job, request.match_info["name"]
    )
    return await _send(request, served, f"upload of job {job.job_id} is gone")
