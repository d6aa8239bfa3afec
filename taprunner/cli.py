"""The ``aiouws`` console script with TAP: aiouws's command line plus TAP's plug-in.

``tap publish|describe|unpublish|demo`` maintain TAP_SCHEMA, ``tap load`` loads
files into a published table (:mod:`taprunner.load`); ``serve`` serves TAP (with
the demo catalogue unless ``--no-demo``) and the demo job kind, or with
``--no-tap`` only the generic job kinds. TAP's settings
(:class:`taprunner.settings.TapSettings`) come from the same file and environment
as aiouws's.
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
Publish SCHEMA.TABLE in TAP_SCHEMA (again: replace its entry), or every table a
schema file describes (SCHEMA --metadata FILE.toml). Columns, types, indexes,
foreign keys and row counts come from PostgreSQL; --metadata FILE.toml adds the
rest, every key optional (README.md, "Publishing your own tables", documents
every key; `aiouws tap describe` prints a table's as a starting point):

  description = "Stars of my survey"
  table_index = 1               # listing order, low first
  [schema]
  description = "My survey"
  [columns.ra]                  # one table per column, by its name
  description = "Right ascension"
  unit = "deg"
  ucd = "pos.eq.ra;meta.main"
  principal = true              # default true
  [columns.pos]                 # a double precision[] declared a DALI point
  xtype = "point"
  arraysize = "2"

A bad file is refused (exit status 2) with its name, the key and the problem.
"""


_LOAD_HELP = """\
Load FILEs into SCHEMA.TABLE and publish it in TAP_SCHEMA, in one transaction:
a bad file (unreadable, truncated, a value of the wrong type, columns unlike the
other files' or the table's when appending) changes nothing. All FILEs make one
table and need the same columns.

Formats, by file ending or --format:
  fits     .fits .fit .fts    the first binary table, read in batches of rows
  votable  .vot .votable .xml the first TABLE; TABLEDATA, BINARY and BINARY2
                              streamed (no external STREAM href)
  parquet  .parquet .parq .pq in batches of rows (needs pyarrow)
  csv      .csv               a line of column names (# comment lines before it
  tsv      .tsv .tab          allowed); types inferred from the first rows
  ecsv     .ecsv              types from the header; rows as in csv
The rows of csv, tsv and ecsv go to PostgreSQL's COPY unparsed (as fast as
psql \\copy); empty fields are NULL.

Column types follow the file (VOTable double -> double precision, int -> integer,
char -> text, arrays -> PostgreSQL arrays...). Units, UCDs, utypes and
descriptions come from the headers (FITS TUNITn/TUCDn/TUTYPn/TCOMMn, VOTable
FIELD attributes, ECSV and astropy's Parquet metadata, VOParquet), over the
table's earlier publication; --metadata FILE.toml (as for `tap publish`) goes
over both. Regular column names are lowercased (RA -> ra).

Examples:
  aiouws tap load gaia_*.fits survey.sources --primary-key source_id \\
      --position ra,dec --metadata sources.toml
  aiouws tap load new_night.csv survey.obs --append
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
            "table",
            help="qualified table name, e.g. myschema.mytable, or a schema name"
            " with a schema file",
        )
        publish.add_argument(
            "--metadata",
            type=Path,
            metavar="FILE.toml",
            help="TOML file with descriptions, units, UCDs (format above)",
        )
        describe = actions.add_parser(
            "describe",
            help="print the metadata of SCHEMA.TABLE (or of SCHEMA's tables) as a"
            " metadata file for publish --metadata",
        )
        describe.add_argument("table", help="SCHEMA.TABLE or SCHEMA")
        _add_load(actions)
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


def _add_load(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from taprunner.load.readers import format_names

    load = actions.add_parser(
        "load",
        help="load FITS, VOTable, CSV/TSV/ECSV or Parquet files into a published table",
        description=_LOAD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument(
        "files", nargs="+", type=Path, metavar="FILE", help="files of one table"
    )
    load.add_argument("table", metavar="SCHEMA.TABLE", help="the table to load")
    mode = load.add_mutually_exclusive_group()
    mode.add_argument(
        "--append", action="store_true", help="add the rows to the existing table"
    )
    mode.add_argument(
        "--replace",
        action="store_true",
        help="replace the existing table (swapped in at the end)",
    )
    load.add_argument("--primary-key", metavar="COLUMN", help="primary key column")
    load.add_argument(
        "--position",
        type=_position,
        metavar="RA,DEC",
        help="columns of ICRS positions in degrees: a pg_sphere index for "
        "cone searches (CONTAINS(POINT(ra, dec), CIRCLE(...)) = 1); a dec "
        "outside -90..90 or a NaN or infinite ra or dec refuses the load",
    )
    load.add_argument(
        "--metadata",
        type=Path,
        metavar="FILE.toml",
        help="curated metadata over the files' (format of tap publish --help)",
    )
    load.add_argument(
        "--format",
        choices=format_names(),
        help="format of all FILEs (default: from each file's ending)",
    )
    load.add_argument(
        "--infer-rows",
        type=_rows,
        default=10_000,
        metavar="N",
        help="csv/tsv: rows read to infer the column types (default 10,000)",
    )


def _position(text: str) -> tuple[str, str]:
    ra, comma, dec = text.partition(",")
    if not comma or not ra.strip() or not dec.strip() or "," in dec:
        raise argparse.ArgumentTypeError(f"not RA,DEC column names: {text!r}")
    return ra.strip(), dec.strip()


async def _load(conn: asyncpg.Connection, args: argparse.Namespace) -> list[str]:
    import time

    from taprunner.load import LoadOptions, load_files
    from taprunner.schema.metadata import load_metadata

    options = LoadOptions(
        append=args.append,
        replace=args.replace,
        primary_key=args.primary_key,
        position=args.position,
        metadata=load_metadata(args.metadata) if args.metadata else None,
        format_name=args.format,
        infer_rows=args.infer_rows,
    )
    started = time.monotonic()
    report = await load_files(conn, args.files, args.table, options)
    print(
        f"loaded {report.loaded:,} rows from {report.files} file(s) into "
        f"{args.table} in {time.monotonic() - started:.1f} s; "
        f"it holds {report.total:,} rows"
    )
    print(f"published {args.table}")
    return report.missing_grants


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
    from taprunner.schema.metadata import MetadataError, TapSchemaError

    missing = await tapschema.install(conn)
    try:
        if args.tap_command == "publish":
            missing += await _publish(conn, args.table, args.metadata)
            print(f"published {args.table}")
        elif args.tap_command == "describe":
            print(await _describe(conn, args.table), end="")
        elif args.tap_command == "load":
            missing += await _load(conn, args)
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
    except MetadataError as exc:  # a bad file: as a bad command line
        print(f"aiouws: {exc}", file=sys.stderr)
        return 2
    except TapSchemaError as exc:
        print(f"aiouws: {exc}", file=sys.stderr)
        return 1
    if missing:
        print(f"aiouws: {missing_message(missing)}", file=sys.stderr)
        return 1
    return 0


async def _publish(
    conn: asyncpg.Connection, target: str, path: Path | None
) -> list[str]:
    """Publish a table (with a table or schema file) or a schema (with a schema
    file); the GRANTs the current user may not run."""
    from taprunner.schema import tapschema
    from taprunner.schema.metadata import (
        MetadataError,
        SchemaMetadata,
        TapSchemaError,
        read_metadata_file,
    )

    metadata = read_metadata_file(path) if path is not None else None
    schema, dot, table = target.partition(".")
    if dot:
        if isinstance(metadata, SchemaMetadata):
            described = metadata.table(table)  # the error names tables.NAME
            try:
                return await tapschema.publish(conn, target, described)
            except MetadataError as exc:
                raise exc.within(table) from exc
        return await tapschema.publish(conn, target, metadata)
    if isinstance(metadata, SchemaMetadata):
        return await tapschema.publish_schema(conn, schema, metadata)
    if metadata is None:
        raise TapSchemaError(
            f"{target!r} is no SCHEMA.TABLE; a whole schema needs a schema file"
            " (--metadata FILE.toml with [tables.NAME])"
        )
    raise MetadataError(
        metadata.source,
        "",
        f"a table file: publish it as SCHEMA.TABLE, not as the schema {target!r}"
        " (a schema file has [tables.NAME] tables)",
    )


async def _describe(conn: asyncpg.Connection, target: str) -> str:
    from taprunner.schema.describe import describe_schema, describe_table, to_toml

    if "." in target:
        document = await describe_table(conn, target)
        kind = f"table {target}"
    else:
        document = await describe_schema(conn, target)
        kind = f"schema {target}"
    header = (
        f"Metadata of the {kind}, as published (aiouws tap describe).\n"
        f"Edit it, then: aiouws tap publish {target} --metadata FILE.toml\n"
        'Keys are documented in README.md, "Publishing your own tables".'
    )
    return to_toml(document, header)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``aiouws`` command with TAP (``python -m taprunner``)."""
    return aiouws.cli.command.main(argv, plugins=[TapPlugin()], module="taprunner")
