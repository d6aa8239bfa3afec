"""The standalone TAP service: ``create_tap_app`` composes UWS, sync and VOSI.

Layout (TAP 1.1 §2): ``/tap/sync``, ``/tap/async`` (UWS job list of kind ``tap``),
``/tap/capabilities``, ``/tap/availability``, ``/tap/tables``, ``/tap/examples``,
the VOResource record ``/tap/resource``;
the generic demo job kind at ``/jobs/demo``; the query page at ``/`` (and
``/tap``); HTML pages of these resources for browsers (:mod:`.pages`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from aiouws.cli.problems import StartupError, safe_dsn
from aiouws.config import Settings
from aiouws.demo import DEMO_KIND
from aiouws.errors import UsageError
from aiouws.http.app import (
    add_operations,
    add_pages,
    make_public,
    service_middlewares,
    uws_context,
    uws_subapp,
)
from aiouws.http.metrics import METRICS
from aiouws.http.middleware import UNAVAILABLE_ERROR
from aiouws.http.pages import register_job_block
from aiouws.kinds import JobKind, ParameterSpec
from aiouws.models import JobParameter
from aiouws.storage.database import QUERY_ROLE, Database
from aiouws.storage.queryrole import missing_message
from aiouws.storage.schema import keep_session
from taprunner.adql.limits import QueryLimitError, check_length
from taprunner.adql.model import AdqlError
from taprunner.errors import TapError, TapUnavailable
from taprunner.formats.votable import error_document
from taprunner.query.job import tap_request
from taprunner.request import TapRequest
from taprunner.schema import tapschema
from taprunner.schema.demo import load_demo
from taprunner.schema.pgsphere import ensure_pg_sphere
from taprunner.settings import RunnerConfig, TapSettings
from taprunner.web import endpoints, pages, registration
from taprunner.web.examples import load_examples
from taprunner.web.fastlane import LaneQuery, TapInline
from taprunner.web.jobblock import tap_job_block
from taprunner.web.metrics import TAP_METRICS, TapMetrics
from taprunner.web.sessionroles import ROLES, SessionRoles, session_role_middleware
from taprunner.web.state import TAP, TapState, private_answers

__all__ = [
    "TAP_JOBS_PATH",
    "TAP_KIND",
    "create_tap_app",
    "prepare_job",
    "prepare_request",
    "tap_kind",
]

log = logging.getLogger(__name__)
#: The TAP job kind's name and the URL path of its job list (TAP's /async).
TAP_KIND = "tap"
TAP_JOBS_PATH = "/tap/async"


def tap_kind(
    tap: TapSettings, database: Database, fast: TapInline | None = None
) -> JobKind:
    """The async TAP job kind; its runners get ``tap`` and the database, as the
    query role logs into it, by environment (:class:`taprunner.settings.RunnerConfig`).

    ``fast``: the fast lane for small queries (see :mod:`taprunner.web.fastlane`).
    Its prepare hook (:func:`prepare_job`) parses the TAP parameters once,
    before the job is queued; the lane's test gets what it made.
    """
    return JobKind(
        name=TAP_KIND,
        entry_point="taprunner.query.job:run",
        slots=tap.slots,
        inline=None if fast is None else fast.lane(),
        prepare=functools.partial(prepare_job, tap, fast),
        error_votable=error_document,
        description="TAP 1.1 asynchronous ADQL query",
        parameters=(
            ParameterSpec(name="lang", default="ADQL"),
            ParameterSpec(name="query", required=True),
            ParameterSpec(name="maxrec", type="int"),
            ParameterSpec(name="responseformat"),
            ParameterSpec(name="format"),
            ParameterSpec(name="upload"),
            ParameterSpec(name="request"),
        ),
        # Runners get the query role's login only, never the service's.
        runner_env=RunnerConfig(tap, database.for_queries()).to_env(),
    )


def prepare_request(tap: TapSettings, parameters: Sequence[JobParameter]) -> TapRequest:
    """The job's TAP request, its query's length checked (nothing parsed yet).

    Raises
    ------
    UsageError
        A bad parameter (e.g. an unknown RESPONSEFORMAT) or a query longer than
        ``tap.max_query_bytes``: the job ends in ERROR.
    """
    try:
        request = tap_request(((p.name, p.value) for p in parameters), tap)
        check_length(request.query, tap.query_limits())
    except TapError as exc:
        raise UsageError(exc.message) from exc
    except AdqlError as exc:
        raise UsageError(str(exc)) from exc
    return request


async def prepare_job(
    tap: TapSettings, fast: TapInline | None, parameters: Sequence[JobParameter]
) -> LaneQuery:
    """The TAP kind's prepare hook: :func:`prepare_request`, and what the fast
    lane needs to know of the query (:meth:`TapInline.prepare`, off the loop).

    Raises
    ------
    UsageError
        A bad parameter, or a query beyond one of the service's limits: the job
        ends in ERROR, its error document naming the limit.
    """
    request = prepare_request(tap, parameters)
    if fast is None:
        return LaneQuery(request)
    try:
        return await fast.prepare(request)
    except QueryLimitError as exc:
        raise UsageError(str(exc)) from exc


def _tap_context(
    settings: Settings,
    tap: TapSettings,
    database: Database,
    demo_rows: int,
    pool_size: int,
    fast: TapInline,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        examples = load_examples(tap.examples)  # a bad file stops the start
        conn = await database.connect()  # the service's login: installs, grants
        try:
            sphere = await ensure_pg_sphere(conn)
            if sphere.problem is not None:
                log.warning("pg_sphere: %s", sphere.problem)
            missing = await tapschema.install(conn)
            if demo_rows > 0:
                await load_demo(conn, rows=demo_rows, geometry=sphere.geometry)
        finally:
            await conn.close()
        if missing:
            log.warning("%s", missing_message(missing))
        queries = database.for_queries()
        pool = await query_pool(queries, pool_size, missing)
        app[TAP] = TapState(
            pool=pool,
            queries=queries,
            settings=settings,
            tap=tap,
            up_since=datetime.now(UTC),
            geometry=sphere.geometry,
            examples=examples,
        )
        fast.state = app[TAP]
        if METRICS in app:
            app[METRICS].watch_pool("tap", pool)
        try:
            yield
        finally:
            fast.state = None
            await fast.close()
            await pool.close()

    return context


async def query_pool(
    queries: Database, size: int, missing: Sequence[str] = ()
) -> asyncpg.Pool:
    """The pool of sync queries and VOSI, logged in as the query role, checked
    to be a privilege boundary (:func:`tapschema.query_role_problems`).

    Raises
    ------
    StartupError
        The role cannot log in (``missing``: the statements an administrator
        must run first) or its session is no boundary (a superuser, ...).
    """
    try:
        pool = await queries.create_pool(min_size=1, max_size=size, reset=keep_session)
    except (asyncpg.PostgresError, OSError) as exc:
        remedy = (
            missing_message(missing)
            if missing
            else "let the query role log in (a ~/.pgpass entry or query_dsn, "
            "AIOUWS_QUERY_DSN; see README, Configuration)"
        )
        raise StartupError(
            f"user queries cannot log in as {safe_dsn(queries.dsn)}: {exc}", remedy
        ) from None
    async with pool.acquire() as conn:
        problems = await tapschema.query_role_problems(conn)
    if problems:
        await pool.close()
        raise StartupError(
            f"the query login {safe_dsn(queries.dsn)} is no privilege boundary: "
            + "; ".join(problems),
            f"log user queries in as the unprivileged role {QUERY_ROLE} "
            "(query_dsn, AIOUWS_QUERY_DSN), never as a superuser or the service",
        )
    return pool


def create_tap_app(
    settings: Settings,
    tap: TapSettings | None = None,
    *,
    demo_rows: int = 0,
    extra_kinds: tuple[JobKind, ...] = (DEMO_KIND,),
    sync_pool_size: int = 10,
) -> web.Application:
    """The whole standalone service (TAP plus the generic job kinds).

    ``tap`` defaults to :meth:`TapSettings.for_service` of ``settings``, whose DSN
    must be resolved (:meth:`Database.of`).
    ``sync_pool_size`` is the number of database connections shared by sync
    queries and the VOSI endpoints (the fast lane keeps its own connections).
    """
    app = web.Application(
        # The session role (proprietary tables) once the owner is known.
        middlewares=[*service_middlewares(settings), session_role_middleware],
        client_max_size=settings.max_request_bytes,
    )
    database = Database.of(settings)
    app[ROLES] = SessionRoles(database)
    tap = tap or TapSettings.for_service(settings)
    fast = TapInline(tap, database.for_queries())
    context = _tap_context(settings, tap, database, demo_rows, sync_pool_size, fast)
    add_operations(app, settings)
    app[UNAVAILABLE_ERROR] = TapUnavailable  # a DALI error document
    if METRICS in app:
        app[TAP_METRICS] = TapMetrics(app[METRICS].registry)
        fast.observe = app[TAP_METRICS].observe
    app.cleanup_ctx.append(context)
    kinds = [tap_kind(tap, database, fast), *extra_kinds]
    app.cleanup_ctx.append(uws_context(settings, kinds))
    app.add_routes(endpoints.routes)
    app.add_routes(registration.routes)
    app.add_routes(pages.routes)  # the query page at / and /tap
    add_pages(app, pages.TAP_PAGES)
    app.on_response_prepare.append(private_answers)
    register_job_block(
        app, TAP_KIND, functools.partial(tap_job_block, jobs_path=TAP_JOBS_PATH)
    )
    # Registries and monitors read these without credentials (require_auth).
    make_public(app, "/tap/availability", "/tap/capabilities", "/tap/resource")
    app.add_subapp(TAP_JOBS_PATH, uws_subapp(TAP_KIND))
    for kind in extra_kinds:
        app.add_subapp(f"/jobs/{kind.name}", uws_subapp(kind.name))
    return app
