"""The FIELDs of a query's result: from its statement's column types, with
what the catalogue knows of the columns (units, UCDs, declared types)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

from taprunner.adql.model import Catalog, OutputColumn
from taprunner.formats.fields import FieldSpec, declared_field, field_for_pg_type
from taprunner.formats.pgtypes import TEXT_TYPES
from taprunner.schema.catalog import ColumnInfo

__all__ = ["DescribingCatalog", "result_fields"]


@runtime_checkable
class DescribingCatalog(Protocol):
    """A catalogue that also knows units, UCDs and descriptions (TAP_SCHEMA)."""

    def column_info(self, table: str, column: str) -> ColumnInfo | None: ...


def result_fields(
    columns: Sequence[OutputColumn], attributes: Sequence[object], catalog: Catalog
) -> list[FieldSpec]:
    """The result's FIELDs: from the statement's column types, with the units,
    UCDs and descriptions of a catalogue that knows them (TAP_SCHEMA)."""
    described = catalog if isinstance(catalog, DescribingCatalog) else None
    fields = []
    for column, attribute in zip(columns, attributes, strict=True):
        pg_type = attribute.type.name  # type: ignore[attr-defined]
        meta: dict[str, str | None] = {}
        info: ColumnInfo | None = None
        if described is not None and column.table and column.column:
            info = described.column_info(column.table, column.column)
            if info is not None:
                meta = {
                    "unit": info.unit,
                    "ucd": info.ucd,
                    "utype": info.utype,
                    "description": info.description,
                }
                if info.xtype and pg_type not in ("float8", "_float8"):
                    meta["xtype"] = info.xtype
                if info.datatype == "char" and pg_type in TEXT_TYPES:
                    meta["datatype"] = "char"  # declared so: ASCII (uploads)
        field = field_for_pg_type(column.name, pg_type, **meta)
        if info is not None:  # a type declared in TAP_SCHEMA (metadata file)
            declared = declared_field(field, info.datatype, info.arraysize, info.xtype)
            field = field if declared is None else declared
        if column.xtype is not None:
            size = {"point": "2", "circle": "3"}.get(column.xtype, "*")
            field = replace(
                field, datatype="double", arraysize=size, xtype=column.xtype
            )
        fields.append(field)
    return fields
