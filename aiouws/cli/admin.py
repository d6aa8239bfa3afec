"""The database commands of ``aiouws``: ``db init``, ``jobs list|show|delete``,
``cleanup``; each runs on one connection after the schema is brought up to date.
``db start|dsn|stop`` (:func:`db_server`) manage the embedded database server.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any

import asyncpg

from aiouws.cli.plugins import AdminCommand
from aiouws.cli.problems import connect, safe_dsn
from aiouws.config import Settings
from aiouws.results.store import ResultStore
from aiouws.storage.database import QUERY_ROLE, Database
from aiouws.storage.pgcluster import EmbeddedCluster
from aiouws.storage.queryrole import ensure_query_role, missing_message
from aiouws.storage.schema import init_connection, install_schema

__all__ = ["cleanup", "db_server", "jobs", "run_admin"]


def db_server(settings: Settings, cluster: EmbeddedCluster | None, action: str) -> int:
    """``db start|dsn|stop``: ``cluster`` is the embedded database (None: a DSN
    is configured and there is no server of ours to start or stop).

    ``start`` prints the DSN without a password, ``dsn`` the whole DSN, saying on
    stderr that it is secret when it holds a password. The embedded database's
    DSN holds none: only its own OS user and root may connect (peer auth).
    """
    if cluster is None:
        if action != "dsn":
            print(
                f"aiouws: a DSN is configured (dsn / AIOUWS_DSN): no embedded "
                f"database to {action}; unset it to use the embedded one",
                file=sys.stderr,
            )
            return 1
        dsn = settings.dsn or ""
    elif action == "stop":
        cluster.stop()
        return 0
    else:
        dsn = cluster.ensure_running()
    public = safe_dsn(dsn, mask=None)
    if action == "dsn" and public != dsn:
        print("aiouws: this DSN holds a password: keep it secret", file=sys.stderr)
    print(dsn if action == "dsn" else public)
    return 0


async def run_admin(
    database: Database,
    settings: Settings,
    options: argparse.Namespace,
    handler: AdminCommand | None,
) -> int:
    """Install or upgrade the schema, then run ``handler`` (None: ``db init``,
    which also creates the query role, or prints the SQL an administrator must
    run when this DSN's user may not)."""
    conn = await connect(database)
    try:
        await init_connection(conn)
        applied = await install_schema(conn)
        if handler is None:  # db init
            print(f"schema up to date ({applied} migration(s) applied)")
            missing = await ensure_query_role(conn)
            if missing:
                print(f"aiouws: {missing_message(missing)}", file=sys.stderr)
                return 1
            print(f"query role {QUERY_ROLE} ready")
            return 0
        return await handler(conn, settings, options)
    finally:
        await conn.close()


async def jobs(
    conn: asyncpg.Connection,
    settings: Settings,
    args: argparse.Namespace,
    *,
    jobs_path: Callable[[str], str],
) -> int:
    """``jobs list|show|delete``; ``jobs_path(kind)`` is the URL path of a kind's
    job list (``/tap/async``, ``/jobs/demo``), for the links of ``show``."""
    from aiouws.errors import JobNotFound
    from aiouws.models import JobFilter
    from aiouws.storage.store import JobStore

    pool = _SingleConnectionPool(conn)
    store = JobStore(pool)  # type: ignore[arg-type]
    if args.jobs_command == "list":
        refs = await store.list_jobs(
            JobFilter(
                owner=args.owner,
                all_owners=args.owner is None,
                phases=frozenset(args.phase or ()),
                last=args.last,
                kind=args.kind,
                include_archived=True,
            )
        )
        _print_table(
            ("JOB ID", "KIND", "PHASE", "CREATED (UTC)", "OWNER", "RUN ID"),
            [
                (
                    ref.job_id,
                    ref.kind,
                    ref.phase.value,
                    f"{ref.creation_time.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
                    ref.owner or "-",
                    ref.run_id or "",
                )
                for ref in refs
            ],
        )
        return 0
    if args.jobs_command == "show":
        from aiouws.http.render import job_document

        try:
            job = await store.get(args.job_id)
        except JobNotFound as exc:
            print(f"aiouws: {exc}", file=sys.stderr)
            return 1
        path = f"{jobs_path(job.kind).rstrip('/')}/{job.job_id}"
        if settings.base_url:
            url = settings.base_url.rstrip("/") + path
        else:
            url = path
            print(
                "aiouws: links are relative to the service's address "
                "(set base_url for absolute ones)",
                file=sys.stderr,
            )
        sys.stdout.write(job_document(job, url).decode())
        return 0
    results = _results(settings)
    status = 0
    for job_id in args.job_id:
        gone = await store.delete(job_id)
        await results.remove_job(job_id)
        if gone is None:
            print(f"aiouws: no job {job_id}", file=sys.stderr)
            status = 1
    return status


async def cleanup(
    conn: asyncpg.Connection, settings: Settings, args: argparse.Namespace
) -> int:
    from aiouws.execution.reaper import cleanup as remove_jobs
    from aiouws.storage.store import JobStore

    store = JobStore(_SingleConnectionPool(conn))  # type: ignore[arg-type]
    removed = await remove_jobs(
        store,
        _results(settings),
        failed=args.failed,
        completed=args.completed,
        all=args.all,
        forgotten=args.forgotten,
    )
    print(f"removed {removed} job(s)")
    return 0


def _results(settings: Settings) -> ResultStore:
    """The configured results store (a deleted job's files go too)."""
    from aiouws.results import open_store

    return open_store(settings.results_spec, settings.resolved_jobs_dir)


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns as wide as their widest cell, two spaces apart."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip())


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
