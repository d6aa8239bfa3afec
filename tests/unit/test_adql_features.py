"""The capabilities advertise exactly what the ADQL translator accepts.

Both read one table (:data:`taprunner.adql.functions.FUNCTIONS` and the syntax
features): every advertised feature or UDF must translate, and every function the
translator accepts beyond the standard ADQL ones must be advertised as a UDF.
"""

from __future__ import annotations

import pytest
from lxml import etree

from taprunner.adql.features import FEATURES_GEO, FEATURES_UDF, SYNTAX_FEATURES
from taprunner.adql.functions import FUNCTIONS, USER_DEFINED_FUNCTIONS
from taprunner.adql.model import AdqlError, StaticCatalog
from taprunner.adql.translate import translate
from taprunner.web.capabilities import capabilities_document

CATALOG = StaticCatalog({"t": ["a"]}, units={"t": {"a": "deg"}})
#: The functions ADQL 2.1 itself declares (besides the aggregates).
ADQL_FUNCTIONS = frozenset(
    {
        "ABS", "CEILING", "DEGREES", "EXP", "FLOOR", "LOG", "LOG10", "MOD", "PI",
        "POWER", "RADIANS", "RAND", "ROUND", "SQRT", "TRUNCATE", "ACOS", "ASIN",
        "ATAN", "ATAN2", "COS", "COT", "SIN", "TAN", "LOWER", "UPPER", "COALESCE",
        "IN_UNIT", "POINT", "CIRCLE", "POLYGON", "BOX", "REGION", "CENTROID",
        "CONTAINS", "INTERSECTS", "DISTANCE", "AREA", "COORD1", "COORD2", "COORDSYS",
    }
)  # fmt: skip


def _advertised() -> dict[str, list[str]]:
    """Feature forms by feature type, as the capabilities document says."""
    root = etree.fromstring(
        capabilities_document(
            "http://localhost/tap",
            upload_limit_bytes=1,
            max_rec_default=1,
            max_rec_hard=1,
            retention_default_s=1,
            retention_hard_s=1,
            execution_default_s=1,
            execution_hard_s=1,
        )
    )
    return {
        group.get("type"): group.xpath("feature/form/text()")
        for group in root.xpath("//language/languageFeatures")
    }


def _accepted(form: str, feature_type: str) -> str:
    """An ADQL query exercising the advertised ``form``, from the table."""
    if feature_type == FEATURES_UDF:
        (function,) = [f for f in USER_DEFINED_FUNCTIONS if f.signature == form]
        return f"SELECT {function.example} AS x FROM t"
    functions = [f for f in FUNCTIONS if f.name == form]
    if functions:
        assert functions[0].feature_type == feature_type
        return f"SELECT {functions[0].example} AS x FROM t"
    (syntax,) = [s for s in SYNTAX_FEATURES if s.form == form]
    assert syntax.feature_type == feature_type
    return syntax.example


def test_every_advertised_feature_is_accepted_by_the_translator() -> None:
    advertised = _advertised()
    assert advertised
    for feature_type, forms in advertised.items():
        for form in forms:
            translate(_accepted(form, feature_type), CATALOG)


def test_every_function_of_the_table_translates() -> None:
    for function in FUNCTIONS:
        translate(f"SELECT {function.example} AS x FROM t", CATALOG)
        translate(f"SELECT {function.example.lower()} AS x FROM t", CATALOG)


def test_every_udf_the_translator_accepts_is_advertised() -> None:
    udfs = _advertised().get(FEATURES_UDF, [])
    beyond_adql = [f for f in FUNCTIONS if f.name.upper() not in ADQL_FUNCTIONS]
    assert beyond_adql, "ivo_hasword at least"
    for function in beyond_adql:
        assert function.feature_type == FEATURES_UDF
        assert function.signature in udfs
        assert function.signature.startswith(f"{function.name}(")


def test_geometry_features_are_what_the_translator_does() -> None:
    geo = _advertised()[FEATURES_GEO]
    assert "CENTROID" in geo
    assert "BOX" in geo
    assert "REGION" in geo
    with pytest.raises(AdqlError, match="Union takes two regions or more"):
        translate("SELECT REGION('Union ICRS (Circle 1 2 3)') AS x FROM t", CATALOG)
    with pytest.raises(AdqlError, match="REGION supports Position, Circle, Box"):
        translate("SELECT REGION('Ellipse ICRS 1 2 3 4 5') AS x FROM t", CATALOG)
