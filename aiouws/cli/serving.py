"""``aiouws serve``: pick the application, run it on an event loop, or run workers.

The application is the ``--app`` factory's, else the first plug-in's that serves
one, else the generic service with the demo job kind (see :mod:`.plugins`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Sequence

from aiohttp import web

from aiouws.cli.plugins import Plugin, load_factory
from aiouws.cli.workers import WorkerPool, exit_with_parent, worker_count
from aiouws.config import ENV_PREFIX, ConfigError, Settings
from aiouws.http.access import AccessLogger
from aiouws.http.connections import CONNECTIONS, ConnectionGuard, GuardedSite
from aiouws.storage.database import Database

__all__ = ["serve"]


def serve(
    settings: Settings,
    database: Database,
    options: argparse.Namespace,
    plugins: Sequence[Plugin],
    module: str,
) -> int:
    """Serve until stopped; ``module`` is what ``python -m`` runs for workers."""
    count = worker_count(settings.workers)
    if count > 1 and not options.worker:
        return _serve_workers(settings, database, options, plugins, module, count)
    app = _application(settings, options, plugins)
    if options.worker:
        app.on_startup.append(exit_with_parent)
    app[CONNECTIONS] = ConnectionGuard.of(settings)
    loop = _event_loop(settings.event_loop)
    announce = None if options.worker else _announce(settings)
    main = loop.create_task(_run(app, settings, announce, reuse_port=options.worker))
    # As aiohttp's run_app, with the guarded site (aiouws.http.connections).
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(main)
        _cancel_all(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)
    return 0


async def _run(
    app: web.Application,
    settings: Settings,
    announce: Callable[..., None] | None,
    *,
    reuse_port: bool,
) -> None:
    """Serve ``app`` until cancelled (SIGINT/SIGTERM raise GracefulExit)."""
    runner = web.AppRunner(
        app,
        handle_signals=True,
        # Passed through to each connection's RequestHandler.
        max_line_size=2 * settings.max_url_bytes,
        max_field_size=16384,
        keepalive_timeout=75.0,
        # One "request" line per request at INFO (aiouws.http.access).
        access_log_class=AccessLogger,
        shutdown_timeout=settings.grace + 5,
    )
    await runner.setup()
    try:
        site = GuardedSite(
            runner,
            app[CONNECTIONS],
            settings.host,
            settings.port,
            reuse_port=reuse_port,
        )
        await site.start()
        if announce is not None:  # a worker's parent announces the pool
            announce()
        await asyncio.Event().wait()  # until cancelled
    finally:
        await runner.cleanup()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks left at shutdown and let them end."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def _application(
    settings: Settings, options: argparse.Namespace, plugins: Sequence[Plugin]
) -> web.Application:
    if options.app is not None:
        return load_factory(options.app)(settings, options)
    for plugin in plugins:
        app = plugin.serve_app(settings, options)
        if app is not None:
            return app
    from aiouws.demo import DEMO_KIND
    from aiouws.http.app import create_app

    return create_app(settings, [DEMO_KIND])


def _serve_workers(
    settings: Settings,
    database: Database,
    options: argparse.Namespace,
    plugins: Sequence[Plugin],
    module: str,
    count: int,
) -> int:
    """Run ``count`` worker processes (see :mod:`.workers`) until stopped."""

    def command(index: int) -> list[str]:
        argv = [sys.executable, "-m", module]
        if options.config is not None:
            argv += ["--config", str(options.config)]
        argv += ["--data-dir", str(settings.data_dir)]
        argv += ["serve", "--worker", "--host", settings.host]
        argv += ["--port", str(settings.port)]
        if options.app is not None:
            argv += ["--app", options.app]
        for plugin in plugins:
            argv += plugin.worker_args(options, index)
        return argv

    pool = WorkerPool(
        command,
        count,
        host=settings.host,
        port=settings.port,
        grace=settings.grace,
        # The DSN goes by environment, not argv: ps shows argv to every user.
        env={**os.environ, ENV_PREFIX + "DSN": database.dsn},
        on_listening=_announce(settings, f" with {count} workers"),
    )
    return pool.run()


def _announce(settings: Settings, more: str = "") -> Callable[..., None]:
    """Prints "serving on": aiohttp calls it once the server listens."""

    def announce(_banner: object = None) -> None:
        url = f"http://{settings.host}:{settings.port}/"
        print(f"aiouws: serving on {url}{more}", flush=True)

    return announce


def _event_loop(choice: str) -> asyncio.AbstractEventLoop:
    """uvloop's loop when asked or available ("auto"), else asyncio's own.

    uvloop (by asyncpg's authors) implements transports in C: the server spends
    much of a tiny job's time writing to sockets.
    """
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise ConfigError(
                    "event_loop = uvloop, but uvloop is not installed"
                ) from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()
