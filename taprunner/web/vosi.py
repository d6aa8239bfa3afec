"""VOSI 1.1 tables and availability documents.

Pure rendering with lxml: each function takes plain values and returns the UTF-8
bytes of one document, valid against the IVOA schemas (VOSI 1.1, VODataService
1.1). The capabilities are rendered by :mod:`.capabilities`, the DALI examples
by :mod:`.examples`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from taprunner.schema.catalog import ColumnInfo, TableInfo
from taprunner.web.xmldoc import (
    NS_VOSI_AVAILABILITY,
    NS_VOSI_TABLES,
    NS_VS,
    NS_XSI,
    XSI_TYPE,
    sub,
    to_bytes,
)

__all__ = ["availability_document", "table_document", "tables_document"]


def tables_document(
    tables: Sequence[TableInfo], *, detail: Literal["min", "max"] = "max"
) -> bytes:
    """Render a VOSI 1.1 ``vosi:tableset``, grouping tables by schema in order.

    With ``detail="min"`` the columns and foreign keys are left out (VOSI 1.1
    section 3.4). An empty ``tables`` gives one empty ``tap_schema`` schema, since
    a tableset needs at least one schema.
    """
    root = etree.Element(
        f"{{{NS_VOSI_TABLES}}}tableset",
        nsmap={"vosi": NS_VOSI_TABLES, "vs": NS_VS, "xsi": NS_XSI},
    )
    schemas: dict[str, list[TableInfo]] = {}
    for table in tables:
        schemas.setdefault(table.schema, []).append(table)
    for schema_name, members in (schemas or {"tap_schema": []}).items():
        schema = sub(root, "schema")
        sub(schema, "name", schema_name)
        for table in members:
            _fill_table(sub(schema, "table"), table, columns=detail == "max")
    return to_bytes(root)


def table_document(table: TableInfo) -> bytes:
    """Render the VOSI 1.1 ``vosi:table`` document of one table, with columns."""
    root = etree.Element(
        f"{{{NS_VOSI_TABLES}}}table",
        nsmap={"vosi": NS_VOSI_TABLES, "vs": NS_VS, "xsi": NS_XSI},
    )
    _fill_table(root, table, columns=True)
    return to_bytes(root)


def _fill_table(element: etree._Element, table: TableInfo, *, columns: bool) -> None:
    element.set("type", table.type)
    sub(element, "name", table.name)
    if table.description:
        sub(element, "description", table.description)
    if table.utype:
        sub(element, "utype", table.utype)
    if table.nrows is not None:  # VODataService 1.2
        sub(element, "nrows", str(table.nrows))
    if not columns:
        return
    for column in table.columns:
        _column(sub(element, "column"), column)
    for key in table.foreign_keys:
        foreign_key = sub(element, "foreignKey")
        sub(foreign_key, "targetTable", key.target_table)
        for from_column, target_column in key.columns:
            pair = sub(foreign_key, "fkColumn")
            sub(pair, "fromColumn", from_column)
            sub(pair, "targetColumn", target_column)
        if key.description:
            sub(foreign_key, "description", key.description)
        if key.utype:
            sub(foreign_key, "utype", key.utype)


def _column(element: etree._Element, column: ColumnInfo) -> None:
    if column.std:
        element.set("std", "true")
    sub(element, "name", column.name)
    for tag in ("description", "unit", "ucd", "utype"):
        value = getattr(column, tag)
        if value:
            sub(element, tag, value)
    datatype = sub(element, "dataType", column.datatype)
    datatype.set(XSI_TYPE, "vs:VOTableType")
    if column.arraysize:
        datatype.set("arraysize", column.arraysize)
    if column.xtype:
        datatype.set("extendedType", column.xtype)
    if column.indexed:
        sub(element, "flag", "indexed")
    if column.principal:
        sub(element, "flag", "principal")


def availability_document(
    available: bool, note: str, up_since: datetime | None
) -> bytes:
    """Render the VOSI ``vosi:availability`` document.

    Raises
    ------
    ValueError
        If ``up_since`` is a naive datetime.
    """
    root = etree.Element(
        f"{{{NS_VOSI_AVAILABILITY}}}availability", nsmap={"vosi": NS_VOSI_AVAILABILITY}
    )
    sub(root, f"{{{NS_VOSI_AVAILABILITY}}}available", "true" if available else "false")
    if up_since is not None:
        if up_since.tzinfo is None:
            raise ValueError("up_since must be timezone-aware")
        stamp = up_since.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
        sub(root, f"{{{NS_VOSI_AVAILABILITY}}}upSince", stamp)
    if note:
        sub(root, f"{{{NS_VOSI_AVAILABILITY}}}note", note)
    return to_bytes(root)
