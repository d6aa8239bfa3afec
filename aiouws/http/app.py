"""Composition root: ``create_app`` for the standalone service, plus the pieces
(``uws_context``, ``uws_subapp``) to mount UWS inside any aiohttp application.

Embedding::

    app = web.Application()
    app.cleanup_ctx.append(uws_context(settings, [MY_KIND]))
    app.add_subapp("/myjobs", uws_subapp("mykind"))
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from aiouws.config import Settings
from aiouws.errors import AuthenticationRequired, DatabaseUnavailable, UWSError
from aiouws.http import handlers
from aiouws.http.access import ACCESS_OWNER, ACCESS_REMOTE
from aiouws.http.auth import make_resolver
from aiouws.http.compress import compression_middleware
from aiouws.http.connections import connection_middleware
from aiouws.http.cors import install_cors
from aiouws.http.crosssite import cross_site_guard
from aiouws.http.keys import KIND, PUBLIC_PATHS, RESOLVER, SERVICE, SETTINGS
from aiouws.http.metrics import METRICS, install_metrics, metrics_middleware
from aiouws.http.middleware import (
    UNAVAILABLE_ERROR,
    error_answer,
    error_middleware,
    started_guard,
)
from aiouws.http.pages import Pages, install_assets, make_public_assets
from aiouws.http.proxies import client_address
from aiouws.kinds import JobKind, kinds_by_name
from aiouws.service import JobService
from aiouws.storage.database import Database
from aiouws.storage.notify import PhaseListener
from aiouws.storage.schema import init_connection, install_schema, keep_session
from aiouws.storage.store import JobStore
from aiouws.workdir import JobDirs

__all__ = [
    "add_operations",
    "add_pages",
    "create_app",
    "make_public",
    "service_middlewares",
    "uws_context",
    "uws_subapp",
]

log = logging.getLogger(__name__)
Context = Callable[[web.Application], AsyncIterator[None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def owner_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Resolve every request's owner, the same way for every endpoint.

    Refused credentials are answered here (401 with ``WWW-Authenticate``, or
    429 while the client is backed off), whatever the path; an anonymous
    request that ``require_auth`` refuses passes only to the public paths
    (:func:`make_public`). The owner and the client's address are noted for
    the access log (and the query log); the handler asking again gets the same
    answer (the resolver answers once per request,
    :func:`aiouws.http.auth.make_resolver`).
    """
    settings = request.config_dict.get(SETTINGS)
    if settings is not None:
        request[ACCESS_REMOTE] = client_address(request, settings)
    resolver = request.config_dict.get(RESOLVER)
    if resolver is not None:
        try:
            owner = await resolver(request)
        except AuthenticationRequired as exc:
            if request.path not in request.config_dict.get(PUBLIC_PATHS, ()):
                return error_answer(request, exc)
            owner = None
        except UWSError as exc:
            return error_answer(request, exc)
        if owner is not None:
            request[ACCESS_OWNER] = owner
    return await handler(request)


def make_public(app: web.Application, *paths: str) -> None:
    """Answer ``paths`` of ``app`` to anonymous requests even with
    ``require_auth`` (credentials sent there are still checked)."""
    app[PUBLIC_PATHS] = app.get(PUBLIC_PATHS, frozenset()) | frozenset(paths)


def add_operations(app: web.Application, settings: Settings) -> None:
    """``/metrics`` and CORS on a whole service's ``app``, as ``settings`` say."""
    install_metrics(app, settings)
    if settings.metrics:
        make_public(app, "/metrics")  # guarded by metrics_networks
    install_cors(app, settings)


def add_pages(app: web.Application, pages: Pages) -> None:
    """Serve ``pages``' assets (public: a login page needs its style) and render
    ``app``'s HTML pages with its templates."""
    install_assets(app, pages)
    make_public(app, *make_public_assets(pages))


def service_middlewares(settings: Settings) -> list[Middleware]:
    """The middlewares of a whole service (outermost first): the connection's
    guard told of each request (slow clients), requests counted
    for the metrics, documents compressed, the owner for the logs, no second
    response after a started one, the UWS error mapping, state-changing
    requests from other sites refused (:mod:`aiouws.http.crosssite`)."""
    return [
        connection_middleware,
        metrics_middleware,
        compression_middleware,
        owner_middleware,
        started_guard,
        error_middleware,
        cross_site_guard,
    ]


def uws_subapp(kind: str) -> web.Application:
    """The UWS REST resources for jobs of ``kind``, to mount under any prefix."""
    sub = web.Application(middlewares=[error_middleware, cross_site_guard])
    sub[KIND] = kind
    sub[UNAVAILABLE_ERROR] = DatabaseUnavailable  # UWS form, whatever the parent's
    sub.add_routes(handlers.routes)
    return sub


def uws_context(
    settings: Settings, kinds: Sequence[JobKind], *, execute: bool = True
) -> Context:
    """A ``cleanup_ctx`` entry owning the pool, listener, supervisor and service.

    ``execute=False`` serves the UWS resources without running jobs (a front-end
    that leaves execution to other processes sharing the database).
    """
    database = Database.of(settings)
    table = kinds_by_name(kinds)

    async def context(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            pool = await database.create_pool(
                min_size=2, max_size=20, init=init_connection, reset=keep_session
            )
            stack.push_async_callback(pool.close)
            async with pool.acquire() as conn:
                await install_schema(conn)
            store = JobStore(pool)
            dirs = JobDirs(settings.resolved_jobs_dir)
            dirs.ensure_root()
            listener = PhaseListener(database.connect)
            await listener.start()
            stack.push_async_callback(listener.stop)
            supervisor = None
            if execute:
                from aiouws.execution.supervisor import QueueSupervisor

                supervisor = QueueSupervisor(
                    store,
                    table,
                    dirs,
                    settings,
                    listener,
                    lease_seconds=settings.lease_seconds,
                )
                # Registered first so that it also runs if start() fails midway.
                stack.push_async_callback(supervisor.stop)
                await supervisor.start()
            metrics = app.get(METRICS)
            if metrics is not None:
                metrics.watch_store(store)
                metrics.watch_pool("uws", pool)
                if supervisor is not None:
                    supervisor.on_finished.append(metrics.job_finished)
            app[SETTINGS] = settings
            app[RESOLVER] = make_resolver(settings)
            app[SERVICE] = JobService(
                store, dirs, table, settings, dispatcher=supervisor, listener=listener
            )
            yield

    return context


def create_app(
    settings: Settings, kinds: Sequence[JobKind] = (), *, execute: bool = True
) -> web.Application:
    """The standalone service: one UWS job list per kind at ``/jobs/{kind}``,
    ``/metrics`` and CORS (:func:`add_operations`)."""
    app = web.Application(
        middlewares=service_middlewares(settings),
        client_max_size=settings.max_request_bytes,
    )
    add_operations(app, settings)
    add_pages(app, Pages())
    app.cleanup_ctx.append(uws_context(settings, kinds, execute=execute))
    for kind in kinds:
        app.add_subapp(f"/jobs/{kind.name}", uws_subapp(kind.name))
    return app
