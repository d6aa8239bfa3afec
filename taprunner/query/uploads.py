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
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from taprunner.adql.model import Catalog, GeometryCatalog, NamingCatalog
from taprunner.adql.sqltext import quote_identifier
from taprunner.errors import TapUsageError
from taprunner.query.uploadgeom import loaded_infos
from taprunner.query.uploadlimits import UploadLimits, check_upload
from taprunner.query.uploadparse import ParsedUpload, parse_votable
from taprunner.request import Upload
from taprunner.schema.catalog import ColumnInfo, Connection
from taprunner.schema.tapschema import QUERY_ROLE
from taprunner.settings import TapSettings

__all__ = ["MAX_ROWS", "PartSource", "UploadCatalog", "job_parts", "load_uploads"]

log = logging.getLogger(__name__)

#: Default limit on the rows of one uploaded table.
MAX_ROWS = 1_000_000
#: Upload rows encoded for COPY between two turns of the event loop.
RECORDS_PER_TURN = 2000
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
    """Read, check, parse and load one upload, adding it to ``loaded``.

    A function of its own so that the bytes and rows are freed before the
    query runs, rather than kept alive by the context manager's frame. The
    check and the parsing run in a worker thread, off the event loop.
    """
    data = await _read_source(upload, parts, max_bytes, allow_private_urls)
    parsed = await asyncio.to_thread(_parse, upload.name, data, max_rows, limits)
    del data
    physical = f"pg_temp.tap_upload_{secrets.token_hex(8)}"
    table = UploadTable(upload.name, physical, parsed.columns, len(parsed.records))
    loaded.append(table)  # before creating it: dropped even if cancelled
    await _create_table(conn, table, parsed, role)
    table.infos.update(await loaded_infos(conn, table.sql_name, upload.name, parsed))


def _parse(name: str, data: bytes, max_rows: int, limits: UploadLimits) -> ParsedUpload:
    """The upload checked for its size (before astropy expands it), then parsed."""
    check_upload(name, data, limits)
    return parse_votable(name, data, max_rows)


# --------------------------------------------------------------------------------
# Reading the bytes


async def _read_source(
    upload: Upload, parts: PartSource, max_bytes: int, allow_private_urls: bool
) -> bytes:
    source = upload.source
    scheme = source.partition(":")[0].lower()
    if scheme == "param":
        return _read_part(upload.name, source.partition(":")[2], parts, max_bytes)
    if scheme in ("http", "https"):
        return await _fetch(upload.name, source, max_bytes, allow_private_urls)
    raise TapUsageError(
        f"upload {upload.name!r}: unsupported source {source!r} "
        "(use param:name or an http(s) URL)"
    )


def _read_part(name: str, part: str, parts: PartSource, max_bytes: int) -> bytes:
    path = _find_part(part, parts)
    if path is None:
        raise TapUsageError(f"upload {name!r}: the request has no part named {part!r}")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise TapUsageError(_too_large(name, max_bytes))
        return path.read_bytes()
    except OSError as exc:
        raise TapUsageError(f"upload {name!r}: cannot read part {part!r}") from exc


def _find_part(part: str, parts: PartSource) -> Path | None:
    if callable(parts):
        return parts(part)
    if part in parts:
        return parts[part]
    # Parameter names are case-insensitive in DALI; accept an unambiguous match.
    matches = [path for key, path in parts.items() if key.lower() == part.lower()]
    return matches[0] if len(matches) == 1 else None


async def _fetch(name: str, url: str, max_bytes: int, allow_private: bool) -> bytes:
    """GET ``url`` from a public address only; every failure reads the same.

    The client chooses the URL, so the fetch must not become a way into the
    service's own network (SSRF) or a port scanner: IP literals and every address
    a host name resolves to must be global, the connection goes only to an address
    so checked (the resolver refuses others, so DNS rebinding cannot swap it),
    redirects are not followed, and connection failures, HTTP errors and timeouts
    give one message. ``allow_private`` lifts the address check (tests).
    """
    # Imported here: runner processes load aiohttp only when a URL is uploaded.
    import aiohttp

    from taprunner.query.urlfetch import NotPublicError, check_literal_host, connector

    cannot = f"upload {name!r}: cannot fetch {url}"
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
    try:
        if not allow_private:
            check_literal_host(url)
        async with (
            aiohttp.ClientSession(
                timeout=timeout, connector=connector(allow_private), trust_env=False
            ) as session,
            session.get(url, allow_redirects=False) as response,
        ):
            if 300 <= response.status < 400:
                raise TapUsageError(f"{cannot} (redirects are not followed)")
            response.raise_for_status()
            if (response.content_length or 0) > max_bytes:
                raise TapUsageError(_too_large(name, max_bytes))
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise TapUsageError(_too_large(name, max_bytes))
                chunks.append(chunk)
            return b"".join(chunks)
    except (NotPublicError, TimeoutError, aiohttp.ClientError, ValueError) as exc:
        log.info("upload fetch failed", extra={"url": url, "reason": str(exc)})
        raise TapUsageError(cannot) from exc


def _too_large(name: str, max_bytes: int) -> str:
    return f"upload {name!r} is larger than the limit of {max_bytes} bytes"


# --------------------------------------------------------------------------------
# The temporary tables


async def _create_table(
    conn: Connection, table: UploadTable, parsed: ParsedUpload, role: str | None
) -> None:
    definition = ", ".join(
        f"{quote_identifier(c)} {t}"
        for c, t in zip(parsed.columns, parsed.sql_types, strict=True)
    )
    schema, _, physical = table.sql_name.partition(".")
    try:
        async with conn.transaction():
            await conn.execute(
                f"CREATE TEMPORARY TABLE {table.sql_name} ({definition})"
            )
            if role is not None:
                await _let_role_read(conn, table.sql_name, role)
            await conn.copy_records_to_table(
                physical,
                records=_yielding(parsed.records),
                columns=list(parsed.columns),
                schema_name=schema,
            )
            await conn.execute(f"ANALYZE {table.sql_name}")
    except (
        asyncpg.DataError,
        asyncpg.SyntaxOrAccessError,
        asyncpg.ProgramLimitExceededError,
    ) as exc:
        raise TapUsageError(
            f"upload {table.name!r} could not be loaded: {exc}"
        ) from exc


async def _yielding(
    records: Sequence[tuple[object, ...]],
) -> AsyncIterator[tuple[object, ...]]:
    """``records``, letting the event loop run every RECORDS_PER_TURN of them
    (asyncpg encodes COPY data on the loop, without pausing otherwise)."""
    for start in range(0, len(records), RECORDS_PER_TURN):
        for record in records[start : start + RECORDS_PER_TURN]:
            yield record
        await asyncio.sleep(0)


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
