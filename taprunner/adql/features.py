"""What the translator accepts, in TAPRegExt's terms: functions and syntax features.

:class:`FunctionDef` is one ADQL function (its translation and how the
capabilities advertise it); the tables of them are in :mod:`.functions` and
:mod:`.geometry`. :data:`SYNTAX_FEATURES` are the optional ADQL 2.1 features that
are syntax rather than functions (ILIKE, OFFSET, WITH, set operations, CAST).
The capabilities' ``languageFeatures`` are built from both
(:func:`taprunner.adql.functions.language_features`), so they list exactly what
the translator accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlglot import exp

from taprunner.adql.sqltext import Fragment

__all__ = [
    "FEATURES_COMMON_TABLE",
    "FEATURES_CONDITIONAL",
    "FEATURES_GEO",
    "FEATURES_OFFSET",
    "FEATURES_SETS",
    "FEATURES_STRING",
    "FEATURES_TYPE",
    "FEATURES_UDF",
    "FEATURES_UNIT",
    "FEATURE_TYPES",
    "SYNTAX_FEATURES",
    "FunctionDef",
    "LanguageFeature",
    "SyntaxFeature",
    "Translate",
]

TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt"
FEATURES_GEO = f"{TAPREGEXT}#features-adqlgeo"
FEATURES_STRING = f"{TAPREGEXT}#features-adql-string"
FEATURES_OFFSET = f"{TAPREGEXT}#features-adql-offset"
FEATURES_COMMON_TABLE = f"{TAPREGEXT}#features-adql-common-table"
FEATURES_SETS = f"{TAPREGEXT}#features-adql-sets"
FEATURES_TYPE = f"{TAPREGEXT}#features-adql-type"
#: ADQL 2.1's COALESCE (section 4.8). STILTS 3.4.7's taplint predates it (its
#: list of ADQL 2.1 feature types lacks it: E-CAP-KEYX); later STILTS know it.
FEATURES_CONDITIONAL = f"{TAPREGEXT}#features-adql-conditional"
FEATURES_UNIT = f"{TAPREGEXT}#features-adql-unit"
FEATURES_UDF = f"{TAPREGEXT}#features-udf"
#: The optional ADQL 2.1 feature types, in capabilities order (UDFs come last).
FEATURE_TYPES = (
    FEATURES_GEO,
    FEATURES_STRING,
    FEATURES_OFFSET,
    FEATURES_COMMON_TABLE,
    FEATURES_SETS,
    FEATURES_TYPE,
    FEATURES_CONDITIONAL,
    FEATURES_UNIT,
)

Translate = Callable[[list[Fragment], Sequence[exp.Expr]], Fragment]
"""Translates a call from its translated arguments and their ADQL trees.

Raises AdqlError for a wrong number or kind of arguments."""


@dataclass(frozen=True, slots=True)
class LanguageFeature:
    """One TAPRegExt language feature: its ADQL form and an optional description."""

    form: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionDef:
    """One ADQL function the translator accepts.

    ``feature_type`` says how the capabilities advertise it: None for the
    functions every ADQL service has (ABS, SQRT...), a TAPRegExt feature type
    for an optional feature (the geometry functions, LOWER...), or
    :data:`FEATURES_UDF` for a user-defined function, advertised by its
    ``signature``.
    """

    name: str
    """The ADQL name (matched case-insensitively), e.g. ``ABS``, ``ivo_hasword``."""
    translate: Translate
    example: str
    """An ADQL value expression calling it (for the tests and the reader)."""
    feature_type: str | None = None
    signature: str | None = None
    """The UDF form, e.g. ``ivo_hasword(haystack TEXT, needle TEXT) -> INTEGER``."""
    description: str | None = None

    def __post_init__(self) -> None:
        if (self.feature_type == FEATURES_UDF) != (self.signature is not None):
            raise ValueError(f"{self.name}: a UDF, and only a UDF, has a signature")

    @property
    def feature(self) -> LanguageFeature:
        """Its TAPRegExt ``feature`` entry."""
        return LanguageFeature(self.signature or self.name, self.description)


@dataclass(frozen=True, slots=True)
class SyntaxFeature:
    """An optional ADQL feature that is syntax: what the capabilities call it."""

    form: str
    feature_type: str
    example: str
    """A query using it (for the tests and the reader); ``t`` has a column ``a``."""

    @property
    def feature(self) -> LanguageFeature:
        return LanguageFeature(self.form)


SYNTAX_FEATURES: tuple[SyntaxFeature, ...] = (
    SyntaxFeature("ILIKE", FEATURES_STRING, "SELECT a FROM t WHERE a ILIKE 'x%'"),
    SyntaxFeature("OFFSET", FEATURES_OFFSET, "SELECT a FROM t ORDER BY a OFFSET 2"),
    SyntaxFeature(
        "WITH", FEATURES_COMMON_TABLE, "WITH s AS (SELECT a FROM t) SELECT a FROM s"
    ),
    SyntaxFeature("UNION", FEATURES_SETS, "SELECT a FROM t UNION SELECT a FROM t"),
    SyntaxFeature("EXCEPT", FEATURES_SETS, "SELECT a FROM t EXCEPT SELECT a FROM t"),
    SyntaxFeature(
        "INTERSECT", FEATURES_SETS, "SELECT a FROM t INTERSECT SELECT a FROM t"
    ),
    SyntaxFeature("CAST", FEATURES_TYPE, "SELECT CAST(a AS INTEGER) FROM t"),
)
# CAST to the geometry types (ADQL 2.1) is advertised by the CAST form too.
"""The syntax features the emitter supports, in capabilities order."""
