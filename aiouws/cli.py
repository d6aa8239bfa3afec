"""The ``aiouws`` command: serve, db init, jobs, cleanup, tap publish, passwd."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg

from .config import ConfigError, Settings
from .database import Database
from .logs import setup_logging
from .pgcluster import ClusterError, EmbeddedCluster

__all__ = ["main"]

_EPILOG = """\
configuration: a TOML file (--config or AIOUWS_CONFIG; see
config/aiouws.example.toml) and AIOUWS_<SETTING> environment variables, e.g.
AIOUWS_DSN=postgresql://user@host/db. Without a DSN an embedded PostgreSQL
cluster is created and started in the data directory (AIOUWS_DATA_DIR).
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiouws",
        description="IVOA UWS 1.1 job service and TAP 1.1 server.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--dsn", help="PostgreSQL DSN (default: embedded database)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where the embedded database and job directories live",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="run the TAP/UWS HTTP service")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument(
        "--no-demo",
        action="store_true",
        help="do not load the demo catalogue into an empty database",
    )
    serve.add_argument(
        "--demo-rows",
        type=int,
        default=1_000_000,
        help="rows of the demo catalogue (default 1,000,000)",
    )
    serve.add_argument(
        "--no-tap",
        action="store_true",
        help="serve only the generic UWS job kinds, no TAP",
    )
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="server processes sharing the port, each with its own runners; "
        "0: one per CPU core (default: the workers setting, 1)",
    )
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_commands.add_parser("init", help="create or upgrade the schema (idempotent)")
    db_commands.add_parser("stop", help="stop the embedded database server")

    jobs = commands.add_parser("jobs", help="inspect and delete jobs")
    jobs_commands = jobs.add_subparsers(
        dest="jobs_command", metavar="ACTION", required=True
    )
    listing = jobs_commands.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--owner", help="only this owner's jobs")
    listing.add_argument("--phase", action="append", help="only jobs in this phase")
    listing.add_argument("--last", type=int, default=50, help="at most this many")
    show = jobs_commands.add_parser("show", help="show one job as UWS XML")
    show.add_argument("job_id")
    delete = jobs_commands.add_parser("delete", help="delete a job and its files")
    delete.add_argument("job_id", nargs="+")

    cleanup = commands.add_parser(
        "cleanup", help="remove expired jobs (and, if asked, more)"
    )
    cleanup.add_argument("--failed", action="store_true", help="also all ERROR/ABORTED")
    cleanup.add_argument("--completed", action="store_true", help="also all COMPLETED")
    cleanup.add_argument(
        "--forgotten",
        action="store_true",
        help="also PENDING jobs untouched for over a day",
    )
    cleanup.add_argument("--all", action="store_true", help="every job (careful!)")

    tap = commands.add_parser("tap", help="TAP_SCHEMA maintenance")
    tap_commands = tap.add_subparsers(
        dest="tap_command", metavar="ACTION", required=True
    )
    publish = tap_commands.add_parser("publish", help="publish SCHEMA.TABLE via TAP")
    publish.add_argument("table", help="qualified table name, e.g. myschema.mytable")
    publish.add_argument(
        "--metadata", type=Path, help="TOML file with descriptions, units and UCDs"
    )
    unpublish = tap_commands.add_parser("unpublish", help="remove a table from TAP")
    unpublish.add_argument("table")
    demo = tap_commands.add_parser("demo", help="load the demo catalogue")
    demo.add_argument("--rows", type=int, default=1_000_000)

    passwd = commands.add_parser("passwd", help="print a password-file line for a user")
    passwd.add_argument("user")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.load(
            args.config,
            reserved=["tap_"],
            dsn=args.dsn,
            data_dir=args.data_dir,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            workers=getattr(args, "workers", None),
        )
    except ConfigError as exc:
        print(f"aiouws: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    if args.command == "passwd":
        from .http.auth import hash_password

        password = getpass.getpass(f"password for {args.user}: ")
        print(f"{args.user}:{hash_password(password)}")
        return 0
    cluster = None
    try:
        if settings.dsn is None:
            cluster = _embedded(settings)
            if args.command == "db" and args.db_command == "stop":
                cluster.stop()
                return 0
            settings = settings.with_dsn(cluster.ensure_running())
        if args.command == "serve":
            return _serve(settings, args)
        return asyncio.run(_admin(settings, args))
    except (ClusterError, ConfigError, OSError, asyncpg.PostgresError) as exc:
        print(f"aiouws: {exc}", file=sys.stderr)
        return 1
    finally:
        if cluster is not None and args.command == "serve":
            cluster.stop()


def _embedded(settings: Settings) -> EmbeddedCluster:
    return EmbeddedCluster(
        settings.data_dir / "pgdata",
        port=settings.embedded_port,
        run_as=settings.embedded_user,
        bindir=settings.pg_bindir,
    )


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from .workers import exit_with_parent, worker_count

    count = worker_count(settings.workers)
    if count > 1 and not args.worker:
        return _serve_workers(settings, args, count)
    if args.no_tap:
        from .demo import DEMO_KIND
        from .http.app import create_app

        app = create_app(settings, [DEMO_KIND])
    else:
        from taprunner.settings import TapSettings
        from taprunner.web.app import create_tap_app

        tap = TapSettings.load(settings, args.config)
        rows = 0 if args.no_demo else args.demo_rows
        app = create_tap_app(settings, tap, demo_rows=rows)
    if args.worker:
        app.on_startup.append(exit_with_parent)
    loop = _event_loop(settings.event_loop)
    print(f"aiouws: serving on http://{settings.host}:{settings.port}/", flush=True)
    web.run_app(
        app,
        loop=loop,
        # Passed through AppRunner to each connection's RequestHandler.
        max_line_size=2 * settings.max_url_bytes,
        max_field_size=16384,
        host=settings.host,
        port=settings.port,
        print=None,
        shutdown_timeout=settings.grace + 5,
        reuse_port=args.worker,
    )
    return 0


def _serve_workers(settings: Settings, args: argparse.Namespace, count: int) -> int:
    """Run ``count`` worker processes (see :mod:`aiouws.workers`) until stopped."""
    from .workers import WorkerPool

    assert settings.dsn is not None  # the embedded cluster runs by now

    def command(index: int) -> list[str]:
        argv = [sys.executable, "-m", "aiouws"]
        if args.config is not None:
            argv += ["--config", str(args.config)]
        argv += ["--data-dir", str(settings.data_dir)]
        argv += ["serve", "--worker", "--host", settings.host]
        argv += ["--port", str(settings.port)]
        if args.no_tap:
            argv.append("--no-tap")
        # Only the first worker loads the demo catalogue (once, before the others).
        if args.no_demo or index > 0:
            argv.append("--no-demo")
        else:
            argv += ["--demo-rows", str(args.demo_rows)]
        return argv

    print(
        f"aiouws: serving on http://{settings.host}:{settings.port}/"
        f" with {count} workers",
        flush=True,
    )
    pool = WorkerPool(
        command,
        count,
        host=settings.host,
        port=settings.port,
        grace=settings.grace,
        # The DSN goes by environment, not argv: ps shows argv to every user.
        env={**os.environ, "AIOUWS_DSN": settings.dsn},
    )
    return pool.run()


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


async def _admin(settings: Settings, args: argparse.Namespace) -> int:
    from .schema import init_connection, install_schema

    conn = await Database.of(settings).connect()
    try:
        await init_connection(conn)
        applied = await install_schema(conn)
        handler = _ADMIN.get(args.command)
        if handler is None:  # db init
            print(f"schema up to date ({applied} migration(s) applied)")
            return 0
        return await handler(conn, settings, args)
    finally:
        await conn.close()


async def _jobs(
    conn: asyncpg.Connection, settings: Settings, args: argparse.Namespace
) -> int:
    from .errors import JobNotFound
    from .models import JobFilter
    from .phases import Phase
    from .store import JobStore
    from .workdir import JobDirs

    pool = _SingleConnectionPool(conn)
    store = JobStore(pool)  # type: ignore[arg-type]
    if args.jobs_command == "list":
        phases = frozenset(Phase(p.upper()) for p in args.phase or ())
        refs = await store.list_jobs(
            JobFilter(
                owner=args.owner,
                all_owners=args.owner is None,
                phases=phases,
                last=args.last,
                include_archived=True,
            )
        )
        for ref in refs:
            print(
                f"{ref.job_id}  {ref.phase.value:9}  {ref.creation_time:%Y-%m-%d %H:%M}"
                f"  {ref.owner or '-'}  {ref.run_id or ''}"
            )
        return 0
    if args.jobs_command == "show":
        from .http.render import job_document

        try:
            job = await store.get(args.job_id)
        except JobNotFound as exc:
            print(f"aiouws: {exc}", file=sys.stderr)
            return 1
        sys.stdout.write(job_document(job, f"{job.kind}/{job.job_id}").decode())
        return 0
    dirs = JobDirs(settings.resolved_jobs_dir)
    status = 0
    for job_id in args.job_id:
        gone = await store.delete(job_id)
        dirs.remove(job_id)
        if gone is None:
            print(f"aiouws: no job {job_id}", file=sys.stderr)
            status = 1
    return status


async def _cleanup(
    conn: asyncpg.Connection, settings: Settings, args: argparse.Namespace
) -> int:
    from .reaper import cleanup
    from .store import JobStore
    from .workdir import JobDirs

    store = JobStore(_SingleConnectionPool(conn))  # type: ignore[arg-type]
    removed = await cleanup(
        store,
        JobDirs(settings.resolved_jobs_dir),
        failed=args.failed,
        completed=args.completed,
        all=args.all,
        forgotten=args.forgotten,
    )
    print(f"removed {removed} job(s)")
    return 0


async def _tap(
    conn: asyncpg.Connection, _settings: Settings, args: argparse.Namespace
) -> int:
    from taprunner.schema import tapschema

    await tapschema.install(conn)
    try:
        if args.tap_command == "publish":
            metadata = tapschema.load_metadata(args.metadata) if args.metadata else None
            await tapschema.publish(conn, args.table, metadata)
            print(f"published {args.table}")
        elif args.tap_command == "unpublish":
            await tapschema.unpublish(conn, args.table)
            print(f"unpublished {args.table}")
        else:
            from taprunner.schema.demo import load_demo

            await load_demo(conn, rows=args.rows)
            print("demo catalogue loaded")
    except tapschema.TapSchemaError as exc:
        print(f"aiouws: {exc}", file=sys.stderr)
        return 1
    return 0


class _SingleConnectionPool:
    """Enough of asyncpg.Pool's interface for the store on one connection (CLI use)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetch(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> Any:
        return await self._conn.execute(sql, *args)


_ADMIN: dict[
    str, Callable[[asyncpg.Connection, Settings, argparse.Namespace], Awaitable[int]]
] = {
    "jobs": _jobs,
    "cleanup": _cleanup,
    "tap": _tap,
}
