"""The ADQL functions: :data:`FUNCTIONS`, read by the translator and the capabilities.

Each :class:`~taprunner.adql.features.FunctionDef` entry holds a function's
translation to PostgreSQL and how the capabilities advertise it (its TAPRegExt
feature type, a UDF's signature). The geometry entries are in :mod:`.geometry`.
A name that is neither in the table nor among the known-but-refused ones is
rejected, so nothing else (``pg_sleep``, ``set_config``...) ever reaches the
database. Adding a function is adding an entry (and its translation) here.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from taprunner.adql.features import (
    FEATURE_TYPES,
    FEATURES_CONDITIONAL,
    FEATURES_GEO,
    FEATURES_STRING,
    FEATURES_UDF,
    FEATURES_UNIT,
    SYNTAX_FEATURES,
    FunctionDef,
    LanguageFeature,
    Translate,
)
from taprunner.adql.geometry import GEOMETRY_FUNCTIONS, REFUSED_GEOMETRY
from taprunner.adql.model import AdqlError, AdqlSyntaxError
from taprunner.adql.sqltext import Fragment
from taprunner.adql.udfs import SPHERE_UDFS, USER_DEFINED_FUNCTIONS
from taprunner.adql.units import in_unit

__all__ = [
    "AGGREGATES",
    "FUNCTIONS",
    "USER_DEFINED_FUNCTIONS",
    "call_function",
    "check_known",
    "is_geometry",
    "language_features",
]

AGGREGATES = frozenset({"COUNT", "MIN", "MAX", "SUM", "AVG"})

# PostgreSQL has no round/trunc(double precision, int) and no mod(double, double):
# go through numeric, which also gives ADQL's round-half-away-from-zero. A REAL
# goes to numeric through double precision: real -> numeric goes through the
# float's shortest decimal text (15.5634994 stored as float32 prints 15.5635 and
# would round to 15.564), double -> numeric keeps 15 significant digits (DBL_DIG),
# far more than a float32 holds.
_NUMERIC = "CAST(CAST({0} AS double precision) AS numeric)"
_VIA_NUMERIC = "CAST({0}(" + _NUMERIC.format("{1}") + "{2}) AS double precision)"
_PLAIN_NUMERIC = "CAST({0}(CAST({1} AS numeric){2}) AS double precision)"


def _check_arity(name: str, args: Sequence[Fragment], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        expected = str(low) if low == high else f"{low} to {high}"
        raise AdqlSyntaxError(f"{name} takes {expected} argument(s), {len(args)} given")


def _numbers(name: str, args: Sequence[Fragment], low: int, high: int) -> list[str]:
    """The SQL of ``args``, checked: ``low`` to ``high`` of them, no geometry."""
    _check_arity(name, args, low, high)
    for arg in args:
        if arg.geom is not None:
            raise AdqlError(f"{name} cannot take a {arg.geom}")
    return [a.sql for a in args]


def _sql_function(name: str, low: int, high: int, target: str) -> Translate:
    """``name(args)`` as the PostgreSQL function ``target(args)``."""

    def translate(args: list[Fragment], raw: Sequence[exp.Expr]) -> Fragment:
        texts = _numbers(name, args, low, high)
        return Fragment(f"{target}({', '.join(texts)})", name=name.lower())

    return translate


def _via_numeric(name: str, low: int, high: int, target: str, cast: str) -> Translate:
    """``target`` on numeric: the optional second argument cast to ``cast``.

    An integer value (known from its column's datatype, literal or CAST; for
    MOD both) goes to numeric directly and comes back as bigint: exact beyond
    2**53, where a double would lose digits.
    """

    def translate(args: list[Fragment], raw: Sequence[exp.Expr]) -> Fragment:
        texts = _numbers(name, args, low, high)
        rest = f", CAST({texts[1]} AS {cast})" if len(texts) == 2 else ""
        if args[0].integer and (cast == "integer" or args[-1].integer):
            sql = f"CAST({target}(CAST({texts[0]} AS numeric){rest}) AS bigint)"
            return Fragment(sql, name=name.lower(), integer=True)
        # MOD keeps integers exact (no detour through double precision).
        template = _VIA_NUMERIC if cast == "integer" else _PLAIN_NUMERIC
        sql = template.format(target, texts[0], rest)
        return Fragment(sql, name=name.lower())

    return translate


# RAND(seed): a number in [0, 1) that depends only on the seed (from the first 52
# bits of the MD5 of its text), so the same seed gives the same value, as ADQL
# asks; PostgreSQL's setseed() would change the session's generator instead.
_SEEDED = (
    "(CAST(CAST(('x' || substr(md5(CAST({0} AS text)), 1, 13)) AS bit(52))"
    " AS bigint) / 4503599627370496.0)"
)


def _rand(args: list[Fragment], raw: Sequence[exp.Expr]) -> Fragment:
    texts = _numbers("RAND", args, 0, 1)
    if texts:
        return Fragment(f"CAST({_SEEDED.format(texts[0])} AS double precision)",
                        name="rand")  # fmt: skip
    return Fragment("random()", name="rand")


def _scalar(name: str, low: int, high: int, target: str) -> FunctionDef:
    example = f"{name}({', '.join(['0.5'] * low)})"
    return FunctionDef(name, _sql_function(name, low, high, target), example)


_MATH: tuple[FunctionDef, ...] = (
    _scalar("ABS", 1, 1, "abs"),
    _scalar("CEILING", 1, 1, "ceiling"),
    _scalar("DEGREES", 1, 1, "degrees"),
    _scalar("EXP", 1, 1, "exp"),
    _scalar("FLOOR", 1, 1, "floor"),
    _scalar("LOG", 1, 1, "ln"),
    _scalar("LOG10", 1, 1, "log"),
    _scalar("PI", 0, 0, "pi"),
    _scalar("POWER", 2, 2, "power"),
    _scalar("RADIANS", 1, 1, "radians"),
    FunctionDef("RAND", _rand, "RAND(7)"),
    _scalar("SQRT", 1, 1, "sqrt"),
    _scalar("ACOS", 1, 1, "acos"),
    _scalar("ASIN", 1, 1, "asin"),
    _scalar("ATAN", 1, 1, "atan"),
    _scalar("ATAN2", 2, 2, "atan2"),
    _scalar("COS", 1, 1, "cos"),
    _scalar("COT", 1, 1, "cot"),
    _scalar("SIN", 1, 1, "sin"),
    _scalar("TAN", 1, 1, "tan"),
    FunctionDef(
        "COALESCE",
        _sql_function("COALESCE", 1, 1000, "coalesce"),
        "COALESCE(NULL, 0.5)",
        FEATURES_CONDITIONAL,
    ),
    FunctionDef(
        "IN_UNIT",
        in_unit,
        "IN_UNIT(a, 'rad')",
        FEATURES_UNIT,
        description="The value converted to the unit (a VOUnit); the value's"
        " unit is its column's from TAP_SCHEMA, carried through arithmetic",
    ),
    FunctionDef("ROUND", _via_numeric("ROUND", 1, 2, "round", "integer"), "ROUND(2.5)"),
    FunctionDef(
        "TRUNCATE",
        _via_numeric("TRUNCATE", 1, 2, "trunc", "integer"),
        "TRUNCATE(2.5, 1)",
    ),
    FunctionDef("MOD", _via_numeric("MOD", 2, 2, "mod", "numeric"), "MOD(7, 2)"),
)

_STRING: tuple[FunctionDef, ...] = (
    FunctionDef(
        "LOWER", _sql_function("LOWER", 1, 1, "lower"), "LOWER('Ab')", FEATURES_STRING
    ),
    FunctionDef(
        "UPPER", _sql_function("UPPER", 1, 1, "upper"), "UPPER('Ab')", FEATURES_STRING
    ),
)

FUNCTIONS: tuple[FunctionDef, ...] = (
    *_MATH,
    *_STRING,
    *GEOMETRY_FUNCTIONS,
    *USER_DEFINED_FUNCTIONS,
)
"""Every function the translator accepts besides the aggregates."""

_BY_NAME = {f.name.upper(): f for f in FUNCTIONS}
#: Functions ADQL declares that are known but refused, with the reason.
_REFUSED = {**REFUSED_GEOMETRY}


def check_known(written: str) -> None:
    """Reject the call of a function that is neither in the table nor refused
    for a reason (checked before its arguments are translated)."""
    name = written.upper()
    if name not in _BY_NAME and name not in _REFUSED:
        raise AdqlSyntaxError(f"unknown function {written}")


def is_geometry(written: str) -> bool:
    """Whether ``written`` names a function that needs pg_sphere (geometry, HEALPix)."""
    function = _BY_NAME.get(written.upper())
    return function is not None and (
        function.feature_type == FEATURES_GEO or function.name in SPHERE_UDFS
    )


def call_function(
    written: str, args: list[Fragment], raw: Sequence[exp.Expr]
) -> Fragment:
    """Translate the call of a non-aggregate ADQL function.

    Raises
    ------
    AdqlError
        If ``written`` is not an ADQL function, is refused, or its arguments
        are wrong.
    """
    name = written.upper()
    reason = _REFUSED.get(name)
    if reason is not None:
        raise AdqlError(reason)
    function = _BY_NAME.get(name)
    if function is None:
        raise AdqlError(f"unknown function {written}")
    return function.translate(args, raw)


def language_features() -> dict[str, tuple[LanguageFeature, ...]]:
    """The capabilities' ``languageFeatures``: what the translator accepts.

    By TAPRegExt feature type in capabilities order, the UDFs last; within a
    type the functions (in table order), then the syntax features.
    """
    features: dict[str, list[LanguageFeature]] = {
        kind: [] for kind in (*FEATURE_TYPES, FEATURES_UDF)
    }
    for function in FUNCTIONS:
        if function.feature_type is not None:
            features[function.feature_type].append(function.feature)
    for syntax in SYNTAX_FEATURES:
        features[syntax.feature_type].append(syntax.feature)
    return {kind: tuple(members) for kind, members in features.items() if members}
