"""The non-geometric functions ADQL declares, and their PostgreSQL spelling.

Any name not listed here, among the geometry functions or in
``USER_DEFINED_FUNCTIONS`` is rejected, so nothing else (``pg_sleep``,
``set_config``...) ever reaches the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from taprunner.adql.model import AdqlError
from taprunner.adql.sqltext import Fragment


@dataclass(frozen=True, slots=True)
class UserFunction:
    """A user-defined ADQL function: a name and the SQL it expands to."""

    name: str
    """The ADQL name (matched case-insensitively), e.g. ``ivo_hasword``."""
    min_args: int
    max_args: int
    template: str
    """SQL with ``{0}``, ``{1}``... standing for the translated arguments."""


USER_DEFINED_FUNCTIONS: tuple[UserFunction, ...] = (
    UserFunction(
        "ivo_hasword",
        2,
        2,
        "CAST((to_tsvector('simple', {0}) @@ plainto_tsquery('simple', {1}))"
        " AS integer)",
    ),
)

AGGREGATES = frozenset({"COUNT", "MIN", "MAX", "SUM", "AVG"})

# PostgreSQL has no round/trunc(double precision, int) and no mod(double, double):
# go through numeric, which also gives ADQL's round-half-away-from-zero.
_VIA_NUMERIC = "CAST({0}(CAST({1} AS numeric){2}) AS double precision)"

# name -> (min args, max args, PostgreSQL function)
_SCALARS: dict[str, tuple[int, int, str]] = {
    "ABS": (1, 1, "abs"),
    "CEILING": (1, 1, "ceiling"),
    "DEGREES": (1, 1, "degrees"),
    "EXP": (1, 1, "exp"),
    "FLOOR": (1, 1, "floor"),
    "LOG": (1, 1, "ln"),
    "LOG10": (1, 1, "log"),
    "PI": (0, 0, "pi"),
    "POWER": (2, 2, "power"),
    "RADIANS": (1, 1, "radians"),
    "RAND": (0, 0, "random"),
    "SQRT": (1, 1, "sqrt"),
    "ACOS": (1, 1, "acos"),
    "ASIN": (1, 1, "asin"),
    "ATAN": (1, 1, "atan"),
    "ATAN2": (2, 2, "atan2"),
    "COS": (1, 1, "cos"),
    "COT": (1, 1, "cot"),
    "SIN": (1, 1, "sin"),
    "TAN": (1, 1, "tan"),
    "LOWER": (1, 1, "lower"),
    "UPPER": (1, 1, "upper"),
    "COALESCE": (1, 1000, "coalesce"),
    "ROUND": (1, 2, "round"),
    "TRUNCATE": (1, 2, "trunc"),
    "MOD": (2, 2, "mod"),
}
_USER = {f.name.upper(): f for f in USER_DEFINED_FUNCTIONS}


def check_known(written: str) -> None:
    """Reject a call of anything but a scalar ADQL or user-defined function."""
    name = written.upper()
    if name not in _SCALARS and name not in _USER and name != "IN_UNIT":
        raise AdqlError(f"unknown function {written}")


def scalar_function(written: str, args: Sequence[Fragment]) -> Fragment:
    """Translate the call of a non-geometric, non-aggregate ADQL function.

    Raises
    ------
    AdqlError
        If ``written`` is not an ADQL function or the arity is wrong.
    """
    name = written.upper()
    if name == "IN_UNIT":
        raise AdqlError("IN_UNIT is not supported: column units are unknown here")
    if name == "RAND" and args:
        raise AdqlError("RAND(seed) is not supported; use RAND()")
    user = _USER.get(name)
    if user is not None:
        _check_arity(name, args, user.min_args, user.max_args)
        sql = user.template.format(*(a.sql for a in args))
        return Fragment(sql, name=user.name.lower())
    if name not in _SCALARS:
        raise AdqlError(f"unknown function {written}")
    low, high, target = _SCALARS[name]
    _check_arity(name, args, low, high)
    for arg in args:
        if arg.geom is not None:
            raise AdqlError(f"{name} cannot take a {arg.geom}")
    texts = [a.sql for a in args]
    if name in ("ROUND", "TRUNCATE", "MOD"):
        rest = f", CAST({texts[1]} AS numeric)" if name == "MOD" else ""
        if name != "MOD" and len(texts) == 2:
            rest = f", CAST({texts[1]} AS integer)"
        sql = _VIA_NUMERIC.format(target, texts[0], rest)
    else:
        sql = f"{target}({', '.join(texts)})"
    return Fragment(sql, name=name.lower())


def _check_arity(name: str, args: Sequence[Fragment], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        expected = str(low) if low == high else f"{low} to {high}"
        raise AdqlError(f"{name} takes {expected} argument(s), {len(args)} given")
