"""The standalone TAP service: ``create_tap_app`` composes UWS, sync and VOSI.

Layout (TAP 1.1 §2): ``/tap/sync``, ``/tap/async`` (UWS job list of kind ``tap``),
``/tap/capabilities``, ``/tap/availability``, ``/tap/tables``, ``/tap/examples``;
the generic demo job kind at ``/jobs/demo``; a home page at ``/``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from aiouws.config import Settings
from aiouws.demo import DEMO_KIND
from aiouws.http.app import uws_context, uws_subapp
from aiouws.http.middleware import error_middleware
from aiouws.kinds import JobKind, ParameterSpec
from aiouws.store import keep_session
from taprunner import tapschema
from taprunner.catalog import TapCatalog
from taprunner.demo import load_demo

__all__ = ["TAP", "TapState", "create_tap_app", "tap_kind"]

CATALOG_TTL = 5.0


@dataclass
class TapState:
    """What the TAP endpoints share: a pool for sync queries, the catalogue cache."""

    pool: asyncpg.Pool
    settings: Settings
    up_since: datetime
    _catalog: TapCatalog | None = None
    _catalog_time: float = 0.0
    examples: tuple[tuple[str, str, str], ...] = field(default=())

    async def catalog(self) -> TapCatalog:
        now = time.monotonic()
        if self._catalog is None or now - self._catalog_time > CATALOG_TTL:
            async with self.pool.acquire() as conn:
                self._catalog = await TapCatalog.load(conn)
            self._catalog_time = now
        return self._catalog


TAP = web.AppKey("aiouws_tap", TapState)


def tap_kind(settings: Settings) -> JobKind:
    """The async TAP job kind; its runners get the DSN and limits by environment."""
    assert settings.dsn is not None
    return JobKind(
        name="tap",
        entry_point="taprunner.job:run",
        slots=settings.tap_slots,
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
        },
    )


def _tap_context(settings: Settings, demo_rows: int) -> object:
    async def context(app: web.Application) -> AsyncIterator[None]:
        assert settings.dsn is not None
        pool = await asyncpg.create_pool(
            settings.dsn, min_size=1, max_size=10, reset=keep_session
        )
        assert pool is not None
        async with pool.acquire() as conn:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_sphere")
            await tapschema.install(conn)
            if demo_rows > 0:
                await load_demo(conn, rows=demo_rows)
        app[TAP] = TapState(pool=pool, settings=settings, up_since=datetime.now(UTC))
        try:
            yield
        finally:
            await pool.close()

    return context


def create_tap_app(
    settings: Settings,
    *,
    demo_rows: int = 0,
    extra_kinds: tuple[JobKind, ...] = (DEMO_KIND,),
) -> web.Application:
    """The whole standalone service (TAP plus the generic job kinds)."""
    from taprunner import endpoints

    app = web.Application(
        middlewares=[error_middleware], client_max_size=settings.max_request_bytes
    )
    app.cleanup_ctx.append(_tap_context(settings, demo_rows))  # type: ignore[arg-type]
    app.cleanup_ctx.append(uws_context(settings, [tap_kind(settings), *extra_kinds]))
    app.add_routes(endpoints.routes)
    app.add_subapp("/tap/async", uws_subapp("tap"))
    for kind in extra_kinds:
        app.add_subapp(f"/jobs/{kind.name}", uws_subapp(kind.name))
    return app
