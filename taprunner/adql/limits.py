"""Limits on what one query may cost to translate: text length, nesting, IN lists.

A public service parses whatever anyone sends, so the work per query is bounded
before it starts: the text's length is checked before anything else, the
nesting of its parentheses (subqueries, function calls, grouped expressions) on
the text before the parser recurses into it, and the size of its IN lists on the
parsed tree before it is translated. A query nested deeper than the translator's
recursion allows some other way (e.g. hundreds of NOTs, or a chain of thousands
of ORs) is refused as too deeply nested, never a crash. Each refusal is a
:class:`QueryLimitError` that names its limit (the ``tap_*`` setting).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp

from taprunner.adql.model import AdqlError
from taprunner.adql.parse import parse_statement

__all__ = [
    "DEFAULT_LIMITS",
    "QueryLimitError",
    "QueryLimits",
    "check_length",
    "check_text",
    "check_tree",
    "parse_limited",
    "too_deep",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryLimits:
    """The bounds of one query (``TapSettings.query_limits``)."""

    #: Bytes of query text (UTF-8); 1 MiB holds an IN list of 100,000 ids.
    max_bytes: int = 1024 * 1024
    #: Nesting of parentheses: subqueries, function calls, grouped expressions.
    #: The parser recurses about 20 frames deep per level; 48 exhaust Python's
    #: default recursion limit.
    max_depth: int = 30
    #: Values in one IN (...) list.
    max_in_list: int = 50_000

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_depth < 1 or self.max_in_list < 1:
            raise ValueError("query limits must be positive")


DEFAULT_LIMITS = QueryLimits()


class QueryLimitError(AdqlError):
    """A query beyond one of the service's limits (its message names it)."""


#: What nests or separates, and what hides those from the count: strings,
#: delimited identifiers and comments (as ADQL's lexical rules have them). A
#: comment never closed runs to the end (the parser refuses it): scanning for
#: its end from every "/*" again would be quadratic in the text.
_NESTING = re.compile(
    r"""[(),]|'[^']*(?:''[^']*)*'|"[^"]*(?:""[^"]*)*"|--[^\n]*|/\*(?:.*?\*/|.*)""",
    re.DOTALL,
)


def check_length(adql: str, limits: QueryLimits = DEFAULT_LIMITS) -> None:
    """Refuse ``adql`` if it is longer than ``limits.max_bytes`` (UTF-8).

    Cheap enough for the event loop (at most one encoding of the text).

    Raises
    ------
    QueryLimitError
        The text is too long.
    """
    # Characters: at most the bytes, at least a quarter of them.
    size, unit = len(adql), "characters"
    if size <= limits.max_bytes < size * 4:
        size, unit = len(adql.encode("utf-8", "surrogatepass")), "bytes"
    if size > limits.max_bytes:
        raise QueryLimitError(
            f"the query is too long: {size:,} {unit}, the limit is "
            f"{limits.max_bytes:,} bytes (tap_max_query_bytes)"
        )


def check_text(adql: str, limits: QueryLimits = DEFAULT_LIMITS) -> None:
    """Refuse ``adql`` if it is too long, its parentheses nest too deeply or
    one parenthesised list (e.g. of IN) holds too many items.

    One pass of a regular expression over the text, no parsing; the length is
    checked first.

    Raises
    ------
    QueryLimitError
        The first limit the text exceeds.
    """
    check_length(adql, limits)
    items = [0]  # separators seen at each open level of parentheses
    for match in _NESTING.finditer(adql):
        token = match.group()
        if token == ",":
            items[-1] += 1
            if items[-1] >= limits.max_in_list and len(items) > 1:
                raise _long_list(limits)
        elif token == "(":
            items.append(0)
            if len(items) > limits.max_depth + 1:
                raise QueryLimitError(
                    "the query is nested too deeply: more than "
                    f"{limits.max_depth} levels of parentheses (subqueries, "
                    "function calls, grouped expressions; tap_max_query_depth)"
                )
        elif token == ")" and len(items) > 1:
            items.pop()


def check_tree(statement: exp.Expr, limits: QueryLimits = DEFAULT_LIMITS) -> None:
    """Refuse a parsed statement whose IN lists are too long.

    Raises
    ------
    QueryLimitError
        An IN list holds more than ``limits.max_in_list`` values.
    """
    for found in statement.find_all(exp.In):
        if len(found.expressions) > limits.max_in_list:
            raise _long_list(limits)


def _long_list(limits: QueryLimits) -> QueryLimitError:
    return QueryLimitError(
        f"a list is too long: more than {limits.max_in_list:,} values in one "
        "IN (...) or other parenthesised list (tap_max_in_list; upload a "
        "table and join it instead)"
    )


def too_deep() -> QueryLimitError:
    """The error for a query the translator's recursion cannot follow."""
    return QueryLimitError(
        "the query is nested too deeply to translate (nested parentheses, "
        "subqueries, CASE or NOT, or a long chain of AND, OR or arithmetic: "
        "for many values use IN (...))"
    )


def parse_limited(adql: str, limits: QueryLimits = DEFAULT_LIMITS) -> exp.Expr:
    """:func:`~taprunner.adql.parse.parse_statement`, within ``limits``.

    Raises
    ------
    AdqlError
        A syntax error, or a :class:`QueryLimitError`.
    """
    check_text(adql, limits)
    try:
        statement = parse_statement(adql)
    except RecursionError:
        raise too_deep() from None
    check_tree(statement, limits)
    return statement
