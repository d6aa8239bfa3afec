"""A published column's VOTable type: derived from PostgreSQL, or declared.

:func:`votable_type` maps PostgreSQL types to VOTable ``(datatype, arraysize,
xtype)`` (TAP 1.1 section 4.3); :func:`column_type` applies what a metadata file
declares on top (a ``double precision[]`` published as a DALI point, ``int`` as
``long``, text as ASCII ``char``), refusing what the result writers could not
write so (:func:`taprunner.formats.fields.declared_field` is their side).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import asyncpg

from taprunner.formats.fields import WIDER
from taprunner.formats.pgtypes import TEXT_TYPES
from taprunner.schema.catalog import Connection
from taprunner.schema.metadata import ColumnMetadata, MetadataError

__all__ = ["COLUMNS_SQL", "check_array_lengths", "column_type", "votable_type"]

# typname -> (datatype, arraysize, xtype); arraysize None means a scalar.
_SCALAR_TYPES: Mapping[str, tuple[str, str | None, str | None]] = {
    "bool": ("boolean", None, None),
    "int2": ("short", None, None),
    "int4": ("int", None, None),
    "int8": ("long", None, None),
    "float4": ("float", None, None),
    "float8": ("double", None, None),
    "numeric": ("double", None, None),
    # Text is unicodeChar: the result writer emits it so, because astropy reads
    # binary ``char`` as ASCII only and so fails on any non-ASCII value.
    "text": ("unicodeChar", "*", None),
    "name": ("unicodeChar", "*", None),
    "char": ("unicodeChar", "1", None),
    "uuid": ("char", "36", None),
    "bytea": ("unsignedByte", "*", None),
    "date": ("char", "*", "timestamp"),
    "timestamp": ("char", "*", "timestamp"),
    "timestamptz": ("char", "*", "timestamp"),
    "spoint": ("double", "2", "point"),
    "scircle": ("double", "3", "circle"),
    "spoly": ("double", "*", "polygon"),
}
_ARRAY_ELEMENTS = {"bool", "int2", "int4", "int8", "float4", "float8", "numeric"}
_FALLBACK = ("unicodeChar", "*", None)


def votable_type(
    typname: str, typmod: int = -1, *, array: bool = False
) -> tuple[str, str | None, str | None]:
    """Map a PostgreSQL type to ``(datatype, arraysize, xtype)`` for TAP_SCHEMA.

    ``typname`` is ``pg_type.typname`` (the element type for arrays) and
    ``typmod`` is ``pg_attribute.atttypmod``. Types without a VOTable
    equivalent (time, interval, json, ...) are published as ``char *``: the
    VOTable writer renders them as text.
    """
    if array:
        if typname in _ARRAY_ELEMENTS:
            return _SCALAR_TYPES[typname][0], "*", None
        return _FALLBACK
    if typname in ("varchar", "bpchar"):
        if typmod < 4:
            return "unicodeChar", "*", None
        length = typmod - 4
        size = f"{length}*" if typname == "varchar" else str(length)
        return "unicodeChar", size, None
    return _SCALAR_TYPES.get(typname, _FALLBACK)


COLUMNS_SQL = """
SELECT a.attname AS name, a.attnum AS position, a.atttypmod AS typmod,
       CASE WHEN t.typcategory = 'A' THEN e.typname ELSE t.typname END AS typname,
       t.typcategory = 'A' AS is_array,
       EXISTS (
           SELECT FROM pg_index i
           WHERE i.indrelid = a.attrelid
             AND (i.indkey[0] = a.attnum
                  OR (i.indexprs IS NOT NULL AND EXISTS (
                      SELECT FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass
                        AND d.objid = i.indexrelid
                        AND d.refobjid = a.attrelid
                        AND d.refobjsubid = a.attnum)))
       ) AS indexed
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type e ON e.oid = t.typelem
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
"""The columns of a relation (``$1``, an oid): name, position, type, indexed."""


def derived_type(row: asyncpg.Record) -> tuple[str, str | None, str | None]:
    """The VOTable type of a :data:`COLUMNS_SQL` row, as PostgreSQL gives it."""
    return votable_type(row["typname"], row["typmod"], array=row["is_array"])


def column_type(
    row: asyncpg.Record, meta: ColumnMetadata, *, source: str, where: str
) -> tuple[str, str | None, str | None]:
    """The published ``(datatype, arraysize, xtype)`` of a :data:`COLUMNS_SQL`
    row with what ``meta`` declares (``source``, ``where``: the file and the
    column's key in it, such as ``columns.ra.``).

    Raises
    ------
    MetadataError
        If the declaration does not fit the column's values: a datatype that
        cannot hold them, an arraysize on a scalar or text column, none on an
        array, a type on a pg_sphere geometry or a date. (Declaring what the
        column has anyway is no error.)
    """
    datatype, arraysize, xtype = derived_type(row)
    meta = replace(  # what the column has anyway is no declaration
        meta,
        datatype=None if meta.datatype == datatype else meta.datatype,
        arraysize=None if meta.arraysize == (arraysize or "") else meta.arraysize,
        xtype=None if meta.xtype == (xtype or "") else meta.xtype,
    )
    if meta.datatype is meta.arraysize is meta.xtype is None:
        return datatype, arraysize, xtype
    typname = row["typname"] + ("[]" if row["is_array"] else "")
    if xtype is not None:  # pg_sphere geometry, dates: the writers fix the type
        given = next(
            k
            for k in ("datatype", "arraysize", "xtype")
            if getattr(meta, k) is not None
        )
        raise MetadataError(
            source,
            where + given,
            f"a {typname} column is published as {xtype}; its type is not declared",
        )
    if meta.datatype is not None:
        if datatype in ("char", "unicodeChar"):
            allowed: frozenset[str] = frozenset({"char", "unicodeChar"})
            if row["typname"] not in TEXT_TYPES or row["is_array"]:
                allowed = frozenset({datatype})
        else:
            allowed = WIDER.get(datatype, frozenset({datatype}))
        if meta.datatype not in allowed:
            raise MetadataError(
                source,
                where + "datatype",
                f"{meta.datatype!r} cannot hold the values of this {typname}"
                f" column (allowed: {', '.join(sorted(allowed))})",
            )
        datatype = meta.datatype
    if meta.arraysize is not None:
        if arraysize is None or datatype in ("char", "unicodeChar"):
            if meta.arraysize:
                raise MetadataError(
                    source,
                    where + "arraysize",
                    f"the arraysize of a {typname} column cannot be declared",
                )
        elif not meta.arraysize:
            raise MetadataError(
                source, where + "arraysize", f"a {typname} column is an array"
            )
        else:
            arraysize = meta.arraysize
    if meta.xtype is not None:
        xtype = meta.xtype or None
    return datatype, arraysize, xtype


async def check_array_lengths(
    conn: Connection, relation: str, column: str, arraysize: str
) -> int:
    """How many rows of ``relation`` hold in ``column`` an array that does not
    fit ``arraysize`` (fixed ``2``, ``3x3``: that many elements; ``10*``: at
    most 10). ``relation`` and ``column`` are quoted SQL names."""
    sizes = arraysize.rstrip("*").split("x")
    if not arraysize.endswith("*"):
        count = 1
        for size in sizes:
            count *= int(size)
        test = f"cardinality({column}) <> {count}"
    elif sizes[-1]:
        test = f"cardinality({column}) > {int(sizes[-1])}"
    else:
        return 0
    found: int = await conn.fetchval(
        f"SELECT count(*) FROM {relation} WHERE {column} IS NOT NULL AND {test}"
    )
    return found
