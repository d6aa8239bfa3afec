"""VOSI and DALI-examples documents: schema validity, content, and pyvo parsing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from ivoa_xsd import load_schema
from lxml import etree

from taprunner.adql import features
from taprunner.schema.catalog import ColumnInfo, ForeignKeyInfo, TableInfo
from taprunner.web import vosi, xmldoc
from taprunner.web.capabilities import capabilities_document
from taprunner.web.examples import examples_document

NS = {
    "vosi": xmldoc.NS_VOSI_TABLES,
    "cap": xmldoc.NS_VOSI_CAPABILITIES,
    "avl": xmldoc.NS_VOSI_AVAILABILITY,
    "xsi": xmldoc.NS_XSI,
    "h": xmldoc.NS_XHTML,
}
BASE_URL = "http://localhost:8080/tap"

STARS = TableInfo(
    schema="demo",
    name="demo.stars",
    description="Simulated stars",
    type="table",
    columns=(
        ColumnInfo(
            name="id",
            datatype="long",
            ucd="meta.id;meta.main",
            description="Identifier",
            indexed=True,
            principal=True,
        ),
        ColumnInfo(
            name="ra",
            datatype="double",
            unit="deg",
            ucd="pos.eq.ra;meta.main",
            principal=True,
        ),
        ColumnInfo(name="name", datatype="char", arraysize="*"),
        ColumnInfo(name="seen", datatype="char", arraysize="*", xtype="timestamp"),
        ColumnInfo(name="pos", datatype="double", arraysize="2", xtype="point"),
    ),
)
OBSERVATIONS = TableInfo(
    schema="demo",
    name="demo.observations",
    description=None,
    type="view",
    utype="ivo://example/obs",
    columns=(
        ColumnInfo(name="star_id", datatype="long"),
        ColumnInfo(name="flux", datatype="float", std=True),
    ),
    foreign_keys=(
        ForeignKeyInfo(
            key_id="demo.observations.fk",
            target_table="demo.stars",
            columns=(("star_id", "id"),),
            description="Observed star",
        ),
    ),
)
SCHEMA_TABLES = TableInfo(
    schema="tap_schema",
    name="tap_schema.schemas",
    description="Schemas",
    type="table",
    columns=(ColumnInfo(name="schema_name", datatype="char", arraysize="*", std=True),),
)
TABLES = (STARS, OBSERVATIONS, SCHEMA_TABLES)


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return load_schema()


def assert_valid(schema: etree.XMLSchema, document: bytes) -> etree._Element:
    root = etree.fromstring(document)
    assert schema.validate(root), schema.error_log
    return root


def capabilities(**overrides: object) -> bytes:
    arguments: dict[str, object] = {
        "upload_limit_bytes": 10_000_000,
        "max_rec_default": 10_000,
        "max_rec_hard": 1_000_000,
        "retention_default_s": 86_400,
        "retention_hard_s": 604_800,
        "execution_default_s": 600,
        "execution_hard_s": 3_600,
    }
    arguments.update(overrides)
    return capabilities_document(BASE_URL, **arguments)  # type: ignore[arg-type]


# ------------------------------------------------------------------ tables


def test_tables_document_is_valid(schema: etree.XMLSchema) -> None:
    root = assert_valid(schema, vosi.tables_document(TABLES))
    assert root.tag == f"{{{xmldoc.NS_VOSI_TABLES}}}tableset"
    assert root.xpath("schema/name/text()") == ["demo", "tap_schema"]
    assert root.xpath("schema[name='demo']/table/name/text()") == [
        "demo.stars",
        "demo.observations",
    ]


def test_tables_document_columns(schema: etree.XMLSchema) -> None:
    root = assert_valid(schema, vosi.tables_document(TABLES))
    (ra,) = root.xpath("//table[name='demo.stars']/column[name='ra']")
    assert ra.findtext("unit") == "deg"
    assert ra.findtext("ucd") == "pos.eq.ra;meta.main"
    datatype = ra.find("dataType")
    assert datatype.text == "double"
    assert datatype.get(f"{{{xmldoc.NS_XSI}}}type") == "vs:VOTableType"
    assert ra.xpath("flag/text()") == ["principal"]
    (seen,) = root.xpath("//column[name='seen']/dataType")
    assert seen.get("arraysize") == "*"
    assert seen.get("extendedType") == "timestamp"
    (ident,) = root.xpath("//column[name='id']")
    assert ident.xpath("flag/text()") == ["indexed", "principal"]
    (flux,) = root.xpath("//column[name='flux']")
    assert flux.get("std") == "true"


def test_tables_document_foreign_keys_and_type(schema: etree.XMLSchema) -> None:
    root = assert_valid(schema, vosi.tables_document(TABLES))
    (view,) = root.xpath("//table[name='demo.observations']")
    assert view.get("type") == "view"
    assert view.findtext("utype") == "ivo://example/obs"
    assert view.findtext("foreignKey/targetTable") == "demo.stars"
    assert view.findtext("foreignKey/fkColumn/fromColumn") == "star_id"
    assert view.findtext("foreignKey/fkColumn/targetColumn") == "id"


def test_tables_document_row_counts(schema: etree.XMLSchema) -> None:
    """VODataService 1.2 ``nrows``: after utype, before the columns; none when
    unknown; zero is a count."""
    counted = replace(OBSERVATIONS, nrows=12345678901)
    empty = replace(STARS, nrows=0)
    root = assert_valid(schema, vosi.tables_document((empty, counted, SCHEMA_TABLES)))
    (view,) = root.xpath("//table[name='demo.observations']")
    assert [c.tag for c in view][:4] == ["name", "utype", "nrows", "column"]
    assert view.findtext("nrows") == "12345678901"
    assert root.xpath("//table[name='demo.stars']/nrows/text()") == ["0"]
    assert root.xpath("//table[name='tap_schema.schemas']/nrows") == []
    minimal = assert_valid(schema, vosi.tables_document((counted,), detail="min"))
    assert minimal.xpath("//nrows/text()") == ["12345678901"]
    assert_valid(schema, vosi.table_document(counted))


def test_tables_document_min_detail_has_no_columns(schema: etree.XMLSchema) -> None:
    root = assert_valid(schema, vosi.tables_document(TABLES, detail="min"))
    assert len(root.xpath("//table")) == 3
    assert root.xpath("//column") == []


def test_tables_document_empty_is_valid(schema: etree.XMLSchema) -> None:
    root = assert_valid(schema, vosi.tables_document(()))
    assert root.xpath("schema/name/text()") == ["tap_schema"]


def test_table_document(schema: etree.XMLSchema) -> None:
    root = assert_valid(schema, vosi.table_document(STARS))
    assert root.tag == f"{{{xmldoc.NS_VOSI_TABLES}}}table"
    assert root.findtext("name") == "demo.stars"
    assert root.xpath("column/name/text()") == ["id", "ra", "name", "seen", "pos"]


def test_tables_parse_with_pyvo() -> None:
    pyvo_vosi = pytest.importorskip("pyvo.io.vosi")
    parsed = pyvo_vosi.parse_tables(_as_file(vosi.tables_document(TABLES)))
    names = [t.name for t in parsed.iter_tables()]
    assert names == ["demo.stars", "demo.observations", "tap_schema.schemas"]
    stars = parsed.tableset.schemas[0].tables[0]
    ra = next(c for c in stars.columns if c.name == "ra")
    assert ra.unit == "deg"
    assert ra.datatype.content == "double"
    single = pyvo_vosi.parse_tables(_as_file(vosi.table_document(STARS)))
    assert single.get_first_table().name == "demo.stars"


# ------------------------------------------------------------ capabilities


def test_capabilities_document_is_valid(schema: etree.XMLSchema) -> None:
    root = assert_valid(schema, capabilities())
    assert root.tag == f"{{{xmldoc.NS_VOSI_CAPABILITIES}}}capabilities"
    assert root.xpath("capability/@standardID") == [
        xmldoc.STD_TAP,
        xmldoc.STD_VOSI_CAPABILITIES,
        xmldoc.STD_VOSI_AVAILABILITY,
        xmldoc.STD_VOSI_TABLES,
        xmldoc.STD_DALI_EXAMPLES,
    ]


def test_capabilities_tap_interface_and_language(schema: etree.XMLSchema) -> None:
    root = assert_valid(schema, capabilities())
    (tap,) = root.xpath("capability[@standardID=$id]", id=xmldoc.STD_TAP)
    assert tap.get(f"{{{xmldoc.NS_XSI}}}type") == "tr:TableAccess"
    (interface,) = tap.findall("interface")
    assert interface.get("role") == "std"
    assert interface.get("version") == "1.1"
    assert interface.findtext("accessURL") == BASE_URL
    assert tap.xpath("language/name/text()") == ["ADQL"]
    assert tap.xpath("language/version/@ivo-id") == [
        "ivo://ivoa.net/std/ADQL#v2.0",
        "ivo://ivoa.net/std/ADQL#v2.1",
    ]
    geo = tap.xpath(
        "language/languageFeatures[@type=$t]/feature/form/text()",
        t=features.FEATURES_GEO,
    )
    assert {"POINT", "CIRCLE", "CONTAINS", "COORDSYS"} <= set(geo)
    assert tap.xpath(
        "language/languageFeatures[@type=$t]/feature/form/text()",
        t=features.FEATURES_STRING,
    ) == ["LOWER", "UPPER", "ILIKE"]


def test_capabilities_features_are_the_translators(schema: etree.XMLSchema) -> None:
    """CENTROID, BOX, REGION and the IVOA UDFs work and are advertised."""
    root = assert_valid(schema, capabilities())
    (tap,) = root.xpath("capability[@standardID=$id]", id=xmldoc.STD_TAP)

    def forms(feature_type: str) -> list[str]:
        return list(
            tap.xpath(
                "language/languageFeatures[@type=$t]/feature/form/text()",
                t=feature_type,
            )
        )

    assert forms(features.FEATURES_GEO) == [
        "POINT", "CIRCLE", "POLYGON", "BOX", "REGION", "CENTROID", "CONTAINS",
        "INTERSECTS", "DISTANCE", "AREA", "COORD1", "COORD2", "COORDSYS",
    ]  # fmt: skip
    assert [f.partition("(")[0] for f in forms(features.FEATURES_UDF)] == [
        "ivo_hasword", "ivo_nocasematch", "ivo_hashlist_has",
        "ivo_interval_overlaps", "ivo_string_agg", "ivo_healpix_index",
        "ivo_healpix_center", "ivo_epoch_prop", "ivo_epoch_prop_pos",
        "ESO_INTERSECTION", "eso_dateadd_sec",
    ]  # fmt: skip
    assert forms(features.FEATURES_UNIT) == ["IN_UNIT"]
    # ADQL 2.1's conditional function, under its own feature type.
    assert forms(features.FEATURES_CONDITIONAL) == ["COALESCE"]
    assert tap.xpath("language/languageFeatures/@type")[-1] == features.FEATURES_UDF


def test_capabilities_formats_and_limits(schema: etree.XMLSchema) -> None:
    root = assert_valid(schema, capabilities())
    (tap,) = root.xpath("capability[@standardID=$id]", id=xmldoc.STD_TAP)
    mimes = tap.xpath("outputFormat/mime/text()")
    assert mimes[0] == "application/x-votable+xml;serialization=BINARY2"
    assert "text/csv" in mimes and "text/tab-separated-values" in mimes
    assert "votable" in tap.xpath("outputFormat[1]/alias/text()")
    assert tap.xpath("uploadMethod/@ivo-id")[0].endswith("#upload-inline")
    assert tap.findtext("retentionPeriod/default") == "86400"
    assert tap.findtext("executionDuration/hard") == "3600"
    assert tap.find("outputLimit/hard").get("unit") == "row"
    assert tap.findtext("outputLimit/default") == "10000"
    assert tap.find("uploadLimit/hard").get("unit") == "byte"
    assert tap.findtext("uploadLimit/hard") == "10000000"


def test_capabilities_vosi_urls(schema: etree.XMLSchema) -> None:
    root = assert_valid(schema, capabilities())
    urls = root.xpath("capability/interface/accessURL/text()")
    for path in ("capabilities", "availability", "tables", "examples"):
        assert f"{BASE_URL}/{path}" in urls


def test_capabilities_udfs_and_security_methods(schema: etree.XMLSchema) -> None:
    cookie = "ivo://ivoa.net/sso#cookie"
    document = capabilities(
        udfs=(
            features.LanguageFeature("ivo_hasword(a TEXT, b TEXT) -> INTEGER", "Words"),
        ),
        security_methods=(None, cookie),
    )
    root = assert_valid(schema, document)
    (tap,) = root.xpath("capability[@standardID=$id]", id=xmldoc.STD_TAP)
    assert tap.xpath(
        "language/languageFeatures[@type=$t]/feature/form/text()",
        t=features.FEATURES_UDF,
    ) == ["ivo_hasword(a TEXT, b TEXT) -> INTEGER"]
    interfaces = tap.findall("interface")
    assert len(interfaces) == 2
    assert interfaces[0].find("securityMethod") is None
    assert interfaces[1].find("securityMethod").get("standardID") == cookie


def test_capabilities_parse_with_pyvo() -> None:
    pyvo_vosi = pytest.importorskip("pyvo.io.vosi")
    parsed = pyvo_vosi.parse_capabilities(_as_file(capabilities()))
    (tap,) = [c for c in parsed if c.standardid == xmldoc.STD_TAP]
    assert tap.outputlimit.hard.content == 1_000_000
    assert tap.outputlimit.default.content == 10_000
    assert tap.uploadlimit.hard.unit == "byte"
    assert tap.executionduration.hard == 3600
    (language,) = tap.languages
    assert language.name == "ADQL"
    assert language.get_feature(features.FEATURES_GEO, "CONTAINS") is not None
    assert [f.mime for f in tap.outputformats][0].endswith("BINARY2")


# ------------------------------------------------------------ availability


def test_availability_document(schema: etree.XMLSchema) -> None:
    since = datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    root = assert_valid(schema, vosi.availability_document(True, "all fine", since))
    assert root.tag == f"{{{xmldoc.NS_VOSI_AVAILABILITY}}}availability"
    assert root.findtext("avl:available", namespaces=NS) == "true"
    assert root.findtext("avl:upSince", namespaces=NS) == "2024-05-01T12:30:00Z"
    assert root.findtext("avl:note", namespaces=NS) == "all fine"


def test_availability_down_without_since(schema: etree.XMLSchema) -> None:
    root = assert_valid(schema, vosi.availability_document(False, "db down", None))
    assert root.findtext("avl:available", namespaces=NS) == "false"
    assert root.find("avl:upSince", namespaces=NS) is None


def test_availability_rejects_naive_datetime() -> None:
    with pytest.raises(ValueError):
        vosi.availability_document(True, "", datetime(2024, 1, 1))


def test_availability_parses_with_pyvo() -> None:
    pyvo_vosi = pytest.importorskip("pyvo.io.vosi")
    since = datetime(2024, 5, 1, tzinfo=UTC)
    parsed = pyvo_vosi.parse_availability(
        _as_file(vosi.availability_document(True, "ok", since))
    )
    assert parsed.available is True
    assert parsed.notes == ["ok"]


# ---------------------------------------------------------------- examples


def test_examples_document_rdfa() -> None:
    root = etree.fromstring(examples_document(BASE_URL))
    assert root.tag == f"{{{xmldoc.NS_XHTML}}}html"
    assert root.find("h:body", NS).get("vocab") == "http://www.ivoa.net/rdf/examples#"
    examples = root.xpath("//h:div[@typeof='example']", namespaces=NS)
    assert 4 <= len(examples) <= 6
    ids = [div.get("id") for div in examples]
    assert len(set(ids)) == len(ids)
    for div in examples:
        assert div.get("resource") == "#" + div.get("id")
        (name,) = div.xpath(".//*[@property='name']")
        (query,) = div.xpath(".//*[@property='query']")
        assert name.text and query.text
    queries = root.xpath("//*[@property='query']/text()")
    assert any("demo.stars" in q for q in queries)
    assert any("TAP_SCHEMA" in q for q in queries)


def test_examples_document_escapes_and_dedupes_ids() -> None:
    document = examples_document(
        BASE_URL,
        [("Same", "a < b", "SELECT 1 WHERE 1 < 2"), ("Same", "x", "SELECT 2")],
    )
    root = etree.fromstring(document)
    ids = root.xpath("//h:div[@typeof='example']/@id", namespaces=NS)
    assert ids == ["same", "same-2"]
    assert root.xpath("//*[@property='query']/text()")[0] == "SELECT 1 WHERE 1 < 2"


def _as_file(document: bytes) -> object:
    import io

    return io.BytesIO(document)
