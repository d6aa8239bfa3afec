"""An uploaded table's columns as loaded: geometry made pg_sphere, char kept.

After the loader (:mod:`.uploads`) filled the temporary table, DALI geometry
columns (double arrays, xtype point, circle, polygon) become pg_sphere
``spoint``, ``scircle`` and ``spoly`` where pg_sphere is installed, so that the
ADQL geometry functions take them; the column infos returned tell the
translator their xtypes and the result writer which text columns stay ``char``.
"""

from __future__ import annotations

import asyncpg

from taprunner.adql.sqltext import quote_identifier
from taprunner.errors import TapUsageError
from taprunner.query.uploadparse import ParsedUpload
from taprunner.schema.catalog import ColumnInfo, Connection

__all__ = ["loaded_infos"]

#: pg_sphere values of DALI geometry arrays (degrees): ``{0}`` is the column.
#: A polygon goes through pg_sphere's text form, vertices in degrees ``(xd,yd)``
#: (ALTER ... USING takes no subquery, so no spoly aggregate).
_TO_PG_SPHERE = {
    "point": ("spoint", "spoint(radians({0}[1]), radians({0}[2]))"),
    "circle": (
        "scircle",
        "scircle(spoint(radians({0}[1]), radians({0}[2])), radians({0}[3]))",
    ),
    "polygon": (
        "spoly",
        "CAST('{{' || regexp_replace(array_to_string({0}, ','),"
        " '([^,]+),([^,]+)(,|$)', '(\\1d,\\2d)\\3', 'g') || '}}' AS spoly)",
    ),
}


#: The SQLSTATE of pg_sphere's input errors (``internal_error``: it raises them
#: without a code of their own).
_PG_SPHERE = "XX000"


async def _has_pg_sphere(conn: Connection) -> bool:
    return bool(await conn.fetchval("SELECT to_regtype('spoint') IS NOT NULL"))


async def loaded_infos(
    conn: Connection, sql_name: str, name: str, parsed: ParsedUpload
) -> dict[str, ColumnInfo]:
    """Make the geometry columns of upload ``name`` (table ``sql_name``)
    pg_sphere values if pg_sphere is there; the columns' infos (geometry
    xtypes, char kept).

    Raises TapUsageError for geometry values pg_sphere refuses."""
    infos = _char_infos(parsed)
    if any(parsed.geometry) and await _has_pg_sphere(conn):
        infos.update(await _make_geometry(conn, sql_name, name, parsed))
    return infos


async def _make_geometry(
    conn: Connection, sql_name: str, name: str, parsed: ParsedUpload
) -> dict[str, ColumnInfo]:
    """Turn the DALI geometry columns into pg_sphere ones."""
    infos = {}
    changes = []
    for column, xtype in zip(parsed.columns, parsed.geometry, strict=True):
        if xtype is not None:
            sql_type, using = _TO_PG_SPHERE[xtype]
            quoted = quote_identifier(column)
            changes.append(
                f"ALTER COLUMN {quoted} TYPE {sql_type} USING {using.format(quoted)}"
            )
            infos[column] = ColumnInfo(name=column, datatype="double", xtype=xtype)
    try:
        await conn.execute(f"ALTER TABLE {sql_name} {', '.join(changes)}")
        await conn.execute(f"ANALYZE {sql_name}")
    except asyncpg.PostgresError as exc:
        # pg_sphere refuses a value (a polygon of coinciding vertices or on
        # one great circle; ranges and infinities are checked before, by
        # uploadparse.check_geometry) with the internal-error SQLSTATE XX000,
        # not a data error (22...).
        if not isinstance(exc, asyncpg.DataError) and exc.sqlstate != _PG_SPHERE:
            raise
        raise TapUsageError(
            f"upload {name!r}: a geometry could not be loaded: {exc}"
        ) from exc
    return infos


def _char_infos(parsed: ParsedUpload) -> dict[str, ColumnInfo]:
    """The uploaded char columns of ASCII values: results keep them char."""
    return {
        column: ColumnInfo(name=column, datatype="char", arraysize="*")
        for column, kept in zip(parsed.columns, parsed.kept_char, strict=True)
        if kept
    }
