"""TAP UPLOAD: VOTables loaded into temporary tables ``TAP_UPLOAD.name`` for one query.

:func:`load_uploads` reads each upload (a multipart part or an http(s) URL),
parses it (:mod:`.uploadparse`), creates and fills a temporary table outside the
query's read-only transaction, lets the query role read it, and yields a
catalogue in which ``TAP_UPLOAD.name`` means that table. The tables are dropped
when the block ends, however it ends.

Geometry columns (DALI point, circle, polygon) become pg_sphere ``spoint``,
``scircle`` and ``spoly`` values where pg_sphere is installed, which the ADQL
geometry functions take (a crossmatch of an uploaded list with a table); the
catalogue tells the translator their xtypes, and a result FIELD keeps an
uploaded ``char`` column char (its values are ASCII).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import asyncpg

from taprunner.adql.model import Catalog, GeometryCatalog, NamingCatalog
from taprunner.adql.sqltext import quote_identifier
from taprunner.errors import TapUsageError
from taprunner.query.uploadexpand import expanded_upload
from taprunner.query.uploadfill import Fill, batches_fill, copy_fill, records_fill
from taprunner.query.uploadgeom import loaded_infos
from taprunner.query.uploadlimits import UploadLimits, check_upload, too_large
from taprunner.query.uploadparse import ParsedUpload, parse_votable
from taprunner.query.uploadstream import open_upload
from taprunner.request import Upload
from taprunner.schema.catalog import ColumnInfo, Connection
from taprunner.schema.tapschema import QUERY_ROLE
from taprunner.settings import TapSettings

__all__ = ["MAX_ROWS", "PartSource", "UploadCatalog", "job_parts", "load_uploads"]

log = logging.getLogger(__name__)

#: Default limit on the rows of one uploaded table.
MAX_ROWS = 1_000_000
#: Seconds allowed for fetching one upload given by URL.
FETCH_TIMEOUT = 30.0
#: Where ``param:name`` uploads are found: a mapping or a lookup function.
PartSource = Mapping[str, Path] | Callable[[str], Path | None]
UPLOAD_SCHEMA = "tap_upload"


@dataclass(frozen=True, slots=True)
class UploadTable:
    """One uploaded table as loaded: ADQL name, physical SQL name, columns."""

    name: str
    sql_name: str
    columns: tuple[str, ...]
    rows: int
    #: What a result says of a column beyond its PostgreSQL type: ``char`` kept,
    #: the geometry xtype of a pg_sphere column (:mod:`.uploadgeom`).
    infos: dict[str, ColumnInfo] = field(default_factory=dict)


class UploadCatalog:
    """``base`` plus the uploaded tables, which it knows as ``tap_upload.name``.

    Everything about other tables is asked of ``base``, including the metadata
    lookups (``table``, ``column_info``) a TAP_SCHEMA catalogue offers.
    """

    def __init__(self, base: Catalog, uploads: Sequence[UploadTable]) -> None:
        self.base = base
        self.uploads = {f"{UPLOAD_SCHEMA}.{u.name.lower()}": u for u in uploads}

    def columns_of(self, table: str) -> Sequence[str] | None:
        """Columns of an upload (FIELD names as given) or of a ``base`` table."""
        upload = self.uploads.get(table.lower())
        if upload is not None:
            return upload.columns
        return self.base.columns_of(table)

    def sql_name(self, table: str) -> str | None:
        """The temporary table behind an upload; ``base``'s answer otherwise."""
        upload = self.uploads.get(table.lower())
        if upload is not None:
            return upload.sql_name
        if isinstance(self.base, NamingCatalog):
            return self.base.sql_name(table)
        return None

    def geometry_off(self) -> str | None:
        """``base``'s answer (see :class:`~taprunner.adql.model.GeometryCatalog`)."""
        if isinstance(self.base, GeometryCatalog):
            return self.base.geometry_off()
        return None

    def column_xtype(self, table: str, column: str) -> str | None:
        """The geometry xtype (point, circle, polygon) of an uploaded pg_sphere
        column, for the translator; None for any other column."""
        upload = self.uploads.get(table.lower())
        info = None if upload is None else upload.infos.get(column)
        return None if info is None else info.xtype

    def table(self, table: str) -> object | None:
        """``base.table(table)`` when ``base`` has it (uploads have no metadata)."""
        lookup = getattr(self.base, "table", None)
        if lookup is None or table.lower() in self.uploads:
            return None
        result: object | None = lookup(table)
        return result

    def column_info(self, table: str, column: str) -> object | None:
        """An upload's column as loaded (char kept, geometry), else
        ``base.column_info(table, column)`` when ``base`` has it."""
        upload = self.uploads.get(table.lower())
        if upload is not None:
            return upload.infos.get(column)
        lookup = getattr(self.base, "column_info", None)
        if lookup is None:
            return None
        result: object | None = lookup(table, column)
        return result


def job_parts(fetch: Callable[[str], Path | None]) -> Callable[[str], Path | None]:
    """``param:X`` lookup among a UWS job's stored files, where part X is
    ``upload-X``; ``fetch`` (:meth:`aiouws.jobapi.JobContext.fetch_file`) gives
    a local copy of a stored file (the file itself in a job directory)."""

    def find(name: str) -> Path | None:
        if "/" in name or "\\" in name or name.startswith(".") or ".." in name:
            return None
        try:
            return fetch(f"upload-{name}")
        except ValueError:  # not a plain file name
            return None

    return find


@asynccontextmanager
async def load_uploads(
    conn: Connection,
    uploads: Sequence[Upload],
    parts: PartSource,
    catalog: Catalog,
    *,
    max_bytes: int,
    max_rows: int = MAX_ROWS,
    role: str | None = QUERY_ROLE,
    allow_private_urls: bool = False,
    limits: UploadLimits | None = None,
) -> AsyncIterator[Catalog]:
    """Load ``uploads`` for the duration of the block; yield the extended catalogue.

    Parameters
    ----------
    conn
        The connection the query will run on (temporary tables are per session).
        It must not be inside a read-only transaction.
    uploads
        The parsed UPLOAD parameter.
    parts
        Where ``param:X`` sources are: a mapping or function from part name X to
        the file holding it.
    catalog
        The published tables; the yielded catalogue adds ``TAP_UPLOAD.*``.
    max_bytes, max_rows
        Limits per uploaded table.
    role
        The role the query runs as; it is granted SELECT on the tables.
    allow_private_urls
        Also fetch URLs on loopback, private and other non-public addresses
        (tests only: otherwise a client could reach the service's own network).
    limits
        Declared value sizes, values and bytes per uploaded table, checked
        before it is parsed (:mod:`.uploadlimits`; default: the default
        settings').

    Raises
    ------
    TapUsageError
        If an upload cannot be found or fetched (URLs must be public http(s)
        addresses, redirects are not followed), is too large, is not a valid
        VOTable, or has columns that cannot be loaded.
    """
    if not uploads:
        yield catalog
        return
    loaded: list[UploadTable] = []
    try:
        for upload in uploads:
            await _load_one(
                conn,
                upload,
                parts,
                loaded,
                max_bytes=max_bytes,
                max_rows=max_rows,
                role=role,
                allow_private_urls=allow_private_urls,
                limits=limits or UploadLimits.of(TapSettings()),
            )
        yield UploadCatalog(catalog, loaded)
    finally:
        await _drop_tables(conn, loaded)


async def _load_one(
    conn: Connection,
    upload: Upload,
    parts: PartSource,
    loaded: list[UploadTable],
    *,
    max_bytes: int,
    max_rows: int,
    role: str | None,
    allow_private_urls: bool,
    limits: UploadLimits,
) -> None:
    """Read, check and load one upload as it streams, adding it to ``loaded``.

    The document is read from its file (a URL's is fetched into a temporary
    file first, a compressed one expanded once into a file beside it,
    :mod:`.uploadexpand`) a block at a time (:mod:`.uploadstream`), in a worker thread,
    off the event loop, and sent to PostgreSQL as it is read: memory holds a
    block, whatever the upload's size.
    """
    async with (
        _source_file(upload, parts, max_bytes, allow_private_urls) as source,
        expanded_upload(upload.name, source, max_bytes) as path,
    ):
        stream = await asyncio.to_thread(
            open_upload, upload.name, path, max_rows, limits
        )
        if stream is None:  # a FITS serialisation: parsed whole (astropy)
            parsed = await asyncio.to_thread(
                _parse, upload.name, path, max_rows, limits
            )
            columns, types = parsed.columns, parsed.sql_types
            fill = records_fill(parsed)
        else:
            columns, types = stream.columns, stream.sql_types
            fill = copy_fill(stream) if stream.binary_copy else batches_fill(stream)
        physical = f"pg_temp.tap_upload_{secrets.token_hex(8)}"
        table = UploadTable(upload.name, physical, columns, 0)
        loaded.append(table)  # before creating it: dropped even if cancelled
        rows = await _create_table(conn, table, types, role, fill)
    if stream is not None:
        parsed = stream.parsed()
    loaded[-1] = table = replace(table, rows=rows)
    table.infos.update(await loaded_infos(conn, table.sql_name, upload.name, parsed))


def _parse(name: str, path: Path, max_rows: int, limits: UploadLimits) -> ParsedUpload:
    """The upload (a plain file, held to the byte limit) checked for its
    size once parsed, then parsed."""
    data = path.read_bytes()
    check_upload(name, data, limits)
    return parse_votable(name, data, max_rows)


# --------------------------------------------------------------------------------
# Reading the document


@asynccontextmanager
async def _source_file(
    upload: Upload, parts: PartSource, max_bytes: int, allow_private_urls: bool
) -> AsyncIterator[Path]:
    """The file holding the upload: a request part, or a URL fetched into a
    temporary file (removed afterwards)."""
    source = upload.source
    scheme = source.partition(":")[0].lower()
    if scheme == "param":
        yield _part_file(upload.name, source.partition(":")[2], parts, max_bytes)
    elif scheme in ("http", "https"):
        # Imported here: runner processes load aiohttp only when a URL is uploaded.
        from taprunner.query.urlfetch import fetch_upload

        with tempfile.NamedTemporaryFile(prefix="tap-upload-") as out:
            await fetch_upload(
                upload.name,
                source,
                out,
                max_bytes=max_bytes,
                allow_private=allow_private_urls,
                seconds=FETCH_TIMEOUT,
            )
            out.flush()
            yield Path(out.name)
    else:
        raise TapUsageError(
            f"upload {upload.name!r}: unsupported source {source!r} "
            "(use param:name or an http(s) URL)"
        )


def _part_file(name: str, part: str, parts: PartSource, max_bytes: int) -> Path:
    path = _find_part(part, parts)
    if path is None:
        raise TapUsageError(f"upload {name!r}: the request has no part named {part!r}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise TapUsageError(f"upload {name!r}: cannot read part {part!r}") from exc
    if size > max_bytes:
        raise TapUsageError(too_large(name, max_bytes))
    return path


def _find_part(part: str, parts: PartSource) -> Path | None:
    if callable(parts):
        return parts(part)
    if part in parts:
        return parts[part]
    # Parameter names are case-insensitive in DALI; accept an unambiguous match.
    matches = [path for key, path in parts.items() if key.lower() == part.lower()]
    return matches[0] if len(matches) == 1 else None


# --------------------------------------------------------------------------------
# The temporary tables: filled by one COPY as the document is read (.uploadfill)


async def _create_table(
    conn: Connection,
    table: UploadTable,
    types: Sequence[str],
    role: str | None,
    fill: Fill,
) -> int:
    """Create, fill and ANALYZE ``table``; the rows loaded."""
    definition = ", ".join(
        f"{quote_identifier(c)} {t}" for c, t in zip(table.columns, types, strict=True)
    )
    schema, _, physical = table.sql_name.partition(".")
    try:
        async with conn.transaction():
            await conn.execute(
                f"CREATE TEMPORARY TABLE {table.sql_name} ({definition})"
            )
            if role is not None:
                await _let_role_read(conn, table.sql_name, role)
            rows = await fill(conn, schema, physical, list(table.columns))
            # statistics: the planner then picks the published table's indexes
            await conn.execute(f"ANALYZE {table.sql_name}")
    except (
        asyncpg.DataError,
        asyncpg.SyntaxOrAccessError,
        asyncpg.ProgramLimitExceededError,
    ) as exc:
        raise TapUsageError(
            f"upload {table.name!r} could not be loaded: {exc}"
        ) from exc
    return rows


async def _let_role_read(conn: Connection, sql_name: str, role: str) -> None:
    """GRANT SELECT on the table, and make sure ``role`` may use ``pg_temp``.

    PostgreSQL gives a role USAGE on the session's temporary schema exactly when
    it has the TEMPORARY privilege on the database (PUBLIC has it by default).
    """
    role_sql = quote_identifier(role)
    await conn.execute(f"GRANT SELECT ON {sql_name} TO {role_sql}")
    usable = await conn.fetchval(
        "SELECT has_schema_privilege($1, pg_my_temp_schema(), 'USAGE')", role
    )
    if not usable:
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute(
            f"GRANT TEMPORARY ON DATABASE {quote_identifier(database)} TO {role_sql}"
        )


async def _drop_tables(conn: Connection, tables: Sequence[UploadTable]) -> None:
    if not tables:
        return
    names = ", ".join(t.sql_name for t in tables)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {names}")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        # Temporary tables end with the session: end it rather than leave the
        # tables behind on a connection that is reused.
        log.warning(
            "dropping upload tables failed; closing the connection", exc_info=True
        )
        conn.terminate()
