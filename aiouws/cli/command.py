"""The ``aiouws`` command: serve, db init|start|dsn|stop, jobs, cleanup, passwd.

Applications add their own commands and ``serve`` options with plug-ins
(:class:`.plugins.Plugin`, e.g. TAP's in ``taprunner.cli``), and
``serve --app MODULE:FACTORY`` serves any job kinds.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import asyncpg

from aiouws.cli import admin
from aiouws.cli.plugins import Plugin
from aiouws.cli.problems import StartupError, check_database, listen_problem
from aiouws.config import ConfigError, Settings
from aiouws.logs import setup_logging
from aiouws.phases import Phase
from aiouws.storage.database import Database
from aiouws.storage.pgcluster import ClusterError, EmbeddedCluster

__all__ = ["main"]

_EPILOG = """\
configuration: a TOML file (--config or AIOUWS_CONFIG; see
config/aiouws.example.toml) and AIOUWS_<SETTING> environment variables, e.g.
AIOUWS_DSN=postgresql://user@host/db. Without a DSN an embedded PostgreSQL
cluster is created and started in the data directory (AIOUWS_DATA_DIR).
"""


def _parser(plugins: Sequence[Plugin]) -> argparse.ArgumentParser:
    titles = "".join(f" and {p.title}" for p in plugins if p.title)
    parser = argparse.ArgumentParser(
        prog="aiouws",
        description=f"IVOA UWS 1.1 job service{titles}.",
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
    parser.set_defaults(admin=None)  # db init
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="run the UWS HTTP service")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument(
        "--app",
        metavar="MODULE:FACTORY",
        help="serve the web.Application that FACTORY(settings, options) returns "
        "(see aiouws.cli.plugins)",
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
    db_commands.add_parser(
        "init",
        help="create or upgrade the schema and the query role (idempotent; "
        "prints the SQL an administrator must run if this DSN may not)",
    )
    db_commands.add_parser(
        "start", help="start the embedded database (create it if needed); print its DSN"
    )
    db_commands.add_parser(
        "dsn", help="print the DSN (the embedded database's: started if needed)"
    )
    db_commands.add_parser("stop", help="stop the embedded database server")

    jobs = commands.add_parser("jobs", help="inspect and delete jobs")
    jobs_commands = jobs.add_subparsers(
        dest="jobs_command", metavar="ACTION", required=True
    )
    listing = jobs_commands.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--owner", help="only this owner's jobs")
    listing.add_argument(
        "--phase",
        action="append",
        type=_phase,
        help="only jobs in this phase (repeat for several): "
        + ", ".join(p.value for p in Phase),
    )
    listing.add_argument("--kind", help="only jobs of this kind (e.g. tap, demo)")
    listing.add_argument(
        "--last", type=_positive, default=50, help="at most this many (default 50)"
    )
    show = jobs_commands.add_parser(
        "show",
        help="show one job as UWS XML (links under base_url, else relative)",
    )
    show.add_argument(
        "job_id", help="the job's id (see jobs list; an id starting with - after --)"
    )
    delete = jobs_commands.add_parser("delete", help="delete a job and its files")
    delete.add_argument(
        "job_id", nargs="+", help="ids of the jobs to delete (after --)"
    )
    jobs.set_defaults(admin=partial(admin.jobs, jobs_path=_jobs_path(plugins)))

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
    cleanup.set_defaults(admin=admin.cleanup)

    passwd = commands.add_parser(
        "passwd",
        help="print a password-file line for a user",
        description="Print USER:HASH for the passwd_file of auth = basic. The "
        "password is asked twice on a terminal, else read from the first line "
        "of standard input (echo SECRET | aiouws passwd alice).",
    )
    passwd.add_argument("user", help="the user name (no ':')")
    for plugin in plugins:
        plugin.add_serve_options(serve)
        plugin.add_commands(commands)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    plugins: Sequence[Plugin] = (),
    module: str = "aiouws",
) -> int:
    """Run the command in ``argv`` (default: ``sys.argv``); the exit status.

    ``plugins`` extend the command line (see :mod:`.plugins`); ``module`` is
    what ``python -m`` runs to get this same command (``serve --workers`` starts
    its workers with it).
    """
    args = _parser(plugins).parse_args(argv)
    try:
        settings = Settings.load(
            args.config,
            reserved=[p.settings_prefix for p in plugins if p.settings_prefix],
            dsn=args.dsn,
            data_dir=args.data_dir,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            workers=getattr(args, "workers", None),
        )
        for plugin in plugins:
            plugin.configure(settings, args)
    except ConfigError as exc:
        print(f"aiouws: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    if args.command == "passwd":
        return _passwd(args.user)
    cluster = None
    try:
        if args.command == "db" and args.db_command in ("start", "dsn", "stop"):
            embedded = None if settings.dsn else _embedded(settings)
            return admin.db_server(settings, embedded, args.db_command)
        if settings.dsn is None:
            cluster = _embedded(settings)
            settings = settings.with_dsn(cluster.ensure_running())
        database = Database.of(settings)
        if args.command == "serve":
            from aiouws.cli.serving import serve

            asyncio.run(check_database(database))  # before saying anything
            return serve(settings, database, args, plugins, module)
        return asyncio.run(admin.run_admin(database, settings, args, args.admin))
    except ConfigError as exc:
        print(f"aiouws: configuration error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        serving = args.command == "serve"
        problem = serving and listen_problem(exc, settings.host, settings.port)
        print(f"aiouws: {problem or exc}", file=sys.stderr)
        return 1
    except (ClusterError, StartupError, asyncpg.PostgresError) as exc:
        print(f"aiouws: {exc}", file=sys.stderr)
        return 1
    finally:
        if cluster is not None and args.command == "serve":
            cluster.stop()


def _phase(text: str) -> Phase:
    try:
        return Phase(text.upper())
    except ValueError:
        known = ", ".join(p.value for p in Phase)
        raise argparse.ArgumentTypeError(
            f"unknown phase {text!r} (one of {known})"
        ) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return value


def _jobs_path(plugins: Sequence[Plugin]) -> Callable[[str], str]:
    """The URL path of a kind's job list: a plug-in's, else create_app's."""

    def jobs_path(kind: str) -> str:
        for plugin in plugins:
            path = plugin.jobs_path(kind)
            if path is not None:
                return path
        return f"/jobs/{kind}"

    return jobs_path


def _passwd(user: str) -> int:
    """Print ``user:hash``; the password from the terminal or standard input."""
    from aiouws.http.auth import hash_password

    if not user or ":" in user:
        print(
            "aiouws passwd: a user name must be non-empty, without ':'", file=sys.stderr
        )
        return 2
    try:
        if sys.stdin.isatty():
            password = getpass.getpass(f"password for {user}: ")
            if getpass.getpass("again: ") != password:
                print("aiouws passwd: the passwords differ", file=sys.stderr)
                return 1
        else:
            password = sys.stdin.readline().rstrip("\r\n")
    except (EOFError, KeyboardInterrupt):
        password = ""
    if not password:
        print(
            "aiouws passwd: no password given (type it at the prompt, or pipe it: "
            f"echo SECRET | aiouws passwd {user})",
            file=sys.stderr,
        )
        return 1
    print(f"{user}:{hash_password(password)}")
    return 0


def _embedded(settings: Settings) -> EmbeddedCluster:
    return EmbeddedCluster(
        settings.data_dir / "pgdata",
        port=settings.embedded_port,
        run_as=settings.embedded_user,
        bindir=settings.pg_bindir,
    )
