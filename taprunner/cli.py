"""The ``aiouws`` console script with TAP: aiouws's command line plus TAP's plug-in.

``tap publish|unpublish|demo`` maintain TAP_SCHEMA; ``serve`` serves TAP (with the
demo catalogue unless ``--no-demo``) and the demo job kind, or with ``--no-tap``
only the generic job kinds. TAP's settings (:class:`taprunner.settings.TapSettings`)
come from the same file and environment as aiouws's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

import aiouws.cli.command
from aiouws.cli.plugins import Commands, Plugin
from aiouws.config import Settings
from taprunner.settings import PREFIX, TapSettings

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["TapPlugin", "main"]

DEMO_ROWS = 1_000_000


_PUBLISH_HELP = """\
Publish SCHEMA.TABLE in TAP_SCHEMA (again: replace its entry). Columns, types
and indexes come from PostgreSQL; --metadata FILE.toml adds the rest, every key
optional (README.md, "Publishing your own tables", has the full example):

  description = "Stars of my survey"
  utype = "..."                 # a data-model utype of the table, if any
  table_index = 1               # listing order, low first
  schema_description = "My survey"
  [columns.ra]                  # one table per column, by its name
  description = "Right ascension"
  unit = "deg"
  ucd = "pos.eq.ra;meta.main"
  utype = "..."
  principal = true              # default true
  std = false                   # default false
"""


class TapPlugin(Plugin):
    """TAP's commands, ``serve`` options, settings and application."""

    title = "TAP 1.1 server"
    settings_prefix = PREFIX

    def add_commands(self, commands: Commands) -> None:
        tap = commands.add_parser("tap", help="TAP_SCHEMA maintenance")
        tap.set_defaults(admin=_tap)
        actions = tap.add_subparsers(
            dest="tap_command", metavar="ACTION", required=True
        )
        publish = actions.add_parser(
            "publish",
            help="publish SCHEMA.TABLE via TAP",
            description=_PUBLISH_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        publish.add_argument(
            "table", help="qualified table name, e.g. myschema.mytable"
        )
        publish.add_argument(
            "--metadata",
            type=Path,
            metavar="FILE.toml",
            help="TOML file with descriptions, units, UCDs (format above)",
        )
        unpublish = actions.add_parser("unpublish", help="remove a table from TAP")
        unpublish.add_argument(
            "table", help="qualified table name (the table itself stays)"
        )
        _add_access_commands(actions)
        demo = actions.add_parser(
            "demo",
            help="create and publish the demo catalogue demo.stars (rebuilt "
            "unless it holds --rows stars already)",
        )
        demo.add_argument(
            "--rows",
            type=_rows,
            default=DEMO_ROWS,
            help=f"stars in the catalogue (default {DEMO_ROWS:,})",
        )

    def jobs_path(self, kind: str) -> str | None:
        # Where create_tap_app mounts the TAP job list (imported late, as the
        # rest of the web app: the commands that do not serve need none of it).
        from taprunner.web.app import TAP_JOBS_PATH, TAP_KIND

        return TAP_JOBS_PATH if kind == TAP_KIND else None

    def add_serve_options(self, serve: argparse.ArgumentParser) -> None:
        serve.add_argument(
            "--no-demo",
            action="store_true",
            help="do not load the demo catalogue into an empty database",
        )
        serve.add_argument(
            "--demo-rows",
            type=_rows,
            default=DEMO_ROWS,
            help="rows of the demo catalogue (default 1,000,000)",
        )
        serve.add_argument(
            "--no-tap",
            action="store_true",
            help="serve only the generic UWS job kinds, no TAP",
        )

    def configure(self, settings: Settings, options: argparse.Namespace) -> None:
        TapSettings.load(settings, options.config)  # report bad settings early

    def serve_app(
        self, settings: Settings, options: argparse.Namespace
    ) -> web.Application | None:
        if options.no_tap:
            return None
        from taprunner.web.app import create_tap_app

        tap = TapSettings.load(settings, options.config)
        rows = 0 if options.no_demo else options.demo_rows
        return create_tap_app(settings, tap, demo_rows=rows)

    def worker_args(self, options: argparse.Namespace, index: int) -> list[str]:
        argv = ["--no-tap"] if options.no_tap else []
        # Only the first worker loads the demo catalogue (once, before the others).
        if options.no_demo or index > 0:
            return [*argv, "--no-demo"]
        return [*argv, "--demo-rows", str(options.demo_rows)]


def _add_access_commands(actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``tap grant`` and ``tap revoke`` (proprietary tables, README "Proprietary
    tables")."""
    for verb, text in (
        ("grant", "restrict SCHEMA.TABLE (or a whole SCHEMA) to users and groups"),
        ("revoke", "take users' and groups' access away (none named: all)"),
    ):
        parser = actions.add_parser(verb, help=text, description=text)
        parser.add_argument("target", help="SCHEMA.TABLE or SCHEMA")
        parser.add_argument(
            "--user",
            action="append",
            default=[],
            metavar="OWNER",
            help="a user as the service names owners (a login, a certificate's"
            " subject DN, an OIDC subject); repeatable",
        )
        parser.add_argument(
            "--group",
            action="append",
            default=[],
            metavar="GROUP",
            help="a group (password file, trusted proxy's groups header); repeatable",
        )


async def _access_command(
    conn: asyncpg.Connection, settings: Settings, args: argparse.Namespace
) -> list[str]:
    from aiouws.http.identity import stored_owner
    from taprunner.schema import access

    principals = [
        access.Principal("user", stored_owner(settings, u)) for u in args.user
    ] + [access.Principal("group", g) for g in args.group]
    if args.tap_command == "grant":
        missing = await access.grant(conn, args.target, principals)
        print(f"granted {args.target}")
    else:
        missing = await access.revoke(conn, args.target, principals)
        print(f"revoked {args.target}")
    return missing


def _rows(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a number of rows: {text!r}")
    return value


async def _tap(
    conn: asyncpg.Connection, _settings: Settings, args: argparse.Namespace
) -> int:
    from aiouws.storage.queryrole import missing_message
    from taprunner.schema import tapschema
    from taprunner.schema.metadata import TapSchemaError, load_metadata

    missing = await tapschema.install(conn)
    try:
        if args.tap_command == "publish":
            metadata = load_metadata(args.metadata) if args.metadata else None
            missing += await tapschema.publish(conn, args.table, metadata)
            print(f"published {args.table}")
        elif args.tap_command == "unpublish":
            missing += await tapschema.unpublish(conn, args.table)
            print(f"unpublished {args.table}")
        elif args.tap_command in ("grant", "revoke"):
            missing += await _access_command(conn, _settings, args)
        else:
            from taprunner.schema.demo import load_demo
            from taprunner.schema.pgsphere import ensure_pg_sphere

            sphere = await ensure_pg_sphere(conn)
            if sphere.problem is not None:
                print(f"aiouws: warning: pg_sphere: {sphere.problem}", file=sys.stderr)
            await load_demo(conn, rows=args.rows, geometry=sphere.geometry)
            print("demo catalogue loaded")
    except TapSchemaError as exc:
        print(f"aiouws: {exc}", file=sys.stderr)
        return 1
    if missing:
        print(f"aiouws: {missing_message(missing)}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``aiouws`` command with TAP (``python -m taprunner``)."""
    return aiouws.cli.command.main(argv, plugins=[TapPlugin()], module="taprunner")
