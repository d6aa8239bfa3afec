"""VOSI 1.1 documents (tables, capabilities, availability) and DALI examples.

Pure rendering with lxml: each function takes plain values and returns the UTF-8
bytes of one document. The XML validates against the IVOA schemas (VOSI 1.1,
VODataService 1.1, VOResource 1.2, TAPRegExt 1.0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Literal

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from taprunner.adql.features import (
    FEATURES_COMMON_TABLE,
    FEATURES_GEO,
    FEATURES_OFFSET,
    FEATURES_SETS,
    FEATURES_STRING,
    FEATURES_TYPE,
    FEATURES_UDF,
    TAPREGEXT,
    LanguageFeature,
)
from taprunner.adql.functions import language_features
from taprunner.formats.registry import OUTPUT_FORMATS
from taprunner.formats.registry import TapRegExtFormat as OutputFormat
from taprunner.schema.catalog import ColumnInfo, TableInfo

NS_VOSI_TABLES = "http://www.ivoa.net/xml/VOSITables/v1.0"
NS_VOSI_CAPABILITIES = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
NS_VOSI_AVAILABILITY = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
NS_VR = "http://www.ivoa.net/xml/VOResource/v1.0"
NS_VS = "http://www.ivoa.net/xml/VODataService/v1.1"
NS_TR = "http://www.ivoa.net/xml/TAPRegExt/v1.0"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_XHTML = "http://www.w3.org/1999/xhtml"

_XSI_TYPE = f"{{{NS_XSI}}}type"

__all__ = [
    "DEFAULT_EXAMPLES",
    "DEFAULT_LANGUAGE_FEATURES",
    "DEFAULT_OUTPUT_FORMATS",
    "DEFAULT_UDFS",
    "DEFAULT_UPLOAD_METHODS",
    "FEATURES_COMMON_TABLE",
    "FEATURES_GEO",
    "FEATURES_OFFSET",
    "FEATURES_SETS",
    "FEATURES_STRING",
    "FEATURES_TYPE",
    "FEATURES_UDF",
    "LanguageFeature",
    "OutputFormat",
    "availability_document",
    "capabilities_document",
    "examples_document",
    "table_document",
    "tables_document",
]

STD_TAP = "ivo://ivoa.net/std/TAP"
STD_VOSI_CAPABILITIES = "ivo://ivoa.net/std/VOSI#capabilities"
STD_VOSI_AVAILABILITY = "ivo://ivoa.net/std/VOSI#availability"
STD_VOSI_TABLES = "ivo://ivoa.net/std/VOSI#tables-1.1"
STD_DALI_EXAMPLES = "ivo://ivoa.net/std/DALI#examples"

_ADVERTISED = language_features()
DEFAULT_LANGUAGE_FEATURES: Mapping[str, tuple[LanguageFeature, ...]] = {
    kind: members for kind, members in _ADVERTISED.items() if kind != FEATURES_UDF
}
"""ADQL 2.1 optional features the translator supports, by TAPRegExt feature type
(from the translator's function table and syntax features)."""
DEFAULT_UDFS: tuple[LanguageFeature, ...] = _ADVERTISED.get(FEATURES_UDF, ())
"""The user-defined functions the translator supports, with their signatures."""

DEFAULT_OUTPUT_FORMATS: tuple[OutputFormat, ...] = tuple(
    f.capability for f in OUTPUT_FORMATS
)
"""Output formats in RESPONSEFORMAT order (the format registry's); the first one
is the default."""

DEFAULT_UPLOAD_METHODS: tuple[str, ...] = (
    f"{TAPREGEXT}#upload-inline",
    f"{TAPREGEXT}#upload-http",
    f"{TAPREGEXT}#upload-https",
)

DEFAULT_EXAMPLES: tuple[tuple[str, str, str], ...] = (
    (
        "Cone search",
        "Stars within half a degree of (ra, dec) = (180, 0), using the"
        " positional index of demo.stars.",
        "SELECT id, ra, dec, mag FROM demo.stars\n"
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 180.0, 0.0, 0.5))",
    ),
    (
        "Nearest stars",
        "The five stars nearest to a position, with their angular distance in degrees.",
        "SELECT TOP 5 id, name, DISTANCE(POINT('ICRS', ra, dec),"
        " POINT('ICRS', 10.68, 41.27)) AS dist\n"
        "FROM demo.stars\n"
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec),"
        " CIRCLE('ICRS', 10.68, 41.27, 1.0))\n"
        "ORDER BY dist",
    ),
    (
        "Brightest stars",
        "The ten brightest stars of the demo catalogue.",
        "SELECT TOP 10 id, name, ra, dec, mag FROM demo.stars ORDER BY mag",
    ),
    (
        "Magnitude histogram",
        "Number of stars per one-magnitude bin.",
        "SELECT FLOOR(mag) AS bin, COUNT(*) AS n FROM demo.stars\n"
        "GROUP BY bin ORDER BY bin",
    ),
    (
        "Published tables",
        "Every table this service publishes, from TAP_SCHEMA.",
        "SELECT table_name, table_type, description FROM TAP_SCHEMA.tables\n"
        "ORDER BY table_name",
    ),
    (
        "Columns of a table",
        "The columns of demo.stars with their types, units and UCDs.",
        "SELECT column_name, datatype, arraysize, unit, ucd, description\n"
        "FROM TAP_SCHEMA.columns WHERE table_name = 'demo.stars'\n"
        "ORDER BY column_index",
    ),
)
"""(name, description, ADQL query) of the default DALI examples."""


def _to_bytes(root: etree._Element) -> bytes:
    return bytes(
        etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    )


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


# --------------------------------------------------------------------------------
# Tables


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
        schema = _sub(root, "schema")
        _sub(schema, "name", schema_name)
        for table in members:
            _fill_table(_sub(schema, "table"), table, columns=detail == "max")
    return _to_bytes(root)


def table_document(table: TableInfo) -> bytes:
    """Render the VOSI 1.1 ``vosi:table`` document of one table, with columns."""
    root = etree.Element(
        f"{{{NS_VOSI_TABLES}}}table",
        nsmap={"vosi": NS_VOSI_TABLES, "vs": NS_VS, "xsi": NS_XSI},
    )
    _fill_table(root, table, columns=True)
    return _to_bytes(root)


def _fill_table(element: etree._Element, table: TableInfo, *, columns: bool) -> None:
    element.set("type", table.type)
    _sub(element, "name", table.name)
    if table.description:
        _sub(element, "description", table.description)
    if table.utype:
        _sub(element, "utype", table.utype)
    if not columns:
        return
    for column in table.columns:
        _column(_sub(element, "column"), column)
    for key in table.foreign_keys:
        foreign_key = _sub(element, "foreignKey")
        _sub(foreign_key, "targetTable", key.target_table)
        for from_column, target_column in key.columns:
            pair = _sub(foreign_key, "fkColumn")
            _sub(pair, "fromColumn", from_column)
            _sub(pair, "targetColumn", target_column)
        if key.description:
            _sub(foreign_key, "description", key.description)
        if key.utype:
            _sub(foreign_key, "utype", key.utype)


def _column(element: etree._Element, column: ColumnInfo) -> None:
    if column.std:
        element.set("std", "true")
    _sub(element, "name", column.name)
    for tag in ("description", "unit", "ucd", "utype"):
        value = getattr(column, tag)
        if value:
            _sub(element, tag, value)
    datatype = _sub(element, "dataType", column.datatype)
    datatype.set(_XSI_TYPE, "vs:VOTableType")
    if column.arraysize:
        datatype.set("arraysize", column.arraysize)
    if column.xtype:
        datatype.set("extendedType", column.xtype)
    if column.indexed:
        _sub(element, "flag", "indexed")
    if column.principal:
        _sub(element, "flag", "principal")


# --------------------------------------------------------------------------------
# Capabilities


def capabilities_document(
    base_url: str,
    *,
    upload_limit_bytes: int,
    max_rec_default: int,
    max_rec_hard: int,
    retention_default_s: int,
    retention_hard_s: int,
    execution_default_s: int,
    execution_hard_s: int,
    output_formats: Sequence[OutputFormat] = DEFAULT_OUTPUT_FORMATS,
    udfs: Sequence[LanguageFeature] = DEFAULT_UDFS,
    language_features: Mapping[str, Sequence[LanguageFeature]] = (
        DEFAULT_LANGUAGE_FEATURES
    ),
    upload_methods: Sequence[str] = DEFAULT_UPLOAD_METHODS,
    security_methods: Sequence[str | None] = (None,),
) -> bytes:
    """Render the VOSI ``vosi:capabilities`` document of the TAP service.

    ``base_url`` is the TAP base URL without a trailing slash. ``udfs`` are
    the user-defined functions, with ``form`` the ADQL signature (TAPRegExt
    section 2.3). ``security_methods`` lists the security method standardIDs,
    ``None`` meaning anonymous access; each gets its own interface, as
    VOResource allows one securityMethod per interface.
    """
    base_url = base_url.rstrip("/")
    root = etree.Element(
        f"{{{NS_VOSI_CAPABILITIES}}}capabilities",
        nsmap={
            "vosi": NS_VOSI_CAPABILITIES,
            "vr": NS_VR,
            "vs": NS_VS,
            "tr": NS_TR,
            "xsi": NS_XSI,
        },
    )
    tap = _capability(root, STD_TAP, "tr:TableAccess")
    _interfaces(tap, base_url, security_methods, std=True)
    features = dict(language_features)
    if udfs:
        features[FEATURES_UDF] = tuple(udfs)
    _language(tap, features)
    for output_format in output_formats:
        _output_format(tap, output_format)
    for method in upload_methods:
        _sub(tap, "uploadMethod").set("ivo-id", method)
    _limits(tap, "retentionPeriod", retention_default_s, retention_hard_s)
    _limits(tap, "executionDuration", execution_default_s, execution_hard_s)
    _limits(tap, "outputLimit", max_rec_default, max_rec_hard, unit="row")
    _limits(tap, "uploadLimit", upload_limit_bytes, upload_limit_bytes, unit="byte")
    for standard_id, path in (
        (STD_VOSI_CAPABILITIES, "capabilities"),
        (STD_VOSI_AVAILABILITY, "availability"),
        (STD_VOSI_TABLES, "tables"),
    ):
        capability = _capability(root, standard_id)
        _interfaces(capability, f"{base_url}/{path}", security_methods)
    examples = _capability(root, STD_DALI_EXAMPLES)
    interface = _sub(examples, "interface")
    interface.set(_XSI_TYPE, "vr:WebBrowser")
    _sub(interface, "accessURL", f"{base_url}/examples").set("use", "full")
    return _to_bytes(root)


def _capability(
    root: etree._Element, standard_id: str, xsi_type: str | None = None
) -> etree._Element:
    capability = _sub(root, "capability")
    capability.set("standardID", standard_id)
    if xsi_type:
        capability.set(_XSI_TYPE, xsi_type)
    return capability


def _interfaces(
    capability: etree._Element,
    url: str,
    security_methods: Sequence[str | None],
    *,
    std: bool = False,
) -> None:
    for method in security_methods:
        interface = _sub(capability, "interface")
        interface.set(_XSI_TYPE, "vs:ParamHTTP")
        if std:
            interface.set("role", "std")
            interface.set("version", "1.1")
        _sub(interface, "accessURL", url).set("use", "base" if std else "full")
        if method is not None:
            _sub(interface, "securityMethod").set("standardID", method)


def _language(
    capability: etree._Element, features: Mapping[str, Sequence[LanguageFeature]]
) -> None:
    language = _sub(capability, "language")
    _sub(language, "name", "ADQL")
    for version in ("2.0", "2.1"):
        _sub(language, "version", version).set(
            "ivo-id", f"ivo://ivoa.net/std/ADQL#v{version}"
        )
    _sub(language, "description", "The Astronomical Data Query Language")
    for feature_type, members in features.items():
        feature_list = _sub(language, "languageFeatures")
        feature_list.set("type", feature_type)
        for feature in members:
            element = _sub(feature_list, "feature")
            _sub(element, "form", feature.form)
            if feature.description:
                _sub(element, "description", feature.description)


def _output_format(capability: etree._Element, output_format: OutputFormat) -> None:
    element = _sub(capability, "outputFormat")
    if output_format.ivo_id:
        element.set("ivo-id", output_format.ivo_id)
    _sub(element, "mime", output_format.mime)
    for alias in output_format.aliases:
        _sub(element, "alias", alias)


def _limits(
    capability: etree._Element,
    tag: str,
    default: int,
    hard: int,
    *,
    unit: str | None = None,
) -> None:
    element = _sub(capability, tag)
    for name, value in (("default", default), ("hard", hard)):
        limit = _sub(element, name, str(value))
        if unit is not None:
            limit.set("unit", unit)


# --------------------------------------------------------------------------------
# Availability


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
    _sub(root, f"{{{NS_VOSI_AVAILABILITY}}}available", "true" if available else "false")
    if up_since is not None:
        if up_since.tzinfo is None:
            raise ValueError("up_since must be timezone-aware")
        stamp = up_since.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
        _sub(root, f"{{{NS_VOSI_AVAILABILITY}}}upSince", stamp)
    if note:
        _sub(root, f"{{{NS_VOSI_AVAILABILITY}}}note", note)
    return _to_bytes(root)


# --------------------------------------------------------------------------------
# DALI examples


def examples_document(
    base_url: str,
    examples: Sequence[tuple[str, str, str]] = DEFAULT_EXAMPLES,
) -> bytes:
    """Render a DALI 1.1 examples page: XHTML with RDFa, one div per example.

    Each example is ``(name, description, query)``. The div carries
    ``typeof="example"``, an id derived from the name and ``resource="#id"``;
    the name and the ADQL query are the RDFa properties ``name`` and ``query``.
    """
    html = etree.Element(
        f"{{{NS_XHTML}}}html",
        nsmap={None: NS_XHTML},  # type: ignore[dict-item]  # lxml: default ns
    )
    head = _sub(html, f"{{{NS_XHTML}}}head")
    _sub(head, f"{{{NS_XHTML}}}title", "TAP examples")
    body = _sub(html, f"{{{NS_XHTML}}}body")
    body.set("vocab", "http://www.ivoa.net/rdf/examples#")
    _sub(body, f"{{{NS_XHTML}}}h1", "Example queries")
    intro = _sub(body, f"{{{NS_XHTML}}}p", "ADQL queries for the TAP service at ")
    link = _sub(intro, f"{{{NS_XHTML}}}a", base_url)
    link.set("href", base_url)
    link.tail = "."
    seen: set[str] = set()
    for name, description, query in examples:
        ident = _unique_id(name, seen)
        div = _sub(body, f"{{{NS_XHTML}}}div")
        div.set("typeof", "example")
        div.set("id", ident)
        div.set("resource", f"#{ident}")
        _sub(div, f"{{{NS_XHTML}}}h2", name).set("property", "name")
        _sub(div, f"{{{NS_XHTML}}}p", description)
        _sub(div, f"{{{NS_XHTML}}}pre", query).set("property", "query")
    return bytes(
        etree.tostring(
            html,
            xml_declaration=True,
            encoding="UTF-8",
            pretty_print=True,
            doctype="<!DOCTYPE html>",
        )
    )


def _unique_id(name: str, seen: set[str]) -> str:
    base = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "ex"
    if not base[0].isalpha():
        base = "ex-" + base
    ident, counter = base, 1
    while ident in seen:
        counter += 1
        ident = f"{base}-{counter}"
    seen.add(ident)
    return ident
