"""The standalone TAP service: ``create_tap_app`` composes UWS, sync and VOSI.

Layout (TAP 1.1 §2): ``/tap/sync``, ``/tap/async`` (UWS job list of kind ``tap``),
``/tap/capabilities``, ``/tap/availability``, ``/tap/tables``, ``/tap/examples``;
the generic demo job kind at ``/jobs/demo``; a home page at ``/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from aiouws.config import Settings
from aiouws.demo import DEMO_KIND
from aiouws.http.app import uws_context, uws_subapp
from aiouws.http.middleware import error_middleware
from aiouws.kinds import InlineLane, JobKind, ParameterSpec
from aiouws.schema import keep_session
from taprunner.schema import tapschema
from taprunner.schema.demo import load_demo
from taprunner.web import endpoints
from taprunner.web.fastlane import TapInline
from taprunner.web.state import TAP, TapState

__all__ = ["create_tap_app", "tap_kind"]


def tap_kind(settings: Settings, inline: InlineLane | None = None) -> JobKind:
    """The async TAP job kind; its runners get the DSN and limits by environment.

    ``inline``: the fast lane for small queries (see :mod:`taprunner.web.fastlane`).
    """
    assert settings.dsn is not None
    return JobKind(
        name="tap",
        entry_point="taprunner.query.job:run",
        slots=settings.tap_slots,
        inline=inline,
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
        runner_env={
            "AIOUWS_TAP_DSN": settings.dsn,
            "AIOUWS_TAP_MAXREC_DEFAULT": str(settings.tap_maxrec_default),
            "AIOUWS_TAP_MAXREC_HARD": str(settings.tap_maxrec_hard),
            "AIOUWS_TAP_UPLOAD_BYTES": str(settings.max_upload_bytes),
            "AIOUWS_TAP_COLUMNAR": "1" if settings.tap_columnar else "0",
        },
    )


def _tap_context(
    settings: Settings, demo_rows: int, pool_size: int, fast: TapInline
) -> object:
    async def context(app: web.Application) -> AsyncIterator[None]:
        assert settings.dsn is not None
        pool = await asyncpg.create_pool(
            settings.dsn, min_size=1, max_size=pool_size, reset=keep_session
        )
        assert pool is not None
        async with pool.acquire() as conn:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_sphere")
            await tapschema.install(conn)
            if demo_rows > 0:
                await load_demo(conn, rows=demo_rows)
        app[TAP] = TapState(pool=pool, settings=settings, up_since=datetime.now(UTC))
        fast.state = app[TAP]
        try:
            yield
        finally:
            fast.state = None
            await fast.close()
            await pool.close()

    return context


def create_tap_app(
    settings: Settings,
    *,
    demo_rows: int = 0,
    extra_kinds: tuple[JobKind, ...] = (DEMO_KIND,),
    sync_pool_size: int = 10,
) -> web.Application:
    """The whole standalone service (TAP plus the generic job kinds).

    ``sync_pool_size`` is the number of database connections shared by sync
    queries and the VOSI endpoints (the fast lane keeps its own connections).
    """
    app = web.Application(
        middlewares=[error_middleware], client_max_size=settings.max_request_bytes
    )
    fast = TapInline(settings)
    lane = fast.lane()
    context = _tap_context(settings, demo_rows, sync_pool_size, fast)
    app.cleanup_ctx.append(context)  # type: ignore[arg-type]
    kinds = [tap_kind(settings, lane), *extra_kinds]
    app.cleanup_ctx.append(uws_context(settings, kinds))
    app.add_routes(endpoints.routes)
    app.add_subapp("/tap/async", uws_subapp("tap"))
    for kind in extra_kinds:
        app.add_subapp(f"/jobs/{kind.name}", uws_subapp(kind.name))
    return app
